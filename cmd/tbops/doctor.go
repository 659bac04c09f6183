package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// target is one node a diagnosis runs against, and how it is reached.
type target struct {
	rpcURL     string
	metricsURL string
	// src is the metrics source (Prometheus or the node's /metrics); nil when none
	// could be set up, which each runbook reports as missing data.
	src   promq.Source
	now   func() time.Time
	slo   bool
	apply bool
	// explorer is the explorer URL the receipts runbook checks ("" for none).
	explorer string
}

// runbook is one diagnosis doctor runs.
type runbook struct {
	id          string
	usesMetrics bool
	diagnose    func(ctx context.Context, t *target) (tbops.Report, error)
}

// runbooks lists every diagnosis doctor runs, in report order.
func (a *app) runbooks() []runbook {
	var out []runbook
	for _, rb := range []*runbook{a.nodeRunbook(), a.treasuryRunbook(), a.energyRunbook(),
		a.receiptsRunbook(), a.governorRunbook(), a.runtimeRunbook()} {
		if rb != nil {
			out = append(out, *rb)
		}
	}
	return out
}

// doctorResult is what doctor -o json prints.
type doctorResult struct {
	Status    tbops.Status   `json:"status"`
	CheckedAt time.Time      `json:"checked_at"`
	Nodes     []string       `json:"nodes"`
	Reports   []tbops.Report `json:"reports"`
}

