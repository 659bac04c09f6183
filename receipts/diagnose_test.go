package receipts_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/receipts"
	"github.com/theblock/tbops/rpc"
)

var t0 = time.Unix(1_765_000_000, 0)

// Histories a metrics source is given: decided covers every symptom's window
// (5m, and a minute); validated the validation-success rule's 5m and 10m for;
// history every window and `for` of the runbook (the min-payment spike rule's
// 1h baseline and 5m for) and a minute more.
const (
	decided   = 6 * time.Minute
	validated = 16 * time.Minute
	history   = 66 * time.Minute
)

// Interface checks: the Runbook is what doctor, serve and third parties iterate.
var (
	_ tbops.Runbook = (*receipts.Runbook)(nil)
	_ tbops.Applier = (*receipts.Runbook)(nil)
)

type fixture struct {
	node *nodetest.Node
	clk  *nodetest.FakeClock
	c    *receipts.Client
	src  *nodetest.Source
}

// start runs a simulated node on a fake clock with a metrics source that has
// scraped it once; observe and advance give it history.
func start(t testing.TB, scenario string, opts ...nodetest.Option) *fixture {
	t.Helper()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, append([]nodetest.Option{nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario)}, opts...)...)
	c, err := receipts.NewClient(n.URL(), rpc.WithClock(clk.Now))
	require.NoError(t, err)
	src, err := nodetest.NewSource(context.Background(), n, clk, 0)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	return &fixture{node: n, clk: clk, c: c, src: src}
}

// short is doctor's observation: a second scrape a second after the first.
func short(t testing.TB, scenario string, opts ...nodetest.Option) *fixture {
	t.Helper()
	f := start(t, scenario, opts...)
	f.advance(t, time.Second)
	return f
}

// observed has scraped the node for d.
func observed(t *testing.T, scenario string, d time.Duration, opts ...nodetest.Option) *fixture {
	t.Helper()
	f := start(t, scenario, opts...)
	f.advance(t, d)
	return f
}

func (f *fixture) advance(t testing.TB, d time.Duration) {
	t.Helper()
	require.NoError(t, f.src.Advance(context.Background(), d))
}

// runbook reads the fake clock through the client (rpc.WithClock).
func (f *fixture) runbook(o receipts.Options) *receipts.Runbook {
	return receipts.NewRunbook(f.c, f.src, o)
}

func (f *fixture) diagnose(t *testing.T, o receipts.Options) tbops.Report {
	t.Helper()
	r, err := f.runbook(o).Diagnose(context.Background())
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

func firingIDs(r tbops.Report) []string {
	var out []string
	for _, s := range r.Firing() {
		out = append(out, s.ID)
	}
	return out
}

func matchedIDs(r tbops.Report) []string {
	var out []string
	for _, p := range r.Matched() {
		out = append(out, p.ID)
	}
	return out
}

func alert(t *testing.T, r tbops.Report, name string) tbops.Alert {
	t.Helper()
	x, ok := r.Alert(name)
	require.True(t, ok, "no alert %s in %+v", name, r.Alerts)
	return x
}

func step(t *testing.T, r tbops.Report, id string) tbops.Step {
	t.Helper()
	s, ok := r.Step(id)
	require.True(t, ok, "no step %s", id)
	return s
}

func slo(t *testing.T, r tbops.Report, name string) tbops.SLO {
	t.Helper()
	for _, s := range r.SLOs {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no SLO %s", name)
	return tbops.SLO{}
}

// healthyScenarios are the scenarios of a healthy node.
var healthyScenarios = []string{"healthy", "receipts-healthy", "receipts-low-volume"}

// otherAreas are the scenarios that break another runbook and leave receipts healthy.
func otherAreas() []string {
	notOthers := map[string]bool{"chain-stalled": true, "receipts-market-stalled": true, "receipts-validation-errors": true,
		"receipts-chain-stalled": true, "receipts-min-payment-spike": true, "receipts-explorer-lag": true}
	for _, s := range healthyScenarios {
		notOthers[s] = true
	}
	var out []string
	for _, s := range nodetest.Scenarios() {
		if !notOthers[s] {
			out = append(out, s)
		}
	}
	return out
}

// Rule 6 of #12: under a one-second observation no healthy scenario is ever
// warning or critical, whatever the phase of its counters: each of the 20
// runs starts a different fraction of a second into the node's life, so a
// low-volume market's counter is caught flat in some runs and stepping in
// others. The scenarios of other areas get a few runs each.
func TestHealthyShortObservationNeverWarns(t *testing.T) {
	runs := map[string]int{}
	for _, sc := range healthyScenarios {
		runs[sc] = 20
	}
	for _, sc := range otherAreas() {
		runs[sc] = 2
	}
	for sc, n := range runs {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			for i := range n {
				f := start(t, sc)
				f.clk.Advance(time.Duration(i) * 370 * time.Millisecond)
				f.advance(t, time.Second)
				r := f.diagnose(t, receipts.Options{SLO: true, ExplorerURL: f.node.ExplorerURL()})
				assert.NotContains(t, []tbops.Status{tbops.StatusWarning, tbops.StatusCritical}, r.Status,
					"run %d: firing %v, warnings %v", i, firingIDs(r), r.Warnings)
				assert.Empty(t, firingIDs(r), "run %d", i)
				assert.Empty(t, matchedIDs(r), "run %d", i)
				for _, a := range r.Alerts {
					assert.False(t, a.Firing, "run %d: %s", i, a.Name)
				}
			}
		})
	}
}

