package receipts_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/receipts"
	"github.com/theblock/tbops/rpc"
)

func TestClientStats(t *testing.T) {
	f := start(t, "receipts-market-stalled")
	f.advance(t, 30*time.Second)
	ctx := context.Background()
	st, err := f.c.NodeStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1_200_030), st.CurrentBlockHeight)

	s, err := f.c.Stats(ctx, receipts.Compute)
	require.NoError(t, err)
	assert.Equal(t, receipts.Compute, s.Market)
	assert.Equal(t, int64(1_200_000-45), s.LastEmittedHeight)
	assert.Equal(t, int64(2_830_000), s.EmittedTotal)
	assert.Equal(t, int64(1), *s.ValidationErrors.DuplicateDetection)
	assert.Equal(t, int64(380), *s.Pending)

	s, err = f.c.Stats(ctx, receipts.Ad)
	require.NoError(t, err)
	assert.Equal(t, int64(1_200_030), s.LastEmittedHeight)
	assert.Equal(t, int64(6_940_000+20*30), s.EmittedTotal)

	cs, err := f.c.ConsensusStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, "healthy", cs.Status)
}

func TestClientUnknownMarket(t *testing.T) {
	f := start(t, "healthy")
	_, err := f.c.Stats(context.Background(), "gas")
	require.ErrorIs(t, err, receipts.ErrUnknownMarket)
	assert.Empty(t, f.node.Calls("receipts.stats"), "refused before sending")
	_, err = receipts.ParseMarket("Storage")
	require.ErrorIs(t, err, receipts.ErrUnknownMarket)

	// The node's own answer for an unknown market is -32602 naming the param.
	rc, err := rpc.NewClient(f.node.URL())
	require.NoError(t, err)
	err = rc.Read(context.Background(), "receipts.stats", map[string]string{"market": "gas"}, nil)
	require.ErrorIs(t, err, receipts.ErrInvalidParams)
	assert.Contains(t, err.Error(), `param "market"`)
	err = rc.Read(context.Background(), "receipts.stats", nil, nil)
	require.ErrorIs(t, err, receipts.ErrInvalidParams)
	assert.Contains(t, err.Error(), `param "market" is required`)
}

func TestClientValidate(t *testing.T) {
	f := start(t, "receipts-validation-errors")
	f.advance(t, 30*time.Second)
	ctx := context.Background()
	res, err := f.c.Validate(ctx, 1_199_965, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1_200_030), res.ToBlock)
	assert.Equal(t, int64(45*66), *res.Checked)
	require.Len(t, res.Invalid, 2)
	assert.Equal(t, receipts.InvalidReceipt{BlockHeight: 1_199_978, ReceiptID: "rcpt-ad-310577", Market: receipts.Ad, Reason: receipts.ReasonSignatureInvalid}, res.Invalid[0])

	_, err = f.c.Validate(ctx, -1, 0)
	require.Error(t, err)
	_, err = f.c.Validate(ctx, 10, 5)
	require.Error(t, err)
	_, err = f.c.Validate(ctx, 1_200_000, 1_300_000)
	require.ErrorIs(t, err, receipts.ErrInvalidParams)
	assert.Contains(t, err.Error(), `param "to_block"`)
	_, err = f.c.Validate(ctx, 0, 0)
	require.ErrorIs(t, err, receipts.ErrInvalidParams)
	assert.Contains(t, err.Error(), "over the limit")
}

func TestClientResetNeverRetried(t *testing.T) {
	f := start(t, "healthy")
	ctx := context.Background()
	require.NoError(t, f.c.ResetValidationState(ctx))
	assert.Equal(t, 1, f.node.Scenario().Receipts.Resets)

	f.node.SetFault(nodetest.Fault{Method: "receipts.reset_validation_state", ErrorCode: rpc.CodeInternal, HTTPStatus: 503, Body: "<html>bad gateway</html>"})
	err := f.c.ResetValidationState(ctx)
	require.Error(t, err)
	assert.Len(t, f.node.Calls("receipts.reset_validation_state"), 2, "one call each, no retry")

	// Reads are retried through a transient failure.
	f.node.SetFault(nodetest.Fault{Method: "node.status", HTTPStatus: 503, Body: "<html>bad gateway</html>"})
	_, err = f.c.NodeStatus(ctx)
	require.ErrorIs(t, err, receipts.ErrUnavailable)
	assert.Len(t, f.node.Calls("node.status"), 3)
}

