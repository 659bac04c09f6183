package runtime

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const target = "http://node.test:3030/"

// observed starts a simulated node running scenario and a metrics source over
// it on one fake clock, scraping every interval, and advances it by span: the
// history a Prometheus would hold after span.
func observed(t *testing.T, scenario string, span, interval time.Duration, opts ...nodetest.Option) (*nodetest.Source, *nodetest.FakeClock) {
	t.Helper()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, append([]nodetest.Option{nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario)}, opts...)...)
	return observe(t, n, clk, span, interval), clk
}

// observe is a new metrics source over n that has observed it for span.
func observe(t *testing.T, n *nodetest.Node, clk *nodetest.FakeClock, span, interval time.Duration) *nodetest.Source {
	t.Helper()
	ctx := context.Background()
	src, err := nodetest.NewSource(ctx, n, clk, interval)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	require.NoError(t, src.Advance(ctx, span))
	return src
}

// doctorView is what tbops doctor sees: two scrapes a second apart.
func doctorView(t *testing.T, scenario string, opts ...nodetest.Option) (*nodetest.Source, *nodetest.FakeClock) {
	return observed(t, scenario, time.Second, time.Second, opts...)
}

// history is enough for every rule: past the longest window and `for` (15m).
func history(t *testing.T, scenario string) (*nodetest.Source, *nodetest.FakeClock) {
	return observed(t, scenario, 16*time.Minute, nodetest.DefaultScrapeInterval)
}

func diagnose(t *testing.T, src promq.Source, clk *nodetest.FakeClock, opts ...func(*ReactorOptions)) tbops.Report {
	t.Helper()
	o := ReactorOptions{Target: target, Now: clk.Now}
	for _, f := range opts {
		f(&o)
	}
	r, err := NewRunbook(src, DefaultKnobs(), o).Diagnose(context.Background())
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

func statuses(r tbops.Report) map[string]tbops.Status {
	out := map[string]tbops.Status{}
	for _, s := range r.Symptoms {
		out[s.ID] = s.Status
	}
	for _, a := range r.Alerts {
		out[a.Name] = a.Status
	}
	return out
}

// TestShortObservationIsUnknownNotAPage is issue #12's reproduction: on main,
// two scrapes a second apart of a reactor missing wakeups fired "sustained
// growth" from "1 of 1 sub-windows", although the rule holds for 10m. The
// rule's window and `for` (15m) are not covered, so the symptoms and their
// alerts are unknown, with a warning saying how much was seen and what
// would decide it.
func TestShortObservationIsUnknownNotAPage(t *testing.T) {
	src, clk := doctorView(t, "runtime-missed-wakeups")
	r := diagnose(t, src, clk)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Equal(t, map[string]tbops.Status{
		SymptomReadWithoutReady: tbops.StatusUnknown, "RuntimeReadWithoutReadyGrowing": tbops.StatusUnknown,
		SymptomWriteWithoutReady: tbops.StatusUnknown, "RuntimeWriteWithoutReadyGrowing": tbops.StatusUnknown,
		SymptomReloadErrors: tbops.StatusUnknown, "ConfigReloadFailing": tbops.StatusUnknown,
	}, statuses(r))
	assert.Empty(t, r.Firing())
	assert.Empty(t, r.Matched())
	assert.Contains(t, r.Warnings, "runtime_read_without_ready_total: only 1s of the 15m window observed: "+promq.HistoryHint)
	assert.Contains(t, r.Warnings, `config_reload_total{result="error"}: only 1s of the 15m window observed: `+promq.HistoryHint)
	var cov map[string]float64
	require.NoError(t, symptom(t, r, SymptomReadWithoutReady).Detail.Decode(&cov))
	assert.Equal(t, map[string]float64{"observed_seconds": 1, "needed_seconds": 900}, cov, "numbers a script can read")
	assert.Contains(t, path(t, r, "A").Why, "undecided")
}

// With 16 minutes of history the growth is decided: both counters grew over
// every 5-minute window for 10 minutes.
func TestMissedWakeupsWithHistory(t *testing.T) {
	src, clk := history(t, "runtime-missed-wakeups")
	r := diagnose(t, src, clk, func(o *ReactorOptions) {
		o.Settings = []Setting{{Key: "runtime.io_read_backoff_ms", Value: 10, Unit: "ms", Source: SourceEnv}}
		o.ConfigPath = "/etc/tb/node.toml"
	})
	assert.Equal(t, tbops.StatusWarning, r.Status, "warnings: %v", r.Warnings)
	assert.Empty(t, r.Warnings)
	assert.Equal(t, src.Name(), r.Scope)
	assert.Equal(t, target, r.Target)
	read := symptom(t, r, SymptomReadWithoutReady)
	assert.True(t, read.Firing)
	assert.Equal(t, tbops.StatusWarning, read.Status)
	assert.InDelta(t, 2.5*300, *read.Value, 3, "the increase over the last 5m at 2.5/s")
	assert.Equal(t, 0.0, *read.Threshold)
	assert.Contains(t, read.Evidence[0].Query, "increase(runtime_read_without_ready_total[5m]) > 0")
	assert.True(t, symptom(t, r, SymptomWriteWithoutReady).Firing)
	reload := symptom(t, r, SymptomReloadErrors)
	assert.False(t, reload.Firing)
	assert.Equal(t, tbops.StatusOK, reload.Status)

	a := path(t, r, "A")
	require.True(t, a.Matched)
	var all []string
	for _, act := range a.Actions {
		assert.True(t, act.DryRun)
		all = append(all, act.Command, act.Note)
	}
	joined := strings.Join(all, "\n")
	assert.Contains(t, joined, "io_read_backoff_ms = 20 in /etc/tb/node.toml (or TB_IO_READ_BACKOFF_MS=20)")
	assert.Contains(t, joined, "update_interest()")
	assert.Contains(t, joined, "EV_CLEAR")
	assert.Contains(t, joined, "tbops runtime watch --config /etc/tb/node.toml")
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
			var v map[string]int64
			require.NoError(t, s.Evidence[0].Value.Decode(&v))
			assert.Equal(t, int64(10), v["runtime.io_read_backoff_ms"], "numbers, the unit in the key")
		}
	}
	require.Len(t, knobs, 4)
	assert.Contains(t, knobs[1], "runtime.io_read_backoff_ms = 10 ms from env")
	assert.Contains(t, knobs[0], "runtime.reactor_idle_poll_ms = 100 ms (env TB_REACTOR_IDLE_POLL_MS, default 100)")
}