// With the history every window needs, every symptom of a healthy scenario is
// decided ok; the only undecided line is the query-latency rule and SLO,
// because the simulated node exports no receipt_query_duration_seconds.
func TestHealthyWithHistoryIsDecidedOK(t *testing.T) {
	for _, sc := range healthyScenarios {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			f := observed(t, sc, history)
			r := f.diagnose(t, receipts.Options{SLO: true, ExplorerURL: f.node.ExplorerURL()})
			assert.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)
			for _, s := range r.Symptoms {
				assert.Equal(t, tbops.StatusOK, s.Status, s.ID)
				assert.NotEmpty(t, s.Evidence, s.ID)
			}
			for _, a := range r.Alerts {
				want := tbops.StatusOK
				if a.Name == receipts.AlertQueryLatencyHigh {
					want = tbops.StatusUnknown
				}
				assert.Equal(t, want, a.Status, a.Name)
			}
			for _, s := range r.SLOs {
				if s.Name == "Query Latency p99" {
					assert.Equal(t, tbops.StatusUnknown, s.Status)
					assert.Nil(t, s.Value, "no histogram, no value: never tbops's own round trips")
					continue
				}
				assert.True(t, s.Met, s.Name)
				assert.NotNil(t, s.Value, s.Name)
			}
			assert.Equal(t, 1.0, *symptom(t, r, receipts.SymptomValidationErrors).Value)
			assert.Contains(t, strings.Join(r.Warnings, "\n"), "no data for receipt_query_duration_seconds_bucket")
			assert.Equal(t, f.src.Name(), r.Scope)
			// Diagnose never writes.
			assert.Empty(t, f.node.Calls("receipts.reset_validation_state"))
			assert.Empty(t, f.node.Calls("receipts.validate"))
		})
	}
}

// Reproduction (#12): a low-volume market — one compute receipt every 3
// blocks — was reported CRITICAL market-not-emitting from a one-second metric
// delta while its own step said "0 blocks ago". It is decided from
// last_emitted_height against the tip; the metric-based stall alert is
// unknown without a covered window.
func TestLowVolumeMarketIsDecidedInBlocks(t *testing.T) {
	agos, alerts := map[string]bool{}, map[tbops.Status]bool{}
	for i := range 6 {
		f := start(t, "receipts-low-volume")
		f.clk.Advance(time.Duration(i) * 500 * time.Millisecond)
		f.advance(t, time.Second)
		r := f.diagnose(t, receipts.Options{})
		s := symptom(t, r, receipts.SymptomMarketNotEmitting)
		assert.Equal(t, tbops.StatusOK, s.Status, "run %d: %s", i, s.Summary)
		assert.False(t, s.Firing)
		assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomEmissionFlat).Status)
		assert.Empty(t, matchedIDs(r), "no emitter restart planned")
		a := alert(t, r, receipts.AlertMarketNotEmitting)
		assert.False(t, a.Firing, "run %d", i)
		alerts[a.Status] = true
		for _, line := range step(t, r, "market-stats").Findings {
			if strings.HasPrefix(line, "compute:") {
				_, ago, _ := strings.Cut(line, "(")
				agos[strings.SplitN(ago, ")", 2)[0]] = true
			}
		}
	}
	assert.Equal(t, map[string]bool{"0 blocks ago": true, "1 blocks ago": true, "2 blocks ago": true}, agos,
		"the runs caught the market 0, 1 and 2 blocks after its last receipt")
	assert.Equal(t, map[tbops.Status]bool{tbops.StatusOK: true, tbops.StatusUnknown: true}, alerts,
		"the alert is ok when the counter stepped in the observed second (it moved: no increase is known false), unknown when it was flat")

	// With history the alert is decided: the market emits 20 receipts a minute.
	f := observed(t, "receipts-low-volume", decided)
	r := f.diagnose(t, receipts.Options{ExplorerURL: f.node.ExplorerURL()})
	assert.Equal(t, tbops.StatusOK, alert(t, r, receipts.AlertMarketNotEmitting).Status)
	assert.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)
}

