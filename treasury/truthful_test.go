package treasury_test

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
	"github.com/theblock/tbops/treasury"
)

// clockedNode is a simulated node on a fake clock with a nodetest.Source that
// has taken one scrape.
type clockedNode struct {
	node *nodetest.Node
	clk  *nodetest.FakeClock
	src  *nodetest.Source
	c    *treasury.Client
}

func startClocked(t *testing.T, sc nodetest.Scenario, clk *nodetest.FakeClock) *clockedNode {
	t.Helper()
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	src, err := nodetest.NewSource(context.Background(), n, clk, 15*time.Second)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	c, err := treasury.NewClient(n.URL())
	require.NoError(t, err)
	return &clockedNode{node: n, clk: clk, src: src, c: c}
}

// shortLook takes the doctor's observation: a second scrape one second after the first.
func (e *clockedNode) shortLook(t *testing.T) {
	t.Helper()
	require.NoError(t, e.src.Advance(context.Background(), time.Second))
}

func (e *clockedNode) diagnose(t *testing.T) tbops.Report {
	t.Helper()
	r, err := treasury.Diagnose(context.Background(), e.c, e.src, treasury.Options{Now: e.clk.Now, LogGlobs: []string{t.TempDir() + "/*.log"}})
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	return r
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// freshQueueScenario is the first reproduction: a healthy treasury
// whose finalized counter steps once every two minutes, with one queued
// disbursement created 30 s ago and the executor's last success 30 s ago.
func freshQueueScenario(now time.Time) nodetest.Scenario {
	sc := nodetest.Healthy(now)
	tr := &sc.Treasury
	var keep []nodetest.TreasuryDisbursement
	for _, d := range tr.Disbursements {
		if d.State == "executed" || d.State == "finalized" {
			keep = append(keep, d)
		}
	}
	n := now.Unix()
	tr.Disbursements = append(keep, nodetest.TreasuryDisbursement{ID: 9001, Destination: "ct1fresh", Amount: 1_000_000, Memo: "fresh",
		ScheduledEpoch: 10_001, CreatedAt: n - 30, UpdatedAt: n - 30, State: "queued", ChangedAt: n - 30, Title: "Fresh"})
	tr.Executor.Live = false
	tr.Executor.LastSuccessAt, tr.Executor.LastTickAt = n-30, n-30
	sc.Metrics = append(sc.Metrics, nodetest.Metric{Name: treasury.MetricDisbursements, Type: "counter", Series: []nodetest.Series{
		{Labels: map[string]string{"status": "finalized"}, Value: 20, PerSecond: 1.0 / 120, Integer: true},
		{Labels: map[string]string{"status": "executed"}, Value: 4, PerSecond: 1.0 / 120, Integer: true},
		{Labels: map[string]string{"status": "queued"}, Value: 25, PerSecond: 1.0 / 120, Integer: true},
	}})
	return sc
}

// TestNoTransitionsFromOneSecond is the first reproduction. On main
// it reported CRITICAL no-transitions ("value 0") and TreasuryNoProgress
// firing from about one second of a 10-minute window.
func TestNoTransitionsFromOneSecond(t *testing.T) {
	e := startClocked(t, freshQueueScenario(t0), nodetest.NewFakeClock(t0))
	e.shortLook(t)
	r := e.diagnose(t)
	s := symptom(t, r, treasury.SymptomNoTransitions)
	assert.Equal(t, tbops.StatusOK, s.Status, "decided from the records' updated_at and last_success_at: %+v", s)
	assert.False(t, s.Firing)
	for _, ev := range s.Evidence {
		assert.Equal(t, tbops.SourceRPC, ev.Source, "exact RPC evidence decides it: %+v", ev)
	}
	a := alert(t, r, "TreasuryNoProgress")
	assert.Equal(t, tbops.StatusUnknown, a.Status, "one second of a 10m window decides nothing: %+v", a)
	assert.False(t, a.Firing)
	assert.NotContains(t, []tbops.Status{tbops.StatusWarning, tbops.StatusCritical}, r.Status, "warnings %v", r.Warnings)

	// With 10+ minutes of history (the executor still succeeding every
	// half-minute) the alert is decided: ok.
	require.NoError(t, e.src.Advance(context.Background(), 11*time.Minute))
	e.node.Update(func(s *nodetest.Scenario) { s.Treasury.Executor.LastSuccessAt = e.clk.Now().Unix() - 30 })
	r = e.diagnose(t)
	a = alert(t, r, "TreasuryNoProgress")
	assert.Equal(t, tbops.StatusOK, a.Status, "%+v warnings %v", a, r.Warnings)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, treasury.SymptomNoTransitions).Status)
}

