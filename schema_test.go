package tbops_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
)

func TestSchemaAcceptsReportsAndRejectsOldShapes(t *testing.T) {
	r := tbops.NewReport("treasury-stuck", "http://node:3030/", time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
	r.Symptoms = []tbops.Symptom{{ID: "backlog-high", Status: tbops.StatusOK, Value: tbops.Num(3), Threshold: tbops.Num(50)}}
	r.Alerts = []tbops.Alert{{Name: "TreasuryBacklogWarning", Severity: tbops.StatusWarning, Expr: "treasury_disbursement_backlog > 50", ForSeconds: 240, Status: tbops.StatusOK, Value: tbops.Num(3), Threshold: tbops.Num(50)}}
	r.Finalize()
	require.NoError(t, reportcheck.Check(r))

	for name, raw := range map[string]string{
		"value as a string":    `{"runbook":"x","target":"t","status":"ok","checked_at":"2026-11-29T03:00:00Z","symptoms":[{"id":"a","summary":"","firing":false,"status":"ok","value":"40","threshold":null,"evidence":[]}],"steps":[],"paths":[],"alerts":[],"warnings":[]}`,
		"for as a Go duration": `{"runbook":"x","target":"t","status":"ok","checked_at":"2026-11-29T03:00:00Z","symptoms":[],"steps":[],"paths":[],"alerts":[{"name":"A","severity":"warning","expr":"x","for":"6m0s","for_seconds":360,"firing":false,"status":"ok","value":null,"threshold":null,"evidence":[]}],"warnings":[]}`,
		"null list":            `{"runbook":"x","target":"t","status":"ok","checked_at":"2026-11-29T03:00:00Z","symptoms":null,"steps":[],"paths":[],"alerts":[],"warnings":[]}`,
		"no target":            `{"runbook":"x","status":"ok","checked_at":"2026-11-29T03:00:00Z","symptoms":[],"steps":[],"paths":[],"alerts":[],"warnings":[]}`,
		"bad status":           `{"runbook":"x","target":"t","status":"fine","checked_at":"2026-11-29T03:00:00Z","symptoms":[],"steps":[],"paths":[],"alerts":[],"warnings":[]}`,
	} {
		assert.Error(t, reportcheck.Validate([]byte(raw)), name)
	}

	bad := r
	bad.Symptoms = []tbops.Symptom{{ID: "a", Firing: true, Status: tbops.StatusOK}}
	assert.ErrorContains(t, reportcheck.Check(bad), "fires with status ok")
}