func TestMarketStalled(t *testing.T) {
	f := short(t, "receipts-market-stalled")
	r := f.diagnose(t, receipts.Options{SLO: true})
	assert.Equal(t, tbops.StatusCritical, r.Status)
	s := symptom(t, r, receipts.SymptomMarketNotEmitting)
	assert.True(t, s.Firing)
	assert.JSONEq(t, `["compute"]`, string(s.Detail))
	assert.Contains(t, s.Summary, "compute: no receipt for 46 blocks")
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomEmissionFlat).Status, "the other markets emit")
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomChainStalled).Status)
	assert.Equal(t, []string{receipts.PathStalledMarket}, matchedIDs(r))
	var cmds []string
	for _, a := range r.Matched()[0].Actions {
		cmds = append(cmds, a.Command)
		assert.True(t, a.DryRun)
	}
	assert.Contains(t, cmds, "sudo systemctl restart receipt-emitter")
	assert.Contains(t, cmds, "sudo systemctl status compute-market")
	assert.Equal(t, tbops.StatusUnknown, alert(t, r, receipts.AlertMarketNotEmitting).Status, "one second decides no 1m window")
	em := slo(t, r, "Emission Rate")
	assert.Equal(t, tbops.StatusCritical, em.Status)
	assert.Equal(t, 3.0, *em.Value)

	// Three minutes later the alert, on the same source, agrees.
	f.advance(t, 3*time.Minute)
	r = f.diagnose(t, receipts.Options{})
	a := alert(t, r, receipts.AlertMarketNotEmitting)
	assert.True(t, a.Firing)
	assert.Equal(t, tbops.StatusCritical, a.Status)
	assert.JSONEq(t, `{"firing":[{"instance":"`+f.node.Addr()+`","market":"compute"}]}`, string(a.Detail))
}

// The block-exact 5-block check: a market stalled for 6 blocks fires although
// its counter moved within the last minute, and one 4 blocks behind does not.
func TestStallIsFiveBlocksBehindTheTip(t *testing.T) {
	for blocks, firing := range map[int64]bool{6: true, 5: true, 4: false} {
		t.Run(fmt.Sprint(blocks), func(t *testing.T) {
			f := short(t, "healthy")
			f.node.Update(func(s *nodetest.Scenario) {
				m := map[string]nodetest.MarketReceipts{}
				for k, v := range s.Receipts.Markets {
					m[k] = v
				}
				e := m["energy"]
				e.PerSecond, e.StalledFor = 0, blocks-1 // the tip is 1 block past the start
				m["energy"] = e
				s.Receipts.Markets = m
			})
			r := f.diagnose(t, receipts.Options{})
			s := symptom(t, r, receipts.SymptomMarketNotEmitting)
			assert.Equal(t, firing, s.Firing, s.Summary)
			if firing {
				assert.JSONEq(t, `["energy"]`, string(s.Detail))
				assert.Contains(t, s.Summary, fmt.Sprintf("energy: no receipt for %d blocks", blocks))
			}
		})
	}
}

