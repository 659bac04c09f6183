package receipts_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/receipts"
	"github.com/theblock/tbops/rpc"
)

var t0 = time.Unix(1_765_000_000, 0)

type fixture struct {
	node *nodetest.Node
	clk  *nodetest.FakeClock
	c    *receipts.Client
	src  *promq.Scrape
}

// start runs a simulated node on a fake clock and scrapes it three times, 15 s
// apart, ending now.
func start(t *testing.T, scenario string, opts ...nodetest.Option) *fixture {
	t.Helper()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, append([]nodetest.Option{nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario)}, opts...)...)
	c, err := receipts.New(n.URL(), receipts.WithClock(clk.Now))
	require.NoError(t, err)
	src := promq.NewScrape([]string{n.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(src.Close)
	f := &fixture{node: n, clk: clk, c: c, src: src}
	f.scrape(t, 3)
	return f
}

func (f *fixture) scrape(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if i > 0 {
			f.clk.Advance(15 * time.Second)
		}
		require.NoError(t, f.src.Scrape(context.Background()))
	}
}

func (f *fixture) diagnose(t *testing.T, o receipts.Options) tbops.Report {
	t.Helper()
	o.Now = f.clk.Now
	r, err := receipts.Diagnose(context.Background(), f.c, f.src, o)
	require.NoError(t, err)
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

func TestDiagnoseHealthy(t *testing.T) {
	for _, sc := range []string{"healthy", "receipts-healthy"} {
		t.Run(sc, func(t *testing.T) {
			f := start(t, sc)
			r := f.diagnose(t, receipts.Options{SLO: true})
			// No explorer is given: that symptom is not checked, so unknown.
			assert.Equal(t, tbops.StatusUnknown, r.Status, "warnings: %v", r.Warnings)
			assert.Equal(t, receipts.RunbookID, r.Runbook)
			assert.Empty(t, firingIDs(r))
			assert.Empty(t, matchedIDs(r))
			for _, s := range r.Symptoms {
				if s.ID != receipts.SymptomExplorerStale {
					assert.Equal(t, tbops.StatusOK, s.Status, s.ID)
				}
			}
			for _, a := range r.Alerts {
				assert.Equal(t, tbops.StatusOK, a.Status, a.Name)
			}
			require.Len(t, r.SLOs, 4)
			for _, s := range r.SLOs {
				assert.True(t, s.Met, s.Name)
			}
			ex := symptom(t, r, receipts.SymptomExplorerStale)
			assert.Equal(t, tbops.StatusUnknown, ex.Status, "not checked is unknown, never ok")
			assert.Nil(t, ex.Value)
			// Every symptom that was decided from data carries its evidence.
			for _, id := range []string{receipts.SymptomEmissionFlat, receipts.SymptomMarketNotEmitting, receipts.SymptomValidationErrors, receipts.SymptomChainStalled, receipts.SymptomMinPayment} {
				assert.NotEmpty(t, symptom(t, r, id).Evidence, id)
			}
			// Diagnose never writes.
			assert.Empty(t, f.node.Calls("receipts.reset_validation_state"))
			assert.Empty(t, f.node.Calls("receipts.validate"))
			assert.Len(t, f.node.Calls("receipts.stats"), 4)
		})
	}
}

func TestDiagnoseMarketStalled(t *testing.T) {
	f := start(t, "receipts-market-stalled")
	r := f.diagnose(t, receipts.Options{SLO: true})
	assert.Equal(t, tbops.StatusCritical, r.Status)
	s := symptom(t, r, receipts.SymptomMarketNotEmitting)
	assert.True(t, s.Firing)
	assert.JSONEq(t, `["compute"]`, string(s.Detail))
	assert.Contains(t, s.Summary, "compute: no receipt for")
	assert.False(t, symptom(t, r, receipts.SymptomEmissionFlat).Firing, "the other markets emit")
	assert.False(t, symptom(t, r, receipts.SymptomChainStalled).Firing)
	assert.Equal(t, []string{receipts.PathStalledMarket}, matchedIDs(r))
	var cmds []string
	for _, a := range r.Matched()[0].Actions {
		cmds = append(cmds, a.Command)
		assert.True(t, a.DryRun)
	}
	assert.Contains(t, cmds, "sudo systemctl restart receipt-emitter")
	assert.Contains(t, cmds, "sudo systemctl status compute-market")
	a := alert(t, r, receipts.AlertMarketNotEmitting)
	assert.True(t, a.Firing)
	assert.JSONEq(t, `["compute"]`, string(a.Detail))
	assert.Equal(t, tbops.StatusCritical, r.SLOs[0].Status)
	assert.False(t, r.SLOs[0].Met)
}

// The block-exact 5-block check comes from receipts.stats: a market stalled for
// 6 blocks fires although its counter moved within the last minute.
func TestDiagnoseStallInBlocks(t *testing.T) {
	f := start(t, "healthy")
	f.node.Update(func(s *nodetest.Scenario) {
		m := map[string]nodetest.MarketReceipts{}
		for k, v := range s.Receipts.Markets {
			m[k] = v
		}
		e := m["energy"]
		e.PerSecond, e.StalledFor = 0, -24 // last receipt 6 blocks ago at t0+30s
		m["energy"] = e
		s.Receipts.Markets = m
	})
	r := f.diagnose(t, receipts.Options{})
	s := symptom(t, r, receipts.SymptomMarketNotEmitting)
	require.True(t, s.Firing)
	assert.JSONEq(t, `["energy"]`, string(s.Detail))
	assert.Contains(t, s.Summary, "energy: no receipt for 6 blocks")
}

func TestDiagnoseValidationErrors(t *testing.T) {
	f := start(t, "receipts-validation-errors")
	r := f.diagnose(t, receipts.Options{SLO: true})
	assert.Equal(t, tbops.StatusCritical, r.Status)
	s := symptom(t, r, receipts.SymptomValidationErrors)
	require.True(t, s.Firing)
	assert.Equal(t, tbops.StatusCritical, s.Status)
	assert.InDelta(t, 2.0, *s.Value, 1e-9)
	assert.Equal(t, []string{receipts.PathValidationErrors}, matchedIDs(r))
	assert.True(t, alert(t, r, receipts.AlertValidationSuccessLow).Firing)
	var vs tbops.SLO
	for _, x := range r.SLOs {
		if x.Name == "Validation Success" {
			vs = x
		}
	}
	assert.False(t, vs.Met)
	assert.InDelta(t, 0.9574, *vs.Value, 1e-4)
	assert.Empty(t, f.node.Calls("receipts.reset_validation_state"), "Diagnose never writes")

	// Apply resets, then re-validates the last 100 blocks.
	applied, err := receipts.Apply(context.Background(), f.c, r, receipts.Options{Now: f.clk.Now})
	require.NoError(t, err)
	require.Len(t, f.node.Calls("receipts.reset_validation_state"), 1)
	calls := f.node.Calls("receipts.validate")
	require.Len(t, calls, 1)
	h := int64(1_200_000 + 30)
	assert.JSONEq(t, `{"from_block":1199930,"to_block":1200030}`, string(calls[0]))
	var b tbops.Path
	for _, p := range applied.Paths {
		if p.ID == receipts.PathValidationErrors {
			b = p
		}
	}
	done := 0
	for _, a := range b.Actions {
		if !a.DryRun {
			done++
			assert.NotEmpty(t, a.Result)
		}
	}
	assert.Equal(t, 2, done)
	last := applied.Steps[len(applied.Steps)-1]
	assert.Equal(t, "apply", last.ID)
	assert.Contains(t, strings.Join(last.Findings, "\n"), "rcpt-storage-88302")
	_ = h
	// The report passed in is unchanged.
	for _, p := range r.Paths {
		for _, a := range p.Actions {
			assert.True(t, a.DryRun)
		}
	}
}

func TestApplyNothingToDo(t *testing.T) {
	f := start(t, "healthy")
	r := f.diagnose(t, receipts.Options{})
	out, err := receipts.Apply(context.Background(), f.c, r, receipts.Options{})
	require.NoError(t, err)
	assert.Empty(t, f.node.Calls("receipts.reset_validation_state"))
	assert.Contains(t, out.Steps[len(out.Steps)-1].Findings[0], "nothing to apply")
}

func TestApplyResetFailsStops(t *testing.T) {
	f := start(t, "receipts-validation-errors")
	r := f.diagnose(t, receipts.Options{})
	f.node.FailMethod("receipts.reset_validation_state", rpc.CodeInternal, "db locked")
	_, err := receipts.Apply(context.Background(), f.c, r, receipts.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "db locked")
	assert.Len(t, f.node.Calls("receipts.reset_validation_state"), 1, "a write is never retried")
	assert.Empty(t, f.node.Calls("receipts.validate"), "nothing after a failed reset")
}

func TestDiagnoseChainStalled(t *testing.T) {
	f := start(t, "receipts-chain-stalled")
	r := f.diagnose(t, receipts.Options{})
	assert.Equal(t, tbops.StatusCritical, r.Status)
	assert.True(t, symptom(t, r, receipts.SymptomChainStalled).Firing)
	assert.True(t, symptom(t, r, receipts.SymptomEmissionFlat).Firing)
	assert.Equal(t, []string{receipts.PathStalledChain}, matchedIDs(r), "no emitter restart when the chain is stalled")
	assert.Contains(t, symptom(t, r, receipts.SymptomChainStalled).Summary, "9/21 validators")
}

func TestDiagnoseMinPaymentSpike(t *testing.T) {
	f := start(t, "receipts-min-payment-spike")
	r := f.diagnose(t, receipts.Options{SLO: true})
	assert.Equal(t, tbops.StatusWarning, r.Status)
	s := symptom(t, r, receipts.SymptomMinPayment)
	assert.True(t, s.Firing)
	assert.InDelta(t, 5.0, *s.Value, 1e-9)
	assert.Equal(t, []string{receipts.PathMinPayment}, matchedIDs(r))
	assert.Equal(t, "tbops receipts stats --market ad", r.Matched()[0].Actions[0].Command)
}

func TestDiagnoseNoMetricsSource(t *testing.T) {
	f := start(t, "healthy")
	r, err := receipts.Diagnose(context.Background(), f.c, nil, receipts.Options{Now: f.clk.Now})
	require.NoError(t, err)
	// The RPC decides the per-market emission; what only metrics show is unknown.
	assert.Equal(t, tbops.StatusOK, symptom(t, r, receipts.SymptomMarketNotEmitting).Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, receipts.SymptomValidationErrors).Status)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.NotEmpty(t, r.Warnings)
}

