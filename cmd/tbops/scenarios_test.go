package main

import (
	"context"
	"time"

	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
)

// verdict is what doctor must say of one runbook on a scenario: its status and
// symptoms that must fire.
type verdict struct {
	status string
	firing []string
}

// TestDoctorScenarioMatrix runs doctor on every simulated scenario, the way an
// operator would (scrape source, no Prometheus), and checks each runbook's
// verdict: the runbooks a scenario breaks report what they should, and every
// other runbook stays ok — a scenario for one area must not upset another.
func TestDoctorScenarioMatrix(t *testing.T) {
	want := scenarioVerdicts()
	for _, name := range nodetest.Scenarios() {
		_, ok := want[name]
		assert.True(t, ok, "scenario %q has no expected verdict in this matrix: add it", name)
	}
	runbooks := []string{"node-health", "treasury-stuck", "energy-stalled", "receipts-flatlining", "governor-audit", "runtime-reactor"}
	exit := map[string]int{"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
	for name, verdicts := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, nil, "doctor", "--scenario", name, "-o", "json")
			var res doctorResult
			require.NoError(t, json.Unmarshal([]byte(out), &res), "stderr: %s", errOut)
			reportcheck.Valid(t, res.Reports...)
			got := map[string]bool{}
			worst := "ok"
			for _, r := range res.Reports {
				got[r.Runbook] = true
				v, broken := verdicts[r.Runbook]
				if !broken {
					v = verdict{status: "ok"}
				}
				assert.Equal(t, v.status, string(r.Status), "%s on %s; warnings %v", r.Runbook, name, r.Warnings)
				var firing []string
				for _, s := range r.Firing() {
					firing = append(firing, s.ID)
				}
				for _, f := range v.firing {
					assert.Contains(t, firing, f, "%s on %s", r.Runbook, name)
				}
				worst = string(tbops.Worst(tbops.Status(worst), tbops.Status(v.status)))
			}
			for _, rb := range runbooks {
				assert.True(t, got[rb], "runbook %s missing from doctor's reports", rb)
			}
			assert.Equal(t, exit[worst], code, "exit code")
		})
	}
}

// TestHealthyScenariosNeverPageOnAShortLook is doctor against a real node
// without Prometheus: two scrapes a second apart. Every healthy scenario (no
// runbook expected to break in the matrix) is diagnosed 20 times, each run on
// a fresh node whose clock starts at another phase of its slow counters (a
// disbursement every two minutes, a receipt every three blocks), and no
// report may say warning or critical: a window one second cannot cover is
// unknown, never a page.
func TestHealthyScenariosNeverPageOnAShortLook(t *testing.T) {
	rbs := newTestApp(nil).runbooks()
	start := time.Now().Truncate(time.Hour)
	for name, verdicts := range scenarioVerdicts() {
		if len(verdicts) > 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			for i := range 20 {
				clock := nodetest.NewFakeClock(start.Add(time.Duration(i) * 7300 * time.Millisecond))
				n := nodetest.Start(t, nodetest.WithClock(clock.Now), nodetest.WithScenarioName(name))
				src, err := nodetest.NewSource(ctx, n, clock, time.Second)
				require.NoError(t, err)
				require.NoError(t, src.Advance(ctx, time.Second))
				tgt := &target{rpcURL: n.URL(), metricsURL: n.MetricsURL(), src: src, now: clock.Now, slo: true, explorer: n.ExplorerURL()}
				for _, rb := range rbs {
					r, err := rb.diagnose(ctx, tgt)
					require.NoError(t, err, "%s, run %d", rb.id, i)
					reportcheck.Valid(t, r)
					assert.Contains(t, []tbops.Status{tbops.StatusOK, tbops.StatusUnknown}, r.Status,
						"%s on %s, run %d: firing %v, alerts %v", rb.id, name, i, r.Firing(), r.Alerts)
				}
				src.Close()
				require.NoError(t, n.Close())
			}
		})
	}
}

// scenarioVerdicts is what doctor must say on each simulated scenario; a
// scenario with no entry breaks no runbook.
func scenarioVerdicts() map[string]map[string]verdict {
	return map[string]map[string]verdict{
		"healthy":                                   {},
		"node-syncing":                              {"node-health": {"warning", []string{"syncing", "consensus-unhealthy"}}},
		"chain-stalled":                             {"node-health": {"critical", []string{"consensus-unhealthy"}}, "receipts-flatlining": {"critical", []string{"chain-stalled", "emission-flat"}}},
		"node-reference":                            {"node-health": {"unknown", nil}, "receipts-flatlining": {"unknown", nil}},
		"treasury-dependency-rolled-back":           {"treasury-stuck": {"warning", []string{"stale-disbursements"}}},
		"treasury-data-corruption":                  {"treasury-stuck": {"warning", []string{"inconsistent-records"}}},
		"treasury-insufficient-funds":               {"treasury-stuck": {"critical", []string{"executor-error"}}},
		"treasury-executor-error":                   {"treasury-stuck": {"critical", []string{"executor-error", "no-transitions"}}},
		"treasury-executor-error-consensus-timeout": {"treasury-stuck": {"critical", []string{"executor-error"}}},
		"treasury-executor-error-dependency-cycle":  {"treasury-stuck": {"critical", []string{"executor-error"}}},
		"treasury-executor-error-lease":             {"treasury-stuck": {"critical", []string{"executor-error"}}},
		"treasury-executor-error-unknown":           {"treasury-stuck": {"critical", []string{"executor-error"}}},
		"treasury-reference-node":                   {},
		"energy-healthy":                            {},
		"energy-reference-node":                     {},
		"energy-oracle-latency":                     {"energy-stalled": {"warning", []string{"oracle-latency-high"}}},
		"energy-signature-failures":                 {"energy-stalled": {"critical", []string{"signature-failures"}}},
		"energy-timestamp-skew":                     {"energy-stalled": {"critical", []string{"readings-not-settling"}}},
		"energy-reputation-degraded":                {"energy-stalled": {"warning", []string{"dispute-backlog-increasing"}}},
		"receipts-healthy":                          {},
		"receipts-low-volume":                       {},
		"receipts-explorer-lag":                     {"receipts-flatlining": {"warning", []string{"explorer-not-updating"}}},
		"receipts-market-stalled":                   {"receipts-flatlining": {"critical", []string{"market-not-emitting"}}},
		"receipts-validation-errors":                {"receipts-flatlining": {"critical", []string{"validation-errors-increasing"}}},
		"receipts-chain-stalled":                    {"node-health": {"critical", []string{"consensus-unhealthy"}}, "receipts-flatlining": {"critical", []string{"chain-stalled"}}},
		"receipts-min-payment-spike":                {"receipts-flatlining": {"warning", []string{"min-payment-rejections"}}},
		"governor-healthy":                          {},
		"governor-reference":                        {},
		"governor-shadow-mode":                      {},
		"governor-hash-mismatch":                    {"governor-audit": {"critical", []string{"status-hash-mismatch", "intent-hash-mismatch"}}},
		"governor-gauge-drift":                      {"governor-audit": {"warning", []string{"gauge-drift"}}},
		"governor-telemetry-missing":                {"governor-audit": {"warning", nil}},
		"runtime-missed-wakeups":                    {"runtime-reactor": {"warning", []string{"read-without-ready-growing", "write-without-ready-growing"}}},
		"runtime-reload-errors":                     {"runtime-reactor": {"warning", []string{"config-reload-errors"}}},
	}
}