// The Alerts block is promq.EvalRule of each rule on the same source, and each
// symptom is its rule's evaluation: one definition, no second opinion.
func TestAlertsAreTheRulesEvaluated(t *testing.T) {
	for _, scenario := range []string{"runtime-missed-wakeups", "runtime-reload-errors", "healthy"} {
		for _, span := range []time.Duration{time.Second, 3 * time.Minute, 16 * time.Minute} {
			src, clk := observed(t, scenario, span, nodetest.DefaultScrapeInterval)
			r := diagnose(t, src, clk)
			require.Len(t, r.Alerts, len(Rules()))
			for i, rule := range Rules() {
				st, err := promq.EvalRule(context.Background(), src, rule, clk.Now())
				require.NoError(t, err)
				want := st.ReportAlert()
				assert.Equal(t, want, r.Alerts[i], "%s after %s", rule.Alert, span)
				s := r.Symptoms[i]
				assert.Equal(t, []any{want.Status, want.Firing, want.Value, want.Detail, want.Evidence}, []any{s.Status, s.Firing, s.Value, s.Detail, s.Evidence},
					"symptom %s is %s's evaluation", s.ID, rule.Alert)
			}
		}
	}
}

// A counter that moved decides "increased over 15m" before 15 minutes are
// observed: failed reloads fire from two minutes of scrapes.
func TestReloadErrorsFireOnceTheCounterMoved(t *testing.T) {
	src, clk := observed(t, "runtime-reload-errors", 2*time.Minute, nodetest.DefaultScrapeInterval)
	r := diagnose(t, src, clk)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	s := symptom(t, r, SymptomReloadErrors)
	assert.True(t, s.Firing)
	assert.Contains(t, s.Evidence[0].Query, `config_reload_total{result="error"}`)
	b := path(t, r, "B")
	require.True(t, b.Matched)
	assert.Equal(t, "tbops runtime knobs --config FILE", b.Actions[0].Command)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, SymptomReadWithoutReady).Status, "2 minutes do not decide a 15-minute rule")
	assert.False(t, path(t, r, "A").Matched)
}

// healthyForRuntime is every scenario but the runtime ones: none of them
// breaks the reactor or the config reloads.
func healthyForRuntime() []string {
	var out []string
	for _, name := range nodetest.Scenarios() {
		if !strings.HasPrefix(name, "runtime-") {
			out = append(out, name)
		}
	}
	return out
}

