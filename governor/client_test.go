package governor_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

func startSim(t *testing.T, scenario string) (*nodetest.Node, *governor.Client) {
	t.Helper()
	clk := nodetest.NewFakeClock(time.Unix(1_780_000_000, 0))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
	c, err := governor.NewClient(n.URL(), rpc.WithTimeout(2*time.Second))
	require.NoError(t, err)
	return n, c
}

func TestNewClientRefusesBadOptions(t *testing.T) {
	_, err := governor.NewClient("http://127.0.0.1:1/", rpc.WithRetries(0))
	assert.ErrorContains(t, err, "WithRetries(0)")
	_, err = governor.NewClient("127.0.0.1:3030")
	assert.ErrorContains(t, err, "want an http:// or https:// URL")
}

func TestClientStatusShapes(t *testing.T) {
	ctx := context.Background()
	for _, sc := range []string{"healthy", "governor-reference"} {
		t.Run(sc, func(t *testing.T) {
			_, c := startSim(t, sc)
			st, err := c.Status(ctx)
			require.NoError(t, err)
			assert.Equal(t, sc == "governor-reference", st.Reference)
			assert.True(t, st.Enabled)
			assert.False(t, st.ShadowOnly)
			assert.True(t, st.EconomicsAutopilot)
			assert.Equal(t, uint64(10_000), st.Epoch)
			assert.Len(t, st.LastEconomicsSnapshotHash, 64)
			assert.Equal(t, int64(612_000), st.TelemetryGaugesPPM.Utilization["storage"])
			assert.Equal(t, int64(95_500), st.TelemetryGaugesPPM.ProviderMargin["energy"])
			assert.Equal(t, []string{"ad", "compute", "energy", "storage"}, st.TelemetryGaugesPPM.Markets())
			g, ok := st.Gate("ad_presence")
			require.True(t, ok, "ad gate names normalised")
			if sc == "governor-reference" {
				assert.Equal(t, "ad_targeting_presence", g.RawName)
			}
			dir, s, req := g.Progress()
			assert.Equal(t, "enter", dir)
			assert.Equal(t, int64(2), s)
			assert.Equal(t, int64(6), req)
			e, ok := st.Gate("economics")
			require.True(t, ok)
			dir, s, _ = e.Progress()
			assert.Equal(t, "exit", dir)
			assert.Equal(t, int64(0), s)
			require.Len(t, st.Pending, 1)
			assert.Equal(t, "naming-10000", st.Pending[0].ID)
			assert.Len(t, st.Pending[0].SnapshotHash, 64)
		})
	}
}

func TestClientIntentsAndSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, sc := range []string{"healthy", "governor-reference"} {
		t.Run(sc, func(t *testing.T) {
			n, c := startSim(t, sc)
			all, err := c.Intents(ctx, "")
			require.NoError(t, err)
			assert.Len(t, all, 4)
			eco, err := c.Intents(ctx, "economics")
			require.NoError(t, err)
			require.Len(t, eco, 1)
			assert.Equal(t, "econ-9998", eco[0].ID)
			ad, err := c.Intents(ctx, "ad_targeting_contextual")
			require.NoError(t, err)
			require.Len(t, ad, 1)
			assert.Equal(t, "ad_contextual", ad[0].Gate)
			if sc == "governor-reference" {
				assert.Len(t, n.Calls("governor.decisions"), 3, "fell back to governor.decisions")
			}
			// governor.snapshot: same hash as the file and as the intent, attestation ignored.
			d, err := c.Snapshot(ctx, 9998)
			require.NoError(t, err)
			assert.Contains(t, d.Object, "attestation")
			h, err := d.Hash()
			require.NoError(t, err)
			assert.Equal(t, eco[0].SnapshotHash, h)
			raw, err := os.ReadFile(filepath.Join(n.GovernorDecisionsDir(), governor.FileName(9998)))
			require.NoError(t, err)
			fh, err := governor.HashBytes(raw)
			require.NoError(t, err)
			assert.Equal(t, h, fh)
			s, err := d.Economics()
			require.NoError(t, err)
			assert.Equal(t, 48120.0, s.EpochTxCount)
			_, err = c.Snapshot(ctx, 1)
			assert.ErrorIs(t, err, governor.ErrNotFound)
		})
	}
}