// Reproduction (#12): the query-latency SLO reported tbops's own RPC round
// trips as the node's p99. Here every round trip takes 600 ms on the client's
// clock: the SLO row and the alert stay unknown (the node exports no
// histogram) and the round trips appear only as a labelled step finding.
func TestQueryLatencyIsTheNodesOwn(t *testing.T) {
	f := observed(t, "healthy", decided)
	c, err := receipts.NewClient(f.node.URL(), rpc.WithClock(slowClock(600*time.Millisecond)))
	require.NoError(t, err)
	r, err := receipts.NewRunbook(c, f.src, receipts.Options{Now: f.clk.Now, SLO: true, ExplorerURL: f.node.ExplorerURL()}).Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	assert.Equal(t, tbops.StatusOK, r.Status, "warnings %v", r.Warnings)
	ql := slo(t, r, "Query Latency p99")
	assert.Equal(t, tbops.StatusUnknown, ql.Status)
	assert.Nil(t, ql.Value)
	assert.Equal(t, tbops.StatusUnknown, alert(t, r, receipts.AlertQueryLatencyHigh).Status)
	rt := step(t, r, "rpc-round-trips")
	require.Len(t, rt.Findings, 1)
	assert.Regexp(t, `^tbops's RPC round trips to the node: p99 \S+, median \S+ over 6 calls \(the link and tbops itself, not the node's query latency`, rt.Findings[0])
	require.Len(t, rt.Evidence, 1)
	assert.Equal(t, tbops.SourceRPC, rt.Evidence[0].Source)
	var rtt struct {
		P99 float64 `json:"p99_seconds"`
	}
	require.NoError(t, rt.Evidence[0].Value.Decode(&rtt))
	assert.GreaterOrEqual(t, rtt.P99, 0.6, "the slow round trips were seen, and judged nothing")

	// A node that exports the histogram is judged on it: slow queries fire the
	// alert and breach the SLO; fast ones meet it.
	for _, c := range []struct {
		obs    []float64
		status tbops.Status
		firing bool
	}{
		{[]float64{0.02, 0.03, 0.9}, tbops.StatusWarning, true},
		{[]float64{0.01, 0.02, 0.03}, tbops.StatusOK, false},
	} {
		f := start(t, "healthy")
		f.node.Update(func(s *nodetest.Scenario) {
			s.Metrics = append(s.Metrics, nodetest.Histogram(receipts.MetricQueryDuration, nil, []float64{0.05, 0.1, 0.5, 1}, 10, c.obs))
		})
		f.advance(t, 11*time.Minute)
		r := f.diagnose(t, receipts.Options{SLO: true})
		a := alert(t, r, receipts.AlertQueryLatencyHigh)
		assert.Equal(t, c.firing, a.Firing, "%v", c.obs)
		ql := slo(t, r, "Query Latency p99")
		assert.Equal(t, c.status, ql.Status, "%v", c.obs)
		require.NotNil(t, ql.Value)
		assert.Equal(t, *a.Value, *ql.Value, "the SLO row is the rule's p99")
	}
}

// slowClock reads step later on every call: each timed round trip takes step.
func slowClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := time.Now()
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

func TestValidationErrors(t *testing.T) {
	// One second of metrics decides nothing about a 5m ratio.
	f := short(t, "receipts-validation-errors")
	r := f.diagnose(t, receipts.Options{SLO: true})
	s := symptom(t, r, receipts.SymptomValidationErrors)
	assert.Equal(t, tbops.StatusUnknown, s.Status)
	assert.Nil(t, s.Value)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "only 1s of the 5m window observed")
	assert.Empty(t, matchedIDs(r))

	f = observed(t, "receipts-validation-errors", validated)
	r = f.diagnose(t, receipts.Options{SLO: true})
	assert.Equal(t, tbops.StatusCritical, r.Status)
	s = symptom(t, r, receipts.SymptomValidationErrors)
	require.True(t, s.Firing)
	assert.Equal(t, tbops.StatusCritical, s.Status)
	assert.InDelta(t, 45.0/47, *s.Value, 1e-9, "45 receipts/s emitted, 2 errors/s")
	assert.Equal(t, []string{receipts.PathValidationErrors}, matchedIDs(r))
	assert.True(t, alert(t, r, receipts.AlertValidationSuccessLow).Firing)
	vs := slo(t, r, "Validation Success")
	assert.False(t, vs.Met)
	assert.InDelta(t, 45.0/47, *vs.Value, 1e-9)
	assert.Empty(t, f.node.Calls("receipts.reset_validation_state"), "Diagnose never writes")
}

