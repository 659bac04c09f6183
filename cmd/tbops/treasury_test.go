package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

func runTreasury(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestTreasuryCommands(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	rpc := []string{"--rpc", n.URL()}

	code, out, _ := runTreasury(t, nil, append(rpc, "treasury", "balance")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "balance: 9,500,000 BLOCK")
	assert.Contains(t, out, "executor.lease_holder")

	code, out, _ = runTreasury(t, nil, append(rpc, "treasury", "list", "--status", "queued", "--limit", "2")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "2 shown of 8; next: --cursor")

	code, out, _ = runTreasury(t, nil, append(rpc, "treasury", "show", "--id", "4541")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "dependency 4540")
	assert.Contains(t, out, "rolled_back")

	code, _, errOut := runTreasury(t, nil, append(rpc, "treasury", "show", "--id", "1")...)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "no disbursement 1")

	// rollback without --apply changes nothing.
	code, out, _ = runTreasury(t, nil, append(rpc, "treasury", "rollback", "--id", "4541", "--reason", "Dependency 4540 was rolled back")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "nothing changed")
	assert.Empty(t, n.Calls("gov.treasury.rollback_disbursement"))
	code, _, errOut = runTreasury(t, nil, append(rpc, "treasury", "rollback", "--id", "4490", "--reason", "x", "--apply")...)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "is finalized")

	// diagnose: warning (stale + Path A), plan only.
	code, out, _ = runTreasury(t, nil, append(rpc, "-o", "json", "treasury", "diagnose", "--log-glob", t.TempDir()+"/*.log")...)
	var r struct {
		Runbook string `json:"runbook"`
		Paths   []struct {
			ID      string `json:"id"`
			Matched bool   `json:"matched"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	assert.Equal(t, "treasury-stuck", r.Runbook)
	assert.True(t, r.Paths[0].Matched)
	assert.NotEqual(t, 0, code)
	assert.Empty(t, n.Calls("gov.treasury.rollback_disbursement"))

	// diagnose --apply --bundle executes Path A and writes the bundle.
	bundle := filepath.Join(t.TempDir(), "incident.tar.gz")
	_, out, errOut = runTreasury(t, nil, append(rpc, "treasury", "diagnose", "--apply", "--bundle", bundle, "--log-glob", t.TempDir()+"/*.log")...)
	assert.Contains(t, errOut, "applied 2 rollbacks")
	assert.Contains(t, out, "after these rollbacks Path A matches again", "4543 depended on 4541: the next level is pointed out, not cascaded")
	assert.Contains(t, errOut, "incident bundle written")
	assert.Len(t, n.Calls("gov.treasury.rollback_disbursement"), 2)
	assert.FileExists(t, bundle)
}

func TestTreasuryAuditCommand(t *testing.T) {
	n := nodetest.Start(t)
	code, out, _ := runTreasury(t, map[string]string{"STARTING_EPOCH": "0", "ENDING_EPOCH": "100000"}, "--rpc", n.URL(), "treasury", "audit")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Ledger conservation verified:")
	code, _, errOut := runTreasury(t, map[string]string{"STARTING_EPOCH": "x"}, "--rpc", n.URL(), "treasury", "audit")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "STARTING_EPOCH")

	bad := nodetest.Start(t, nodetest.WithScenarioName("treasury-data-corruption"))
	code, out, _ = runTreasury(t, nil, "--rpc", bad.URL(), "treasury", "audit")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "FAILED")
	assert.Contains(t, out, "Discrepancy: 200,000 BLOCK (2.1%)")
}

func TestTreasuryMigrateCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "explorer.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE treasury_disbursements (id INTEGER PRIMARY KEY, destination TEXT, amount_ct INTEGER, amount_it INTEGER, memo TEXT)`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO treasury_disbursements VALUES (1, 'a', 10, 1, 'm'), (2, 'b', 20, 2, 'n')`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	code, out, _ := runTreasury(t, nil, "treasury", "migrate-explorer", path)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "add_status_payload           applied")
	assert.Contains(t, out, "verified: 2 rows, Σ amount 30 before and after")
	code, out, _ = runTreasury(t, nil, "treasury", "migrate-explorer", path)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "already migrated")
	code, _, errOut := runTreasury(t, nil, "treasury", "migrate-explorer", filepath.Join(t.TempDir(), "nope.db"))
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "pass its path")
}

// TestTreasuryDiagnoseHealthyShortLook: `treasury diagnose` on a healthy node
// with no Prometheus (two scrapes a second apart) never warns or pages; what
// the records decide is ok, and what needs a window of history (the lag p95
// over 5m) is unknown, exit 3, with a warning saying what would decide it.
func TestTreasuryDiagnoseHealthyShortLook(t *testing.T) {
	n := nodetest.Start(t)
	code, out, errOut := runTreasury(t, nil, "--rpc", n.URL(), "-o", "json", "treasury", "diagnose", "--log-glob", t.TempDir()+"/*.log")
	var r tbops.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), errOut)
	reportcheck.Valid(t, r)
	assert.Equal(t, tbops.StatusUnknown, r.Status, "warnings: %v", r.Warnings)
	assert.Equal(t, 3, code)
	assert.Empty(t, r.Firing())
	for _, s := range r.Symptoms {
		want := tbops.StatusOK
		if s.ID == treasury.SymptomLag {
			want = tbops.StatusUnknown
		}
		assert.Equal(t, want, s.Status, s.ID)
	}
	assert.Regexp(t, `treasury_disbursement_lag_seconds_bucket: only \S+ of the 5m window observed: pass --prom URL, or run tbops serve`, strings.Join(r.Warnings, "\n"))
	assert.Equal(t, "scrape "+n.MetricsURL(), r.Scope)
}

// jqBinary is the real jq. It is skipped when missing, except with CI=true,
// where the test fails: CI must run the runbook's own jq lines.
func jqBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("jq")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("jq not found on PATH and CI=true: install it (Debian: apt-get install jq)")
		}
		t.Skip("jq not found on PATH; CI=true makes this a failure")
	}
	return p
}

// runJQ runs jq with args on input and returns its output, trimmed, with
// object keys sorted (-S) so that equal JSON compares equal.
func runJQ(t *testing.T, input string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard, not a timing
	defer cancel()
	cmd := exec.CommandContext(ctx, jqBinary(t), append([]string{"-S"}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "jq %v: %s\ninput: %s", args, out, input)
	return strings.TrimSpace(string(out))
}

// rawResult is what the node itself answers to method with params: what
// contract-cli prints, and what the runbook's jq lines were written against.
func rawResult(t *testing.T, url, method string, params map[string]any) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&env))
	require.NotEmpty(t, env.Result, method)
	return string(env.Result)
}

// TestTreasuryRunbookJQLines runs every jq line of the runbook's Treasury Stuck
// section against tbops's -o json output with the real jq, and against what the
// node returns: both must give the same answer, and the answer the runbook
// expects. The node's clock is frozen at the real time, so that jq's `now`
// (Step 2) agrees with the records' ages and the executor does not tick
// between the two reads.
func TestTreasuryRunbookJQLines(t *testing.T) {
	jqBinary(t)
	clk := nodetest.NewFakeClock(time.Now().Truncate(time.Second))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	cases := []struct {
		step   string
		args   []string // tbops treasury …
		method string
		params map[string]any
		jq     []string
		want   string
	}{
		{"Step 1", []string{"balance"}, "gov.treasury.balance", nil, []string{".executor.lease_holder"}, `"node_a"`},
		{"Step 1", []string{"balance"}, "gov.treasury.balance", nil, []string{".executor"}, ""},
		{"Step 2", []string{"list", "--limit", "200", "--status", "queued"}, "gov.treasury.disbursements", map[string]any{"limit": 200, "status": "queued"},
			[]string{"-c", ".disbursements[] | select(.created_at < (now - 3600)) | {id, created_at, updated_at} | .id"}, "4541\n4542\n4543"},
		{"Step 2", []string{"list", "--limit", "200", "--status", "queued"}, "gov.treasury.disbursements", map[string]any{"limit": 200, "status": "queued"},
			[]string{".disbursements | length"}, "8"},
		{"Step 3", []string{"show", "--id", "4541"}, "gov.treasury.disbursement", map[string]any{"id": 4541}, []string{"-c", ".proposal.deps"}, "[4540]"},
		{"Step 3", []string{"show", "--id", "4540"}, "gov.treasury.disbursement", map[string]any{"id": 4540}, []string{"-r", ".status.state"}, "rolled_back"},
		{"Step 5", []string{"balance"}, "gov.treasury.balance", nil, []string{"-c", "{balance}"}, `{"balance":9500000000000}`},
		{"Step 5", []string{"list", "--status", "queued", "--limit", "200"}, "gov.treasury.disbursements", map[string]any{"limit": 200, "status": "queued"},
			[]string{".disbursements | map(.amount) | add"}, "370000000000"},
		{"Path A", []string{"show", "--id", "4541"}, "gov.treasury.disbursement", map[string]any{"id": 4541}, []string{"-c", "{id: .id, deps: .proposal.deps}"}, `{"deps":[4540],"id":4541}`},
		{"Path A", []string{"show", "--id", "4542"}, "gov.treasury.disbursement", map[string]any{"id": 4542}, []string{"-r", ".proposal.deps[]"}, "4540\n4490"},
		{"Path B", []string{"balance"}, "gov.treasury.balance", nil, []string{".balance"}, "9500000000000"},
		{"Path B", []string{"list", "--status", "queued"}, "gov.treasury.disbursements", map[string]any{"status": "queued"},
			[]string{"[.disbursements[].amount] | add"}, "370000000000"},
		{"Path C", []string{"balance"}, "gov.treasury.balance", nil, []string{"-r", ".executor.last_error"}, "null"},
	}
	for _, tc := range cases {
		t.Run(tc.step+" "+strings.Join(tc.jq, " "), func(t *testing.T) {
			code, out, errOut := runTreasury(t, nil, append([]string{"--rpc", n.URL(), "-o", "json", "treasury"}, tc.args...)...)
			require.Equal(t, 0, code, errOut)
			got := runJQ(t, out, tc.jq...)
			assert.Equal(t, runJQ(t, rawResult(t, n.URL(), tc.method, tc.params), tc.jq...), got, "tbops and the node disagree")
			if tc.want != "" {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

// TestTreasuryJSONIsTheRecord: balance, list and show -o json print what the
// node returns, field for field (missing and null stay null, never 0).
func TestTreasuryJSONIsTheRecord(t *testing.T) {
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	same := func(raw, out string) {
		t.Helper()
		var want, got any
		require.NoError(t, json.Unmarshal([]byte(raw), &want))
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		assert.Equal(t, want, got)
	}
	cli := func(args ...string) string {
		t.Helper()
		code, out, errOut := runTreasury(t, nil, append([]string{"--rpc", n.URL(), "-o", "json", "treasury"}, args...)...)
		require.Equal(t, 0, code, errOut)
		return out
	}
	balance := cli("balance")
	same(rawResult(t, n.URL(), "gov.treasury.balance", nil), balance)
	var b struct {
		Executor map[string]any `json:"executor"`
	}
	require.NoError(t, json.Unmarshal([]byte(balance), &b))
	assert.Contains(t, b.Executor, "last_error_at")
	assert.Nil(t, b.Executor["last_error_at"], "the node sent null: missing is null, never 0")

	same(rawResult(t, n.URL(), "gov.treasury.disbursements", map[string]any{"limit": 500}), cli("list", "--limit", "500"))
	same(rawResult(t, n.URL(), "gov.treasury.disbursements", map[string]any{"status": "queued", "limit": 2}), cli("list", "--status", "queued", "--limit", "2"))
	for _, id := range []int{4490, 4514, 4515, 4540, 4541, 4543} {
		same(rawResult(t, n.URL(), "gov.treasury.disbursement", map[string]any{"id": id}), cli("show", "--id", strconv.Itoa(id)))
	}
}

// TestTreasuryJSONReferenceNode: a reference node's records (nested, tagged
// status, whole BLOCK) are printed in the protocol's shape, so the runbook's
// jq paths work on them too.
func TestTreasuryJSONReferenceNode(t *testing.T) {
	jqBinary(t)
	n := nodetest.Start(t, nodetest.WithScenarioName("treasury-reference-node"))
	code, out, errOut := runTreasury(t, nil, "--rpc", n.URL(), "-o", "json", "treasury", "show", "--id", "4515")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, `{"amount":50000000000,"deps":[4490],"id":4515,"state":"queued"}`,
		runJQ(t, out, "-c", "{id: .id, deps: .proposal.deps, state: .status.state, amount}"))
	code, out, errOut = runTreasury(t, nil, "--rpc", n.URL(), "-o", "json", "treasury", "balance")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "9500000000000", runJQ(t, out, ".balance"))
	assert.Equal(t, "null", runJQ(t, out, ".executor.last_error"), "the reference node omits it: null")
}
