package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Defaults of New.
const (
	// DefaultInterval is how often every runbook runs against every node.
	DefaultInterval = 30 * time.Second
	// DefaultScrapeInterval is how often serve scrapes each node's /metrics for
	// its own history: Prometheus' default, independent of the interval.
	DefaultScrapeInterval = 15 * time.Second
	// DefaultHistory is how far back serve's own history reaches: the longest
	// window a runbook asks about (50m, receipts' block progress) plus the
	// longest "for" (10m).
	DefaultHistory = 60 * time.Minute
	// DefaultWorkers is how many nodes are diagnosed at once.
	DefaultWorkers = 8
	// DefaultRetention is how long the state file keeps transitions.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultMaxSeriesPerNode caps the series serve keeps per node; a scrape
	// that would exceed it fails (and says so) rather than growing memory.
	DefaultMaxSeriesPerNode = 10_000
	// DefaultProbeConcurrency is how many /probe requests run at once; more
	// are answered 503.
	DefaultProbeConcurrency = 4
	// ShutdownTimeout bounds Serve's shutdown: in-flight HTTP requests get this
	// long, after runs and probes have been cancelled.
	ShutdownTimeout = 3 * time.Second
	// recentPerCell is how many transitions of each node and runbook the page
	// keeps in memory (the state file keeps them all, within retention).
	recentPerCell = 20
	// maxConcurrentScrapes bounds the scrapes in flight.
	maxConcurrentScrapes = 64
	// pruneEvery is how often retention is applied.
	pruneEvery = time.Hour
	// storeWriteTimeout bounds one state-file write.
	storeWriteTimeout = 10 * time.Second
)

// Runbooks builds the runbooks serve runs against one node, bound to the
// metrics source serve keeps for it: its own history of the node's /metrics,
// or what WithSource returned (nil when that failed: the runbooks report the
// missing metrics). It is called once per node by New, and for every /probe
// of a target that is not a configured node. The runbooks must be safe for
// concurrent use: a /probe may run while a scheduled run does.
type Runbooks func(n Node, src promq.Source) []tbops.Runbook

// Option configures New. Build one with the With functions.
type Option struct{ apply func(*config) }

type config struct {
	interval, scrapeInterval, history   time.Duration
	runTimeout, scrapeTimeout           time.Duration
	probeTimeout, retention             time.Duration
	workers, maxSeries, probeConcurrent int
	now                                 func() time.Time
	ticker                              func(time.Duration) (<-chan time.Time, func())
	store                               *Store
	source                              func(Node) (promq.Source, error)
	scrapeClient                        *http.Client
	up                                  func(context.Context, Node) error
	probeAny                            bool
	logger                              *slog.Logger

	// The Alertmanager webhook: on when alertRunbooks is set.
	alertRunbooks              map[string]string
	nodeLabel, webhookToken    string
	webhookMaxBytes            int64
	alertQueue                 int
	notify                     []NotifyTarget
	notifyClient               *http.Client
	repeat                     time.Duration
	notifyBackoff, notifyTotal time.Duration
}

func defaultConfig() config {
	return config{
		interval: DefaultInterval, scrapeInterval: DefaultScrapeInterval, history: DefaultHistory,
		retention: DefaultRetention, workers: DefaultWorkers, maxSeries: DefaultMaxSeriesPerNode,
		probeConcurrent: DefaultProbeConcurrency, now: time.Now, ticker: realTicker,
		logger:          slog.New(slog.DiscardHandler),
		webhookMaxBytes: DefaultWebhookMaxBytes, alertQueue: DefaultAlertQueue, repeat: DefaultRepeatInterval,
		notifyBackoff: DefaultNotifyBackoff, notifyTotal: DefaultNotifyTimeout,
	}
}

