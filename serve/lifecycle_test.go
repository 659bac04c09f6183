package serve_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/serve"
)

// serveFrame matches a stack frame of the serve package (not serve_test) or
// of a scrape source.
var serveFrame = regexp.MustCompile(`theblock/tbops/serve\.|promq\.\(\*Scrape\)`)

// serveGoroutines are the stacks of the goroutines running serve code.
// serveGoroutines waits up to 5 s for serve's goroutines to be gone and
// returns those still there: one that has done its work may not have exited
// yet when the call that waited for it returns; a leaked one stays.
func serveGoroutines() []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := serveGoroutinesNow()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func serveGoroutinesNow() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range regexp.MustCompile(`\n\n`).Split(string(buf), -1) {
		if serveFrame.MatchString(g) {
			out = append(out, g)
		}
	}
	return out
}

func TestServeStopsCleanlyAndDropsCancelledRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := serve.OpenStore(ctx, filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	var runs atomic.Int32
	inFlight := make(chan struct{})
	rbs := func(n serve.Node, _ promq.Source) []tbops.Runbook {
		return []tbops.Runbook{tbops.Func("r", func(ctx context.Context) (tbops.Report, error) {
			if runs.Add(1) == 3 {
				close(inFlight) // the third run hangs until serve stops
				<-ctx.Done()
				return tbops.Report{}, ctx.Err()
			}
			return report("r", n, tbops.Symptom{ID: "s", Status: tbops.StatusOK}), nil
		})}
	}
	srv, err := serve.New(ctx, []serve.Node{{URL: "http://node-a.invalid:3030/"}}, rbs, serve.WithSource(noSource),
		serve.WithStore(st), serve.WithInterval(time.Millisecond), serve.WithRunTimeout(time.Hour))
	require.NoError(t, err)
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	<-inFlight
	assert.ErrorIs(t, srv.Run(context.Background()), serve.ErrRunning, "one loop at a time")
	cancel()
	require.NoError(t, <-done, "a shutdown asked for is no error")
	require.NoError(t, st.Close())
	srv.Close()
	assert.Empty(t, serveGoroutines(), "no goroutine outlives Serve and Close")

	// The two finished runs gave one transition (the first verdict); the
	// cancelled third gave none: a cancelled run is no verdict.
	ro, err := serve.OpenStoreReadOnly(context.Background(), st.Path())
	require.NoError(t, err)
	defer ro.Close()
	ts, err := ro.Transitions(context.Background(), serve.Filter{})
	require.NoError(t, err)
	assert.Equal(t, []string{"→ok"}, transitionPairs(ts))
	assert.ErrorIs(t, srv.Run(context.Background()), serve.ErrClosed)
	assert.ErrorIs(t, srv.RunOnce(context.Background()), serve.ErrClosed)
}

