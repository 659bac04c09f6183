package treasury_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/treasury"
)

func TestDiagnoseHealthyIsOK(t *testing.T) {
	e := startEnv(t, "healthy")
	r := e.diagnose(t, treasury.Options{SLO: true})
	require.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)
	assert.Len(t, r.Symptoms, 6)
	assert.Len(t, r.Steps, 5)
	assert.Len(t, r.Paths, 4)
	assert.Len(t, r.Alerts, 9, "the runbook's five alert thresholds and the SLO table's four")
	assert.Len(t, r.SLOs, 4)
	assert.Empty(t, r.Matched())
}

func TestDiagnoseDependencyRolledBack(t *testing.T) {
	e := startEnv(t, "treasury-dependency-rolled-back")
	r := e.diagnose(t, treasury.Options{})
	stale := symptom(t, r, treasury.SymptomStale)
	assert.True(t, stale.Firing)
	assert.Equal(t, 1.0, *stale.Value)
	a := path(t, r, "A")
	require.True(t, a.Matched, a.Why)
	var targets []string
	for _, act := range a.Actions {
		if act.Kind == "rollback" {
			targets = append(targets, act.Target)
			assert.True(t, act.DryRun)
			assert.Equal(t, "Dependency 4540 was rolled back", act.Note)
			assert.Equal(t, "tbops treasury rollback --id "+act.Target+" --reason 'Dependency 4540 was rolled back'", act.Command)
		}
	}
	assert.Equal(t, []string{"4541", "4542"}, targets)
	assert.Contains(t, a.Why, "1 more blocked")
	assert.Equal(t, tbops.StatusWarning, r.Status)
	// Diagnose changed nothing.
	assert.Empty(t, e.node.Calls(treasury.MethodRollback))

	// Apply executes exactly the planned rollbacks, once each, and leaves the
	// plan it was given as it was.
	rb := treasury.NewRunbook(e.c, e.src, treasury.Options{Now: e.clk.Now})
	done, err := rb.Apply(context.Background(), r)
	require.NoError(t, err)
	reportcheck.Valid(t, done)
	assert.Len(t, e.node.Calls(treasury.MethodRollback), 2)
	for _, act := range path(t, done, "A").Actions {
		if act.Kind == "rollback" {
			assert.False(t, act.DryRun)
			assert.Contains(t, act.Result, "rolled back")
		}
	}
	for _, act := range path(t, r, "A").Actions {
		assert.True(t, act.DryRun, "the plan passed in is not changed")
	}
	assert.Contains(t, strings.Join(done.Warnings, "\n"), "after these rollbacks Path A matches again", "4543 waited behind 4541: the next level is pointed out, not applied")
	// An action already done is never repeated.
	again, err := rb.Apply(context.Background(), done)
	require.NoError(t, err)
	assert.Equal(t, done.Paths, again.Paths)
	assert.Len(t, e.node.Calls(treasury.MethodRollback), 2)
	d, err := e.c.Disbursement(context.Background(), 4541)
	require.NoError(t, err)
	assert.Equal(t, treasury.StateRolledBack, d.Status.State)
	assert.Equal(t, "Dependency 4540 was rolled back", d.Status.Reason)
	// Now 4543 depends on a rolled-back disbursement: the next diagnosis plans it.
	r2 := e.diagnose(t, treasury.Options{})
	var next []string
	for _, act := range path(t, r2, "A").Actions {
		next = append(next, act.Target)
	}
	assert.Equal(t, []string{"4543"}, next)
}

func TestDiagnoseInsufficientFunds(t *testing.T) {
	e := startEnv(t, "treasury-insufficient-funds")
	r := e.diagnose(t, treasury.Options{})
	b := path(t, r, "B")
	require.True(t, b.Matched)
	assert.Contains(t, b.Why, "current balance 100,000 BLOCK, pending 2,750,000 BLOCK, shortfall 2,650,000 BLOCK")
	assert.Contains(t, b.Why, `insufficient_funds"} increasing`)
	assert.True(t, symptom(t, r, treasury.SymptomExecutorError).Firing)
	assert.True(t, alert(t, r, "TreasuryNoProgress").Firing)
	assert.True(t, alert(t, r, "TreasuryLatencyHigh").Firing)
	assert.False(t, alert(t, r, "TreasuryExecutorFailing").Firing)
	assert.Equal(t, tbops.StatusCritical, r.Status)
	c := path(t, r, "C")
	assert.True(t, c.Matched)
	assert.Contains(t, c.Why, "insufficient_funds")
}

