package governor_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
)

// rollbackActions returns the rollback path's actions by kind.
func rollbackActions(t *testing.T, r tbops.Report) (p tbops.Path, byKind map[string][]tbops.Action) {
	t.Helper()
	p, ok := r.Path("rollback")
	require.True(t, ok, "no rollback path in %+v", r.Paths)
	byKind = map[string][]tbops.Action{}
	for _, a := range p.Actions {
		byKind[a.Kind] = append(byKind[a.Kind], a)
	}
	return p, byKind
}

func TestRunbookIsTheAudit(t *testing.T) {
	g := startGov(t, "governor-healthy")
	src := g.doctorSource(t)
	rb := governor.NewRunbook(g.c, src, governor.Options{Now: g.clk.Now})
	assert.Equal(t, governor.RunbookID, rb.ID())
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	assert.Equal(t, tbops.StatusOK, r.Status)
	assert.Equal(t, g.n.URL(), r.Target)
	assert.Equal(t, src.Name(), r.Scope, "the source the report used")
	want, _ := governor.Audit(context.Background(), g.c, src, governor.Options{Now: g.clk.Now})
	assert.Equal(t, want, r)
}

// Apply carries out what the audit planned: the exit intent, sent once with
// the runbook's reason, and the confirmation; the environment steps stay
// instructions. It never sends the exit again: not for an action already
// done, and not when the node already has one pending.
func TestApplySubmitsTheExitOnce(t *testing.T) {
	ctx := context.Background()
	g := startGov(t, "governor-hash-mismatch")
	rb := governor.NewRunbook(g.c, g.doctorSource(t), governor.Options{Now: g.clk.Now, Reason: "incident 7: replayed sample"})
	plan, err := rb.Diagnose(ctx)
	require.NoError(t, err)
	p, kinds := rollbackActions(t, plan)
	require.True(t, p.Matched)
	require.Len(t, kinds["submit"], 1)
	assert.Contains(t, kinds["submit"][0].Command, "--reason 'incident 7: replayed sample' --apply")
	assert.Empty(t, g.n.Calls("governor.submit_intent"), "Diagnose changes nothing")

	done, err := rb.Apply(ctx, plan)
	require.NoError(t, err)
	reportcheck.Valid(t, done)
	calls := g.n.Calls("governor.submit_intent")
	require.Len(t, calls, 1)
	var params map[string]string
	require.NoError(t, json.Unmarshal(calls[0], &params))
	assert.Equal(t, map[string]string{"gate": "economics", "action": "exit", "reason": "incident 7: replayed sample"}, params)
	_, kinds = rollbackActions(t, done)
	sub := kinds["submit"][0]
	assert.False(t, sub.DryRun)
	assert.Contains(t, sub.Result, "exit intent economics-exit-10001 submitted")
	chk := kinds["check"][0]
	assert.False(t, chk.DryRun)
	assert.Contains(t, chk.Result, "economics_autopilot is still true: exit intent economics-exit-10001 applies at epoch 10002")
	for _, a := range kinds["config"] {
		assert.True(t, a.DryRun, "environment steps are done on the governor's host: %+v", a)
		assert.Empty(t, a.Result)
	}
	_, before := rollbackActions(t, plan)
	assert.True(t, before["submit"][0].DryRun, "the plan given is not changed")

	// The applied report again: everything is done, nothing is sent.
	again, err := rb.Apply(ctx, done)
	require.NoError(t, err)
	assert.Equal(t, done, again)
	// The first plan again: the node has the exit pending, nothing is sent.
	again, err = rb.Apply(ctx, plan)
	require.NoError(t, err)
	_, kinds = rollbackActions(t, again)
	assert.True(t, kinds["submit"][0].DryRun)
	assert.Contains(t, kinds["submit"][0].Result, "not submitted again: exit intent economics-exit-10001 is already pending")
	assert.Len(t, g.n.Calls("governor.submit_intent"), 1, "never replayed")
}

func TestApplyDoesNothingUnmatchedOrForeign(t *testing.T) {
	ctx := context.Background()
	g := startGov(t, "healthy")
	rb := governor.NewRunbook(g.c, g.doctorSource(t), governor.Options{Now: g.clk.Now})
	r, err := rb.Diagnose(ctx)
	require.NoError(t, err)
	p, _ := rollbackActions(t, r)
	require.False(t, p.Matched)
	out, err := rb.Apply(ctx, r)
	require.NoError(t, err)
	assert.Equal(t, r, out)

	other := startGov(t, "governor-hash-mismatch")
	foreign, err := governor.NewRunbook(other.c, nil, governor.Options{Now: other.clk.Now}).Diagnose(ctx)
	require.NoError(t, err)
	_, err = rb.Apply(ctx, foreign)
	assert.ErrorContains(t, err, "about "+other.n.URL())
	wrongRunbook := tbops.NewReport("treasury-stuck", g.n.URL(), g.clk.Now())
	_, err = rb.Apply(ctx, wrongRunbook)
	assert.ErrorContains(t, err, "treasury-stuck")
	assert.Empty(t, g.n.Calls("governor.submit_intent"))
	assert.Empty(t, other.n.Calls("governor.submit_intent"))
}

// A submit that fails was still sent: it is marked done with the failure, so
// applying the result again does not send it a second time.
func TestApplyFailedSubmitIsNotReplayed(t *testing.T) {
	ctx := context.Background()
	g := startGov(t, "governor-hash-mismatch")
	rb := governor.NewRunbook(g.c, nil, governor.Options{Now: g.clk.Now})
	plan, err := rb.Diagnose(ctx)
	require.NoError(t, err)
	g.n.SetFault(nodetest.Fault{Method: "governor.submit_intent", ErrorCode: -32603, ErrorMessage: "boom"})
	out, err := rb.Apply(ctx, plan)
	require.Error(t, err)
	assert.ErrorContains(t, err, "boom")
	_, kinds := rollbackActions(t, out)
	assert.False(t, kinds["submit"][0].DryRun)
	assert.Contains(t, kinds["submit"][0].Result, "submit failed (sent once, not retried")
	assert.True(t, kinds["check"][0].DryRun, "nothing after a failed step runs")
	_, err = rb.Apply(ctx, out)
	require.NoError(t, err)
	assert.Len(t, g.n.Calls("governor.submit_intent"), 1)
}