func TestApplyResetsAndRevalidatesOnce(t *testing.T) {
	f := observed(t, "receipts-validation-errors", decided)
	rb := f.runbook(receipts.Options{})
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	applied, err := rb.Apply(context.Background(), r)
	require.NoError(t, err)
	reportcheck.Valid(t, applied)
	require.Len(t, f.node.Calls("receipts.reset_validation_state"), 1)
	calls := f.node.Calls("receipts.validate")
	require.Len(t, calls, 1)
	tip := int64(1_200_000) + int64(decided/time.Second)
	assert.JSONEq(t, fmt.Sprintf(`{"from_block":%d,"to_block":%d}`, tip-100, tip), string(calls[0]))
	b, _ := applied.Path(receipts.PathValidationErrors)
	var done []string
	for _, a := range b.Actions {
		if !a.DryRun {
			done = append(done, a.Kind+": "+a.Result)
		}
	}
	assert.Equal(t, []string{"reset: validation state reset", "revalidate: 4545 receipts checked, 0 invalid"}, done)
	last := applied.Steps[len(applied.Steps)-1]
	assert.Equal(t, "apply", last.ID)
	// The report passed in is unchanged.
	for _, p := range r.Paths {
		for _, a := range p.Actions {
			assert.True(t, a.DryRun)
		}
	}

	// Applying the applied report again repeats nothing.
	again, err := rb.Apply(context.Background(), applied)
	require.NoError(t, err)
	assert.Len(t, f.node.Calls("receipts.reset_validation_state"), 1, "a write is never repeated")
	assert.Len(t, f.node.Calls("receipts.validate"), 1)
	assert.Contains(t, strings.Join(again.Steps[len(again.Steps)-1].Findings, "\n"), "reset: already done")
}

func TestApplyListsInvalidReceipts(t *testing.T) {
	f := start(t, "receipts-validation-errors")
	f.advance(t, 11*time.Minute) // the validation window, covered; the invalid receipts are older than 100 blocks
	f.node.Update(func(s *nodetest.Scenario) {
		s.Receipts.Invalid = append(s.Receipts.Invalid, nodetest.InvalidReceipt{BlockOffset: 650, ReceiptID: "rcpt-storage-90001", Market: "storage", Reason: "schema_mismatch"})
	})
	rb := f.runbook(receipts.Options{})
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	applied, err := rb.Apply(context.Background(), r)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(applied.Steps[len(applied.Steps)-1].Findings, "\n"), "invalid: rcpt-storage-90001 (storage) at height 1200650: schema_mismatch")
}

func TestApplyNothingToDo(t *testing.T) {
	f := short(t, "healthy")
	rb := f.runbook(receipts.Options{})
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	out, err := rb.Apply(context.Background(), r)
	require.NoError(t, err)
	assert.Empty(t, f.node.Calls("receipts.reset_validation_state"))
	assert.Contains(t, out.Steps[len(out.Steps)-1].Findings[0], "nothing to apply")
}

func TestApplyRefusesAnotherReport(t *testing.T) {
	f := observed(t, "receipts-validation-errors", decided)
	rb := f.runbook(receipts.Options{})
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	other := r
	other.Target = "http://other-node:3030/"
	_, err = rb.Apply(context.Background(), other)
	require.ErrorContains(t, err, "report is about http://other-node:3030/")
	other = r
	other.Runbook = "treasury-stuck"
	_, err = rb.Apply(context.Background(), other)
	require.ErrorContains(t, err, `report is for runbook "treasury-stuck"`)
	assert.Empty(t, f.node.Calls("receipts.reset_validation_state"))
}

func TestApplyResetFailsStops(t *testing.T) {
	f := observed(t, "receipts-validation-errors", decided)
	rb := f.runbook(receipts.Options{})
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	f.node.FailMethod("receipts.reset_validation_state", rpc.CodeInternal, "db locked")
	out, err := rb.Apply(context.Background(), r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "db locked")
	var ce *rpc.CallError
	assert.ErrorAs(t, err, &ce, "the transport's error is reachable")
	assert.Len(t, f.node.Calls("receipts.reset_validation_state"), 1, "a write is never retried")
	assert.Empty(t, f.node.Calls("receipts.validate"), "nothing after a failed reset")
	reportcheck.Valid(t, out)

	// The failed reset is not repeated by a second Apply, and still blocks what follows.
	_, err = rb.Apply(context.Background(), out)
	require.ErrorContains(t, err, "reset failed earlier")
	assert.Len(t, f.node.Calls("receipts.reset_validation_state"), 1)
	assert.Empty(t, f.node.Calls("receipts.validate"))
}