func TestDiagnoseExecutorErrors(t *testing.T) {
	cases := []struct {
		scenario string
		kind     treasury.ErrorKind
		check    string
	}{
		{"treasury-executor-error", treasury.ErrorLedgerUnavailable, "systemctl status ledger-node"},
		{"treasury-executor-error-consensus-timeout", treasury.ErrorConsensusTimeout, "contract-cli node consensus --status"},
		{"treasury-executor-error-dependency-cycle", treasury.ErrorDependencyCycle, "dependency-failures"},
		{"treasury-executor-error-unknown", treasury.ErrorUnknown, "tail -100 /var/log/node/*.log"},
		{"treasury-executor-error-lease", treasury.ErrorLeaseHeld, ".executor"},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			e := startEnv(t, tc.scenario)
			r := e.diagnose(t, treasury.Options{})
			assert.Equal(t, tbops.StatusCritical, r.Status)
			backlog := symptom(t, r, treasury.SymptomBacklog)
			assert.True(t, backlog.Firing, "backlog: %+v warnings %v", backlog, r.Warnings)
			assert.True(t, symptom(t, r, treasury.SymptomNoTransitions).Firing)
			assert.True(t, alert(t, r, "TreasuryExecutorFailing").Firing)
			assert.True(t, alert(t, r, "TreasuryBacklogWarning").Firing)
			assert.False(t, alert(t, r, "TreasuryBacklogCritical").Firing)
			c := path(t, r, "C")
			require.True(t, c.Matched)
			require.NotEmpty(t, c.Actions)
			assert.Equal(t, string(tc.kind), c.Actions[0].Target)
			assert.Contains(t, c.Actions[0].Command, tc.check)
			if tc.kind == treasury.ErrorDependencyCycle {
				a := path(t, r, "A")
				require.True(t, a.Matched)
				assert.Contains(t, c.Actions[0].Note, "7001 → 7002 → 7003 → 7001")
			}
			if tc.kind == treasury.ErrorLeaseHeld {
				assert.Contains(t, c.Why, "expired")
			}
		})
	}
}

func TestDiagnoseDataCorruption(t *testing.T) {
	e := startEnv(t, "treasury-data-corruption")
	r := e.diagnose(t, treasury.Options{})
	d := path(t, r, "D")
	require.True(t, d.Matched, d.Why)
	assert.Contains(t, d.Why, "4560 executed without a tx_hash")
	assert.Contains(t, d.Why, "4561 listed more than once")
	require.NotEmpty(t, d.Actions)
	assert.Equal(t, "bundle", d.Actions[0].Kind)
}

func TestDiagnoseReferenceNodeShapes(t *testing.T) {
	e := startEnv(t, "treasury-reference-node")
	r := e.diagnose(t, treasury.Options{})
	assert.Equal(t, tbops.StatusOK, r.Status, "warnings %v", r.Warnings)
	b, err := e.c.Balance(context.Background())
	require.NoError(t, err)
	assert.Equal(t, tbops.AmountFromBLOCK(9_500_000), b.Balance)
	d, err := e.c.Disbursement(context.Background(), 4515)
	require.NoError(t, err)
	assert.Equal(t, treasury.StateQueued, d.Status.State)
	assert.Equal(t, []uint64{4490}, d.Proposal.Deps)
	assert.Equal(t, tbops.AmountFromBLOCK(50_000), d.Amount)
}

func TestDiagnoseMethodNotFound(t *testing.T) {
	e := startEnv(t, "healthy")
	for _, m := range []string{treasury.MethodBalance, treasury.MethodDisbursements, treasury.MethodDisbursement} {
		e.node.FailMethod(m, -32601, "Method not found")
	}
	r := e.diagnose(t, treasury.Options{})
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, treasury.SymptomExecutorError).Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, treasury.SymptomStale).Status)
	// Without the records, the no-progress rule decides no-transitions: 11
	// minutes of history show finalizations.
	nt := symptom(t, r, treasury.SymptomNoTransitions)
	assert.Equal(t, tbops.StatusOK, nt.Status, "%+v", nt)
	assert.Nil(t, nt.Value)
	assert.Equal(t, tbops.StatusOK, alert(t, r, treasury.AlertNoProgress).Status)
	found := false
	for _, w := range r.Warnings {
		if strings.Contains(w, "-32601") && strings.Contains(w, treasury.MethodBalance) {
			found = true
		}
	}
	assert.True(t, found, "warnings: %v", r.Warnings)
}

