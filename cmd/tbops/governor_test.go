package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
)

func govSim(t *testing.T, scenario string) (*nodetest.Node, map[string]string) {
	t.Helper()
	n := nodetest.Start(t, nodetest.WithScenarioName(scenario))
	return n, map[string]string{"TB_RPC_URL": n.URL()}
}

func TestGovernorStatus(t *testing.T) {
	_, env := govSim(t, "healthy")
	env["TB_GOVERNOR_ENABLED"] = "1"
	code, out, errOut := runCLI(t, env, "governor", "status")
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"governor: apply", "economics_autopilot=true", "last_economics_snapshot_hash: ", "telemetry gauges (ppm):",
		"storage", "612000 (61.2%)", "tx volume 1250000 BLOCK", "ad_presence", "enter 2/6", "naming-10000", "this host's environment: shadow (TB_GOVERNOR_ENABLED)"} {
		assert.Contains(t, out, want)
	}
	code, out, _ = runCLI(t, env, "governor", "status", "-o", "json")
	require.Equal(t, 0, code)
	var st governor.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Len(t, st.LastEconomicsSnapshotHash, 64)

	env["TB_GOVERNOR_SHADOW_ONLY"] = "maybe"
	code, _, errOut = runCLI(t, env, "governor", "status")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, `TB_GOVERNOR_SHADOW_ONLY="maybe"`)
}

func TestGovernorIntents(t *testing.T) {
	_, env := govSim(t, "governor-reference")
	code, out, errOut := runCLI(t, env, "governor", "intents", "--gate", "economics")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "econ-9998")
	assert.NotContains(t, out, "naming-10000")
	code, out, _ = runCLI(t, env, "governor", "intents", "-o", "json")
	require.Equal(t, 0, code)
	var ins []governor.Intent
	require.NoError(t, json.Unmarshal([]byte(out), &ins))
	assert.Len(t, ins, 4)
	code, out, _ = runCLI(t, env, "governor", "intents", "--gate", "storage", "-o", "json")
	require.Equal(t, 0, code)
	assert.Equal(t, "[]\n", out)
	code, _, errOut = runCLI(t, map[string]string{"TB_RPC_URL": "http://127.0.0.1:1/"}, "--timeout", "200ms", "governor", "intents")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "governor.intents")
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line")
}

func TestGovernorHash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"action":"enter","epoch":7,"gate":"operational","intent_id":"op-1","metrics_raw":null,"metrics_summary":"ok","params_patch":{},"reason":"tests"}`), 0o644))
	code, out, errOut := runCLI(t, nil, "governor", "hash", p)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "4ea8dc130a2256e030f460c604a77f1a76a96a144a1d92ccd51038543cf997b0\n", out)
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"a":1,"a":2}`), 0o644))
	code, _, errOut = runCLI(t, nil, "governor", "hash", bad)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, bad)
	assert.Contains(t, errOut, "duplicate object key")
	code, _, errOut = runCLI(t, nil, "governor", "hash", filepath.Join(dir, "missing.json"))
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "missing.json")
	code, _, _ = runCLI(t, nil, "governor", "hash")
	assert.Equal(t, 3, code)
}

func TestGovernorVerify(t *testing.T) {
	n, _ := govSim(t, "healthy")
	dir := n.GovernorDecisionsDir()
	code, out, errOut := runCLI(t, nil, "governor", "verify", "--dir", dir)
	require.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "4 files, 4 ok, 0 failed, 4 signed")
	assert.Contains(t, out, governor.FileName(9998))
	code, _, _ = runCLI(t, nil, "governor", "verify", "--dir", dir, "--trusted-key", strings.Repeat("ab", 32))
	assert.Equal(t, 2, code, "untrusted signer")

	// One bad file fails the run, names the file, and the others still verify.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "epoch-5.json"), []byte(`{}`), 0o644))
	require.NoError(t, os.Remove(filepath.Join(dir, governor.FileName(9994))+".sig"))
	code, out, _ = runCLI(t, nil, "governor", "verify", "--dir", dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "FAIL  "+filepath.Join(dir, "epoch-5.json")+": bad-name")
	assert.Contains(t, out, "5 files, 4 ok, 1 failed, 3 signed, 1 unsigned")
	code, out, _ = runCLI(t, nil, "governor", "verify", "--dir", dir, "--require-signatures", "-q", "-o", "json")
	assert.Equal(t, 2, code)
	var res verifyOutput
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 2, res.Summary.Failed)
	assert.Len(t, res.Files, 5)

	code, _, errOut = runCLI(t, nil, "governor", "verify", "--dir", filepath.Join(dir, "nope"))
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "pass --dir")
	code, _, errOut = runCLI(t, nil, "governor", "verify", "--dir", dir, "--trusted-key", "xyz")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--trusted-key")
}