func TestDiagnoseNodeWithoutReceiptsMethods(t *testing.T) {
	f := start(t, "receipts-market-stalled")
	for _, m := range []string{"receipts.stats", "receipts.validate", "receipts.reset_validation_state"} {
		f.node.FailMethod(m, rpc.CodeMethodNotFound, "method not found: "+m)
	}
	r := f.diagnose(t, receipts.Options{})
	// The metrics still show the stalled market.
	s := symptom(t, r, receipts.SymptomMarketNotEmitting)
	assert.True(t, s.Firing)
	assert.JSONEq(t, `["compute"]`, string(s.Detail))
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "does not serve receipts.stats (-32601)")
}

func TestDiagnoseNothingAnswers(t *testing.T) {
	f := start(t, "healthy")
	f.node.FailMethod("", rpc.CodeMethodNotFound, "method not found")
	r, err := receipts.Diagnose(context.Background(), f.c, nil, receipts.Options{Now: f.clk.Now})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusUnknown, r.Status, "never a false healthy")
	for _, s := range r.Symptoms {
		if s.ID != receipts.SymptomExplorerStale {
			assert.Equal(t, tbops.StatusUnknown, s.Status, s.ID)
		}
	}
}

// A market without any series counts as not emitting, with a warning.
func TestDiagnoseMarketWithoutSeries(t *testing.T) {
	f := start(t, "healthy")
	f.node.Update(func(s *nodetest.Scenario) {
		s.Metrics = append(s.Metrics, nodetest.Metric{Name: "receipt_emitted_total", Type: "counter", Series: []nodetest.Series{
			{Labels: map[string]string{"market": "storage"}, Value: 10, PerSecond: 12},
			{Labels: map[string]string{"market": "compute"}, Value: 10, PerSecond: 8},
			{Labels: map[string]string{"market": "energy"}, Value: 10, PerSecond: 5},
		}})
	})
	f.scrape(t, 3)
	r := f.diagnose(t, receipts.Options{})
	s := symptom(t, r, receipts.SymptomMarketNotEmitting)
	assert.True(t, s.Firing)
	assert.JSONEq(t, `["ad"]`, string(s.Detail))
	assert.Contains(t, strings.Join(r.Warnings, "\n"), `no series for market "ad"`)
	assert.True(t, alert(t, r, receipts.AlertMarketSeriesMissing).Firing)
}

