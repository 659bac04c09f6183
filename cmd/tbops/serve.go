package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/rpc"
	"github.com/theblock/tbops/serve"
)

// serveFlags are tbops serve's own flags.
type serveFlags struct {
	listen, nodesFile, state, shard, explorer string
	interval, scrapeInterval, retention       time.Duration
	workers                                   int
	probeAny, slo                             bool

	// The Alertmanager webhook's.
	notify                  []string
	notifyFormat, nodeLabel string
	repeatInterval          time.Duration
}

// webhookTokenEnv holds the bearer token the webhook asks for: an
// environment variable, never a flag (a flag shows in ps).
const webhookTokenEnv = "TB_SERVE_WEBHOOK_TOKEN"

func (a *app) serveCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "The continuous doctor: every runbook on every node each interval, with /metrics, /probe, an API and a status page",
		Long: `serve runs every runbook doctor runs against every node (--rpc, repeatable, or
--nodes FILE) every --interval, and keeps running. Without --prom it scrapes each
node's /metrics every --scrape-interval and keeps an hour of history, so "for 10m"
and "flat for 50m" conditions are decided once it has seen them (until then they
are unknown and say how much was observed). With --prom it asks Prometheus,
scoped to each node.

It answers, read-only, on --listen:
  /metrics                  tbops_runbook_status{node,runbook} (0 ok 1 warning 2 critical 3 unknown),
                            tbops_symptom_firing, tbops_alert_firing, tbops_node_up, ...
  /probe?target=URL         diagnose one node now (blackbox_exporter style; configured
                            nodes only unless --probe-any)
  /api/v1/reports           the latest reports, as tbops doctor -o json prints them
  /api/v1/history           verdict transitions
  /api/v1/alerts            alerts received on the webhook and their notifications
  /                         a status page: nodes x runbooks, each cell linking to its report

It also takes Alertmanager's webhook (POST /api/v1/alertmanager): each firing alert
of a tbops rule (tbops rules) is matched to a node by its instance label (the
node's metrics host:port; --node-label L matches label L with the node's URL
instead), that runbook is diagnosed for the node at once, and every --notify URL
gets one notification with the alert, the report and its planned commands
(--notify-format slack: a Slack incoming-webhook message). The same alert with
the same verdict is not sent again within --repeat-interval; a resolved alert
sends one resolved notification with a fresh diagnosis. Set TB_SERVE_WEBHOOK_TOKEN
to ask Alertmanager for that bearer token.

--state FILE keeps every verdict transition, alert and notification in SQLite
across restarts (read it with tbops history [--alerts]). --shard I/N serves only
the nodes of shard I of N, so N instances split a fleet. SIGTERM or SIGINT stops
it cleanly (exit 0).`,
		Example: `  tbops serve --listen 127.0.0.1:9847 --nodes /etc/tbops/nodes.txt --state /var/lib/tbops/state.db
  tbops serve --listen :9847 --rpc http://node-a:3030/ --rpc http://node-b:3030/ --prom http://prometheus:9090
  tbops serve --listen :9847 --nodes fleet.txt --shard 0/2    # and --shard 1/2 on the second instance
  TB_SERVE_WEBHOOK_TOKEN=… tbops serve --listen :9847 --nodes fleet.txt --notify https://hooks.slack.com/services/… --notify-format slack`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return a.runServe(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "address to answer HTTP on, such as 127.0.0.1:9847 (required)")
	fl.StringVar(&f.nodesFile, "nodes", "", "file of node RPC URLs, one a line (# comments)")
	fl.DurationVar(&f.interval, "interval", serve.DefaultInterval, "how often every runbook runs against every node")
	fl.DurationVar(&f.scrapeInterval, "scrape-interval", serve.DefaultScrapeInterval, "how often each node's /metrics is scraped for serve's own history (without --prom)")
	fl.StringVar(&f.state, "state", "", "SQLite file that keeps every verdict transition across restarts (default: kept in memory only)")
	fl.DurationVar(&f.retention, "retention", serve.DefaultRetention, "how long --state keeps transitions (the newest of each node and runbook is always kept)")
	fl.IntVar(&f.workers, "workers", serve.DefaultWorkers, "nodes diagnosed at once")
	fl.StringVar(&f.shard, "shard", "", "serve only the nodes of shard I of N (I/N, 0 ≤ I < N), to split a fleet across instances")
	fl.BoolVar(&f.probeAny, "probe-any", false, "let /probe diagnose any http(s) target, not only the configured nodes")
	fl.BoolVar(&f.slo, "slo", false, "also evaluate the SLO tables")
	fl.StringVar(&f.explorer, "explorer", "", `explorer URL answering {"latest_receipt_height": N} for the receipts runbook (default: not checked, so unknown)`)
	fl.StringArrayVar(&f.notify, "notify", nil, "URL to POST a notification of each alert Alertmanager sends to /api/v1/alertmanager (repeatable; shown as scheme://host only)")
	fl.StringVar(&f.notifyFormat, "notify-format", serve.NotifyJSON, "notification body: json (alert, report, summary) or slack (an incoming-webhook message)")
	fl.DurationVar(&f.repeatInterval, "repeat-interval", serve.DefaultRepeatInterval, "how long a notification of a firing alert holds: the same alert and verdict is not sent again within it")
	fl.StringVar(&f.nodeLabel, "node-label", "", "match an alert to a node by this label, compared with the node's RPC URL (default: the instance label, compared with the node's metrics host:port)")
	return cmd
}