func TestClientMalformedAnswers(t *testing.T) {
	f := start(t, "healthy")
	ctx := context.Background()
	f.node.SetFault(nodetest.Fault{Method: "receipts.stats", Body: `{"jsonrpc":"2.0","id":1,"result":{"market":"storage","emitted_total":5}}`})
	_, err := f.c.Stats(ctx, receipts.Storage)
	require.ErrorIs(t, err, receipts.ErrMalformed)
	assert.Contains(t, err.Error(), "last_emitted_height")

	f.node.SetFault(nodetest.Fault{Method: "receipts.stats", Body: `{"jsonrpc":"2.0","id":1,"result":{"market":"ad","emitted_total":5,"last_emitted_height":3}}`})
	_, err = f.c.Stats(ctx, receipts.Storage)
	require.ErrorIs(t, err, receipts.ErrMalformed)

	f.node.SetFault(nodetest.Fault{Method: "node.status", Body: `{"jsonrpc":"2.0","id":1,"result":{"epoch":3}}`})
	_, err = f.c.NodeStatus(ctx)
	require.ErrorIs(t, err, receipts.ErrMalformed)

	f.node.FailMethod("receipts.stats", rpc.CodeMethodNotFound, "method not found")
	_, err = f.c.Stats(ctx, receipts.Storage)
	require.ErrorIs(t, err, receipts.ErrMethodNotFound)
	var je *receipts.RPCError
	require.True(t, errors.As(err, &je))
	assert.Equal(t, -32601, je.Code)
}

// Missing optional fields are nil (JSON null), never 0; missing required ones
// are ErrMalformed.
func TestClientMissingIsNull(t *testing.T) {
	f := start(t, "healthy")
	ctx := context.Background()
	f.node.SetFault(nodetest.Fault{Method: "receipts.stats", Body: `{"jsonrpc":"2.0","id":1,"result":{"market":"storage","emitted_total":5,"last_emitted_height":3}}`})
	s, err := f.c.Stats(ctx, receipts.Storage)
	require.NoError(t, err)
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"market":"storage","emitted_total":5,"last_emitted_height":3,"pending":null,
		"validation_errors":{"schema_mismatch":null,"duplicate_detection":null,"signature_invalid":null},"min_payment_rejected_total":null}`, string(raw))

	f.node.SetFault(nodetest.Fault{Method: "node.consensus_status", Body: `{"jsonrpc":"2.0","id":1,"result":{"status":"healthy"}}`})
	cs, err := f.c.ConsensusStatus(ctx)
	require.NoError(t, err)
	assert.Nil(t, cs.ValidatorsOnline)

	f.node.SetFault(nodetest.Fault{Method: "receipts.validate", Body: `{"jsonrpc":"2.0","id":1,"result":{"from_block":1,"to_block":2,"invalid":[]}}`})
	v, err := f.c.Validate(ctx, 1, 2)
	require.NoError(t, err)
	assert.Nil(t, v.Checked)
	f.node.SetFault(nodetest.Fault{Method: "receipts.validate", Body: `{"jsonrpc":"2.0","id":1,"result":{"from_block":1,"to_block":2,"checked":5}}`})
	_, err = f.c.Validate(ctx, 1, 2)
	require.ErrorIs(t, err, receipts.ErrMalformed)
	assert.Contains(t, err.Error(), "lacks invalid")
}

func TestNewClient(t *testing.T) {
	n := nodetest.Start(t)
	for _, bad := range []struct {
		url  string
		opts []rpc.Option
	}{
		{"not a url", nil},
		{n.URL(), []rpc.Option{rpc.WithRetries(0)}},
		{n.URL(), []rpc.Option{rpc.WithTimeout(-time.Second)}},
	} {
		_, err := receipts.NewClient(bad.url, bad.opts...)
		assert.Error(t, err, "%q", bad.url)
	}
	// A transport shared with other clients.
	rc, err := rpc.NewClient(strings.Replace(n.URL(), "http://", "http://ops:hunter2@", 1), rpc.WithRetries(1))
	require.NoError(t, err)
	c := receipts.NewClientFromRPC(rc)
	assert.NotContains(t, c.URL(), "hunter2")
	n.SetFault(nodetest.Fault{Method: "node.status", HTTPStatus: 503, Body: "<html>bad gateway</html>"})
	_, err = c.NodeStatus(context.Background())
	var ce *rpc.CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Attempts, "the transport's options hold")
}