func TestSubmitIntentIsNotRetried(t *testing.T) {
	ctx := context.Background()
	n, c := startSim(t, "healthy")
	n.SetFault(nodetest.Fault{Method: "governor.submit_intent", ErrorCode: -32001, ErrorMessage: "rate limited", HTTPStatus: 429})
	_, err := c.SubmitIntent(ctx, "economics", "test")
	require.ErrorIs(t, err, governor.ErrRateLimited)
	var callErr *rpc.CallError
	require.True(t, errors.As(err, &callErr), "the transport's error, with method and URL")
	assert.Equal(t, "governor.submit_intent", callErr.Method)
	assert.Len(t, n.Calls("governor.submit_intent"), 1, "a write is sent once")
	n.SetFault(nodetest.Fault{Method: "governor.submit_intent"})
	_, err = c.SubmitIntent(ctx, "", "x")
	assert.ErrorContains(t, err, "gate is required")
	assert.ErrorIs(t, err, governor.ErrInvalidParams)
	_, err = c.SubmitIntent(ctx, "economics", " ")
	assert.ErrorContains(t, err, "reason is required")
	_, err = c.SubmitIntent(ctx, "nope", "x")
	assert.ErrorIs(t, err, governor.ErrInvalidParams)
	var rpcErr *governor.RPCError
	assert.True(t, errors.As(err, &rpcErr))

	in, err := c.SubmitIntent(ctx, "economics", "incident 42")
	require.NoError(t, err)
	assert.Equal(t, "exit", in.Action)
	assert.Equal(t, "pending", in.State)
	var p map[string]string
	calls := n.Calls("governor.submit_intent")
	require.NoError(t, json.Unmarshal(calls[len(calls)-1], &p))
	assert.Equal(t, map[string]string{"gate": "economics", "action": "exit", "reason": "incident 42"}, p)
	// The new decision file exists and matches the intent's hash.
	d, err := c.Snapshot(ctx, in.Epoch)
	require.NoError(t, err)
	h, _ := d.Hash()
	assert.Equal(t, in.SnapshotHash, h)
}

func TestRollbackPlanAndApply(t *testing.T) {
	ctx := context.Background()
	n, c := startSim(t, "healthy")
	st, err := c.Status(ctx)
	require.NoError(t, err)
	env := governor.Mode{Enabled: true, ShadowOnly: false, Set: []string{governor.EnvEnabled, governor.EnvShadowOnly}}
	plan := governor.PlanRollback(governor.RollbackInput{Status: st, Env: &env, Reason: "bad sample"})
	require.Len(t, plan.Steps, 5)
	assert.Equal(t, "economics", plan.Gate)
	want := []string{"1", "2", "3", "3b", "4"}
	for i, s := range plan.Steps {
		assert.Equal(t, want[i], s.Runbook)
		assert.False(t, s.Done)
		assert.True(t, s.Needed, s.Runbook)
	}
	assert.Contains(t, plan.Steps[0].Current, "enabled=true")
	assert.Contains(t, plan.Steps[0].Current, "this host's environment says apply")
	assert.Contains(t, plan.Steps[0].Command, "TB_GOVERNOR_ENABLED=0")
	assert.Contains(t, plan.Steps[1].Command, "TB_GOVERNOR_SHADOW_ONLY=1")
	assert.Contains(t, plan.Steps[2].Command, "--reason 'bad sample' --apply")
	assert.Equal(t, "economics_autopilot=true", plan.Steps[3].Current)
	for _, a := range plan.Actions() {
		assert.True(t, a.DryRun)
	}
	assert.Empty(t, n.Calls("governor.submit_intent"), "planning calls nothing")

	done, err := governor.ExecuteRollback(ctx, c, plan)
	require.NoError(t, err)
	require.NotNil(t, done.Submitted)
	assert.True(t, done.Steps[2].Done)
	assert.Contains(t, done.Steps[3].Result, "still true")
	assert.Len(t, n.Calls("governor.submit_intent"), 1)
	assert.False(t, done.Actions()[2].DryRun)

	// In shadow mode step 2 is not needed; another gate confirms by state.
	_, c2 := startSim(t, "governor-shadow-mode")
	st, err = c2.Status(ctx)
	require.NoError(t, err)
	plan = governor.PlanRollback(governor.RollbackInput{Status: st, Gate: "ad_targeting_contextual"})
	assert.Equal(t, "ad_contextual", plan.Gate)
	assert.False(t, plan.Steps[1].Needed)
	assert.Equal(t, governor.DefaultRollbackReason, plan.Reason)
	assert.Contains(t, plan.Steps[3].Current, "gate ad_contextual state active")
}

func TestModeFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cases := []struct {
		kv   map[string]string
		want string
		err  string
	}{
		{nil, "disabled", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "1"}, "shadow", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "true"}, "shadow", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": " TRUE "}, "shadow", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "0"}, "disabled", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "false"}, "disabled", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "1", "TB_GOVERNOR_SHADOW_ONLY": "0"}, "apply", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "1", "TB_GOVERNOR_SHADOW_ONLY": "false"}, "apply", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "1", "TB_GOVERNOR_SHADOW_ONLY": "1"}, "shadow", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "1", "TB_GOVERNOR_SHADOW_ONLY": ""}, "shadow", ""},
		{map[string]string{"TB_GOVERNOR_ENABLED": "yes"}, "", `TB_GOVERNOR_ENABLED="yes": want 1/true`},
		{map[string]string{"TB_GOVERNOR_ENABLED": "on"}, "", "TB_GOVERNOR_ENABLED"},
		{map[string]string{"TB_GOVERNOR_ENABLED": "1", "TB_GOVERNOR_SHADOW_ONLY": "no"}, "", `TB_GOVERNOR_SHADOW_ONLY="no"`},
		{map[string]string{"TB_GOVERNOR_SHADOW_ONLY": "2"}, "", "TB_GOVERNOR_SHADOW_ONLY"},
	}
	for _, c := range cases {
		m, err := governor.ModeFromEnv(env(c.kv))
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, c.kv)
			var ee *governor.EnvError
			assert.True(t, errors.As(err, &ee))
			continue
		}
		require.NoError(t, err, c.kv)
		assert.Equal(t, c.want, m.String(), c.kv)
	}
	m, err := governor.ModeFromEnv(nil)
	require.NoError(t, err)
	assert.Equal(t, "disabled", m.String())
}

func TestAuditWithoutSource(t *testing.T) {
	n, c := startSim(t, "healthy")
	r, err := governor.Audit(context.Background(), c, nil, governor.Options{Dir: n.GovernorDecisionsDir()})
	require.NoError(t, err)
	assert.Equal(t, "unknown", string(r.Status))
	assert.Contains(t, r.Warnings, "no metrics source: the economics gauges were not compared with the decision sample")
	assert.False(t, symptom(t, r, governor.SymStatusHashMismatch).Firing)
	assert.Equal(t, "ok", string(symptom(t, r, governor.SymStatusHashMismatch).Status))
	// A node that is down: a report with unknowns, no error.
	n.Close()
	r, err = governor.Audit(context.Background(), c, nil, governor.Options{})
	require.NoError(t, err)
	assert.Equal(t, "unknown", string(r.Status))
	assert.NotEmpty(t, r.Warnings)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = governor.Audit(ctx, c, nil, governor.Options{})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = governor.Audit(context.Background(), nil, nil, governor.Options{})
	assert.Error(t, err)
}

// Missing is null: what the node did not send, or a check could not read, is
// written as null, never as "" or 0 (the CLI prints these with -o json).
func TestMissingIsNullInJSON(t *testing.T) {
	var st governor.Status
	require.NoError(t, json.Unmarshal([]byte(`{"enabled":true,"last_economics_snapshot_hash":null,"gates":[],
		"pending":[{"id":"x-1","gate":"economics","action":"exit","epoch":3}]}`), &st))
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"last_economics_snapshot_hash":null`)
	assert.Contains(t, string(raw), `"economics_sample":null`)
	assert.Contains(t, string(raw), `"snapshot_hash":null`, "the pending intent has none")
	var back governor.Status
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, st, back)

	checks := governor.CheckTiers(governor.AdSignals{}, st)
	raw, err = json.Marshal(checks[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"tier":"contextual","gate":"ad_contextual","ready_ppm":null,"metric_streak":null,"gate_streak":null,
		"streak_required":null,"known":false,"match":false,"ready":false,"missing":"governor.status has no gate ad_contextual"}`, string(raw))

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "epoch-7.json"), []byte(`{`), 0o644))
	raw, err = json.Marshal(governor.VerifyFile(filepath.Join(dir, "epoch-7.json"), governor.VerifyOptions{}))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"epoch":null`, "neither the name nor the content gives an epoch")
	good := filepath.Join(dir, governor.FileName(0))
	require.NoError(t, os.WriteFile(good, []byte(`{"action":"enter","epoch":0,"gate":"g","intent_id":"","metrics_raw":null,"metrics_summary":null,"params_patch":{},"reason":""}`), 0o644))
	raw, err = json.Marshal(governor.VerifyFile(good, governor.VerifyOptions{}))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"epoch":0`, "epoch 0 is a real epoch")
}
