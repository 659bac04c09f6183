package promq_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// Two nodes scraped by one source: scoping by instance picks one node's series.
func TestScopedPicksOneInstance(t *testing.T) {
	clk := nodetest.NewFakeClock(time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
	a := nodetest.Start(t, nodetest.WithClock(clk.Now))
	b := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("chain-stalled"))
	s := promq.NewScrape([]string{a.MetricsURL(), b.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		require.NoError(t, s.Scrape(ctx))
		clk.Advance(10 * time.Second)
	}
	all, err := s.Rate(ctx, promq.Select("block_height_total"), time.Minute)
	require.NoError(t, err)
	assert.Len(t, all.Vector, 2, "unscoped: both nodes")

	onlyB := promq.Scoped(s, map[string]string{"instance": b.Addr()})
	r, err := onlyB.Rate(ctx, promq.Select("block_height_total"), time.Minute)
	require.NoError(t, err)
	require.Len(t, r.Vector, 1)
	v, _ := r.Value()
	assert.Equal(t, 0.0, v, "the stalled node")
	assert.Contains(t, r.Evidence.Query, `instance="`+b.Addr()+`"`, "the evidence shows the scoped query")
	assert.Contains(t, onlyB.Name(), b.Addr())

	kept := promq.Scoped(s, map[string]string{"instance": b.Addr()})
	r, err = kept.Instant(ctx, promq.Select("block_height_total", "instance", a.Addr()))
	require.NoError(t, err)
	require.Len(t, r.Vector, 1, "a matcher the caller gave wins")
	assert.Equal(t, promq.Source(s), promq.Scoped(s, nil), "no labels: the source itself")
}

// publicSource hides everything of a source but the Source interface, so
// evaluations through it take the path any other Source takes.
type publicSource struct{ promq.Source }

// Rules and expressions read a scrape source (scoped or not) without the
// evidence summary Samples builds; they must come out exactly as through the
// public Samples, and Samples must still summarise.
func TestEvalThroughScrapeSkipsNothing(t *testing.T) {
	n, s, clk := startFake(t)
	scrapeEvery(t, s, clk, 15*time.Second, 8)
	ctx := context.Background()
	sources := map[string]promq.Source{
		"scrape": s, "scoped": promq.Scoped(s, map[string]string{"instance": n.Addr()}),
	}
	exprs := []promq.Expr{
		promq.GTc(promq.Rate(promq.Select("promq_test_total"), time.Minute), 0),
		promq.GTc(promq.HistogramQuantile(0.95, promq.SumBy(promq.Rate(promq.Select("promq_test_seconds_bucket"), 2*time.Minute), "le")), 0.1),
		promq.LTc(promq.Increase(promq.Select("promq_test_total"), 10*time.Minute), 1),
		promq.GTc(promq.Metric("promq_test_gauge", "kind", "x"), 40),
		promq.GTc(promq.Metric("promq_test_absent"), 0),
	}
	for name, src := range sources {
		for _, e := range exprs {
			r := promq.Rule{Alert: "TestAlert", Expr: e, For: 90 * time.Second, Severity: tbops.StatusWarning, Summary: "s"}
			want, err := promq.EvalRule(ctx, publicSource{src}, r, clk.Now())
			require.NoError(t, err)
			got, err := promq.EvalRule(ctx, src, r, clk.Now())
			require.NoError(t, err)
			assert.Equal(t, want, got, "%s: %s", name, r.PromQL())
			wantEv, err := promq.Eval(ctx, publicSource{src}, e, clk.Now())
			require.NoError(t, err)
			gotEv, err := promq.Eval(ctx, src, e, clk.Now())
			require.NoError(t, err)
			assert.Equal(t, wantEv, gotEv, "%s: %s", name, e)
		}
		rr, err := src.Samples(ctx, promq.Select("promq_test_total"), time.Minute)
		require.NoError(t, err)
		assert.Contains(t, string(rr.Evidence.Value), `"samples":`, "%s: Samples still summarises its matrix", name)
	}
}
