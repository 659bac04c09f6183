package energy_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/energy"
)

// The checker counts each refusal under its PROTOCOL reason; skew and nonce
// refusals are not signature failures.
func TestCheckerCollector(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	key := testKey(9)
	reg := energy.NewKeyRegistry()
	require.NoError(t, reg.Add("p", energy.SchemeEd25519, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))))
	c := energy.NewChecker(reg)
	c.Now = func() time.Time { return now }
	sign := func(r energy.Reading) energy.Reading {
		s, err := energy.Sign(r, key)
		require.NoError(t, err)
		return s
	}
	good := energy.Reading{ProviderID: "p", Meter: "m", TotalKWh: 1, Timestamp: uint64(now.Unix()), Nonce: 1}
	require.NoError(t, c.Check(sign(good)))
	forged := sign(energy.Reading{ProviderID: "p", Meter: "m", TotalKWh: 2, Timestamp: uint64(now.Unix()), Nonce: 2})
	forged.TotalKWh = 3
	assert.ErrorIs(t, c.Check(forged), energy.ErrVerificationFailed)
	assert.ErrorIs(t, c.Check(forged), energy.ErrVerificationFailed)
	unknown := sign(energy.Reading{ProviderID: "q", Meter: "m", Timestamp: uint64(now.Unix()), Nonce: 1})
	assert.ErrorIs(t, c.Check(unknown), energy.ErrKeyNotFound)
	blake := sign(energy.Reading{ProviderID: "p", Meter: "m", Timestamp: uint64(now.Unix()), Nonce: 3, Scheme: energy.SchemeEd25519Blake3})
	assert.ErrorIs(t, c.Check(blake), energy.ErrSchemeUnsupported)
	bad := good
	bad.Signature = "short"
	assert.ErrorIs(t, c.Check(bad), energy.ErrInvalidFormat)
	assert.ErrorIs(t, c.Check(sign(good)), energy.ErrNonceReplay, "not counted")
	assert.ErrorIs(t, c.Check(sign(energy.Reading{ProviderID: "p", Meter: "m", Timestamp: uint64(now.Unix() + 999), Nonce: 9})), energy.ErrTimestampSkew, "not counted")
	assert.EqualValues(t, 2, c.Failures(energy.ReasonVerificationFailed))

	want := `
# HELP energy_signature_verification_failures_total Meter readings refused by signature verification, by reason.
# TYPE energy_signature_verification_failures_total counter
energy_signature_verification_failures_total{node="n1",reason="invalid_format"} 1
energy_signature_verification_failures_total{node="n1",reason="key_not_found"} 1
energy_signature_verification_failures_total{node="n1",reason="scheme_unsupported"} 1
energy_signature_verification_failures_total{node="n1",reason="verification_failed"} 2
`
	assert.NoError(t, testutil.CollectAndCompare(c.Collector(prometheus.Labels{"node": "n1"}), strings.NewReader(want)))

	// A fresh checker exports every reason at zero: a counter that exists, not a missing one.
	fresh := energy.NewChecker(reg).Collector(nil)
	assert.Equal(t, 4, testutil.CollectAndCount(fresh, energy.MetricFailures))
}

func TestGuardCollector(t *testing.T) {
	now := time.Unix(1_700_000_000, 0) // a still clock: the three requests share one window
	g, err := energy.NewGuard(energy.GuardOptions{Token: "t", RPS: 2, Now: func() time.Time { return now }, Logger: quietLogger()})
	require.NoError(t, err)
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, token := range []string{"", "t", "t"} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(marketReq))
		req.RemoteAddr = "10.0.0.1:1"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := `
# HELP energy_rpc_rate_limit_rps The energy RPC guard's limit: requests per second per client.
# TYPE energy_rpc_rate_limit_rps gauge
energy_rpc_rate_limit_rps{guard="g1"} 2
# HELP energy_rpc_rejected_total Energy RPC requests rejected by the guard, by reason.
# TYPE energy_rpc_rejected_total counter
energy_rpc_rejected_total{guard="g1",reason="rate_limited"} 1
energy_rpc_rejected_total{guard="g1",reason="unauthorized"} 1
`
	assert.NoError(t, testutil.CollectAndCompare(g.Collector(prometheus.Labels{"guard": "g1"}), strings.NewReader(want)))
}
