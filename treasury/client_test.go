package treasury_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
	"github.com/theblock/tbops/treasury"
)

func TestClientPagingAndErrors(t *testing.T) {
	n := nodetest.Start(t)
	c, err := treasury.NewClient(n.URL())
	require.NoError(t, err)
	ctx := context.Background()

	p, err := c.Disbursements(ctx, treasury.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, p.Disbursements, 33)
	assert.Nil(t, p.NextCursor)

	var ids []uint64
	for d, err := range c.All(ctx, treasury.ListOptions{Limit: 4}) {
		require.NoError(t, err)
		ids = append(ids, d.ID)
	}
	assert.Len(t, ids, 33)
	assert.Equal(t, uint64(4490), ids[0])
	assert.Len(t, n.Calls(treasury.MethodDisbursements), 1+9)

	q, err := c.Disbursements(ctx, treasury.ListOptions{Status: treasury.StateQueued, Limit: 2})
	require.NoError(t, err)
	assert.Len(t, q.Disbursements, 2)
	assert.Equal(t, int64(5), q.Total)
	require.NotNil(t, q.NextCursor)

	calls := len(n.Calls(treasury.MethodDisbursements))
	_, err = c.Disbursements(ctx, treasury.ListOptions{Status: "stuck"})
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	require.ErrorContains(t, err, `status "stuck"`)
	_, err = c.Disbursements(ctx, treasury.ListOptions{Limit: 501})
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	_, err = c.Rollback(ctx, 4514, "")
	require.ErrorIs(t, err, treasury.ErrInvalidArgument)
	assert.Len(t, n.Calls(treasury.MethodDisbursements), calls, "refused before anything was sent")
	assert.Empty(t, n.Calls(treasury.MethodRollback))

	_, err = c.Disbursement(ctx, 999_999)
	require.ErrorIs(t, err, treasury.ErrNotFound)
	var ce *treasury.CallError
	require.ErrorAs(t, err, &ce, "the rpc package's *CallError, through the treasury's errors")
	assert.Equal(t, treasury.MethodDisbursement, ce.Method)

	_, err = c.Rollback(ctx, 4490, "nope")
	require.ErrorIs(t, err, treasury.ErrInvalidParams, "finalized is refused")
	_, err = c.Rollback(ctx, 999_999, "nope")
	require.ErrorIs(t, err, treasury.ErrNotFound)
	res, err := c.Rollback(ctx, 4514, "operator request")
	require.NoError(t, err)
	assert.True(t, res.OK)
	_, err = c.Rollback(ctx, 4514, "again")
	require.ErrorIs(t, err, treasury.ErrInvalidParams, "rolled_back is refused")

	// A rollback is never retried, even when the node fails.
	n.FailMethod(treasury.MethodRollback, -32603, "boom")
	before := len(n.Calls(treasury.MethodRollback))
	_, err = c.Rollback(ctx, 4515, "x")
	require.Error(t, err)
	assert.Len(t, n.Calls(treasury.MethodRollback), before+1)
}

// TestNewClient: the rpc options configure the client; an invalid one is an
// error at construction, as is a URL that is not http(s).
func TestNewClient(t *testing.T) {
	n := nodetest.Start(t)
	c, err := treasury.NewClient(n.URL(), rpc.WithToken("t0ken"), rpc.WithRetries(1), rpc.WithTimeout(time.Second))
	require.NoError(t, err)
	_, err = c.Balance(context.Background())
	require.NoError(t, err)

	_, err = treasury.NewClient(n.URL(), rpc.WithRetries(0))
	require.ErrorContains(t, err, "WithRetries(0)")
	_, err = treasury.NewClient("ftp://node:3030/")
	require.ErrorContains(t, err, "want an http:// or https:// URL")

	rc, err := rpc.NewClient(n.URL())
	require.NoError(t, err)
	shared := treasury.NewClientFromRPC(rc)
	assert.Equal(t, rc.URL(), shared.URL())
	_, err = shared.Balance(context.Background())
	require.NoError(t, err)
}