func TestDiagnoseExplorer(t *testing.T) {
	f := start(t, "healthy")
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	h := int64(1_200_030)

	body = `{"latest_receipt_height": 1200028}`
	r := f.diagnose(t, receipts.Options{ExplorerURL: srv.URL})
	s := symptom(t, r, receipts.SymptomExplorerStale)
	assert.False(t, s.Firing)
	assert.Equal(t, tbops.StatusOK, s.Status)
	assert.Equal(t, 2.0, *s.Value)

	body = `{"latest_receipt_height": 1199000}`
	r = f.diagnose(t, receipts.Options{ExplorerURL: srv.URL})
	s = symptom(t, r, receipts.SymptomExplorerStale)
	assert.True(t, s.Firing)
	assert.Equal(t, float64(h-1_199_000), *s.Value)
	assert.Equal(t, tbops.StatusWarning, r.Status)

	body = `{"height": 5}`
	r = f.diagnose(t, receipts.Options{ExplorerURL: srv.URL})
	s = symptom(t, r, receipts.SymptomExplorerStale)
	assert.Equal(t, tbops.StatusUnknown, s.Status)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "latest_receipt_height missing")
}

func TestDiagnoseBadOptions(t *testing.T) {
	f := start(t, "healthy")
	for _, o := range []receipts.Options{
		{Markets: []receipts.Market{"gas"}},
		{FlatWindow: time.Second},
		{ExplorerURL: "ftp://x"},
		{RevalidateBlocks: -1},
	} {
		_, err := receipts.Diagnose(context.Background(), f.c, f.src, o)
		assert.Error(t, err, "%+v", o)
	}
}

func TestDiagnoseCancelled(t *testing.T) {
	f := start(t, "healthy")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := receipts.Diagnose(ctx, f.c, f.src, receipts.Options{})
	assert.ErrorIs(t, err, context.Canceled)
}