// webhookOptions are the Alertmanager webhook's options: every tbops rule's
// alert mapped to its runbook, the notify targets, the token from the
// environment.
func (a *app) webhookOptions(f serveFlags) ([]serve.Option, error) {
	runbooks := map[string]string{}
	for _, r := range allRules() {
		runbooks[r.Alert] = r.Runbook
	}
	opts := []serve.Option{serve.WithAlertRunbooks(runbooks), serve.WithRepeatInterval(f.repeatInterval),
		serve.WithWebhookToken(a.getenv(webhookTokenEnv))}
	if f.nodeLabel != "" {
		opts = append(opts, serve.WithNodeLabel(f.nodeLabel))
	}
	if f.notifyFormat != serve.NotifyJSON && f.notifyFormat != serve.NotifySlack {
		return nil, fmt.Errorf("--notify-format %q: want json or slack", f.notifyFormat)
	}
	for _, u := range f.notify {
		t := serve.NotifyTarget{URL: u, Format: f.notifyFormat}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("--notify %s: want an http or https URL such as https://hooks.slack.com/services/…", t)
		}
		opts = append(opts, serve.WithNotify(t))
	}
	return opts, nil
}

// warnOpenWebhook says, once, that a webhook listening beyond loopback takes
// alerts from anyone without a token.
func (a *app) warnOpenWebhook(addr net.Addr) {
	if a.getenv(webhookTokenEnv) != "" {
		return
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return
	}
	fmt.Fprintf(a.stderr, "tbops serve: warning: %s takes alerts from anyone on the network at %s; set %s and give Alertmanager the same token (http_config.authorization)\n",
		serve.WebhookPath, addr, webhookTokenEnv)
}

func (a *app) runServe(ctx context.Context, f serveFlags) error {
	if f.listen == "" {
		return &exitError{code: 3, err: errors.New("--listen is required: the address to answer on, such as 127.0.0.1:9847")}
	}
	nodes, err := a.serveNodes(f)
	if err != nil {
		return err
	}
	opts := []serve.Option{serve.WithInterval(f.interval), serve.WithScrapeInterval(f.scrapeInterval),
		serve.WithWorkers(f.workers), serve.WithRetention(f.retention), serve.WithProbeAny(f.probeAny),
		serve.WithScrapeTimeout(min(a.timeout, f.scrapeInterval)), serve.WithUpCheck(a.nodeUp),
		serve.WithLogger(slog.New(slog.NewTextHandler(a.stderr, nil)))}
	hc, err := a.httpClient()
	if err != nil {
		return &exitError{code: 3, err: err}
	}
	opts = append(opts, serve.WithScrapeClient(hc), serve.WithNotifyClient(hc))
	wh, err := a.webhookOptions(f)
	if err != nil {
		return &exitError{code: 3, err: err}
	}
	opts = append(opts, wh...)
	if a.promGiven() {
		src, err := a.servePromSource(ctx)
		if err != nil {
			return &exitError{code: 3, err: err}
		}
		opts = append(opts, serve.WithSource(src))
	}
	if f.state != "" {
		st, err := serve.OpenStore(ctx, f.state)
		if err != nil {
			return &exitError{code: 3, err: fmt.Errorf("--state: %w", err)}
		}
		defer st.Close() // after Serve has returned: the state is flushed
		opts = append(opts, serve.WithStore(st))
	}
	srv, err := serve.New(ctx, nodes, a.serveRunbooks(f.slo, f.explorer), opts...)
	if err != nil {
		return &exitError{code: 3, err: err}
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return &exitError{code: 3, err: fmt.Errorf("--listen %s: %w; pick a free address", f.listen, err)}
	}
	fmt.Fprintf(a.stderr, "tbops serve: %d nodes every %s; status page http://%s/, metrics /metrics, Alertmanager webhook %s\n",
		len(nodes), f.interval, ln.Addr(), serve.WebhookPath)
	for _, u := range f.notify {
		fmt.Fprintf(a.stderr, "tbops serve: notifying %s (%s)\n", serve.RedactNotifyURL(u), f.notifyFormat)
	}
	a.warnOpenWebhook(ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		return &exitError{code: 3, err: err}
	}
	fmt.Fprintln(a.stderr, "tbops serve: stopped")
	return nil
}

