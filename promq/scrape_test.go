package promq_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testScenario is the healthy node plus series this package's tests own.
func testScenario(now time.Time) nodetest.Scenario {
	sc := nodetest.Healthy(now)
	sc.Metrics = append(sc.Metrics,
		nodetest.Counter("promq_test_total", map[string]string{"market": "a"}, 100, 7).Merge(
			nodetest.Counter("promq_test_total", map[string]string{"market": "b"}, 50, 3)),
		nodetest.Gauge("promq_test_gauge", map[string]string{"kind": "x"}, 42),
		nodetest.Histogram("promq_test_seconds", nil, []float64{0.1, 0.5, 1, 5}, 10,
			[]float64{0.05, 0.2, 0.3, 0.7, 0.8, 0.9, 2, 3, 4, 10}),
	)
	return sc
}

// startFake starts a node and a scrape source sharing a fake clock.
func startFake(t *testing.T, opts ...promq.ScrapeOption) (*nodetest.Node, *promq.Scrape, *nodetest.FakeClock) {
	t.Helper()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(testScenario(t0)))
	s := promq.NewScrape([]string{n.MetricsURL()}, append([]promq.ScrapeOption{promq.WithScrapeClock(clk.Now)}, opts...)...)
	t.Cleanup(s.Close)
	return n, s, clk
}

// scrapeEvery scrapes now and then after each of k advances of d.
func scrapeEvery(t *testing.T, s *promq.Scrape, clk *nodetest.FakeClock, d time.Duration, k int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.Scrape(ctx))
	for i := 0; i < k; i++ {
		clk.Advance(d)
		require.NoError(t, s.Scrape(ctx))
	}
}

func TestScrapeInstant(t *testing.T) {
	ctx := context.Background()
	n, s, _ := startFake(t)
	require.NoError(t, s.Scrape(ctx))

	r, err := s.Instant(ctx, promq.Select("promq_test_gauge"))
	require.NoError(t, err)
	v, ok := r.Value()
	require.True(t, ok)
	assert.Equal(t, 42.0, v)
	assert.Empty(t, r.Warnings)
	assert.Equal(t, tbops.SourceScrape, r.Evidence.Source)
	assert.Equal(t, "promq_test_gauge (scrape "+n.MetricsURL()+")", r.Evidence.Query)
	assert.Equal(t, "42", r.Evidence.Value.String())
	assert.Equal(t, t0, r.Evidence.At)
	assert.Equal(t, n.Addr(), string(r.Vector[0].Metric["instance"]), "instance label as Prometheus adds it")

	r, err = s.Instant(ctx, promq.Select("promq_test_total"))
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"a": 100, "b": 50}, r.ByLabel("market"))
	sum, _ := r.Sum()
	assert.Equal(t, 150.0, sum)

	r, err = s.Instant(ctx, promq.Select("promq_test_total", "market", "b"))
	require.NoError(t, err)
	v, _ = r.Value()
	assert.Equal(t, 50.0, v)

	up, err := s.Instant(ctx, promq.Select("up"))
	require.NoError(t, err)
	v, _ = up.Value()
	assert.Equal(t, 1.0, v)
}

func TestScrapeMissingSeriesIsNoDataNotZero(t *testing.T) {
	ctx := context.Background()
	_, s, clk := startFake(t)
	scrapeEvery(t, s, clk, 10*time.Second, 2)
	sel := promq.Select("does_not_exist_total", "market", "z")

	r, err := s.Instant(ctx, sel)
	require.NoError(t, err)
	_, ok := r.Value()
	assert.False(t, ok)
	assert.Empty(t, r.Vector)
	assert.Nil(t, r.Evidence.Value)
	assert.Contains(t, r.Warnings, `no data for does_not_exist_total{market="z"}`)

	for name, f := range map[string]func() (promq.Result, error){
		"rate":     func() (promq.Result, error) { return s.Rate(ctx, sel, time.Minute) },
		"increase": func() (promq.Result, error) { return s.Increase(ctx, sel, time.Minute) },
		"quantile": func() (promq.Result, error) { return s.Quantile(ctx, 0.9, sel, 0) },
	} {
		r, err := f()
		require.NoError(t, err, name)
		assert.Empty(t, r.Vector, name)
		require.NotEmpty(t, r.Warnings, name)
		assert.Contains(t, r.Warnings[len(r.Warnings)-1], "no data for does_not_exist", name)
	}
	rr, err := s.Samples(ctx, sel, time.Minute)
	require.NoError(t, err)
	assert.Empty(t, rr.Matrix)
	assert.NotEmpty(t, rr.Warnings)
}

