package promq_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
