package runtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// scraped starts a simulated node running scenario and a scrape source over it,
// both on one fake clock, and scrapes every step for span.
func scraped(t *testing.T, scenario string, span, step time.Duration, opts ...nodetest.Option) (*promq.Scrape, *nodetest.FakeClock, *nodetest.Node) {
	t.Helper()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, append([]nodetest.Option{nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario)}, opts...)...)
	src := promq.NewScrape([]string{n.MetricsURL()}, promq.WithScrapeClock(clk.Now), promq.WithRingSize(256))
	t.Cleanup(src.Close)
	ctx := context.Background()
	require.NoError(t, src.Scrape(ctx))
	for el := time.Duration(0); el < span; el += step {
		clk.Advance(step)
		require.NoError(t, src.Scrape(ctx))
	}
	return src, clk, n
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

func TestDiagnoseReactorHealthyFullWindow(t *testing.T) {
	src, clk, _ := scraped(t, "healthy", 16*time.Minute, 30*time.Second)
	r, err := DiagnoseReactor(context.Background(), src, DefaultKnobs(), ReactorOptions{Now: clk.Now})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)
	assert.Equal(t, RunbookID, r.Runbook)
	assert.Empty(t, r.Warnings)
	for _, s := range r.Symptoms {
		assert.False(t, s.Firing, s.ID)
		assert.NotEmpty(t, s.Evidence, s.ID)
	}
	assert.Empty(t, r.Matched())
	assert.Len(t, r.Alerts, 3)
}

func TestDiagnoseReactorMissedWakeups(t *testing.T) {
	src, clk, _ := scraped(t, "runtime-missed-wakeups", 16*time.Minute, 30*time.Second)
	k := DefaultKnobs()
	sets := []Setting{{Key: "runtime.io_read_backoff_ms", Source: SourceEnv}}
	r, err := DiagnoseReactor(context.Background(), src, k, ReactorOptions{Now: clk.Now, Settings: sets, ConfigPath: "/etc/tb/node.toml"})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	read := symptom(t, r, SymptomReadWithoutReady)
	assert.True(t, read.Firing)
	assert.Equal(t, tbops.StatusWarning, read.Status)
	assert.InDelta(t, 2.5*15*60, *read.Value, 1, "increase over the 15m window at 2.5/s")
	assert.Contains(t, read.Evidence[0].Query, "runtime_read_without_ready_total")
	var ev map[string]any
	require.NoError(t, read.Evidence[0].Value.Decode(&ev))
	assert.Equal(t, 3.0, ev["grew_windows"])
	write := symptom(t, r, SymptomWriteWithoutReady)
	assert.True(t, write.Firing)
	assert.False(t, symptom(t, r, SymptomReloadErrors).Firing)

	a := path(t, r, "A")
	require.True(t, a.Matched)
	var cmds, notes []string
	for _, act := range a.Actions {
		assert.True(t, act.DryRun)
		cmds = append(cmds, act.Command)
		notes = append(notes, act.Note)
	}
	all := strings.Join(append(cmds, notes...), "\n")
	assert.Contains(t, all, "io_read_backoff_ms = 20 in /etc/tb/node.toml (or TB_IO_READ_BACKOFF_MS=20)")
	assert.Contains(t, all, "update_interest()")
	assert.Contains(t, all, "EV_CLEAR")
	assert.Contains(t, all, "tbops runtime watch --config /etc/tb/node.toml")
	assert.False(t, path(t, r, "B").Matched)

	var firing []string
	for _, al := range r.Alerts {
		if al.Firing {
			firing = append(firing, al.Name)
		}
	}
	assert.Equal(t, []string{"RuntimeReadWithoutReadyGrowing", "RuntimeWriteWithoutReadyGrowing"}, firing)

	var knobs []string
	for _, s := range r.Steps {
		if s.ID == "knobs" {
			knobs = s.Findings
		}
	}
	require.Len(t, knobs, 4)
	assert.Contains(t, knobs[1], "runtime.io_read_backoff_ms = 10 ms from env")
	assert.Contains(t, knobs[0], "runtime.reactor_idle_poll_ms = 100 ms (env TB_REACTOR_IDLE_POLL_MS, default 100)")

	var buf strings.Builder
	require.NoError(t, r.WriteText(&buf))
	assert.Contains(t, buf.String(), "read-without-ready-growing")
}

// TestDiagnoseReactorShortObservation is what doctor sees: two scrapes a second
// apart. Flat counters are ok; growing ones fire, with a warning that only a
// second was observed.
func TestDiagnoseReactorShortObservation(t *testing.T) {
	src, clk, _ := scraped(t, "healthy", time.Second, time.Second)
	r, err := DiagnoseReactor(context.Background(), src, DefaultKnobs(), ReactorOptions{Now: clk.Now})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)

	src, clk, _ = scraped(t, "runtime-missed-wakeups", time.Second, time.Second)
	r, err = DiagnoseReactor(context.Background(), src, DefaultKnobs(), ReactorOptions{Now: clk.Now})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	assert.True(t, symptom(t, r, SymptomReadWithoutReady).Firing)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "only 1s of the 15m window observed")
}