func TestScrapeRateIncreaseExact(t *testing.T) {
	ctx := context.Background()
	_, s, clk := startFake(t)
	scrapeEvery(t, s, clk, 15*time.Second, 20) // 5 minutes of samples

	r, err := s.Rate(ctx, promq.Select("promq_test_total"), 5*time.Minute)
	require.NoError(t, err)
	assert.InDeltaMapValues(t, map[string]float64{"a": 7, "b": 3}, r.ByLabel("market"), 1e-9)
	assert.Empty(t, r.Warnings)
	assert.Equal(t, `rate(promq_test_total[5m]) (scrape `+s.Name()[len("scrape "):]+`)`, r.Evidence.Query)
	_, hasName := r.Vector[0].Metric["__name__"]
	assert.False(t, hasName, "rate drops the metric name, as PromQL does")

	r, err = s.Increase(ctx, promq.Select("promq_test_total", "market", "a"), 2*time.Minute)
	require.NoError(t, err)
	v, ok := r.Value()
	require.True(t, ok)
	assert.InDelta(t, 7*120.0, v, 1e-6)
	assert.Empty(t, r.Warnings)

	// A rate over a window longer than what was observed is the observed rate.
	r, err = s.Rate(ctx, promq.Select("promq_test_total", "market", "a"), time.Hour)
	require.NoError(t, err)
	v, _ = r.Value()
	assert.InDelta(t, 7, v, 1e-9)
	// An increase over it is scaled, with a warning.
	r, err = s.Increase(ctx, promq.Select("promq_test_total", "market", "a"), time.Hour)
	require.NoError(t, err)
	v, _ = r.Value()
	assert.InDelta(t, 7*3600.0, v, 1e-6)
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0], "observed only 5m0s of the 1h window")
}

func TestScrapeRateNeedsTwoSamples(t *testing.T) {
	ctx := context.Background()
	_, s, clk := startFake(t)
	require.NoError(t, s.Scrape(ctx))
	r, err := s.Rate(ctx, promq.Select("promq_test_total"), time.Minute)
	require.NoError(t, err)
	assert.Empty(t, r.Vector)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "not enough samples yet")

	clk.Advance(time.Second)
	require.NoError(t, s.Scrape(ctx))
	r, err = s.Rate(ctx, promq.Select("promq_test_total", "market", "b"), 5*time.Minute)
	require.NoError(t, err)
	v, ok := r.Value()
	require.True(t, ok)
	assert.InDelta(t, 3, v, 1e-9, "two samples a second apart give the exact rate")
}

func TestScrapeCounterReset(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	vals := []float64{10, 20, 30, 5, 15} // reset after 30
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# TYPE c_total counter\nc_total " + ftoa(vals[i]) + "\n"))
	}))
	t.Cleanup(srv.Close)
	s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(s.Close)
	for i = range vals {
		if i > 0 {
			clk.Advance(10 * time.Second)
		}
		require.NoError(t, s.Scrape(ctx))
	}
	// The window (now−40s, now] is left-open, as in Prometheus 3: it holds
	// 20, 30, 5, 15 at 10..40 s. Increase 15−20+30 (the reset) = 25 over 30 s
	// sampled, extrapolated by the 10 s to the window's start (< 1.1 intervals):
	// 25·40/30.
	r, err := s.Increase(ctx, promq.Select("c_total"), 40*time.Second)
	require.NoError(t, err)
	v, _ := r.Value()
	assert.InDelta(t, 25*40.0/30, v, 1e-9)
	r, err = s.Rate(ctx, promq.Select("c_total"), 40*time.Second)
	require.NoError(t, err)
	v, _ = r.Value()
	assert.InDelta(t, 25.0/30, v, 1e-9)
}