func TestNewRefusesABadConfiguration(t *testing.T) {
	ok := []serve.Node{{URL: "http://node-a.invalid:3030/"}}
	rbs := fixed("r", func(n serve.Node) tbops.Report { return report("r", n) })
	for name, c := range map[string]struct {
		nodes []serve.Node
		rbs   serve.Runbooks
		opts  []serve.Option
		want  string
	}{
		"ftp node":         {nodes: []serve.Node{{URL: "ftp://node/"}}, rbs: rbs, want: "want an http or https URL"},
		"no host":          {nodes: []serve.Node{{URL: "http:///x"}}, rbs: rbs, want: "no host"},
		"bad metrics URL":  {nodes: []serve.Node{{URL: "http://a/", MetricsURL: "a/metrics"}}, rbs: rbs, want: "metrics URL"},
		"listed twice":     {nodes: []serve.Node{{URL: "http://a/"}, {URL: "http://u:p@a/"}}, rbs: rbs, want: "listed twice"},
		"no runbooks":      {nodes: ok, want: "no runbooks"},
		"zero interval":    {nodes: ok, rbs: rbs, opts: []serve.Option{serve.WithInterval(0)}, want: "interval 0s"},
		"no workers":       {nodes: ok, rbs: rbs, opts: []serve.Option{serve.WithWorkers(0)}, want: "workers 0"},
		"negative timeout": {nodes: ok, rbs: rbs, opts: []serve.Option{serve.WithRunTimeout(-1)}, want: "must not be negative"},
		"zero retention":   {nodes: ok, rbs: rbs, opts: []serve.Option{serve.WithRetention(0)}, want: "retention"},
		"one id twice": {nodes: ok, rbs: func(n serve.Node, src promq.Source) []tbops.Runbook {
			return append(rbs(n, src), rbs(n, src)...)
		}, want: `two runbooks of http://node-a.invalid:3030/ have the id "r"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := serve.New(context.Background(), c.nodes, c.rbs, c.opts...)
			require.ErrorIs(t, err, serve.ErrInvalidConfig)
			assert.ErrorContains(t, err, c.want)
			assert.NotContains(t, err.Error(), ":p@", "no password in errors")
		})
	}
}

// Serve's own history keeps at most history/scrape-interval + 2 samples per
// series, however long it runs: memory per series is bounded.
func TestHistoryIsBoundedPerSeries(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now))
	var src promq.Source
	rbs := func(_ serve.Node, s promq.Source) []tbops.Runbook {
		src = s
		return nil
	}
	srv, err := serve.New(ctx, []serve.Node{{URL: n.URL()}}, rbs, serve.WithClock(clk.Now),
		serve.WithHistory(2*time.Minute), serve.WithScrapeInterval(15*time.Second))
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.Scrape(ctx))
	advance(ctx, t, srv, clk, 20*time.Minute)
	rr, err := src.Samples(ctx, promq.Select("block_height_total"), time.Hour)
	require.NoError(t, err)
	require.Len(t, rr.Matrix, 1)
	assert.Len(t, rr.Matrix[0].Values, 2*60/15+2, "the ring holds the history window and no more")
	assert.Equal(t, fmt.Sprintf("scrape %smetrics", n.URL()), src.Name())
}

func TestScrapeFailureMarksTheNodeDown(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now))
	srv, err := serve.New(ctx, []serve.Node{{URL: n.URL()}}, fixed("r", func(n serve.Node) tbops.Report { return report("r", n) }),
		serve.WithClock(clk.Now))
	require.NoError(t, err)
	defer srv.Close()
	web := newWeb(t, srv)
	s := &served{srv: srv, web: web}
	require.NoError(t, srv.Scrape(ctx))
	up, _ := metricValue(t, s.metrics(t), serve.MetricNodeUp, nil)
	assert.Equal(t, 1.0, up)
	require.NoError(t, n.Close())
	err = srv.Scrape(ctx)
	assert.Nil(t, err, "a node's failed scrape is the node's state, not Scrape's error")
	up, _ = metricValue(t, s.metrics(t), serve.MetricNodeUp, nil)
	assert.Equal(t, 0.0, up)
}

func TestServeReturnsTheListenersError(t *testing.T) {
	srv, err := serve.New(context.Background(), []serve.Node{{URL: "http://node-a.invalid:3030/"}},
		fixed("r", func(n serve.Node) tbops.Report { return report("r", n) }), serve.WithSource(noSource))
	require.NoError(t, err)
	defer srv.Close()
	ln := listen(t)
	require.NoError(t, ln.Close())
	err = srv.Serve(context.Background(), ln)
	assert.ErrorIs(t, err, net.ErrClosed, "a listener that cannot accept ends Serve with its error")
	assert.Empty(t, serveGoroutines(), "and stops the loop it started")
}

// Run's cadence comes from the injected ticker: a two-hour interval passes
// when the test says so.
func TestRunFollowsTheInjectedTicker(t *testing.T) {
	var mu sync.Mutex
	ticks := map[time.Duration]chan time.Time{}
	ticker := func(d time.Duration) (<-chan time.Time, func()) {
		mu.Lock()
		defer mu.Unlock()
		ticks[d] = make(chan time.Time)
		return ticks[d], func() {}
	}
	runs := make(chan struct{}, 4)
	rbs := fixed("r", func(n serve.Node) tbops.Report {
		runs <- struct{}{}
		return report("r", n, tbops.Symptom{ID: "s", Status: tbops.StatusOK})
	})
	srv, err := serve.New(context.Background(), []serve.Node{{URL: "http://node-a.invalid:3030/"}}, rbs,
		serve.WithSource(noSource), serve.WithInterval(2*time.Hour), serve.WithTicker(ticker))
	require.NoError(t, err)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	<-runs // with WithSource the first run starts at once
	mu.Lock()
	interval := ticks[2*time.Hour]
	mu.Unlock()
	require.NotNil(t, interval, "Run asked the ticker for the interval")
	// Each tick starts a round; a round that comes while the first run is
	// still finishing skips the node, so tick until the second run happens.
	for second := false; !second; {
		select {
		case interval <- t0:
		case <-runs:
			second = true
		}
	}
	cancel()
	require.NoError(t, <-done)
}
