package p2p

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestCollector(t *testing.T) {
	l := newTestLimiter(t, 1, 2, 2048)
	l.Allow(1, 100, t0)
	l.Allow(1, 100, t0)
	l.Allow(1, 100, t0)                        // requests
	l.Allow(2, 2000, t0)                       // allowed
	l.Allow(2, 100, t0)                        // bytes
	l.Allow(3, 5000, t0.Add(time.Millisecond)) // size

	require.NoError(t, testutil.CollectAndCompare(l.Collector(prometheus.Labels{"listener": "p2p"}), strings.NewReader(`
# HELP p2p_rate_allowed_total P2P messages allowed by the per-peer rate limiter.
# TYPE p2p_rate_allowed_total counter
p2p_rate_allowed_total{listener="p2p"} 3
# HELP p2p_rate_limited_total P2P messages refused by the per-peer rate limiter, by the limit that refused them (requests, bytes, or size: one message larger than the byte limit).
# TYPE p2p_rate_limited_total counter
p2p_rate_limited_total{limit="bytes",listener="p2p"} 1
p2p_rate_limited_total{limit="requests",listener="p2p"} 1
p2p_rate_limited_total{limit="size",listener="p2p"} 1
# HELP p2p_rate_limiter_peers Peers the p2p rate limiter holds state for (admitted within about the last window).
# TYPE p2p_rate_limiter_peers gauge
p2p_rate_limiter_peers{listener="p2p"} 2
`)))
	// Two limiters, told apart by their labels, share a registry.
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(l.Collector(prometheus.Labels{"listener": "a"})))
	require.NoError(t, reg.Register(newTestLimiter(t, 1, 2, 2048).Collector(prometheus.Labels{"listener": "b"})))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 10, n)
}