func TestScrapePrometheusExtrapolation(t *testing.T) {
	// Observation started long before the window: the window's own samples
	// decide, with Prometheus' extrapolation to the boundaries.
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	var v float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("c_total " + ftoa(v) + "\n"))
	}))
	t.Cleanup(srv.Close)
	s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(s.Close)
	// Samples every 10 s from t0 to t0+100s, v = 100 + 2·t.
	for k := 0; k <= 10; k++ {
		v = 100 + 2*float64(k*10)
		require.NoError(t, s.Scrape(ctx))
		if k < 10 {
			clk.Advance(10 * time.Second)
		}
	}
	// Evaluate 25 s after the last sample, window 60 s: samples at 40..100 s
	// relative, but the window is (65 s, 125 s] → samples at 70, 80, 90, 100.
	clk.Advance(25 * time.Second)
	r, err := s.Increase(ctx, promq.Select("c_total"), time.Minute)
	require.NoError(t, err)
	got, _ := r.Value()
	// delta 60 over 30 s sampled; to start 5 s (< 11 s threshold: extrapolate
	// fully); to end 25 s (≥ 11: half an interval, 5 s) → 60·(30+5+5)/30 = 80.
	assert.InDelta(t, 80, got, 1e-9)
}

func TestScrapeQuantile(t *testing.T) {
	ctx := context.Background()
	_, s, clk := startFake(t)
	scrapeEvery(t, s, clk, 10*time.Second, 6)
	// Observations 0.05,0.2,0.3,0.7,0.8,0.9,2,3,4,10: buckets 0.1:1 0.5:3 1:6 5:9 +Inf:10 (×rate).
	cases := []struct {
		q    float64
		want float64
	}{
		{0.5, 0.5 + 0.5*(2.0/3)}, // rank 5 in (0.5,1]: 3 + 2/3 of 3
		{0.1, 0.1},               // rank 1 exactly the first bucket
		{0.05, 0.05},             // first bucket interpolates from 0
		{0.9, 5},                 // rank 9 → end of (1,5]
		{0.95, 5},                // falls in +Inf → highest finite bound
		{0.2, 0.1 + 0.4*(1.0/2)}, // rank 2 in (0.1,0.5]
		{0.8, 1 + 4*(2.0/3)},     // rank 8 in (1,5]
	}
	for _, w := range []time.Duration{0, time.Minute} {
		for _, c := range cases {
			r, err := s.Quantile(ctx, c.q, promq.Select("promq_test_seconds"), w)
			require.NoError(t, err)
			v, ok := r.Value()
			require.True(t, ok, "q=%g w=%s %v", c.q, w, r.Warnings)
			assert.InDelta(t, c.want, v, 1e-9, "q=%g window=%s", c.q, w)
			assert.Empty(t, r.Warnings)
		}
	}
	r, err := s.Quantile(ctx, 0.99, promq.Select("promq_test_seconds"), 0)
	require.NoError(t, err)
	assert.Equal(t, "histogram_quantile(0.99, sum by (le) (promq_test_seconds_bucket)) (scrape "+s.Name()[7:]+")", r.Evidence.Query)
	r, err = s.Quantile(ctx, 0.99, promq.Select("promq_test_seconds"), 5*time.Minute)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(r.Evidence.Query, "histogram_quantile(0.99, sum by (le) (rate(promq_test_seconds_bucket[5m])))"))
}