func TestChainStalled(t *testing.T) {
	f := short(t, "receipts-chain-stalled")
	r := f.diagnose(t, receipts.Options{})
	assert.Equal(t, tbops.StatusCritical, r.Status)
	cs := symptom(t, r, receipts.SymptomChainStalled)
	assert.True(t, cs.Firing)
	assert.Contains(t, cs.Summary, "9/21 validators")
	assert.True(t, symptom(t, r, receipts.SymptomEmissionFlat).Firing, "no blocks, no receipts")
	assert.Equal(t, []string{receipts.PathStalledChain}, matchedIDs(r), "no emitter restart when the chain is stalled")
}

func TestMinPaymentRejections(t *testing.T) {
	// A rise of 50 in one second already shows more than near-zero's 5 in 5m.
	f := short(t, "receipts-min-payment-spike")
	r := f.diagnose(t, receipts.Options{})
	s := symptom(t, r, receipts.SymptomMinPayment)
	assert.True(t, s.Firing)
	assert.Nil(t, s.Value, "the rate itself is not known yet")
	assert.Equal(t, []string{receipts.PathMinPayment}, matchedIDs(r))

	f = observed(t, "receipts-min-payment-spike", history)
	r = f.diagnose(t, receipts.Options{SLO: true, ExplorerURL: f.node.ExplorerURL()})
	assert.Equal(t, tbops.StatusWarning, r.Status, "warnings %v", r.Warnings)
	s = symptom(t, r, receipts.SymptomMinPayment)
	assert.True(t, s.Firing)
	assert.InDelta(t, 50.0, *s.Value, 1e-9)
	assert.Equal(t, []string{receipts.PathMinPayment}, matchedIDs(r))
	assert.Equal(t, "tbops receipts stats --market ad", r.Matched()[0].Actions[0].Command)
	mp := slo(t, r, "Min-Payment Rejections")
	assert.Equal(t, tbops.StatusWarning, mp.Status)
	assert.False(t, mp.Met)
	// A steady 50/s for an hour is not a sudden increase.
	assert.Equal(t, tbops.StatusOK, alert(t, r, receipts.AlertMinPaymentSpike).Status)
}

// A trickle of rejections (one every 2 minutes) is within near-zero once the
// window is covered, and undecided before: its rise is no evidence either way.
func TestMinPaymentTrickle(t *testing.T) {
	sc, err := nodetest.LookupScenario("healthy", t0)
	require.NoError(t, err)
	sc.Metrics = append(sc.Metrics, nodetest.Metric{Name: receipts.MetricMinPaymentRejected, Type: "counter",
		Series: []nodetest.Series{{Value: 7, PerSecond: 1.0 / 120, Integer: true}}})
	f := start(t, "healthy", nodetest.WithScenario(sc))
	f.advance(t, time.Second)
	r := f.diagnose(t, receipts.Options{})
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, receipts.SymptomMinPayment).Status)
	assert.Contains(t, r.Warnings, "rate(receipt_min_payment_rejected_total[5m]): only 1s of the 5m window observed: "+promq.HistoryHint)
	f.advance(t, 6*time.Minute)
	r = f.diagnose(t, receipts.Options{})
	s := symptom(t, r, receipts.SymptomMinPayment)
	assert.Equal(t, tbops.StatusOK, s.Status)
	assert.InDelta(t, 1.0/120, *s.Value, 0.005)
}

func TestMinPaymentSpikeAlert(t *testing.T) {
	f := start(t, "healthy")
	f.advance(t, time.Hour)
	f.node.Update(func(s *nodetest.Scenario) {
		m := map[string]nodetest.MarketReceipts{}
		for k, v := range s.Receipts.Markets {
			m[k] = v
		}
		ad := m["ad"]
		// One rejection a second from now on; the counter continues from where it is.
		ad.MinPaymentRejected, ad.MinPaymentPerSecond = -time.Hour.Seconds(), 1
		m["ad"] = ad
		s.Receipts.Markets = m
	})
	f.advance(t, 4*time.Minute)
	r := f.diagnose(t, receipts.Options{})
	assert.Equal(t, tbops.StatusOK, alert(t, r, receipts.AlertMinPaymentSpike).Status, "4 minutes of a 5m for")
	f.advance(t, 2*time.Minute)
	r = f.diagnose(t, receipts.Options{})
	a := alert(t, r, receipts.AlertMinPaymentSpike)
	assert.True(t, a.Firing, "warnings %v", r.Warnings)
	assert.Equal(t, tbops.StatusWarning, a.Status)
	assert.True(t, symptom(t, r, receipts.SymptomMinPayment).Firing)
}

