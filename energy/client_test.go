package energy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

// An invalid transport option is an error at construction, not at the first call.
func TestNewClientRefusesBadOptions(t *testing.T) {
	_, err := energy.NewClient("http://127.0.0.1:1/", rpc.WithRetries(0))
	assert.ErrorContains(t, err, "energy: ")
	_, err = energy.NewClient("ftp://node/")
	assert.Error(t, err)
}

// The client reads no environment: TB_ENERGY_RPC_TOKEN set in the process does
// not reach a guarded node; rpc.WithToken does.
func TestClientReadsNoEnvironment(t *testing.T) {
	t.Setenv(energy.TokenEnv, "s3cret")
	sc := nodetest.Healthy(time.Now())
	sc.Energy.Guard = &nodetest.EnergyGuard{Token: "s3cret"}
	n := nodetest.Start(t, nodetest.WithScenario(sc))
	c, err := energy.NewClient(n.URL(), rpc.WithRetries(1))
	require.NoError(t, err)
	_, err = c.Market(context.Background())
	assert.ErrorIs(t, err, energy.ErrUnauthorized)
	var ce *energy.CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, energy.MethodMarket, ce.Method)
	var je *energy.RPCError
	require.ErrorAs(t, err, &je)
	assert.Equal(t, energy.CodeUnauthorized, je.Code)

	c, err = energy.NewClient(n.URL(), rpc.WithToken("s3cret"))
	require.NoError(t, err)
	m, err := c.Market(context.Background())
	require.NoError(t, err)
	assert.Len(t, m.Providers, 5)
}

// A node's -33001 answer to a submitted reading matches the reason's sentinel
// and still reaches the transport's *rpc.CallError; the write is sent once.
func TestSubmitReadingErrors(t *testing.T) {
	n := nodetest.Start(t)
	c := energy.NewClientFromRPC(mustRPC(t, n.URL()))
	key := nodetest.EnergyProviderKey("provider_usa_001")
	r, err := energy.Sign(energy.Reading{ProviderID: "provider_usa_001", Meter: "m-1", TotalKWh: 10, Timestamp: uint64(time.Now().Unix()), Nonce: 5000}, key)
	require.NoError(t, err)
	id, err := c.SubmitReading(context.Background(), r)
	require.NoError(t, err)
	assert.NotEmpty(t, id)

	r.Nonce++
	r.TotalKWh++ // the signature no longer matches
	_, err = c.SubmitReading(context.Background(), r)
	assert.ErrorIs(t, err, energy.ErrVerificationFailed)
	var ve *energy.VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, energy.ReasonVerificationFailed, ve.Reason)
	var ce *energy.CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Attempts)
	assert.Equal(t, energy.CodeSignatureFailed, energy.ErrorObject(err).Code)
}

func mustRPC(t *testing.T, url string) *rpc.Client {
	t.Helper()
	rc, err := rpc.NewClient(url)
	require.NoError(t, err)
	return rc
}

// A filter the protocol does not allow is refused before anything is sent.
func TestClientRefusesBadFilters(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c, err := energy.NewClient(srv.URL)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Credits(ctx, energy.CreditFilter{Status: "lost"})
	assert.ErrorIs(t, err, energy.ErrInvalidArgument)
	assert.ErrorContains(t, err, "want pending or settled")
	_, err = c.Credits(ctx, energy.CreditFilter{Limit: 501})
	assert.ErrorIs(t, err, energy.ErrInvalidArgument)
	_, err = c.Disputes(ctx, "closed", 10)
	assert.ErrorIs(t, err, energy.ErrInvalidArgument)
	_, err = c.Disputes(ctx, "", -1)
	assert.ErrorIs(t, err, energy.ErrInvalidArgument)
	assert.Zero(t, calls.Load())
}

// A field the node leaves out is nil, and JSON null, never a zero; the
// reference node's shapes decode to the same records.
func TestRecordsMissingIsNil(t *testing.T) {
	var p energy.Provider
	require.NoError(t, json.Unmarshal([]byte(`{"id":"p1","status":"active","last_settlement":0}`), &p))
	assert.Equal(t, "p1", p.ProviderID)
	_, ok := p.Score()
	assert.False(t, ok)
	assert.Nil(t, p.CapacityKWh)
	assert.Nil(t, p.LastReadingAt)
	require.NotNil(t, p.LastSettlement, "0 is the node saying never")
	b, err := json.Marshal(p)
	require.NoError(t, err)
	assert.JSONEq(t, `{"provider_id":"p1","status":"active","reputation_score":null,"capacity_kwh":null,"price_per_kwh":null,"last_settlement":0}`, string(b))

	require.NoError(t, json.Unmarshal([]byte(`{"provider_id":"p2","reputation":{"composite_score":0.4}}`), &p))
	v, ok := p.Score()
	assert.True(t, ok)
	assert.Equal(t, 0.4, v)
	assert.Equal(t, 0.4, *p.ReputationScore)

	var cr energy.Credit
	require.NoError(t, json.Unmarshal([]byte(`{"id":7,"provider":"p1","meter_address":"m","status":"pending"}`), &cr))
	assert.Equal(t, energy.ID("7"), cr.CreditID)
	assert.Equal(t, "p1", cr.ProviderID)
	assert.Equal(t, "m", cr.Meter)
	assert.Nil(t, cr.CreatedAt)
	assert.Nil(t, cr.AmountKWh)

	var d energy.Dispute
	require.NoError(t, json.Unmarshal([]byte(`{"id":"d1","provider":"p1","status":"open","resolved_at":null}`), &d))
	assert.Equal(t, energy.ID("d1"), d.DisputeID)
	assert.Nil(t, d.OpenedAt)
	assert.Nil(t, d.ResolvedAt)
}

// A market answer that is not the contract's shape is ErrMalformed, naming the method.
func TestMarketMalformed(t *testing.T) {
	mux := rpc.NewMux()
	mux.Handle(energy.MethodMarket, func(context.Context, json.RawMessage) (any, error) {
		return map[string]any{"providers": "none"}, nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := energy.NewClient(srv.URL)
	require.NoError(t, err)
	_, err = c.Market(context.Background())
	assert.ErrorIs(t, err, energy.ErrMalformed)
	assert.ErrorContains(t, err, energy.MethodMarket)
}

// ErrorObject is the answer a node gives for each admission error.
func TestErrorObject(t *testing.T) {
	assert.Nil(t, energy.ErrorObject(nil))
	obj := energy.ErrorObject(&energy.VerifyError{Reason: energy.ReasonSchemeUnsupported, ProviderID: "p"})
	assert.Equal(t, energy.CodeSignatureFailed, obj.Code)
	assert.Equal(t, energy.ReasonSchemeUnsupported, obj.Reason())
	assert.Equal(t, -32603, energy.ErrorObject(errors.New("disk full")).Code)
}