func TestScrapeQuantileEdgeCases(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	body := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
	t.Cleanup(srv.Close)
	s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(s.Close)
	scrape := func(b string) {
		clk.Advance(time.Second)
		body = b
		require.NoError(t, s.Scrape(ctx))
	}

	// No +Inf bucket (untyped series): NaN in Prometheus → no data here.
	scrape("h_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 10\n")
	r, err := s.Quantile(ctx, 0.5, promq.Select("h"), 0)
	require.NoError(t, err)
	assert.Empty(t, r.Vector)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "no +Inf bucket")

	// Non-monotonic buckets are fixed, with a warning.
	scrape("h_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 4\nh_bucket{le=\"+Inf\"} 10\n")
	r, err = s.Quantile(ctx, 0.5, promq.Select("h"), 0)
	require.NoError(t, err)
	v, ok := r.Value()
	require.True(t, ok)
	assert.Equal(t, 1.0, v, "le=2 is fixed to 5: rank 5 reaches bucket le=1 exactly")
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "not monotonic")

	// No observations: NaN → no data.
	clk.Advance(time.Second)
	scrape("h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\n")
	r, err = s.Quantile(ctx, 0.5, promq.Select("h"), 0)
	require.NoError(t, err)
	assert.Empty(t, r.Vector)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "no observations")

	// q outside [0,1] is ±Inf as in Prometheus, rendered as a string in evidence.
	clk.Advance(time.Second)
	scrape("h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 4\n")
	r, err = s.Quantile(ctx, 1.5, promq.Select("h"), 0)
	require.NoError(t, err)
	v, _ = r.Value()
	assert.True(t, math.IsInf(v, 1))
	assert.Equal(t, "+Inf", r.Evidence.Value.String())

	// Negative first bucket bound: returned as is.
	clk.Advance(time.Second)
	scrape("h_bucket{le=\"-1\"} 3\nh_bucket{le=\"+Inf\"} 4\n")
	r, err = s.Quantile(ctx, 0.5, promq.Select("h"), 0)
	require.NoError(t, err)
	v, _ = r.Value()
	assert.Equal(t, -1.0, v)
}

func TestScrapeSamplesAndHeldFor(t *testing.T) {
	ctx := context.Background()
	_, s, clk := startFake(t)
	scrapeEvery(t, s, clk, 30*time.Second, 10) // 5 minutes

	rr, err := s.Samples(ctx, promq.Select("promq_test_gauge"), 2*time.Minute)
	require.NoError(t, err)
	require.Len(t, rr.Matrix, 1)
	assert.Len(t, rr.Matrix[0].Values, 4, "(now−2m, now] holds samples at −90, −60, −30, 0 s")
	assert.Equal(t, "promq_test_gauge[2m]", strings.SplitN(rr.Evidence.Query, " ", 2)[0])

	h, err := promq.HeldFor(ctx, s, promq.Select("promq_test_gauge"), promq.GT, 40, 4*time.Minute)
	require.NoError(t, err)
	assert.True(t, h.Held)
	assert.True(t, h.Known)
	assert.Equal(t, 42.0, h.Now)

	h, err = promq.HeldFor(ctx, s, promq.Select("promq_test_gauge"), promq.GT, 40, time.Hour)
	require.NoError(t, err)
	assert.False(t, h.Known, "an hour was not observed")
}

func TestScrapeRingIsBounded(t *testing.T) {
	ctx := context.Background()
	_, s, clk := startFake(t, promq.WithRingSize(5))
	scrapeEvery(t, s, clk, time.Second, 20)
	rr, err := s.Samples(ctx, promq.Select("promq_test_gauge"), time.Hour)
	require.NoError(t, err)
	require.Len(t, rr.Matrix, 1)
	vals := rr.Matrix[0].Values
	require.Len(t, vals, 5)
	assert.Equal(t, t0.Add(20*time.Second).UnixMilli(), int64(vals[4].Timestamp), "newest kept")
	assert.Equal(t, t0.Add(16*time.Second).UnixMilli(), int64(vals[0].Timestamp), "oldest dropped")
}

func TestScrapeFailureKeepsDataAndWarns(t *testing.T) {
	ctx := context.Background()
	n, s, clk := startFake(t)
	scrapeEvery(t, s, clk, 10*time.Second, 2)
	n.SetFault(nodetest.Fault{Method: "/metrics", Body: "<html><body>502 Bad Gateway</body></html>", HTTPStatus: 502})
	clk.Advance(10 * time.Second)
	err := s.Scrape(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), n.MetricsURL())

	r, err := s.Instant(ctx, promq.Select("promq_test_gauge"))
	require.NoError(t, err)
	assert.Empty(t, r.Vector, "series of a failed target are stale, as in Prometheus")
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "last scrape failed")

	up, err := s.Instant(ctx, promq.Select("up"))
	require.NoError(t, err)
	v, ok := up.Value()
	require.True(t, ok)
	assert.Equal(t, 0.0, v)

	// Rates still use the samples taken before the failure.
	r, err = s.Rate(ctx, promq.Select("promq_test_total", "market", "a"), time.Minute)
	require.NoError(t, err)
	v, ok = r.Value()
	require.True(t, ok)
	assert.InDelta(t, 7, v, 0.5)

	n.ClearFaults()
	clk.Advance(10 * time.Second)
	require.NoError(t, s.Scrape(ctx))
	r, err = s.Instant(ctx, promq.Select("promq_test_gauge"))
	require.NoError(t, err)
	assert.Len(t, r.Vector, 1)
	assert.Empty(t, r.Warnings)
}