func TestNoMetricsSource(t *testing.T) {
	f := short(t, "healthy")
	r, err := receipts.NewRunbook(f.c, nil, receipts.Options{}).Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	// The RPC decides the emission symptoms; what only metrics show is unknown.
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomMarketNotEmitting).Status)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomEmissionFlat).Status)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomChainStalled).Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, receipts.SymptomValidationErrors).Status)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Empty(t, r.Scope)
	assert.Contains(t, r.Warnings, "no metrics source: the metric checks and alerts are unknown")
	for _, a := range r.Alerts {
		assert.Equal(t, tbops.StatusUnknown, a.Status, a.Name)
		assert.Nil(t, a.Value, a.Name)
	}
}

func TestNothingAnswers(t *testing.T) {
	f := short(t, "healthy")
	f.node.FailMethod("", rpc.CodeMethodNotFound, "method not found")
	r, err := receipts.NewRunbook(f.c, nil, receipts.Options{}).Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	assert.Equal(t, tbops.StatusUnknown, r.Status, "never a false healthy")
	for _, s := range r.Symptoms {
		assert.Equal(t, tbops.StatusUnknown, s.Status, s.ID)
		assert.Nil(t, s.Value, s.ID)
	}
}

// A node without the receipts methods (the reference node answers -32601):
// the metrics decide, once they cover the rule's window.
func TestNodeWithoutReceiptsMethods(t *testing.T) {
	f := start(t, "receipts-market-stalled")
	for _, m := range []string{"receipts.stats", "receipts.validate", "receipts.reset_validation_state"} {
		f.node.FailMethod(m, rpc.CodeMethodNotFound, "method not found: "+m)
	}
	f.advance(t, time.Second)
	r := f.diagnose(t, receipts.Options{})
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, receipts.SymptomMarketNotEmitting).Status)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomEmissionFlat).Status, "other markets' counters moved")
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "does not serve receipts.stats (-32601)")

	f.advance(t, 3*time.Minute)
	r = f.diagnose(t, receipts.Options{})
	s := symptom(t, r, receipts.SymptomMarketNotEmitting)
	assert.True(t, s.Firing)
	assert.JSONEq(t, `["compute"]`, string(s.Detail))
	assert.Contains(t, s.Summary, "ReceiptsMarketNotEmitting fires")
}

// A market without a series is ReceiptsMarketSeriesMissing for that market
// (one rule per market), decided once its 5m for is covered.
func TestMarketWithoutSeries(t *testing.T) {
	sc, err := nodetest.LookupScenario("healthy", t0)
	require.NoError(t, err)
	sc.Metrics = append(sc.Metrics, nodetest.Metric{Name: receipts.MetricEmitted, Type: "counter", Series: []nodetest.Series{
		{Labels: map[string]string{"market": "storage"}, Value: 10, PerSecond: 12},
		{Labels: map[string]string{"market": "compute"}, Value: 10, PerSecond: 8},
		{Labels: map[string]string{"market": "energy"}, Value: 10, PerSecond: 5},
	}})
	f := start(t, "healthy", nodetest.WithScenario(sc))
	f.advance(t, time.Second)
	r := f.diagnose(t, receipts.Options{})
	var missing []tbops.Alert
	for _, a := range r.Alerts {
		if a.Name == receipts.AlertMarketSeriesMissing {
			missing = append(missing, a)
		}
	}
	require.Len(t, missing, 4, "one rule per market")
	for _, a := range missing {
		want := tbops.StatusOK // the market's series is there now: known not to fire
		if strings.Contains(a.Expr, `"ad"`) {
			want = tbops.StatusUnknown // its 5m for is not covered
			assert.JSONEq(t, `{"observed_seconds":0,"needed_seconds":300}`, string(a.Detail))
		}
		assert.Equal(t, want, a.Status, a.Expr)
	}

	f.advance(t, 6*time.Minute)
	r = f.diagnose(t, receipts.Options{})
	got := map[string]tbops.Status{}
	for _, a := range r.Alerts {
		if a.Name == receipts.AlertMarketSeriesMissing {
			_, m, _ := strings.Cut(a.Expr, `receipt_emitted_total{market="`)
			got[strings.TrimSuffix(m, `"}`)] = a.Status
		}
	}
	assert.Equal(t, map[string]tbops.Status{"storage": tbops.StatusOK, "compute": tbops.StatusOK, "energy": tbops.StatusOK, "ad": tbops.StatusWarning}, got)
	ad := missing[3]
	for _, a := range r.Alerts {
		if a.Name == receipts.AlertMarketSeriesMissing && a.Firing {
			ad = a
		}
	}
	assert.JSONEq(t, `{"firing":[{"instance":"`+f.node.Addr()+`","market":"ad"}]}`, string(ad.Detail), "the rule's static market label")
	// receipts.stats still says ad emits: the market is fine, its metric is not exported.
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomMarketNotEmitting).Status)
	assert.Equal(t, tbops.StatusWarning, r.Status)
}

