package treasury_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/treasury"
)

// env is a simulated node on a fake clock with a scrape source that has
// observed it for 11 minutes (every 15 s), so rates, increases and "for 2
// epochs" are all known.
type env struct {
	node *nodetest.Node
	clk  *nodetest.FakeClock
	c    *treasury.Client
	src  *promq.Scrape
}

func startEnv(t *testing.T, scenario string) *env {
	t.Helper()
	clk := nodetest.NewFakeClock(time.Date(2025, 12, 19, 3, 0, 0, 0, time.UTC))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
	c, err := treasury.NewClient(n.URL())
	require.NoError(t, err)
	src := promq.NewScrape([]string{n.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(src.Close)
	ctx := context.Background()
	for i := 0; i <= 44; i++ {
		require.NoError(t, src.Scrape(ctx))
		clk.Advance(15 * time.Second)
	}
	require.NoError(t, src.Scrape(ctx))
	return &env{node: n, clk: clk, c: c, src: src}
}

func (e *env) diagnose(t *testing.T, opts treasury.Options) tbops.Report {
	t.Helper()
	if opts.Now == nil {
		opts.Now = e.clk.Now
	}
	if opts.LogGlobs == nil {
		opts.LogGlobs = []string{t.TempDir() + "/*.log"}
	}
	r, err := treasury.Diagnose(context.Background(), e.c, e.src, opts)
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	return r
}

func symptom(t *testing.T, r tbops.Report, id string) tbops.Symptom {
	t.Helper()
	x, ok := r.Symptom(id)
	require.True(t, ok, "no symptom %s in %+v", id, r.Symptoms)
	return x
}

func path(t *testing.T, r tbops.Report, id string) tbops.Path {
	t.Helper()
	x, ok := r.Path(id)
	require.True(t, ok, "no path %s in %+v", id, r.Paths)
	return x
}

func alert(t *testing.T, r tbops.Report, name string) tbops.Alert {
	t.Helper()
	x, ok := r.Alert(name)
	require.True(t, ok, "no alert %s in %+v", name, r.Alerts)
	return x
}