func TestScrapeErrors(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		handler http.HandlerFunc
		want    string
	}{
		"html": {func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<!DOCTYPE html><html>login</html>"))
		}, "HTML page"},
		"status":    {func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusServiceUnavailable) }, "HTTP 503: nope"},
		"garbage":   {func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metric{ 1\n")) }, "parsing the text format"},
		"too large": {func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(strings.Repeat("a 1\n", 100))) }, "larger than 64 bytes"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			s := promq.NewScrape([]string{srv.URL + "/metrics"}, promq.WithScrapeMaxBytes(64))
			defer s.Close()
			err := s.Scrape(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "cannot scrape "+srv.URL+"/metrics")
			assert.Contains(t, err.Error(), c.want)
		})
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	s := promq.NewScrape([]string{u + "/metrics"})
	defer s.Close()
	err := s.Scrape(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot scrape "+u+"/metrics: ")
	assert.Contains(t, err.Error(), "connection refused")

	r, err := s.Instant(ctx, promq.Select("x"))
	require.NoError(t, err)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "no successful scrape yet")

	s.Close()
	assert.ErrorIs(t, s.Scrape(ctx), promq.ErrClosed)

	_, err = s.Rate(ctx, promq.Select("x"), 0)
	assert.ErrorIs(t, err, promq.ErrBadQuery)
}

// A /metrics URL with a password: the scrape sends it (basic auth), and
// Name, evidence, warnings and errors show it redacted, as net/url's Redacted
// does.
func TestScrapeNeverShowsTheURLPassword(t *testing.T) {
	ctx := context.Background()
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pw, _ := r.BasicAuth(); user != "ops" || pw != "s3cret" || fail.Load() {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("g 1\n"))
	}))
	defer srv.Close()
	withPW := strings.Replace(srv.URL, "http://", "http://ops:s3cret@", 1) + "/metrics"
	shown := strings.Replace(withPW, "s3cret", "xxxxx", 1)
	s := promq.NewScrape([]string{withPW})
	defer s.Close()

	assert.Equal(t, "scrape "+shown, s.Name())
	r, err := s.Instant(ctx, promq.Select("g"))
	require.NoError(t, err)
	assert.Equal(t, []string{shown + " has not been scraped yet", "no data for g"}, r.Warnings)

	require.NoError(t, s.Scrape(ctx), "the request carries the password")
	r, err = s.Instant(ctx, promq.Select("g"))
	require.NoError(t, err)
	assert.Equal(t, "g (scrape "+shown+")", r.Evidence.Query)

	fail.Store(true)
	err = s.Scrape(ctx)
	require.Error(t, err)
	assert.Equal(t, "cannot scrape "+shown+": HTTP 401: who are you", err.Error())
	r, err = s.Instant(ctx, promq.Select("g"))
	require.NoError(t, err)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "cannot scrape "+shown)
	assert.NotContains(t, strings.Join(r.Warnings, "\n"), "s3cret")

	bad := promq.NewScrape([]string{"http://ops:s3cret@127.0.0.1:no-port/metrics"})
	defer bad.Close()
	err = bad.Scrape(ctx)
	require.Error(t, err)
	assert.Equal(t, `cannot scrape http://ops:xxxxx@127.0.0.1:no-port/metrics: invalid port ":no-port" after host`, err.Error())
}

