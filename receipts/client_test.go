package receipts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/receipts"
	"github.com/theblock/tbops/rpc"
)

func TestClientStats(t *testing.T) {
	f := start(t, "receipts-market-stalled")
	ctx := context.Background()
	st, err := f.c.NodeStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1_200_030), st.CurrentBlockHeight)

	s, err := f.c.Stats(ctx, receipts.Compute)
	require.NoError(t, err)
	assert.Equal(t, receipts.Compute, s.Market)
	assert.Equal(t, int64(1_200_000-45), s.LastEmittedHeight)
	assert.Equal(t, int64(2_830_000), s.EmittedTotal)
	assert.Equal(t, int64(1), s.ValidationErrors.DuplicateDetection)

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
	ctx := context.Background()
	res, err := f.c.Validate(ctx, 1_199_965, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1_200_030), res.ToBlock)
	assert.Equal(t, int64(45*66), res.Checked)
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

func TestClientLatency(t *testing.T) {
	f := start(t, "healthy")
	_, ok := f.c.LatencyQuantile(0.99)
	assert.False(t, ok)
	_, err := f.c.NodeStatus(context.Background())
	require.NoError(t, err)
	_, ok = f.c.LatencyQuantile(0.99)
	assert.True(t, ok)
	assert.Len(t, f.c.Latencies(), 1)
	_, err = receipts.New("not a url")
	require.Error(t, err)
}