// validate checks the options and fills the defaults that depend on others.
func (c *config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", c.interval}, {"scrape interval", c.scrapeInterval}, {"history", c.history}, {"retention", c.retention},
		{"repeat interval", c.repeat}, {"notify backoff", c.notifyBackoff}, {"notify timeout", c.notifyTotal}} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s %s: want a positive duration", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.workers < 1 {
		return fmt.Errorf("%w: workers %d: want at least 1", ErrInvalidConfig, c.workers)
	}
	if c.maxSeries < 1 || c.probeConcurrent < 1 {
		return fmt.Errorf("%w: max series and probe concurrency must be at least 1", ErrInvalidConfig)
	}
	if c.runTimeout < 0 || c.scrapeTimeout < 0 || c.probeTimeout < 0 {
		return fmt.Errorf("%w: timeouts must not be negative", ErrInvalidConfig)
	}
	if err := c.validateWebhook(); err != nil {
		return err
	}
	if c.runTimeout == 0 {
		c.runTimeout = c.interval
	}
	if c.scrapeTimeout == 0 {
		c.scrapeTimeout = min(promq.DefaultScrapeTimeout, c.scrapeInterval)
	}
	if c.probeTimeout == 0 {
		c.probeTimeout = c.runTimeout
	}
	if c.now == nil || c.ticker == nil {
		return fmt.Errorf("%w: nil clock or ticker", ErrInvalidConfig)
	}
	return nil
}

// ringSize is how many samples per series cover the history at the scrape
// cadence, plus the two a rate needs at the edges.
func (c *config) ringSize() int { return int(c.history/c.scrapeInterval) + 2 }

// WithInterval sets how often every runbook runs against every node (default
// DefaultInterval).
func WithInterval(d time.Duration) Option { return Option{func(c *config) { c.interval = d }} }

// WithWorkers sets how many nodes are diagnosed at once (default
// DefaultWorkers).
func WithWorkers(n int) Option { return Option{func(c *config) { c.workers = n }} }

// WithRunTimeout bounds one node's run, all its runbooks together (default:
// the interval). Each RPC call keeps its own, shorter deadline (the runbooks'
// clients).
func WithRunTimeout(d time.Duration) Option { return Option{func(c *config) { c.runTimeout = d }} }

// WithClock injects the clock that stamps samples, reports and transitions
// (default time.Now). Tests pass a nodetest.FakeClock's Now and drive Scrape
// and RunOnce themselves.
func WithClock(now func() time.Time) Option { return Option{func(c *config) { c.now = now }} }

// WithTicker injects what paces Run's loops: given a period it returns a
// channel that receives once per period and a stop function (default: a
// time.Ticker).
func WithTicker(f func(d time.Duration) (<-chan time.Time, func())) Option {
	return Option{func(c *config) { c.ticker = f }}
}

// WithStore keeps every verdict transition in the state file st and reads the
// last verdicts back at start. The caller closes st after the server has
// stopped. Without it, transitions are kept in memory only.
func WithStore(st *Store) Option { return Option{func(c *config) { c.store = st }} }

// WithRetention sets how long the state file keeps transitions (default
// DefaultRetention); the newest of each node and runbook is always kept.
func WithRetention(d time.Duration) Option { return Option{func(c *config) { c.retention = d }} }

// WithSource makes f the metrics source of each node (a promq.Scoped
// Prometheus, say) instead of serve's own history: serve then scrapes
// nothing.
func WithSource(f func(n Node) (promq.Source, error)) Option {
	return Option{func(c *config) { c.source = f }}
}

// WithScrapeInterval sets the cadence of serve's own history (default
// DefaultScrapeInterval).
func WithScrapeInterval(d time.Duration) Option {
	return Option{func(c *config) { c.scrapeInterval = d }}
}

// WithHistory sets how far back serve's own history reaches (default
// DefaultHistory); with the scrape interval it sets the samples kept per
// series.
func WithHistory(d time.Duration) Option { return Option{func(c *config) { c.history = d }} }

// WithScrapeTimeout bounds one scrape of one node (default: the smaller of
// promq.DefaultScrapeTimeout and the scrape interval).
func WithScrapeTimeout(d time.Duration) Option {
	return Option{func(c *config) { c.scrapeTimeout = d }}
}

// WithScrapeClient sets the HTTP client of the scrapes (default: promq's).
func WithScrapeClient(hc *http.Client) Option { return Option{func(c *config) { c.scrapeClient = hc }} }

// WithMaxSeriesPerNode caps the series kept per node (default
// DefaultMaxSeriesPerNode).
func WithMaxSeriesPerNode(n int) Option { return Option{func(c *config) { c.maxSeries = n }} }

// WithUpCheck sets how tbops_node_up is decided: f is called with each run
// and the node is up when it returns nil (the CLI reads node.status). Without
// it the node is up when serve's last scrape of its /metrics succeeded, and
// unknown (no series) with WithSource.
func WithUpCheck(f func(ctx context.Context, n Node) error) Option {
	return Option{func(c *config) { c.up = f }}
}