func TestScrapeRunAndClose(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenario(testScenario(time.Now())))
	s := promq.NewScrape([]string{n.MetricsURL()})
	ctx := context.Background()
	require.NoError(t, s.Scrape(ctx))
	s.Run(ctx, 20*time.Millisecond)
	s.Run(ctx, 20*time.Millisecond) // second call: no second loop
	require.Eventually(t, func() bool {
		rr, err := s.Samples(ctx, promq.Select("promq_test_gauge"), time.Minute)
		return err == nil && len(rr.Matrix) == 1 && len(rr.Matrix[0].Values) >= 3
	}, 5*time.Second, 10*time.Millisecond)
	s.Close()
	s.Close() // idempotent
	rr, err := s.Samples(ctx, promq.Select("promq_test_gauge"), time.Minute)
	require.NoError(t, err)
	k := len(rr.Matrix[0].Values)
	time.Sleep(60 * time.Millisecond)
	rr, err = s.Samples(ctx, promq.Select("promq_test_gauge"), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, k, len(rr.Matrix[0].Values), "no scrapes after Close")
}

func TestScrapeMultipleURLs(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	a := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(testScenario(t0)))
	b := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(testScenario(t0)))
	s := promq.NewScrape([]string{a.MetricsURL(), b.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(s.Close)
	scrapeEvery(t, s, clk, 10*time.Second, 3)
	r, err := s.Rate(ctx, promq.Select("promq_test_total", "market", "a"), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{a.Addr(): 7, b.Addr(): 7}, roundMap(r.ByLabel("instance")))
	q, err := s.Quantile(ctx, 0.5, promq.Select("promq_test_seconds"), time.Minute)
	require.NoError(t, err)
	v, _ := q.Value()
	assert.InDelta(t, 0.5+0.5*(2.0/3), v, 1e-9, "buckets summed by le across instances")
	assert.Equal(t, "scrape "+a.MetricsURL()+", "+b.MetricsURL(), s.Name())
}

func roundMap(m map[string]float64) map[string]float64 {
	for k, v := range m {
		m[k] = math.Round(v*1e6) / 1e6
	}
	return m
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestScrapeMetricNames(t *testing.T) {
	n := nodetest.Start(t)
	s := promq.NewScrape([]string{n.MetricsURL()})
	defer s.Close()
	assert.Empty(t, s.MetricNames(), "nothing scraped yet")
	require.NoError(t, s.Scrape(context.Background()))
	names := s.MetricNames()
	assert.Contains(t, names, "up")
	assert.Contains(t, names, "block_height_total")
	assert.Contains(t, names, "oracle_latency_seconds_bucket", "histograms as Prometheus stores them")
	assert.IsIncreasing(t, names)
}

// A series the target stops exposing is forgotten after 64 scrapes without it,
// from every question; its metric's other series, and a series that comes
// back under the same name, are answered as before.
func TestScrapeForgetsVanishedSeries(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	var body atomic.Value
	body.Store("# TYPE g gauge\ng{k=\"a\"} 1\ng{k=\"b\"} 2\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	t.Cleanup(srv.Close)
	s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(clk.Now), promq.WithRingSize(4))
	t.Cleanup(s.Close)
	scrape := func(k int) {
		for range k {
			require.NoError(t, s.Scrape(ctx))
			clk.Advance(time.Second)
		}
	}
	series := func() int {
		r, err := s.Samples(ctx, promq.Select("g"), time.Hour)
		require.NoError(t, err)
		return len(r.Matrix)
	}
	scrape(2)
	require.Equal(t, 2, series())
	body.Store("# TYPE g gauge\ng{k=\"a\"} 1\n")
	scrape(64)
	assert.Equal(t, 2, series(), "absent for 64 scrapes: still remembered")
	scrape(1)
	assert.Equal(t, 1, series(), "absent for 65: forgotten")
	body.Store("# TYPE g gauge\ng{k=\"a\"} 1\ng{k=\"b\"} 3\n")
	scrape(1)
	assert.Equal(t, 2, series(), "back again")
	r, err := s.Instant(ctx, promq.Select("g", "k", "b"))
	require.NoError(t, err)
	v, _ := r.Value()
	assert.Equal(t, 3.0, v)
}