func TestDiagnoseReactorReloadErrors(t *testing.T) {
	src, clk, _ := scraped(t, "runtime-reload-errors", 2*time.Minute, 30*time.Second)
	r, err := DiagnoseReactor(context.Background(), src, DefaultKnobs(), ReactorOptions{Now: clk.Now})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	s := symptom(t, r, SymptomReloadErrors)
	assert.True(t, s.Firing)
	assert.InDelta(t, 30.0, *s.Value, 0.5, "1/30 per second over 15m")
	assert.Contains(t, s.Evidence[0].Query, `config_reload_total{result="error"}`)
	b := path(t, r, "B")
	require.True(t, b.Matched)
	assert.Equal(t, "tbops runtime knobs --config FILE", b.Actions[0].Command)
	assert.False(t, path(t, r, "A").Matched)
}

// A node that does not export the metrics is unknown, never ok.
func TestDiagnoseReactorMissingMetrics(t *testing.T) {
	sc := nodetest.Healthy(t0)
	sc.Metrics = []nodetest.Metric{{Name: "runtime_read_without_ready_total"}, {Name: "config_reload_total"}}
	src, clk, _ := scraped(t, "", time.Second, time.Second, nodetest.WithScenario(sc))
	r, err := DiagnoseReactor(context.Background(), src, DefaultKnobs(), ReactorOptions{Now: clk.Now})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, SymptomReadWithoutReady).Status)
	assert.Nil(t, symptom(t, r, SymptomReadWithoutReady).Value)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, SymptomWriteWithoutReady).Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, SymptomReloadErrors).Status)
	w := strings.Join(r.Warnings, "\n")
	assert.Contains(t, w, "no data for runtime_read_without_ready_total")
	assert.Contains(t, w, "config_reload_total")
}

func TestDiagnoseReactorNilSourceAndOptions(t *testing.T) {
	r, err := DiagnoseReactor(context.Background(), nil, DefaultKnobs(), ReactorOptions{})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Len(t, r.Symptoms, 3)
	assert.NotEmpty(t, r.Warnings)

	_, err = DiagnoseReactor(context.Background(), nil, DefaultKnobs(), ReactorOptions{SubWindows: -1})
	require.Error(t, err)
	_, err = DiagnoseReactor(context.Background(), nil, DefaultKnobs(), ReactorOptions{SubWindow: time.Millisecond})
	require.Error(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = DiagnoseReactor(ctx, nil, DefaultKnobs(), ReactorOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

func pts(step time.Duration, vals ...float64) []model.SamplePair {
	out := make([]model.SamplePair, len(vals))
	for i, v := range vals {
		out[i] = model.SamplePair{Timestamp: model.TimeFromUnixNano(t0.Add(time.Duration(i) * step).UnixNano()), Value: model.SampleValue(v)}
	}
	return out
}

func TestJudgeSeries(t *testing.T) {
	min5 := 5 * time.Minute
	// 16 samples a minute apart cover 15 minutes: three 5-minute sub-windows.
	steady := pts(time.Minute, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
	g := judgeSeries(steady, min5, 3)
	assert.True(t, g.known && g.sustained && !g.partial)
	assert.Equal(t, 15.0, g.increase)
	assert.Equal(t, 3, g.grew)

	// A burst in the first sub-window only is not sustained.
	burst := pts(time.Minute, 0, 50, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90)
	g = judgeSeries(burst, min5, 3)
	assert.True(t, g.known)
	assert.False(t, g.sustained)
	assert.Equal(t, 1, g.grew)
	assert.Equal(t, 90.0, g.increase)

	// Growth that paused in the middle sub-window is not sustained.
	paused := pts(time.Minute, 0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 6, 7, 8, 9, 10)
	g = judgeSeries(paused, min5, 3)
	assert.False(t, g.sustained)
	assert.Equal(t, 2, g.grew)

	// A counter reset (restart) still counts as growth, never as a drop.
	reset := pts(time.Minute, 100, 101, 102, 103, 104, 105, 106, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	g = judgeSeries(reset, min5, 3)
	assert.True(t, g.sustained)
	assert.Equal(t, 6.0+1+8, g.increase)

	// Fewer than two samples: unknown.
	assert.False(t, judgeSeries(pts(time.Minute, 5), min5, 3).known)
	assert.False(t, judgeSeries(nil, min5, 3).known)

	// Partial: three samples over two minutes give two parts.
	g = judgeSeries(pts(time.Minute, 1, 1, 2), min5, 3)
	assert.True(t, g.partial)
	assert.Equal(t, 2, g.of)
	assert.Equal(t, 1, g.grew)
	assert.False(t, g.sustained)
}

func TestRules(t *testing.T) {
	rules := Rules()
	require.Len(t, rules, 3)
	assert.Equal(t, "RuntimeReadWithoutReadyGrowing", rules[0].Alert)
	assert.Equal(t, "increase(runtime_read_without_ready_total[5m]) > 0", rules[0].Expr)
	assert.Equal(t, 10*time.Minute, rules[0].For)
	assert.Equal(t, `increase(config_reload_total{result="error"}[15m]) > 0`, rules[2].Expr)
	for _, r := range rules {
		assert.Equal(t, RunbookID, r.Runbook)
		assert.Equal(t, tbops.StatusWarning, r.Severity)
		assert.NotEmpty(t, r.Summary)
	}
}
