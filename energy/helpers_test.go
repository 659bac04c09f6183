package energy_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/rpc"
)

// t0 is on the one-minute grid, as promtool's evaluations are.
var t0 = time.Date(2025, 12, 19, 3, 0, 0, 0, time.UTC)

// history is enough for every window: the 10m settlement window, and the SLO
// rule's 5m rate plus its 5m for.
const history = 16 * time.Minute

// env is a simulated node on a fake clock, a client, and a metrics source.
type env struct {
	node *nodetest.Node
	clk  *nodetest.FakeClock
	c    *energy.Client
	src  promq.Source
}

// newNode starts a simulated node running sc on a fake clock, with a client.
func newNode(t *testing.T, sc nodetest.Scenario) *env {
	t.Helper()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	c, err := energy.NewClient(n.URL(), rpc.WithClock(clk.Now))
	require.NoError(t, err)
	return &env{node: n, clk: clk, c: c}
}

func scenario(t *testing.T, name string) nodetest.Scenario {
	t.Helper()
	sc, err := nodetest.LookupScenario(name, t0)
	require.NoError(t, err)
	return sc
}

// withHistory is e with a nodetest.Source advanced by d (scrapes every 15 s).
func (e *env) withHistory(t *testing.T, d time.Duration) *env {
	t.Helper()
	ctx := context.Background()
	src, err := nodetest.NewSource(ctx, e.node, e.clk, 0)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	require.NoError(t, src.Advance(ctx, d))
	e.src = src
	return e
}

// withGlance is e with doctor's look: two scrapes a second apart.
func (e *env) withGlance(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	src := promq.NewScrape([]string{e.node.MetricsURL()}, promq.WithScrapeClock(e.clk.Now))
	t.Cleanup(src.Close)
	require.NoError(t, src.Scrape(ctx))
	e.clk.Advance(time.Second)
	require.NoError(t, src.Scrape(ctx))
	e.src = src
	return e
}

// diagnose runs the runbook and validates its report.
func (e *env) diagnose(t *testing.T, opts energy.Options) tbops.Report {
	t.Helper()
	r, err := energy.NewRunbook(e.c, e.src, opts).Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	return r
}

func symptom(r tbops.Report, id string) tbops.Symptom {
	s, _ := r.Symptom(id)
	return s
}

func path(r tbops.Report, id string) tbops.Path {
	p, _ := r.Path(id)
	return p
}

func step(r tbops.Report, id string) tbops.Step {
	s, _ := r.Step(id)
	return s
}

func firing(r tbops.Report) []string {
	var out []string
	for _, s := range r.Firing() {
		out = append(out, s.ID)
	}
	return out
}

func matched(r tbops.Report) []string {
	var out []string
	for _, p := range r.Matched() {
		out = append(out, p.ID)
	}
	return out
}

func joined(ss []string) string {
	out := ""
	for _, s := range ss {
		out += s + "\n"
	}
	return out
}