// Healthy means healthy: under doctor's short observation no healthy
// scenario reports warning or critical, ever (20 runs each; undecidable
// windows are unknown).
func TestHealthyScenariosNeverWarnOnAShortObservation(t *testing.T) {
	for _, name := range healthyForRuntime() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clk := nodetest.NewFakeClock(t0)
			n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(name))
			for range 20 { // each run a fresh source, as each doctor run is
				src := observe(t, n, clk, time.Second, time.Second)
				r := diagnose(t, src, clk)
				src.Close()
				for id, st := range statuses(r) {
					assert.Contains(t, []tbops.Status{tbops.StatusOK, tbops.StatusUnknown}, st, "%s on %s", id, name)
				}
				assert.NotContains(t, []tbops.Status{tbops.StatusWarning, tbops.StatusCritical}, r.Status)
				assert.Empty(t, r.Matched())
			}
		})
	}
}

// With history past the longest window and `for`, every symptom of a healthy
// scenario that exports the runtime metrics is decided ok.
func TestHealthyScenariosAreOKWithHistory(t *testing.T) {
	for _, name := range []string{"healthy", "energy-healthy", "receipts-healthy", "governor-healthy"} {
		t.Run(name, func(t *testing.T) {
			src, clk := history(t, name)
			r := diagnose(t, src, clk)
			assert.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)
			for id, st := range statuses(r) {
				assert.Equal(t, tbops.StatusOK, st, id)
			}
			assert.Empty(t, r.Warnings)
			assert.Contains(t, path(t, r, "A").Why, "not growing")
		})
	}
}

// A node that does not export the metrics is unknown, never ok.
func TestMissingMetricsAreUnknown(t *testing.T) {
	sc := nodetest.Healthy(t0)
	sc.Metrics = []nodetest.Metric{{Name: "runtime_read_without_ready_total"}, {Name: "config_reload_total"}}
	src, clk := observed(t, "", 16*time.Minute, nodetest.DefaultScrapeInterval, nodetest.WithScenario(sc))
	r := diagnose(t, src, clk)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	read := symptom(t, r, SymptomReadWithoutReady)
	assert.Equal(t, tbops.StatusUnknown, read.Status)
	assert.Nil(t, read.Value)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, SymptomWriteWithoutReady).Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, SymptomReloadErrors).Status)
	assert.Contains(t, r.Warnings, "no data for runtime_read_without_ready_total")
	assert.Contains(t, r.Warnings, `no data for config_reload_total{result="error"}`)
}

func TestDiagnoseReactorNilSourceAndOptions(t *testing.T) {
	clk := nodetest.NewFakeClock(t0)
	r := diagnose(t, nil, clk)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Len(t, r.Symptoms, 3)
	assert.Len(t, r.Alerts, 3)
	for _, a := range r.Alerts {
		assert.Equal(t, tbops.StatusUnknown, a.Status)
		assert.Nil(t, a.Value)
	}
	assert.Empty(t, r.Scope)
	assert.NotEmpty(t, r.Warnings)

	_, err := DiagnoseReactor(context.Background(), nil, DefaultKnobs(), ReactorOptions{})
	assert.ErrorContains(t, err, "Target is empty")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = DiagnoseReactor(ctx, nil, DefaultKnobs(), ReactorOptions{Target: target})
	assert.ErrorIs(t, err, context.Canceled)
}

// The Runbook is what doctor and third-party tools iterate.
func TestRunbookInTheDiagnoseLoop(t *testing.T) {
	src, clk := history(t, "runtime-missed-wakeups")
	var rb tbops.Runbook = NewRunbook(src, DefaultKnobs(), ReactorOptions{Target: target, Now: clk.Now})
	assert.Equal(t, RunbookID, rb.ID())
	reports := tbops.Diagnose(context.Background(), clk.Now, rb)
	require.Len(t, reports, 1)
	reportcheck.Valid(t, reports...)
	assert.Equal(t, tbops.StatusWarning, reports[0].Status)
	assert.Equal(t, target, reports[0].Target)
}

func TestRules(t *testing.T) {
	rules := Rules()
	require.Len(t, rules, 3)
	want := []struct {
		alert, expr string
		held        time.Duration
	}{
		{"RuntimeReadWithoutReadyGrowing", "increase(runtime_read_without_ready_total[5m]) > 0", 10 * time.Minute},
		{"RuntimeWriteWithoutReadyGrowing", "increase(runtime_write_without_ready_total[5m]) > 0", 10 * time.Minute},
		{"ConfigReloadFailing", `increase(config_reload_total{result="error"}[15m]) > 0`, 0},
	}
	for i, r := range rules {
		require.NoError(t, r.Validate())
		assert.Equal(t, want[i].alert, r.Alert)
		assert.Equal(t, want[i].expr, r.PromQL())
		assert.Equal(t, want[i].held, r.For)
		assert.Equal(t, RunbookID, r.Runbook)
		assert.Equal(t, tbops.StatusWarning, r.Severity)
		assert.NotEmpty(t, r.Summary)
	}
}