// TestBalanceMissingIsNull: what the node sent as null, or did not send,
// stays nil and encodes as null, never 0.
func TestBalanceMissingIsNull(t *testing.T) {
	var b treasury.Balance
	require.NoError(t, json.Unmarshal([]byte(`{"balance": 5, "executor": {"last_error": null, "last_error_at": null, "last_success_at": 1700000000}}`), &b))
	require.NotNil(t, b.Executor)
	assert.Nil(t, b.Executor.LastErrorAt)
	assert.Nil(t, b.Executor.PendingMatured)
	require.NotNil(t, b.Executor.LastSuccessAt)
	assert.Equal(t, int64(1_700_000_000), *b.Executor.LastSuccessAt)
	out, err := json.Marshal(b.Executor)
	require.NoError(t, err)
	assert.JSONEq(t, `{"last_error": null, "last_error_at": null, "last_success_at": 1700000000, "last_tick_at": null,
		"pending_matured": null, "staged_intents": null, "lease_holder": null, "lease_expires_at": null}`, string(out))
}

func TestClientMalformedRecordIsSkippedNotFatal(t *testing.T) {
	n := nodetest.Start(t)
	n.SetFault(nodetest.Fault{Method: treasury.MethodDisbursements, Body: `{"jsonrpc":"2.0","id":1,"result":{"disbursements":[` +
		`{"id":1,"amount":5,"status":{"state":"queued","changed_at":1}},{"id":"x"},{"id":3,"status":{"state":"exploded"}}],"next_cursor":null,"total":3}}`})
	c, err := treasury.NewClient(n.URL())
	require.NoError(t, err)
	p, err := c.Disbursements(context.Background(), treasury.ListOptions{})
	require.NoError(t, err)
	require.Len(t, p.Disbursements, 1)
	require.Len(t, p.Invalid, 2)
	assert.Contains(t, p.Invalid[1].Err, `unknown state "exploded"`)
	r, err := treasury.Diagnose(context.Background(), c, nil, treasury.Options{LogGlobs: []string{t.TempDir() + "/*.log"}})
	require.NoError(t, err)
	assert.True(t, path(t, r, "D").Matched)
}

