package promq_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/promtest"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// TestAgainstRealPrometheus runs a real Prometheus that scrapes a simulated node
// every second while the scrape source scrapes the same node every second, and
// checks that both sources give the same answers.
//
// Tolerances. The node's counters and buckets grow linearly with the real clock.
// With regular 1 s scrapes and a 10 s window, both sources find a sample within
// 1.1 intervals of each window boundary and extrapolate all the way to it, so
// both give the exact slope; what remains is the skew between a sample's
// timestamp (the scrape's start) and the instant the node computed the value
// (milliseconds later), and scrape jitter on a loaded 2-core CI machine — tens of
// milliseconds over a 10 s window, well under 1%. We allow 5% for rate and
// increase so that one late scrape (which switches Prometheus' extrapolation to
// half an interval on one side, ≤ 0.55 s of 10 s) cannot flake the test, while a
// wrong algorithm (no extrapolation: −10%, a window off by one interval: ±10%,
// a rate over the wrong span: far more) still fails it. Quantiles are ratios of
// buckets that share timestamps, so extrapolation cancels: 0.1%.
func TestAgainstRealPrometheus(t *testing.T) {
	node := nodetest.Start(t, nodetest.WithScenario(testScenario(time.Now())))
	srv := promtest.StartWith(t, promtest.Config{Targets: []string{node.MetricsURL()}})
	t.Logf("%s at %s", srv.Version, srv.URL)

	ctx := context.Background()
	scr := promq.NewScrape([]string{node.MetricsURL()})
	t.Cleanup(scr.Close)
	require.NoError(t, scr.Scrape(ctx))
	scr.Run(ctx, time.Second)

	prom, err := promq.NewPrometheus(srv.URL, promq.WithClock(time.Now), promq.WithTimeout(5*time.Second))
	require.NoError(t, err)
	assert.Equal(t, "prometheus "+srv.URL, prom.Name())

	const window = 10 * time.Second
	// Wait until Prometheus holds more than a window of samples (bounded).
	srv.WaitFor(t, 25*time.Second, "12 samples of promq_test_gauge in Prometheus", func(ctx context.Context) bool {
		r, err := prom.Client().Query(ctx, "count_over_time(promq_test_gauge[1m])", time.Time{})
		if err != nil || len(r.Vector()) == 0 {
			return false
		}
		return r.Vector()[0].Value >= 12
	})

	type question struct {
		name string
		ask  func(promq.Source) (promq.Result, error)
		tol  float64 // relative
		want float64 // the true value (NaN: none known)
	}
	sel := promq.Select("promq_test_total", "market", "a")
	hist := promq.Select("promq_test_seconds")
	questions := []question{
		{"instant gauge", func(s promq.Source) (promq.Result, error) {
			return s.Instant(ctx, promq.Select("promq_test_gauge"))
		}, 0, 42},
		{"rate", func(s promq.Source) (promq.Result, error) { return s.Rate(ctx, sel, window) }, 0.05, 7},
		{"rate of block height", func(s promq.Source) (promq.Result, error) {
			return s.Rate(ctx, promq.Select("block_height_total"), window)
		}, 0.05, 1},
		{"increase", func(s promq.Source) (promq.Result, error) { return s.Increase(ctx, sel, window) }, 0.05, 70},
		{"quantile cumulative", func(s promq.Source) (promq.Result, error) { return s.Quantile(ctx, 0.5, hist, 0) }, 0.001, 0.5 + 0.5*(2.0/3)},
		{"quantile p80 windowed", func(s promq.Source) (promq.Result, error) { return s.Quantile(ctx, 0.8, hist, window) }, 0.001, 1 + 4*(2.0/3)},
		{"quantile p99 windowed", func(s promq.Source) (promq.Result, error) { return s.Quantile(ctx, 0.99, hist, window) }, 0.001, 5},
	}
	for _, q := range questions {
		pr, err := q.ask(prom)
		require.NoError(t, err, q.name)
		sr, err := q.ask(scr)
		require.NoError(t, err, q.name)
		pv, ok := pr.Value()
		require.True(t, ok, "%s: prometheus: %v", q.name, pr.Warnings)
		sv, ok := sr.Value()
		require.True(t, ok, "%s: scrape: %v", q.name, sr.Warnings)
		t.Logf("%-24s prometheus %-12g scrape %-12g  %s", q.name, pv, sv, pr.Evidence.Query)
		assert.InEpsilon(t, pv, sv, q.tol+1e-9, "%s: sources disagree", q.name)
		assert.InEpsilon(t, q.want, pv, q.tol+1e-9, "%s: prometheus vs truth", q.name)
		assert.Equal(t, tbops.SourcePrometheus, pr.Evidence.Source)
		assert.Equal(t, tbops.SourceScrape, sr.Evidence.Source)
		assert.Equal(t, pr.Evidence.Query+" (scrape "+node.MetricsURL()+")", sr.Evidence.Query, "same PromQL in both")
	}

	// Samples: both hold about a window of 1 s samples.
	pm, err := prom.Samples(ctx, promq.Select("promq_test_gauge"), window)
	require.NoError(t, err)
	sm, err := scr.Samples(ctx, promq.Select("promq_test_gauge"), window)
	require.NoError(t, err)
	require.Len(t, pm.Matrix, 1)
	require.Len(t, sm.Matrix, 1)
	assert.InDelta(t, len(pm.Matrix[0].Values), len(sm.Matrix[0].Values), 2)
	assert.GreaterOrEqual(t, len(pm.Matrix[0].Values), 8)

	// A missing series is no data with a warning from both.
	for _, src := range []promq.Source{prom, scr} {
		r, err := src.Rate(ctx, promq.Select("no_such_total"), window)
		require.NoError(t, err)
		assert.Empty(t, r.Vector, src.Name())
		assert.Contains(t, r.Warnings, "no data for no_such_total", src.Name())
	}

	t.Run("client", func(t *testing.T) {
		c := prom.Client()
		series, _, err := c.Series(ctx, []string{`promq_test_total`}, time.Now().Add(-time.Minute), time.Now())
		require.NoError(t, err)
		assert.Len(t, series, 2)
		vals, _, err := c.LabelValues(ctx, "market", []string{"promq_test_total"}, time.Time{}, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, model.LabelValues{"a", "b"}, vals)
		groups, _, err := c.Rules(ctx)
		require.NoError(t, err)
		assert.Empty(t, groups)
		alerts, _, err := c.Alerts(ctx)
		require.NoError(t, err)
		assert.Empty(t, alerts)

		rr, err := c.QueryRange(ctx, "promq_test_gauge", time.Now().Add(-5*time.Second), time.Now(), time.Second)
		require.NoError(t, err)
		require.Len(t, rr.Matrix(), 1)
		assert.GreaterOrEqual(t, len(rr.Matrix()[0].Values), 5)

		sc, err := c.Query(ctx, "1+1", time.Time{})
		require.NoError(t, err)
		assert.Equal(t, model.ValScalar, sc.Type)
		assert.Equal(t, model.SampleValue(2), sc.Value.(*model.Scalar).Value)
		st, err := c.Query(ctx, `"hello"`, time.Time{})
		require.NoError(t, err)
		assert.Equal(t, "hello", st.Value.(*model.String).Value)

		_, err = c.Query(ctx, "rate(promq_test_total[", time.Time{})
		require.Error(t, err)
		assert.ErrorIs(t, err, promq.ErrBadQuery)
		var ae *promq.APIError
		require.True(t, errors.As(err, &ae))
		assert.Equal(t, 400, ae.Status)
		assert.Equal(t, "bad_data", ae.Type)
		assert.Equal(t, srv.URL+"/api/v1/query", ae.URL)
		assert.Contains(t, err.Error(), `query "rate(promq_test_total[" at `+srv.URL+"/api/v1/query: bad query (HTTP 400, bad_data): ")

		// A quantile over a histogram without observations in the window is NaN
		// in Prometheus: no data with a warning here.
		r, err := prom.Quantile(ctx, 0.5, promq.Select("promq_test_seconds", "nope", "x"), window)
		require.NoError(t, err)
		assert.Empty(t, r.Vector)
		nan, err := c.Query(ctx, "histogram_quantile(0.5, vector(0))", time.Time{})
		require.NoError(t, err)
		if v := nan.Vector(); len(v) == 1 {
			assert.True(t, math.IsNaN(float64(v[0].Value)), "Prometheus' NaN decodes as NaN")
		}
	})
}
