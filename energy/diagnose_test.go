package energy_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

var t0 = time.Date(2025, 12, 19, 3, 0, 0, 0, time.UTC)

func syncedClock(context.Context) energy.ClockSync {
	return energy.ClockSync{Known: true, Synchronized: true, Source: "test"}
}

// diagnoseScenario runs Diagnose against a simulated node scraped for scrapeFor
// (every 30 s of fake time).
func diagnoseScenario(t *testing.T, name string, scrapeFor time.Duration, slo bool) tbops.Report {
	t.Helper()
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(name))
	src := promq.NewScrape([]string{n.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(src.Close)
	require.NoError(t, src.Scrape(ctx))
	for el := time.Duration(0); el < scrapeFor; el += 30 * time.Second {
		clk.Advance(30 * time.Second)
		require.NoError(t, src.Scrape(ctx))
	}
	c, err := energy.New(n.URL(), energy.WithGetenv(func(string) string { return "" }))
	require.NoError(t, err)
	r, err := energy.Diagnose(ctx, c, src, energy.Options{Now: clk.Now, ClockSync: syncedClock, SLO: slo})
	require.NoError(t, err)
	return r
}

func symptom(r tbops.Report, id string) tbops.Symptom {
	x, _ := r.Symptom(id)
	return x
}

func matched(r tbops.Report) []string {
	var out []string
	for _, p := range r.Matched() {
		out = append(out, p.ID)
	}
	return out
}

func TestDiagnoseScenarios(t *testing.T) {
	cases := []struct {
		name   string
		status tbops.Status
		firing []string
		paths  []string
	}{
		{"healthy", tbops.StatusOK, nil, nil},
		{"energy-healthy", tbops.StatusOK, nil, nil},
		{"energy-reference-node", tbops.StatusOK, nil, nil},
		{"energy-oracle-latency", tbops.StatusWarning, []string{"oracle-latency-high", "pending-credits-not-decreasing"}, []string{"A"}},
		{"energy-signature-failures", tbops.StatusCritical, []string{"signature-failures"}, []string{"B"}},
		{"energy-timestamp-skew", tbops.StatusCritical, []string{"pending-credits-not-decreasing", "readings-not-settling"}, []string{"C"}},
		{"energy-reputation-degraded", tbops.StatusWarning, []string{"dispute-backlog-increasing"}, []string{"D"}},
	}
	for _, c := range cases {
		for _, long := range []bool{false, true} {
			scrape := 2 * time.Second
			if long {
				scrape = 11 * time.Minute
			}
			t.Run(c.name+map[bool]string{false: "/short", true: "/full-window"}[long], func(t *testing.T) {
				r := diagnoseScenario(t, c.name, scrape, false)
				var firing []string
				for _, s := range r.Firing() {
					firing = append(firing, s.ID)
				}
				assert.Equal(t, c.status, r.Status, "symptoms %+v\nalerts %+v\nwarnings %v", r.Symptoms, r.Alerts, r.Warnings)
				assert.ElementsMatch(t, c.firing, firing)
				assert.ElementsMatch(t, c.paths, matched(r))
				assert.Len(t, r.Steps, 5)
				assert.Len(t, r.Alerts, 7)
				for _, s := range r.Symptoms {
					assert.NotEqual(t, tbops.StatusUnknown, s.Status, "symptom %s unknown; warnings %v", s.ID, r.Warnings)
					assert.NotEmpty(t, s.Evidence, s.ID)
				}
			})
		}
	}
}

func TestDiagnoseReferenceNodeUsesFallbacks(t *testing.T) {
	r := diagnoseScenario(t, "energy-reference-node", 2*time.Second, false)
	s := symptom(r, "signature-failures")
	require.NotEmpty(t, s.Evidence)
	assert.Contains(t, s.Evidence[0].Query, "energy_reading_reject_total")
	assert.Contains(t, r.Steps[4].Evidence[0].Query, "energy.market_state")
}

func TestDiagnoseMissingMetricIsUnknownNotZero(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	sc := nodetest.Healthy(t0)
	sc.Metrics = []nodetest.Metric{{Name: "oracle_latency_seconds", Type: "histogram"}, {Name: "energy_signature_verification_failures_total", Type: "counter"}}
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	src := promq.NewScrape([]string{n.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(src.Close)
	require.NoError(t, src.Scrape(ctx))
	clk.Advance(time.Second)
	require.NoError(t, src.Scrape(ctx))
	c, err := energy.New(n.URL())
	require.NoError(t, err)
	r, err := energy.Diagnose(ctx, c, src, energy.Options{Now: clk.Now, ClockSync: syncedClock})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusUnknown, symptom(r, "oracle-latency-high").Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(r, "signature-failures").Status)
	assert.Nil(t, symptom(r, "signature-failures").Value)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Contains(t, joined(r.Warnings), "energy_signature_verification_failures_total / energy_reading_reject_total missing")
}

func joined(ss []string) string {
	out := ""
	for _, s := range ss {
		out += s + "\n"
	}
	return out
}

func TestDiagnoseNoSourceNoNode(t *testing.T) {
	c, err := energy.New("http://127.0.0.1:1/", energy.WithTimeout(200*time.Millisecond), energy.WithoutRetries())
	require.NoError(t, err)
	r, err := energy.Diagnose(context.Background(), c, nil, energy.Options{ClockSync: syncedClock})
	require.NoError(t, err)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.NotEmpty(t, r.Warnings)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = energy.Diagnose(ctx, c, nil, energy.Options{ClockSync: syncedClock})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = energy.Diagnose(context.Background(), c, nil, energy.Options{TrendWindow: -1})
	assert.Error(t, err)
}

func TestDiagnoseSLOs(t *testing.T) {
	r := diagnoseScenario(t, "healthy", 6*time.Minute, true)
	require.Len(t, r.SLOs, 4)
	for _, s := range r.SLOs {
		assert.Equal(t, tbops.StatusOK, s.Status, "%+v", s)
	}
	r = diagnoseScenario(t, "energy-oracle-latency", 6*time.Minute, true)
	assert.Equal(t, tbops.StatusWarning, r.SLOs[0].Status)
	assert.Equal(t, tbops.StatusWarning, r.SLOs[2].Status, "settlement rate: stuck pending credits")
	r = diagnoseScenario(t, "energy-signature-failures", 6*time.Minute, true)
	assert.Equal(t, tbops.StatusWarning, r.SLOs[1].Status)
}

func TestRulesAndSLOs(t *testing.T) {
	rules := energy.Rules()
	names := map[string]bool{}
	for _, r := range rules {
		assert.False(t, names[r.Alert], "duplicate %s", r.Alert)
		names[r.Alert] = true
		assert.Equal(t, energy.RunbookID, r.Runbook)
		assert.Contains(t, []tbops.Status{tbops.StatusCritical, tbops.StatusWarning}, r.Severity)
		assert.NotEmpty(t, r.Expr)
	}
	assert.True(t, names["EnergySettlementStalled"])
	assert.Len(t, energy.SLOs(), 4)
}

func TestClockSyncHost(t *testing.T) {
	cs := energy.HostClockSync(context.Background())
	assert.NotEmpty(t, cs.Source)
	if !cs.Known {
		assert.NotEmpty(t, cs.Detail, "unknown says why")
	}
}
