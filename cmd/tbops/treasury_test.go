package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
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

func TestDoctorTreasuryHealthy(t *testing.T) {
	n := nodetest.Start(t)
	code, out, errOut := runTreasury(t, nil, "--rpc", n.URL(), "-o", "json", "treasury", "diagnose", "--log-glob", t.TempDir()+"/*.log")
	var r struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r), errOut)
	assert.Equal(t, "ok", r.Status, "warnings: %v", r.Warnings)
	assert.Equal(t, 0, code)
}