// TestExecutorFailingSumsReasons is the second reproduction: errors at
// 0.6/s for each of two reasons fire the exported rule (sum without reason >
// 1), and the report's Alerts block must say so, with the sum as its value. On
// main it said ok with 0.6 (the largest series).
func TestExecutorFailingSumsReasons(t *testing.T) {
	sc := nodetest.Healthy(t0)
	sc.Treasury.ErrorsPerSecond = map[string]float64{"ledger_unavailable": 0.6, "consensus_timeout": 0.6}
	e := startClocked(t, sc, nodetest.NewFakeClock(t0))
	require.NoError(t, e.src.Advance(context.Background(), 6*time.Minute))
	r := e.diagnose(t)
	a := alert(t, r, "TreasuryExecutorFailing")
	assert.True(t, a.Firing, "%+v", a)
	assert.Equal(t, tbops.StatusCritical, a.Status)
	require.NotNil(t, a.Value)
	assert.InDelta(t, 1.2, *a.Value, 1e-9)
}

// lagGaugeScenario exports the runbook's treasury_disbursement_lag_seconds_p95
// gauge at 900 s while the histogram is healthy.
func lagGaugeScenario(now time.Time) nodetest.Scenario {
	sc := nodetest.Healthy(now)
	p95 := 900.0
	sc.Treasury.LagP95 = &p95
	return sc
}

// TestLagGaugeIsUsed is the third reproduction, first half: the runbook names
// treasury_disbursement_lag_seconds_p95; when the node exports it, it decides
// the lag symptom and the latency rule. On main it was ignored.
func TestLagGaugeIsUsed(t *testing.T) {
	e := startClocked(t, lagGaugeScenario(t0), nodetest.NewFakeClock(t0))
	e.shortLook(t)
	r := e.diagnose(t)
	s := symptom(t, r, treasury.SymptomLag)
	assert.True(t, s.Firing, "%+v", s)
	require.NotNil(t, s.Value)
	assert.Equal(t, 900.0, *s.Value)
	assert.JSONEq(t, `"from the node's treasury_disbursement_lag_seconds_p95 gauge"`, string(s.Detail))
	a := alert(t, r, "TreasuryLatencyHigh")
	assert.True(t, a.Firing, "%+v", a)
	require.NotNil(t, a.Value)
	assert.Equal(t, 900.0, *a.Value)
	assert.NotContains(t, r.Warnings, "no data for "+treasury.MetricLagP95)
}

// slowNowScenario's lag histogram has a long fast past (100 000 disbursements
// under 60 s) and, since the node started, only slow ones (600–1200 s).
func slowNowScenario(now time.Time) nodetest.Scenario {
	sc := nodetest.Healthy(now)
	sc.Metrics = append(sc.Metrics, nodetest.Metric{Name: treasury.MetricLag, Type: "histogram", Series: []nodetest.Series{{
		Value: 100_000, PerSecond: 0.1, Sum: 3_000_000, SumPerSecond: 90,
		Buckets: []nodetest.Bucket{{LE: 60, Count: 100_000}, {LE: 600, Count: 100_000}, {LE: 1200, Count: 100_000, PerSecond: 0.1}},
	}}})
	return sc
}

// TestLagIsRecent is the third reproduction, second half: without the gauge
// the p95 is the histogram's over the last 5 minutes, as energy's oracle
// latency, not the lifetime quantile of the cumulative buckets (which a long
// fast past keeps under 60 s).
func TestLagIsRecent(t *testing.T) {
	e := startClocked(t, slowNowScenario(t0), nodetest.NewFakeClock(t0))
	require.NoError(t, e.src.Advance(context.Background(), 6*time.Minute))
	r := e.diagnose(t)
	s := symptom(t, r, treasury.SymptomLag)
	assert.True(t, s.Firing, "%+v", s)
	require.NotNil(t, s.Value)
	assert.InDelta(t, 1170, *s.Value, 1e-6)
	assert.Contains(t, string(s.Detail), "derived from the treasury_disbursement_lag_seconds histogram over 5m")
	a := alert(t, r, "TreasuryLatencyHigh")
	assert.True(t, a.Firing, "%+v", a)
	assert.NotContains(t, r.Warnings, "no data for "+treasury.MetricLagP95, "the gauge is optional")
}

