package governor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// simAudit starts a scenario and audits it through the scrape source.
func simAudit(t *testing.T, scenario string, withDir bool, mutate ...func(n *nodetest.Node)) (tbops.Report, *nodetest.Node) {
	t.Helper()
	clk := nodetest.NewFakeClock(time.Unix(1_780_000_000, 0))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
	for _, m := range mutate {
		m(n)
	}
	c, err := governor.NewClient(n.URL())
	require.NoError(t, err)
	src := promq.NewScrape([]string{n.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	t.Cleanup(src.Close)
	ctx := context.Background()
	require.NoError(t, src.Scrape(ctx))
	opts := governor.Options{Now: clk.Now}
	if withDir {
		opts.Dir = n.GovernorDecisionsDir()
		opts.Verify.TrustedKeys = append(opts.Verify.TrustedKeys, nodetest.GovernorPublicKey())
	}
	r, err := governor.Audit(ctx, c, src, opts)
	require.NoError(t, err)
	return r, n
}

func symptom(t *testing.T, r tbops.Report, id string) tbops.Symptom {
	t.Helper()
	x, ok := r.Symptom(id)
	require.True(t, ok, "no symptom %s in %+v", id, r.Symptoms)
	return x
}

func TestAuditHealthy(t *testing.T) {
	for _, withDir := range []bool{false, true} {
		for _, sc := range []string{"healthy", "governor-healthy", "governor-shadow-mode", "governor-reference"} {
			t.Run(sc, func(t *testing.T) {
				r, _ := simAudit(t, sc, withDir)
				assert.Equal(t, tbops.StatusOK, r.Status, "symptoms %+v warnings %v", r.Firing(), r.Warnings)
				assert.Empty(t, r.Warnings)
				assert.Equal(t, governor.RunbookID, r.Runbook)
				assert.Equal(t, tbops.StatusOK, symptom(t, r, governor.SymStatusHashMismatch).Status)
				assert.Equal(t, tbops.StatusOK, symptom(t, r, governor.SymGaugeDrift).Status)
				assert.Equal(t, tbops.StatusOK, symptom(t, r, governor.SymAdGateStreakMismatch).Status)
			})
		}
	}
}

func TestAuditHashMismatch(t *testing.T) {
	for _, withDir := range []bool{false, true} {
		r, n := simAudit(t, "governor-hash-mismatch", withDir)
		assert.Equal(t, tbops.StatusCritical, r.Status)
		s := symptom(t, r, governor.SymStatusHashMismatch)
		require.True(t, s.Firing)
		require.Len(t, s.Evidence, 2)
		assert.Equal(t, tbops.SourceRPC, s.Evidence[0].Source)
		if withDir {
			assert.Equal(t, tbops.SourceFile, s.Evidence[1].Source)
			assert.Equal(t, filepath.Join(n.GovernorDecisionsDir(), governor.FileName(9998)), s.Evidence[1].Query)
		} else {
			assert.Contains(t, s.Evidence[1].Query, "governor.snapshot")
		}
		assert.NotEqual(t, s.Evidence[0].Value, s.Evidence[1].Value)
		assert.True(t, symptom(t, r, governor.SymIntentHashMismatch).Firing)
		assert.True(t, symptom(t, r, governor.SymFileHashMismatch).Firing)
		assert.False(t, symptom(t, r, governor.SymGaugeDrift).Firing)
		var rollback *tbops.Path
		for i := range r.Paths {
			if r.Paths[i].ID == "rollback" {
				rollback = &r.Paths[i]
			}
		}
		require.NotNil(t, rollback)
		assert.True(t, rollback.Matched)
		for _, a := range rollback.Actions {
			assert.True(t, a.DryRun)
		}
	}
}

func TestAuditGaugeDrift(t *testing.T) {
	r, _ := simAudit(t, "governor-gauge-drift", true)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	s := symptom(t, r, governor.SymGaugeDrift)
	require.True(t, s.Firing)
	assert.Contains(t, s.Summary, "do not mirror")
	assert.False(t, symptom(t, r, governor.SymStatusHashMismatch).Firing)
}

func TestAuditBadFiles(t *testing.T) {
	r, n := simAudit(t, "healthy", true, func(n *nodetest.Node) {
		dir := n.GovernorDecisionsDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "epoch-7.json"), []byte(`{}`), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, governor.FileName(5)), []byte(`{"a":1,"a":2}`), 0o644))
	})
	s := symptom(t, r, governor.SymDecisionFilesInvalid)
	require.True(t, s.Firing)
	assert.Equal(t, 2.0, *s.Value)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	// The good files still verified.
	assert.False(t, symptom(t, r, governor.SymStatusHashMismatch).Firing)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, governor.SymSignatureInvalid).Status)
	_ = n
}
