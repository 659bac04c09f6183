package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

func TestReceiptsDiagnoseExitCodes(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t)
	code, out, _ := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL())
	assert.Equal(t, 3, code, "without --explorer the explorer symptom is not checked: unknown\n%s", out)
	// One second of scrapes decides what the RPC decides (stalls in blocks, a
	// stalled chain, the explorer) and what a counter's rise already shows (50
	// min-payment rejections a second); the 5m validation ratio stays unknown.
	for sc, want := range map[string]int{
		"receipts-healthy":           3,
		"receipts-low-volume":        3,
		"receipts-explorer-lag":      1,
		"receipts-market-stalled":    2,
		"receipts-validation-errors": 3,
		"receipts-chain-stalled":     2,
		"receipts-min-payment-spike": 1,
	} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			n := nodetest.Start(t, nodetest.WithScenarioName(sc))
			code, out, errOut := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL(), "--slo", "--explorer", n.ExplorerURL(), "-o", "json")
			assert.Equal(t, want, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			var r tbops.Report
			require.NoError(t, json.Unmarshal([]byte(out), &r), out)
			reportcheck.Valid(t, r)
			assert.Equal(t, "receipts-flatlining", r.Runbook)
			assert.Contains(t, r.Scope, "scrape ", "the metrics source is named")
			if want == 3 {
				assert.Empty(t, r.Firing(), "unknown means nothing fires")
				assert.Contains(t, strings.Join(r.Warnings, "\n"), "validation success over 5m: only ", "says what would decide it")
			}
			assert.Empty(t, n.Calls("receipts.reset_validation_state"), "no --apply, no write")
		})
	}
}

// cliTarget is what the diagnose command builds, with a metrics source that
// has observed the history given.
func cliTarget(t *testing.T, scenario string, history time.Duration) (*app, *target, *nodetest.Node, *bytes.Buffer) {
	t.Helper()
	clk := nodetest.NewFakeClock(time.Now())
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
	src, err := nodetest.NewSource(context.Background(), n, clk, 0)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	require.NoError(t, src.Advance(context.Background(), history))
	var out bytes.Buffer
	a := &app{stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }, timeout: 5 * time.Second, output: "json"}
	return a, &target{rpcURL: n.URL(), src: src, now: clk.Now, apply: true}, n, &out
}

// --apply on a one-second observation: the validation ratio is unknown, so
// path B does not match and nothing is written.
func TestReceiptsApplyNeedsADecidedVerdict(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-validation-errors"))
	code, out, errOut := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL(), "--apply", "-o", "json")
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, out, "nothing to apply: path B (validation errors) did not match")
	assert.Empty(t, n.Calls("receipts.reset_validation_state"), "never a write from a guess")
}

func TestReceiptsDiagnoseApplyJSON(t *testing.T) {
	t.Parallel()
	a, tg, n, out := cliTarget(t, "receipts-validation-errors", 11*time.Minute)
	err := a.receiptsReport(context.Background(), tg, nil)
	var ex *exitError
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, 2, ex.code)
	var r tbops.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &r), out.String())
	reportcheck.Valid(t, r)
	assert.Len(t, n.Calls("receipts.reset_validation_state"), 1)
	assert.Len(t, n.Calls("receipts.validate"), 1)
	b, ok := r.Path("B")
	require.True(t, ok)
	assert.True(t, b.Matched)
	assert.False(t, b.Actions[0].DryRun)
	assert.Equal(t, "validation state reset", b.Actions[0].Result)
}

func TestReceiptsApplyFailureExits3(t *testing.T) {
	t.Parallel()
	a, tg, n, out := cliTarget(t, "receipts-validation-errors", 11*time.Minute)
	n.FailMethod("receipts.reset_validation_state", rpc.CodeInternal, "store locked")
	err := a.receiptsReport(context.Background(), tg, nil)
	var ex *exitError
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, 3, ex.code)
	assert.Contains(t, ex.err.Error(), "store locked")
	assert.Contains(t, out.String(), `"result": "failed: `)
	assert.Len(t, n.Calls("receipts.reset_validation_state"), 1)
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

	// What the node did not send is null in -o json and "-" in the table, never 0.
	n.SetFault(nodetest.Fault{Method: "receipts.stats", Body: `{"jsonrpc":"2.0","id":1,"result":{"market":"ad","emitted_total":5,"last_emitted_height":3}}`})
	code, out, errOut = runCLI(t, nil, "receipts", "stats", "--rpc", n.URL(), "--market", "ad", "-o", "json")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"pending": null`)
	assert.Contains(t, out, `"schema_mismatch": null`)
	code, out, _ = runCLI(t, nil, "receipts", "stats", "--rpc", n.URL(), "--market", "ad")
	require.Equal(t, 0, code)
	assert.Regexp(t, `ad\s+5\s+3\s+\d+\s+-\s+-\s+-\s+-\s+-`, out)

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

// An --explorer URL's password is never printed: not in the report, not in
// an error, not with the doctor.
func TestReceiptsExplorerURLIsRedacted(t *testing.T) {
	t.Parallel()
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-explorer-lag"))
	secret := strings.Replace(n.ExplorerURL(), "http://", "http://ops:hunter2@", 1)
	code, out, errOut := runCLI(t, nil, "receipts", "diagnose", "--rpc", n.URL(), "--explorer", secret, "-o", "json")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "GET http://ops:xxxxx@")
	for _, args := range [][]string{
		{"receipts", "diagnose", "--rpc", n.URL(), "--explorer", strings.Replace(secret, n.Addr(), "127.0.0.1:1", 1)},
		{"receipts", "diagnose", "--rpc", n.URL(), "--explorer", "ftp://ops:hunter2@x/"},
		{"doctor", "--rpc", n.URL(), "--explorer", secret, "-o", "json"},
	} {
		_, out, errOut := runCLI(t, nil, args...)
		assert.NotContains(t, out+errOut, "hunter2", "%v", args)
	}
}