// healthyScenarios are the scenarios in which the treasury is healthy: every
// one but the treasury's own failure scenarios.
func healthyScenarios() []string {
	var out []string
	for _, name := range nodetest.Scenarios() {
		if !strings.HasPrefix(name, "treasury-") || name == "treasury-reference-node" {
			out = append(out, name)
		}
	}
	return out
}

// TestHealthyNeverAlarmsOnAShortLook: the doctor's observation (two scrapes a
// second apart) of a healthy treasury never reports warning or critical, on
// any healthy scenario, at 20 different phases of its counters; what one
// second cannot decide is unknown.
func TestHealthyNeverAlarmsOnAShortLook(t *testing.T) {
	for _, name := range healthyScenarios() {
		t.Run(name, func(t *testing.T) {
			clk := nodetest.NewFakeClock(t0)
			sc, err := nodetest.LookupScenario(name, t0)
			require.NoError(t, err)
			n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
			c, err := treasury.NewClient(n.URL())
			require.NoError(t, err)
			for i := range 20 {
				clk.Advance(time.Duration(7+13*i) * time.Second) // counters at a new phase each time
				src, err := nodetest.NewSource(context.Background(), n, clk, time.Second)
				require.NoError(t, err)
				require.NoError(t, src.Advance(context.Background(), time.Second))
				r, err := treasury.NewRunbook(c, src, treasury.Options{Now: clk.Now}).Diagnose(context.Background())
				src.Close()
				require.NoError(t, err)
				reportcheck.Valid(t, r)
				assert.Contains(t, []tbops.Status{tbops.StatusOK, tbops.StatusUnknown}, r.Status, "look %d: %v", i, r.Warnings)
				for _, id := range []string{treasury.SymptomExecutorError, treasury.SymptomStale, treasury.SymptomNoTransitions, treasury.SymptomBacklog} {
					assert.Equal(t, tbops.StatusOK, symptom(t, r, id).Status, "look %d: %s is decided from the records", i, id)
				}
				for _, s := range r.Symptoms {
					assert.False(t, s.Firing, "look %d: %s fires: %+v", i, s.ID, s)
				}
				for _, a := range r.Alerts {
					assert.False(t, a.Firing, "look %d: %s fires", i, a.Name)
				}
			}
		})
	}
}

// TestHealthyIsDecidedWithHistory: with history past the longest window and
// `for` (10m for TreasuryNoProgress; 5m of rate and 10m of for for the SLO
// latency), every symptom and every alert of a healthy treasury is decided ok.
func TestHealthyIsDecidedWithHistory(t *testing.T) {
	for _, name := range []string{"healthy", "treasury-reference-node"} {
		t.Run(name, func(t *testing.T) {
			sc, err := nodetest.LookupScenario(name, t0)
			require.NoError(t, err)
			e := startClocked(t, sc, nodetest.NewFakeClock(t0))
			require.NoError(t, e.src.Advance(context.Background(), 16*time.Minute))
			// Scoped to the node, as the command line scopes a fleet's Prometheus.
			src := promq.Scoped(e.src, map[string]string{"instance": e.node.Addr()})
			r, err := treasury.Diagnose(context.Background(), e.c, src, treasury.Options{Now: e.clk.Now, SLO: true})
			require.NoError(t, err)
			reportcheck.Valid(t, r)
			assert.Equal(t, tbops.StatusOK, r.Status, "warnings %v", r.Warnings)
			for _, s := range r.Symptoms {
				assert.Equal(t, tbops.StatusOK, s.Status, "%s: %+v", s.ID, s)
			}
			for _, a := range r.Alerts {
				assert.Equal(t, tbops.StatusOK, a.Status, "%s: %+v", a.Name, a)
			}
			for _, s := range r.SLOs {
				assert.Equal(t, tbops.StatusOK, s.Status, "%s: %+v", s.Name, s)
				assert.NotNil(t, s.Value, s.Name)
			}
			assert.Equal(t, e.src.Name()+` {instance="`+e.node.Addr()+`"}`, r.Scope)
			for _, w := range r.Warnings {
				assert.NotContains(t, w, treasury.MetricLagP95, "the p95 gauge is optional")
			}
		})
	}
}

