package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/node"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

// client is a node client for n with one attempt per call, so a failure is quick.
func client(t *testing.T, url string) *node.Client {
	t.Helper()
	c, err := node.NewClient(url, rpc.WithRetries(1), rpc.WithTimeout(2*time.Second))
	require.NoError(t, err)
	return c
}

func TestClientReadsTheContractMethods(t *testing.T) {
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now))
	c := client(t, n.URL())
	ctx := context.Background()
	clk.Advance(10 * time.Second)

	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.NotNil(t, st.CurrentBlockHeight)
	assert.EqualValues(t, 1_200_010, *st.CurrentBlockHeight, "height follows the node clock")
	assert.EqualValues(t, 1_200_010/120, *st.Epoch)
	assert.False(t, *st.Syncing)
	assert.EqualValues(t, 24, *st.Peers)
	assert.Equal(t, "tbops-sim/1.0", *st.Version)

	cs, err := c.ConsensusStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, node.ConsensusHealthy, cs.Status)
	assert.EqualValues(t, 1_200_008, *cs.LastFinalizedHeight)
	assert.EqualValues(t, 21, *cs.ValidatorsOnline)

	a, err := c.LedgerInspect(ctx, "treasury_account_id")
	require.NoError(t, err)
	assert.Equal(t, "treasury_account_id", a.Account)
	assert.Equal(t, tbops.Amount(9_500_000*tbops.MicroPerBLOCK), *a.Balance)
	assert.EqualValues(t, 4521, *a.Nonce)

	// A contract node does not serve the reference node's methods.
	_, err = c.MempoolStats(ctx, "")
	assert.ErrorIs(t, err, node.ErrMethodNotFound)
	_, err = c.Difficulty(ctx)
	assert.ErrorIs(t, err, node.ErrMethodNotFound)
}

func TestClientReadsTheReferenceNodeMethods(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("node-reference"))
	c := client(t, n.URL())
	ctx := context.Background()

	mp, err := c.MempoolStats(ctx, node.LaneIndustrial)
	require.NoError(t, err)
	assert.EqualValues(t, 42, *mp.Size)
	assert.EqualValues(t, 20, *mp.FeeP90)
	assert.JSONEq(t, `{"lane":"industrial"}`, string(n.Calls(node.MethodMempoolStats)[0]))
	df, err := c.Difficulty(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1_048_576, *df.Difficulty)

	// No node.* method: -32601, an answer from a reachable node.
	_, err = c.Status(ctx)
	assert.ErrorIs(t, err, node.ErrMethodNotFound)
	var ce *rpc.CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, node.MethodStatus, ce.Method)
	var re *rpc.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, rpc.CodeMethodNotFound, re.Code)
	_, err = c.ConsensusStatus(ctx)
	assert.ErrorIs(t, err, node.ErrMethodNotFound)
}

func TestClientRefusesBadParamsBeforeSending(t *testing.T) {
	n := nodetest.Start(t)
	c := client(t, n.URL())
	ctx := context.Background()

	_, err := c.LedgerInspect(ctx, "")
	assert.ErrorIs(t, err, node.ErrInvalidParams)
	assert.ErrorContains(t, err, `"account"`)
	_, err = c.MempoolStats(ctx, "retail")
	assert.ErrorIs(t, err, node.ErrInvalidParams)
	assert.ErrorContains(t, err, `"retail"`)
	assert.Empty(t, n.Calls(node.MethodLedgerInspect))
	assert.Empty(t, n.Calls(node.MethodMempoolStats))

	_, err = c.LedgerInspect(ctx, "nobody")
	assert.ErrorIs(t, err, node.ErrNotFound)
	var ce *rpc.CallError
	assert.ErrorAs(t, err, &ce)

	_, err = node.NewClient("ftp://node:3030/")
	assert.Error(t, err)
}

// partialNode serves node.status with the given result, on loopback.
func partialNode(t *testing.T, result string) string {
	t.Helper()
	mux := rpc.NewMux()
	mux.Handle(node.MethodStatus, func(context.Context, json.RawMessage) (any, error) { return json.RawMessage(result), nil })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClientKeepsMissingFieldsMissing(t *testing.T) {
	c := client(t, partialNode(t, `{"current_block_height": 7}`))
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 7, *st.CurrentBlockHeight)
	assert.Nil(t, st.Peers, "a missing peers field is not 0 peers")
	assert.Nil(t, st.Syncing)
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	assert.JSONEq(t, `{"current_block_height":7,"epoch":null,"syncing":null,"peers":null,"version":null}`, string(raw))
}

func TestClientNamesTheFieldOfABadResult(t *testing.T) {
	c := client(t, partialNode(t, `{"current_block_height": "seven"}`))
	_, err := c.Status(context.Background())
	assert.ErrorIs(t, err, node.ErrBadResult)
	assert.ErrorContains(t, err, "current_block_height")
	assert.False(t, errors.Is(err, node.ErrUnavailable))
}