func (a *app) doctorCmd() *cobra.Command {
	var (
		slo       bool
		scenario  string
		nodesFile string
		workers   int
		summary   bool
		explorer  string
		history   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Run every runbook's diagnosis (against the simulated node when no --rpc is given)",
		Long: `doctor runs every runbook concurrently against one node or many (repeat --rpc, or
--nodes FILE with one URL a line) and prints a summary row per node and runbook,
then the details. With no --rpc and no TB_RPC_URL it starts the simulated node
in-process (--scenario picks what it simulates) so you can see what tbops does.

Windowed conditions ("for 10m", "sustained growth", "flat for 5 blocks") are
decided only on data that covers them. Without --prom, doctor sees a node's
metrics for about a second (two scrapes, one wait for the whole fleet), so
those it cannot decide are "unknown" and say what would decide them: --prom
(Prometheus has the history) or tbops serve (which accumulates it). The
simulated node replays --history of its past first (70m: every window and
"for"), the way a Prometheus scraping it all along would have seen it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			urls := append([]string(nil), a.rpcURLs...)
			if nodesFile != "" {
				more, err := readNodesFile(nodesFile)
				if err != nil {
					return err
				}
				urls = append(urls, more...)
			}
			if len(urls) == 0 && a.getenv("TB_RPC_URL") != "" {
				urls = []string{a.getenv("TB_RPC_URL")}
			}
			if len(urls) == 0 {
				name := scenario
				if name == "" {
					name = "healthy"
				}
				sim, err := a.startSim(ctx, name, history)
				if err != nil {
					return &exitError{code: 3, err: err}
				}
				defer sim.close()
				urls = []string{sim.node.URL()}
				if explorer == "" {
					explorer = sim.node.ExplorerURL()
				}
			} else if scenario != "" {
				return &exitError{code: 3, err: fmt.Errorf("--scenario only applies to the simulated node: drop it or drop --rpc")}
			}
			reports := a.diagnoseAll(ctx, urls, workers, slo, explorer)
			res := doctorResult{Status: tbops.StatusOK, CheckedAt: time.Now().UTC(), Nodes: redactURLs(urls), Reports: reports}
			statuses := make([]tbops.Status, 0, len(reports))
			for _, r := range reports {
				statuses = append(statuses, r.Status)
			}
			res.Status = tbops.Worst(statuses...)
			if a.output == "json" {
				if err := a.printJSON(res); err != nil {
					return err
				}
				return exitCode(res.Status.ExitCode())
			}
			a.writeSummary(reports, len(urls) > 1)
			if !summary {
				for _, r := range reports {
					fmt.Fprintln(a.stdout)
					if err := r.WriteText(a.stdout); err != nil {
						return err
					}
				}
			}
			fmt.Fprintf(a.stdout, "\nOverall: %s\n", strings.ToUpper(string(res.Status)))
			return exitCode(res.Status.ExitCode())
		},
	}
	cmd.Flags().BoolVar(&slo, "slo", false, "also evaluate the SLO tables")
	cmd.Flags().StringVar(&scenario, "scenario", "", "simulated node's scenario when no --rpc is given (see tbops sim --list)")
	cmd.Flags().StringVar(&nodesFile, "nodes", "", "file of node RPC URLs, one a line (# comments)")
	cmd.Flags().IntVar(&workers, "workers", 8, "nodes diagnosed at once")
	cmd.Flags().BoolVar(&summary, "summary", false, "print only the summary table")
	cmd.Flags().StringVar(&explorer, "explorer", "", `explorer URL answering {"latest_receipt_height": N} for the receipts runbook (default: not checked, so unknown; the simulated node serves one)`)
	cmd.Flags().DurationVar(&history, "history", simHistory, "simulated node only: replay this much of its past first, scraped every 15s as Prometheus would (0: judge on a one-second look, as against a real node without --prom)")
	return cmd
}

// fleetGCPercent is the garbage collector's target while doctor diagnoses a
// fleet, unless GOGC is set (Go's default is 100). Each node's diagnosis makes
// short-lived garbage: over 200 nodes, 200 collects 13 times instead of 35 for
// a quarter more memory (BENCHMARKS.md, "tbops doctor fleet").
const fleetGCPercent = 200

// scrapeConcurrency bounds the scrapes doctor makes at once: I/O, not the
// CPU-heavy runbooks --workers bounds.
const scrapeConcurrency = 32

// diagnoseAll runs every runbook against every node and returns the reports in
// node order then runbook order. The metrics come first, for the whole fleet at
// once: every node's first scrape, one wait of firstScrapeGap, every node's
// second scrape (with --prom, one Prometheus scoped to each node). No wait is
// held inside a worker: then at most workers nodes are diagnosed at once, the
// runbooks of one node concurrently.
func (a *app) diagnoseAll(ctx context.Context, urls []string, workers int, slo bool, explorer string) []tbops.Report {
	if len(urls) > 1 && a.getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(fleetGCPercent))
	}
	var mu sync.Mutex // the nodes' goroutines share stderr
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		a.progressDone() // a line of its own, not after the progress line
		fmt.Fprintf(a.stderr, format, args...)
	}
	sources := a.fleetSources(ctx, urls, say)
	defer func() {
		for _, ns := range sources {
			ns.close()
		}
	}()
	rbs := a.runbooks()
	out := make([][]tbops.Report, len(urls))
	done := 0
	parallel(len(urls), max(workers, 1), func(i int) {
		t := &target{rpcURL: urls[i], metricsURL: a.metricsURLFor(urls[i]), now: sources[i].now, slo: slo, explorer: explorer, src: sources[i].src}
		out[i] = a.diagnoseNode(ctx, t, rbs, sources[i].err)
		mu.Lock()
		done++
		if len(urls) > 1 {
			a.progress("diagnosed %d/%d nodes", done, len(urls))
		}
		mu.Unlock()
	})
	a.progressDone()
	var all []tbops.Report
	for _, rs := range out {
		all = append(all, rs...)
	}
	return all
}

// nodeSource is one node's metrics source for doctor, and its clock.
type nodeSource struct {
	src   promq.Source
	err   error
	now   func() time.Time
	close func()
}

// fleetSources opens every node's metrics source: see diagnoseAll. A node whose
// metrics cannot be had gets its error instead, reported in its runbooks.
func (a *app) fleetSources(ctx context.Context, urls []string, say func(string, ...any)) []nodeSource {
	out := make([]nodeSource, len(urls))
	for i := range out {
		out[i] = nodeSource{now: time.Now, close: func() {}}
	}
	fail := func(i int, err error) {
		out[i].err = err
		say("tbops: %s: metrics unavailable: %v\n", tbops.RedactURL(urls[i]), err)
	}
	var pending []int // nodes whose source still needs work below
	for i, u := range urls {
		if sim := a.sim; sim != nil && sim.node.URL() == u && sim.src != nil {
			out[i] = nodeSource{src: sim.src, now: sim.clock.Now, close: func() {}}
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) == 0 {
		return out
	}
	if a.promGiven() {
		p, err := a.prometheus(ctx)
		for _, i := range pending {
			if err != nil {
				fail(i, err)
				continue
			}
			if out[i].src, err = a.scopedPrometheus(p, a.metricsURLFor(urls[i])); err != nil {
				fail(i, err)
			}
		}
		return out
	}
	scrapes := make([]*promq.Scrape, len(urls))
	parallel(len(pending), scrapeConcurrency, func(k int) {
		i := pending[k]
		s, err := a.firstScrape(ctx, a.metricsURLFor(urls[i]))
		if err != nil {
			fail(i, err)
			return
		}
		scrapes[i] = s
	})
	t := time.NewTimer(firstScrapeGap)
	select {
	case <-ctx.Done():
		t.Stop()
	case <-t.C:
	}
	labels, _ := a.promMatchers()
	parallel(len(pending), scrapeConcurrency, func(k int) {
		i := pending[k]
		if s := scrapes[i]; s != nil {
			_ = s.Scrape(ctx) // a failure is recorded and shows as a warning on the results
			out[i].src, out[i].close = promq.Scoped(s, labels), s.Close
		}
	})
	return out
}

// parallel runs f(0) … f(n-1), at most limit at once, and waits for them.
func parallel(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// diagnoseNode runs every runbook against one node concurrently. srcErr is why
// the node has no metrics source, if it has none.
func (a *app) diagnoseNode(ctx context.Context, t *target, rbs []runbook, srcErr error) []tbops.Report {
	reports := make([]tbops.Report, len(rbs))
	var wg sync.WaitGroup
	for i, rb := range rbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := rb.diagnose(ctx, t)
			if err != nil {
				r = tbops.NewReport(rb.id, t.rpcURL, t.now())
				r.Warnf("diagnosis failed: %v", err)
				r.Finalize()
			}
			if srcErr != nil && rb.usesMetrics {
				r.Warnf("no metrics source: %v", srcErr)
			}
			r.Target = tbops.RedactURL(t.rpcURL)
			reports[i] = r
		}()
	}
	wg.Wait()
	return reports
}

// writeSummary prints one row per report: node (with many), runbook, status,
// firing symptoms and matched paths.
func (a *app) writeSummary(reports []tbops.Report, withNode bool) {
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	if withNode {
		fmt.Fprint(tw, "NODE\t")
	}
	fmt.Fprintln(tw, "RUNBOOK\tSTATUS\tFIRING\tPATHS")
	for _, r := range reports {
		if withNode {
			fmt.Fprintf(tw, "%s\t", r.Target)
		}
		var firing, paths []string
		for _, s := range r.Firing() {
			firing = append(firing, s.ID)
		}
		for _, p := range r.Matched() {
			paths = append(paths, p.ID)
		}
		sort.Strings(paths)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Runbook, strings.ToUpper(string(r.Status)), dashIfEmpty(firing), dashIfEmpty(paths))
	}
	_ = tw.Flush()
}

// redactURLs is urls with their passwords redacted, for output.
func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = tbops.RedactURL(u)
	}
	return out
}

func dashIfEmpty(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// readNodesFile reads node URLs, one a line; blank lines and # comments are skipped.
func readNodesFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("--nodes: %w", err)}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
			return nil, &exitError{code: 3, err: fmt.Errorf("--nodes %s line %d: %q is not an http(s) URL", path, line, tbops.RedactURL(s))}
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("--nodes %s: %w", path, err)}
	}
	if len(out) == 0 {
		return nil, &exitError{code: 3, err: fmt.Errorf("--nodes %s: no URLs in the file", path)}
	}
	return out, nil
}