func TestDiagnoseWithoutMetricsIsNeverHealthy(t *testing.T) {
	e := startEnv(t, "healthy")
	r, err := treasury.Diagnose(context.Background(), e.c, nil, treasury.Options{Now: e.clk.Now, LogGlobs: []string{t.TempDir() + "/x.log"}})
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, treasury.SymptomLag).Status)
	for _, a := range r.Alerts {
		assert.Equal(t, tbops.StatusUnknown, a.Status, a.Name)
		assert.Nil(t, a.Value, a.Name)
	}
	assert.Empty(t, r.Scope, "no source, no scope")
	assert.Contains(t, r.Warnings, "no metrics source: the backlog, lag, error-rate and progress checks are unknown")
	// The records decide what they can: 5 queued now is not a backlog over 50.
	b := symptom(t, r, treasury.SymptomBacklog)
	assert.Equal(t, tbops.StatusOK, b.Status)
	assert.Equal(t, 5.0, *b.Value)
}

// A node that does not export the lag histogram (nor the gauge): the lag is
// unknown, never ok, even with a long history.
func TestDiagnoseHiddenMetricIsUnknown(t *testing.T) {
	sc := nodetest.Healthy(t0)
	sc.Metrics = append(sc.Metrics, nodetest.Metric{Name: treasury.MetricLag, Type: "histogram"})
	e := startClocked(t, sc, nodetest.NewFakeClock(t0))
	require.NoError(t, e.src.Advance(context.Background(), 16*time.Minute))
	r := e.diagnose(t)
	lag := symptom(t, r, treasury.SymptomLag)
	assert.Equal(t, tbops.StatusUnknown, lag.Status)
	assert.Nil(t, lag.Value)
	assert.Equal(t, tbops.StatusUnknown, alert(t, r, treasury.AlertLatencyHigh).Status)
	assert.Contains(t, r.Warnings, "no data for "+treasury.MetricLag+"_bucket")
	assert.Equal(t, tbops.StatusUnknown, r.Status)
}

func TestDiagnoseCancelled(t *testing.T) {
	e := startEnv(t, "healthy")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := treasury.Diagnose(ctx, e.c, e.src, treasury.Options{Now: e.clk.Now})
	require.ErrorIs(t, err, context.Canceled)
	_, err = treasury.Diagnose(context.Background(), e.c, e.src, treasury.Options{LogTail: -1})
	require.Error(t, err)
}

func TestDiagnoseLogs(t *testing.T) {
	e := startEnv(t, "treasury-executor-error")
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 70; i++ {
		lines = append(lines, fmt.Sprintf("2025-12-19T03:00:%02dZ ERROR treasury_executor: tick %d failed: ledger_unavailable", i%60, i))
		lines = append(lines, "2025-12-19T03:00:00Z INFO treasury_executor: tick ok")
		lines = append(lines, "2025-12-19T03:00:00Z ERROR p2p: unrelated")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "node.log"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	r := e.diagnose(t, treasury.Options{LogGlobs: []string{filepath.Join(dir, "*.log"), filepath.Join(dir, "missing-*.log")}})
	var st tbops.Step
	for _, s := range r.Steps {
		if s.ID == treasury.StepErrors {
			st = s
		}
	}
	joined := strings.Join(st.Findings, "\n")
	assert.Contains(t, joined, "70 matching ERROR/WARN lines in 1 files (showing the last 50)")
	assert.Contains(t, joined, "tick 69 failed")
	assert.Contains(t, joined, "no log files match "+filepath.Join(dir, "missing-*.log"))
	assert.Contains(t, joined, "execution error rate: 2/s (ledger_unavailable 2/s)")
}

func TestDiagnoseCorruptionIsNeverHealthy(t *testing.T) {
	e := startEnv(t, "treasury-data-corruption")
	r := e.diagnose(t, treasury.Options{})
	s := symptom(t, r, treasury.SymptomInconsistent)
	assert.True(t, s.Firing)
	assert.Equal(t, tbops.StatusWarning, r.Status)
}
