package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

func TestReceiptsDiagnoseExitCodes(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t)
	code, out, _ := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL())
	assert.Equal(t, 3, code, "without --explorer the explorer symptom is not checked: unknown\n%s", out)
	for sc, want := range map[string]int{
		"receipts-healthy":           0,
		"receipts-market-stalled":    2,
		"receipts-validation-errors": 2,
		"receipts-chain-stalled":     2,
		"receipts-min-payment-spike": 1,
	} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			n := nodetest.Start(t, nodetest.WithScenarioName(sc))
			code, out, errOut := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL(), "--slo", "--explorer", n.ExplorerURL())
			assert.Equal(t, want, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, "receipts-flatlining")
			assert.Empty(t, n.Calls("receipts.reset_validation_state"), "no --apply, no write")
		})
	}
}

func TestReceiptsDiagnoseApplyJSON(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-validation-errors"))
	code, out, errOut := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL(), "--apply", "-o", "json")
	assert.Equal(t, 2, code, errOut)
	var r struct {
		Runbook string `json:"runbook"`
		Paths   []struct {
			ID      string `json:"id"`
			Matched bool   `json:"matched"`
			Actions []struct {
				Kind   string `json:"kind"`
				DryRun bool   `json:"dry_run"`
				Result string `json:"result"`
			} `json:"actions"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	assert.Equal(t, "receipts-flatlining", r.Runbook)
	assert.Len(t, n.Calls("receipts.reset_validation_state"), 1)
	assert.Len(t, n.Calls("receipts.validate"), 1)
	for _, p := range r.Paths {
		if p.ID != "B" {
			continue
		}
		assert.True(t, p.Matched)
		assert.False(t, p.Actions[0].DryRun)
		assert.Equal(t, "validation state reset", p.Actions[0].Result)
	}
}

func TestReceiptsApplyFailureExits3(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-validation-errors"))
	n.FailMethod("receipts.reset_validation_state", rpc.CodeInternal, "store locked")
	code, out, errOut := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL(), "--apply")
	assert.Equal(t, 3, code)
	assert.Contains(t, out, "failed")
	assert.Contains(t, errOut, "store locked")
}

func TestReceiptsStats(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-market-stalled"))
	code, out, errOut := runCLI(t, nil, "receipts", "stats", "--rpc", n.URL(), "--market", "compute", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var s map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	assert.Equal(t, "compute", s["market"])
	assert.Contains(t, s, "last_emitted_height")

	code, out, _ = runCLI(t, nil, "receipts", "stats", "--rpc", n.URL(), "--market", "all")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "BLOCKS_AGO")
	assert.Contains(t, out, "storage")

	code, _, errOut = runCLI(t, nil, "receipts", "stats", "--rpc", n.URL(), "--market", "gas")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, `--market: unknown market: unknown market "gas"`)
	code, _, errOut = runCLI(t, nil, "receipts", "stats", "--rpc", n.URL())
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--market is required")

	n.FailMethod("receipts.stats", rpc.CodeMethodNotFound, "method not found: receipts.stats")
	code, _, errOut = runCLI(t, nil, "receipts", "stats", "--rpc", n.URL(), "--market", "ad")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "does not serve this method")
}

func TestReceiptsValidate(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-validation-errors"))
	code, out, errOut := runCLI(t, nil, "receipts", "validate", "--rpc", n.URL(), "--last", "100")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "rcpt-ad-310577")
	assert.Contains(t, out, "signature_invalid")

	code, out, errOut = runCLI(t, nil, "receipts", "validate", "--rpc", n.URL(), "--from-block", "1000", "--to-block", "1010", "-o", "json")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"from_block": 1000`)

	for _, args := range [][]string{
		{"receipts", "validate", "--rpc", n.URL()},
		{"receipts", "validate", "--rpc", n.URL(), "--from-block", "-5"},
		{"receipts", "validate", "--rpc", n.URL(), "--from-block", "10", "--last", "5"},
		{"receipts", "validate", "--rpc", n.URL(), "--from-block", "10", "--to-block", "5"},
	} {
		code, _, errOut := runCLI(t, nil, args...)
		assert.Equal(t, 3, code, "%v", args)
		assert.NotEmpty(t, errOut)
	}
	// The node's own refusal names the param.
	code, _, errOut = runCLI(t, nil, "receipts", "validate", "--rpc", n.URL(), "--from-block", "99999999999")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "from_block")
}

func TestDoctorReceiptsScenarios(t *testing.T) {
	t.Parallel()
	for sc, want := range map[string]string{
		"receipts-market-stalled":    "CRITICAL",
		"receipts-min-payment-spike": "WARNING",
	} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			_, out, _ := runCLI(t, nil, "doctor", "--scenario", sc, "--summary")
			assert.Regexp(t, "receipts-flatlining +"+want, out)
		})
	}
}