// serveNodes are the nodes this instance serves: --rpc and --nodes (else
// TB_RPC_URL), narrowed to --shard.
func (a *app) serveNodes(f serveFlags) ([]serve.Node, error) {
	urls := append([]string(nil), a.rpcURLs...)
	if f.nodesFile != "" {
		more, err := readNodesFile(f.nodesFile)
		if err != nil {
			return nil, err
		}
		urls = append(urls, more...)
	}
	if len(urls) == 0 && a.getenv("TB_RPC_URL") != "" {
		urls = []string{a.getenv("TB_RPC_URL")}
	}
	if len(urls) == 0 {
		return nil, &exitError{code: 3, err: errors.New("no nodes to watch: give --rpc URL (repeatable) or --nodes FILE")}
	}
	if a.metricsURL != "" && len(urls) > 1 {
		return nil, &exitError{code: 3, err: errors.New("--metrics names one node's /metrics: with several nodes drop it (each node's own /metrics is scraped)")}
	}
	nodes := make([]serve.Node, len(urls))
	for i, u := range urls {
		nodes[i] = serve.Node{URL: u, MetricsURL: a.metricsURLFor(u)}
	}
	if f.shard == "" {
		return nodes, nil
	}
	i, n, err := serve.ParseShard(f.shard)
	if err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("--shard: %w", err)}
	}
	mine := serve.Shard(nodes, i, n)
	fmt.Fprintf(a.stderr, "tbops serve: shard %d/%d: %d of the %d nodes\n", i, n, len(mine), len(nodes))
	return mine, nil
}

// serveRunbooks is what serve runs against each node: doctor's runbooks, each
// as a tbops.Runbook over the node's source (--prom-match narrows serve's own
// scrape as it narrows doctor's). When doctor's list is built from the domain
// packages' NewRunbook constructors, this returns that list.
func (a *app) serveRunbooks(slo bool, explorer string) serve.Runbooks {
	rbs := a.runbooks()
	labels, _ := a.promMatchers() // validated before the command ran
	return func(n serve.Node, src promq.Source) []tbops.Runbook {
		if src != nil && !a.promGiven() {
			src = promq.Scoped(src, labels)
		}
		t := &target{rpcURL: n.URL, metricsURL: n.MetricsURL, src: src, now: time.Now, slo: slo, explorer: explorer}
		out := make([]tbops.Runbook, len(rbs))
		for i, rb := range rbs {
			out[i] = tbops.Func(rb.id, func(ctx context.Context) (tbops.Report, error) {
				r, err := rb.diagnose(ctx, t)
				if err == nil && t.src == nil && rb.usesMetrics {
					r.Warnf("no metrics source for this node")
				}
				return r, err
			})
		}
		return out
	}
}

// servePromSource is serve's --prom source: one Prometheus client, each node's
// questions scoped by --prom-match, else by its metrics URL's host:port (the
// instance label Prometheus gives a target by default). A Prometheus that does
// not answer at start is reported and asked again at every run.
func (a *app) servePromSource(ctx context.Context) (func(serve.Node) (promq.Source, error), error) {
	opts, _ := a.promRequestOptions() // validated before the command ran
	p, err := promq.NewPrometheus(a.promBase(), append(opts, promq.WithTimeout(a.timeout))...)
	if err != nil {
		return nil, fmt.Errorf("%v; pass a valid --prom URL or PROMETHEUS_URL", err)
	}
	if _, err := p.Client().Query(ctx, "1", time.Time{}); err != nil && ctx.Err() == nil {
		fmt.Fprintf(a.stderr, "tbops serve: warning: Prometheus at %s does not answer yet: %v\n", p.Client().URL(), shortErr(err))
	}
	labels, _ := a.promMatchers()
	return func(n serve.Node) (promq.Source, error) {
		if len(labels) > 0 {
			return promq.Scoped(p, labels), nil
		}
		u, err := url.Parse(n.MetricsURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("cannot scope Prometheus questions to %s: its metrics URL has no host; pass --prom-match instance=HOST:PORT", n.Label())
		}
		return promq.Scoped(p, map[string]string{"instance": u.Host}), nil
	}, nil
}

// nodeUp is tbops_node_up's check: the node answers node.status. Any JSON-RPC
// answer counts, an error one too: the reference node answers -32601 to
// node.status, and a node that says so is up.
func (a *app) nodeUp(ctx context.Context, n serve.Node) error {
	c, err := a.rpcClient(n.URL, "")
	if err != nil {
		return err
	}
	var answered *rpc.Error
	if err := c.Read(ctx, "node.status", nil, nil); err != nil && !errors.As(err, &answered) {
		return err
	}
	return nil
}