// WithProbeAny lets /probe diagnose any http(s) target, not only the
// configured nodes. Off by default: serve is not an open proxy.
func WithProbeAny(on bool) Option { return Option{func(c *config) { c.probeAny = on }} }

// WithProbeTimeout bounds one /probe (default: the run timeout); a shorter
// X-Prometheus-Scrape-Timeout-Seconds header wins.
func WithProbeTimeout(d time.Duration) Option { return Option{func(c *config) { c.probeTimeout = d }} }

// WithProbeConcurrency sets how many probes run at once (default
// DefaultProbeConcurrency).
func WithProbeConcurrency(n int) Option { return Option{func(c *config) { c.probeConcurrent = n }} }

// WithLogger sets where serve logs failed state writes and the like (default:
// nowhere).
func WithLogger(l *slog.Logger) Option {
	return Option{func(c *config) {
		if l != nil {
			c.logger = l
		}
	}}
}

// validateWebhook checks the webhook's options.
func (c *config) validateWebhook() error {
	if c.webhookMaxBytes < 1 || c.alertQueue < 1 {
		return fmt.Errorf("%w: webhook body limit and alert queue must be at least 1", ErrInvalidConfig)
	}
	for name, rb := range c.alertRunbooks {
		if name == "" || rb == "" {
			return fmt.Errorf("%w: alert runbooks: %q → %q: want an alert name and a runbook id", ErrInvalidConfig, name, rb)
		}
	}
	if (len(c.notify) > 0 || c.webhookToken != "") && c.alertRunbooks == nil {
		return fmt.Errorf("%w: notify targets and a webhook token need WithAlertRunbooks (the webhook is off)", ErrInvalidConfig)
	}
	for i := range c.notify {
		if err := c.notify[i].check(); err != nil {
			return err
		}
	}
	return nil
}

// WithAlertRunbooks turns on the Alertmanager webhook (POST WebhookPath):
// runbooks maps an alert name (a promq.Rule's Alert) to the id of the
// runbook that diagnoses it (its Runbook). An alert whose name is not in it is
// recorded as ignored.
func WithAlertRunbooks(runbooks map[string]string) Option {
	return Option{func(c *config) {
		c.alertRunbooks = make(map[string]string, len(runbooks))
		for k, v := range runbooks {
			c.alertRunbooks[k] = v
		}
	}}
}

// WithNodeLabel makes the webhook match an alert to a node by its label name,
// compared with the node's Label (its URL without credentials), instead of
// the default: the instance label compared with the host:port of the node's
// metrics URL, which is the instance label Prometheus gives a scrape target.
func WithNodeLabel(name string) Option { return Option{func(c *config) { c.nodeLabel = name }} }

// WithWebhookToken makes the webhook require "Authorization: Bearer token"
// (401 otherwise), compared in constant time. Empty: no token asked.
func WithWebhookToken(token string) Option { return Option{func(c *config) { c.webhookToken = token }} }

// WithWebhookMaxBytes bounds a webhook body (default DefaultWebhookMaxBytes);
// a larger one is answered 413.
func WithWebhookMaxBytes(n int64) Option { return Option{func(c *config) { c.webhookMaxBytes = n }} }

// WithAlertQueue sets how many alerts may wait for their diagnosis (default
// DefaultAlertQueue).
func WithAlertQueue(n int) Option { return Option{func(c *config) { c.alertQueue = n }} }

// WithNotify sends a notification of each diagnosed alert to every target.
func WithNotify(targets ...NotifyTarget) Option {
	return Option{func(c *config) { c.notify = append(c.notify, targets...) }}
}

// WithNotifyClient sets the HTTP client of the notifications (default: one
// of serve's own). Redirects are never followed, whatever hc says.
func WithNotifyClient(hc *http.Client) Option { return Option{func(c *config) { c.notifyClient = hc }} }

// WithRepeatInterval sets how long a firing alert's notification holds: a
// delivery of the same alert with the same verdict within it sends nothing
// (default DefaultRepeatInterval, Alertmanager's repeat_interval).
func WithRepeatInterval(d time.Duration) Option { return Option{func(c *config) { c.repeat = d }} }

// WithNotifyRetry sets the wait before a notification's first retry (it
// doubles, up to 30 s) and the total time its sending may take (defaults
// DefaultNotifyBackoff, DefaultNotifyTimeout).
func WithNotifyRetry(backoff, total time.Duration) Option {
	return Option{func(c *config) { c.notifyBackoff, c.notifyTotal = backoff, total }}
}

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