// TestStuckExecutorOnAShortLook: on one second of metrics the records and the
// executor snapshot still decide what they can, exactly: nothing has changed
// for two hours (no-transitions, critical) and 85 disbursements have been
// queued since long before the 2 epochs (backlog, warning), while the rules,
// which need windows of history, stay unknown.
func TestStuckExecutorOnAShortLook(t *testing.T) {
	sc, err := nodetest.LookupScenario("treasury-executor-error", t0)
	require.NoError(t, err)
	e := startClocked(t, sc, nodetest.NewFakeClock(t0))
	e.shortLook(t)
	r := e.diagnose(t)
	assert.Equal(t, tbops.StatusCritical, r.Status)

	s := symptom(t, r, treasury.SymptomNoTransitions)
	assert.True(t, s.Firing, "%+v", s)
	assert.Equal(t, tbops.StatusCritical, s.Status)
	require.NotNil(t, s.Value)
	assert.Greater(t, *s.Value, 7000.0, "seconds since the last change the node shows")
	for _, ev := range s.Evidence {
		assert.Equal(t, tbops.SourceRPC, ev.Source)
	}
	b := symptom(t, r, treasury.SymptomBacklog)
	assert.True(t, b.Firing, "%+v", b)
	assert.Equal(t, 85.0, *b.Value)
	assert.Contains(t, string(b.Detail), "85 disbursements have been queued since before the last 2 epochs")

	for _, name := range []string{treasury.AlertNoProgress, treasury.AlertBacklogWarning} {
		a := alert(t, r, name)
		assert.Equal(t, tbops.StatusUnknown, a.Status, name)
	}
	assert.Equal(t, tbops.StatusOK, alert(t, r, treasury.AlertBacklogCritical).Status, "85 now: not over 100, whatever came before")
	// The executor fails at 2/s: the counter moved, a lower bound, but not
	// the 1/s of the rule over the 5m window.
	assert.Equal(t, tbops.StatusUnknown, alert(t, r, treasury.AlertExecutorFailing).Status)
}

// TestHermeticByDefault: the zero Options read no file; step 4 says so.
func TestHermeticByDefault(t *testing.T) {
	e := startClocked(t, nodetest.Healthy(t0), nodetest.NewFakeClock(t0))
	r, err := treasury.NewRunbook(e.c, e.src, treasury.Options{Now: e.clk.Now}).Diagnose(context.Background())
	require.NoError(t, err)
	var st tbops.Step
	for _, x := range r.Steps {
		if x.ID == treasury.StepErrors {
			st = x
		}
	}
	assert.Contains(t, st.Findings, treasury.NoLogGlob)
	for _, ev := range st.Evidence {
		assert.NotEqual(t, tbops.SourceLog, ev.Source, "no log was read")
	}
}

// TestOptionsAreChecked: invalid options are an error naming the field, and
// nothing is asked of the node.
func TestOptionsAreChecked(t *testing.T) {
	e := startClocked(t, nodetest.Healthy(t0), nodetest.NewFakeClock(t0))
	_, err := treasury.NewRunbook(e.c, e.src, treasury.Options{MaxDepLookups: -1}).Diagnose(context.Background())
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	assert.ErrorContains(t, err, "Options.MaxDepLookups -1")
	_, err = treasury.Diagnose(context.Background(), nil, e.src, treasury.Options{})
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	assert.Empty(t, e.node.Calls(treasury.MethodBalance))
}

// TestApplyChecksThePlan: Apply acts only on a treasury report about its own
// node, and a rollback the node refuses is an error (errors.As reaches the
// *rpc.CallError) while the report says what was tried.
func TestApplyChecksThePlan(t *testing.T) {
	sc, err := nodetest.LookupScenario("treasury-dependency-rolled-back", t0)
	require.NoError(t, err)
	e := startClocked(t, sc, nodetest.NewFakeClock(t0))
	rb := treasury.NewRunbook(e.c, e.src, treasury.Options{Now: e.clk.Now})
	plan, err := rb.Diagnose(context.Background())
	require.NoError(t, err)

	other := plan
	other.Runbook = "energy-stalled"
	_, err = rb.Apply(context.Background(), other)
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	elsewhere := plan
	elsewhere.Target = "http://other-node:3030/"
	_, err = rb.Apply(context.Background(), elsewhere)
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	assert.Empty(t, e.node.Calls(treasury.MethodRollback))

	e.node.FailMethod(treasury.MethodRollback, -32602, "disbursement is locked")
	done, err := rb.Apply(context.Background(), plan)
	require.ErrorIs(t, err, treasury.ErrInvalidParams)
	var ce *treasury.CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, treasury.MethodRollback, ce.Method)
	reportcheck.Valid(t, done)
	p := path(t, done, treasury.PathDependency)
	for _, a := range p.Actions {
		if a.Kind == "rollback" {
			assert.False(t, a.DryRun)
			assert.Contains(t, a.Result, "failed: ")
		}
	}
	assert.Len(t, e.node.Calls(treasury.MethodRollback), 2, "each tried once, never retried")
}
