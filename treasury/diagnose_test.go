package treasury_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/treasury"
)

func TestDiagnoseHealthyIsOK(t *testing.T) {
	e := startEnv(t, "healthy")
	r := e.diagnose(t, treasury.Options{SLO: true})
	r.WriteText(os.Stdout)
	require.Equal(t, tbops.StatusOK, r.Status, "warnings: %v", r.Warnings)
	assert.Len(t, r.Symptoms, 5)
	assert.Len(t, r.Steps, 5)
	assert.Len(t, r.Paths, 4)
	assert.Len(t, r.Alerts, 5)
	assert.Empty(t, r.Matched())
}