func TestDecodeReferenceShapes(t *testing.T) {
	d, err := treasury.DecodeDisbursement([]byte(`{"deps":[7,8],"disbursement":{"id":9,"destination":"ct1a","amount_ct":1.5,"amount_it":0,
		"memo":"m","scheduled_epoch":3,"created_at":100,"status":{"RolledBack":{"reason":"veto","rolled_back_at":200,"prior_tx":"0xab"}}}}`))
	require.NoError(t, err)
	assert.Equal(t, treasury.StateRolledBack, d.Status.State)
	assert.Equal(t, "veto", d.Status.Reason)
	require.NotNil(t, d.Status.ChangedAt)
	assert.Equal(t, int64(200), *d.Status.ChangedAt)
	assert.Equal(t, tbops.Amount(1_500_000), d.Amount)
	assert.Equal(t, []uint64{7, 8}, d.Proposal.Deps)

	d, err = treasury.DecodeDisbursement([]byte(`{"id":4,"amount":12,"status":{"Queued":{"queued_at":50}}}`))
	require.NoError(t, err)
	assert.Equal(t, treasury.StateQueued, d.Status.State)

	// A variant without a timestamp: changed_at is null, never 0.
	v, err := treasury.DecodeDisbursement([]byte(`{"deps":[],"disbursement":{"id":5,"amount_ct":1,"created_at":100,"status":{"Timelocked":{"ready_epoch":9}}}}`))
	require.NoError(t, err)
	assert.Nil(t, v.Status.ChangedAt)
	out, err := json.Marshal(v)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"changed_at":null`)
	assert.Equal(t, tbops.AmountFromBLOCK(12), d.Amount, "a tagged status marks a reference record: whole BLOCK")

	d, err = treasury.DecodeDisbursement([]byte(`{"id":4,"amount":12,"status":{"state":"queued","changed_at":5},"proposal":{"title":"t","deps":[1]}}`))
	require.NoError(t, err)
	assert.Equal(t, tbops.Amount(12), d.Amount)

	for _, bad := range []string{`[]`, `{"id":-1,"status":"queued"}`, `{"id":1}`, `{"id":1,"status":{"A":{},"B":{}}}`,
		`{"id":1,"status":"queued","amount":1.5}`, `{"id":1,"status":"queued","proposal":{"deps":["x"]}}`} {
		_, err := treasury.DecodeDisbursement([]byte(bad))
		require.ErrorIs(t, err, treasury.ErrRecord, bad)
	}
}

func FuzzDecodeDisbursement(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"destination":"ct1","amount":5,"memo":"","scheduled_epoch":1,"created_at":1,"updated_at":2,"status":{"state":"queued","changed_at":2},"proposal":{"title":"t","deps":[2,3]}}`,
		`{"deps":[1],"disbursement":{"id":2,"amount_ct":1e3,"status":{"Finalized":{"tx_hash":"0x","executed_at":1,"finalized_at":2}}}}`,
		`{"id":3,"status":"RolledBack","amount":"12"}`, `{"id":1e30}`, `{"disbursement":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := treasury.DecodeDisbursement(raw)
		if err != nil {
			require.ErrorIs(t, err, treasury.ErrRecord)
			return
		}
		require.True(t, d.Status.State.Valid())
		// What decodes re-encodes to the protocol shape and decodes the same.
		b, err := json.Marshal(d)
		require.NoError(t, err)
		d2, err := treasury.DecodeDisbursement(b)
		require.NoError(t, err)
		require.Equal(t, d.ID, d2.ID)
		require.Equal(t, d.Amount, d2.Amount)
		require.Equal(t, d.Status.State, d2.Status.State)
	})
}

// FuzzDecodeBalance: any balance answer decodes or is a RecordError naming
// the field; what decodes re-encodes (nulls as null) and decodes the same.
func FuzzDecodeBalance(f *testing.F) {
	for _, s := range []string{
		`{"balance":9500000000000,"executor":{"last_error":null,"last_error_at":null,"last_success_at":1,"last_tick_at":1,"pending_matured":2,"staged_intents":1,"lease_holder":"node_a","lease_expires_at":9}}`,
		`{"balance_ct":9.5e6,"executor":{"last_success_at":1}}`, `{"balance":"12"}`, `{"balance":1,"executor":{"pending_matured":"x"}}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b treasury.Balance
		if err := json.Unmarshal(raw, &b); err != nil {
			return // a RecordError, or invalid JSON that json refuses before us
		}
		out, err := json.Marshal(b)
		require.NoError(t, err)
		var again treasury.Balance
		require.NoError(t, json.Unmarshal(out, &again), "%s", out)
		require.Equal(t, b, again)
	})
}

func FuzzMatchLogLine(f *testing.F) {
	for _, s := range []string{"ERROR treasury_executor: x", "WARN DisbursementError", "INFO treasury_executor", "", "ERRORtreasury_executo"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got := treasury.MatchLogLine(line)
		s := string(line)
		want := (strings.Contains(s, "treasury_executor") || strings.Contains(s, "DisbursementError")) &&
			(strings.Contains(s, "ERROR") || strings.Contains(s, "WARN"))
		require.Equal(t, want, got)
		if got {
			require.True(t, treasury.IsExecutorLine(line))
		}
		_ = bytes.Clone(line)
	})
}

func TestScanLogsTailAndProblems(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.log"), []byte("ERROR treasury_executor 1\nWARN DisbursementError 2\nINFO treasury_executor 3\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d.log"), 0o755))
	s, err := treasury.ScanLogs([]string{filepath.Join(dir, "*.log"), filepath.Join(dir, "none/*.log")}, treasury.MatchLogLine, 1, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, s.Matched)
	require.Len(t, s.Lines, 1)
	assert.Equal(t, "WARN DisbursementError 2", s.Lines[0].Line)
	assert.Len(t, s.Problems, 2)
	_, err = treasury.ScanLogs([]string{"["}, treasury.MatchLogLine, 1, 0)
	require.Error(t, err)
}