func TestGovernorAudit(t *testing.T) {
	for sc, want := range map[string]int{"healthy": 0, "governor-shadow-mode": 0, "governor-hash-mismatch": 2, "governor-gauge-drift": 1,
		"governor-telemetry-missing": 3} {
		n, env := govSim(t, sc)
		code, out, errOut := runCLI(t, env, "governor", "audit")
		assert.Equal(t, want, code, "%s:\n%s\n%s", sc, out, errOut)
		code, out, errOut = runCLI(t, env, "governor", "audit", "--dir", n.GovernorDecisionsDir(), "-o", "json")
		assert.Equal(t, want, code, "%s:\n%s\n%s", sc, out, errOut)
		var r tbops.Report
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		reportcheck.Valid(t, r)
		assert.Equal(t, "governor-audit", r.Runbook)
		assert.Equal(t, n.URL(), r.Target)
		assert.Contains(t, r.Scope, "scrape "+n.MetricsURL())
		assert.Empty(t, n.Calls("governor.submit_intent"), "audit changes nothing without --apply")
	}
}

// audit --apply carries out the rollback play the audit matched: the exit
// intent once, never again while it is pending; a healthy audit sends nothing.
func TestGovernorAuditApply(t *testing.T) {
	n, env := govSim(t, "healthy")
	code, _, errOut := runCLI(t, env, "governor", "audit", "--apply")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "the rollback play did not match; nothing was submitted")
	assert.Empty(t, n.Calls("governor.submit_intent"))

	n, env = govSim(t, "governor-hash-mismatch")
	code, out, errOut := runCLI(t, env, "governor", "audit", "--apply", "--reason", "incident 9", "-o", "json")
	require.Equal(t, 2, code, errOut)
	var r tbops.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	reportcheck.Valid(t, r)
	p, ok := r.Path("rollback")
	require.True(t, ok)
	var submitted bool
	for _, a := range p.Actions {
		if a.Kind == "submit" {
			submitted = !a.DryRun && strings.Contains(a.Result, "submitted")
		}
	}
	assert.True(t, submitted, "%+v", p.Actions)
	calls := n.Calls("governor.submit_intent")
	require.Len(t, calls, 1)
	assert.Contains(t, string(calls[0]), `"reason":"incident 9"`)

	code, out, _ = runCLI(t, env, "governor", "audit", "--apply")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "not submitted again")
	assert.Len(t, n.Calls("governor.submit_intent"), 1, "never replayed")
}

// status -o json: a node with no economics decision yet sends a null hash and
// no sample, and tbops prints null, never "".
func TestGovernorStatusJSONNull(t *testing.T) {
	n, env := govSim(t, "healthy")
	n.Update(func(s *nodetest.Scenario) {
		var keep []nodetest.GovernorDecision
		for _, d := range s.Governor.Decisions {
			if d.Gate != "economics" {
				keep = append(keep, d)
			}
		}
		s.Governor.Decisions = keep
	})
	code, out, errOut := runCLI(t, env, "governor", "status", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	assert.Contains(t, m, "last_economics_snapshot_hash")
	assert.Nil(t, m["last_economics_snapshot_hash"])
	assert.Contains(t, m, "economics_sample")
	assert.Nil(t, m["economics_sample"])
	code, out, _ = runCLI(t, env, "governor", "status")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "last_economics_snapshot_hash: null")
}

func TestGovernorRollback(t *testing.T) {
	n, env := govSim(t, "healthy")
	code, out, errOut := runCLI(t, env, "governor", "rollback", "--reason", "bad sample")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "plan (nothing changed")
	assert.Contains(t, out, "TB_GOVERNOR_ENABLED=0")
	assert.Contains(t, out, "TB_GOVERNOR_SHADOW_ONLY=1")
	assert.Contains(t, out, "economics_autopilot=true")
	assert.Empty(t, n.Calls("governor.submit_intent"), "no --apply: nothing submitted")

	code, out, errOut = runCLI(t, env, "governor", "rollback", "--reason", "bad sample", "--apply", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var plan governor.RollbackPlan
	require.NoError(t, json.Unmarshal([]byte(out), &plan))
	require.NotNil(t, plan.Submitted)
	assert.Equal(t, "exit", plan.Submitted.Action)
	require.Len(t, n.Calls("governor.submit_intent"), 1)

	code, _, errOut = runCLI(t, env, "governor", "rollback", "--gate", "nope")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, `--gate "nope"`)

	// The exit intent is pending now: a second --apply does not send another.
	code, out, errOut = runCLI(t, env, "governor", "rollback", "--reason", "bad sample", "--apply")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "not submitted again: exit intent economics-exit-")
	assert.Len(t, n.Calls("governor.submit_intent"), 1, "never replayed")

	n, env = govSim(t, "healthy")
	n.SetFault(nodetest.Fault{Method: "governor.submit_intent", ErrorCode: -32603, ErrorMessage: "boom"})
	code, _, errOut = runCLI(t, env, "governor", "rollback", "--apply")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "nothing was retried")
	assert.Len(t, n.Calls("governor.submit_intent"), 1)
}

func TestDoctorGovernorScenarios(t *testing.T) {
	// The simulated node replays its history first, so the telemetry that has
	// been missing for longer than the rule's 10m is decided: a warning.
	for sc, want := range map[string]int{"governor-healthy": 0, "governor-shadow-mode": 0, "governor-hash-mismatch": 2, "governor-gauge-drift": 1,
		"governor-telemetry-missing": 1} {
		code, out, _ := runCLI(t, nil, "doctor", "--scenario", sc, "--summary")
		assert.Equal(t, want, code, "%s:\n%s", sc, out)
		assert.Contains(t, out, "governor-audit")
	}
}