func TestExplorer(t *testing.T) {
	f := short(t, "receipts-explorer-lag")
	r := f.diagnose(t, receipts.Options{ExplorerURL: f.node.ExplorerURL()})
	s := symptom(t, r, receipts.SymptomExplorerStale)
	assert.True(t, s.Firing)
	assert.Equal(t, tbops.StatusWarning, s.Status)
	assert.Equal(t, 45.0, *s.Value)
	assert.Equal(t, []string{receipts.SymptomExplorerStale}, firingIDs(r))

	// Not checked is unknown, never ok.
	r = f.diagnose(t, receipts.Options{})
	s = symptom(t, r, receipts.SymptomExplorerStale)
	assert.Equal(t, tbops.StatusUnknown, s.Status)
	assert.Nil(t, s.Value)
	assert.NotContains(t, s.Summary, "--explorer", "a library names no CLI flag")

	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body == "" {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	secret := strings.Replace(srv.URL, "http://", "http://ops:hunter2@", 1)
	for _, c := range []struct{ body, warning string }{
		{`{"height": 5}`, "latest_receipt_height missing"},
		{"", "HTTP 502"},
		{`<html>`, "want JSON"},
	} {
		body = c.body
		r = f.diagnose(t, receipts.Options{ExplorerURL: secret})
		s = symptom(t, r, receipts.SymptomExplorerStale)
		assert.Equal(t, tbops.StatusUnknown, s.Status)
		out := fmt.Sprintf("%v %+v %+v", r.Warnings, r.Symptoms, r.Steps)
		assert.Contains(t, out, c.warning)
		assert.NotContains(t, out, "hunter2", "the explorer's password is never shown")
		assert.Contains(t, out, "ops:xxxxx@")
	}
	srv.Close()
	r = f.diagnose(t, receipts.Options{ExplorerURL: secret})
	assert.NotContains(t, fmt.Sprintf("%v %+v", r.Warnings, r.Symptoms), "hunter2")

	_, err := f.runbook(receipts.Options{ExplorerURL: "ftp://ops:hunter2@x"}).Diagnose(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestBadOptions(t *testing.T) {
	f := short(t, "healthy")
	for _, o := range []receipts.Options{
		{Markets: []receipts.Market{"gas"}},
		{ExplorerURL: "ftp://x"},
		{ExplorerMaxLag: -1},
		{RevalidateBlocks: -1},
	} {
		_, err := receipts.NewRunbook(f.c, f.src, o).Diagnose(context.Background())
		assert.Error(t, err, "%+v", o)
		_, err = receipts.NewRunbook(f.c, f.src, o).Apply(context.Background(), tbops.Report{Runbook: receipts.RunbookID})
		assert.Error(t, err, "%+v", o)
	}
	_, err := receipts.NewRunbook(nil, f.src, receipts.Options{}).Diagnose(context.Background())
	assert.ErrorContains(t, err, "no client")
}

func TestCancelled(t *testing.T) {
	f := short(t, "healthy")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.runbook(receipts.Options{}).Diagnose(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// The runbook in tbops's loop: one report per runbook, the same as Diagnose.
func TestRunbookInTheLoop(t *testing.T) {
	f := short(t, "receipts-market-stalled")
	rb := f.runbook(receipts.Options{})
	assert.Equal(t, receipts.RunbookID, rb.ID())
	reports := tbops.Diagnose(context.Background(), f.clk.Now, rb)
	require.Len(t, reports, 1)
	reportcheck.Valid(t, reports...)
	assert.Equal(t, tbops.StatusCritical, reports[0].Status)
	assert.Equal(t, f.c.URL(), reports[0].Target)
}
