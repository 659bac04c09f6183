package p2p

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
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

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(l.Collector()))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "{" + lp.GetName() + "=" + lp.GetValue() + "}"
			}
			if m.Counter != nil {
				got[key] = m.GetCounter().GetValue()
			} else {
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	assert.Equal(t, map[string]float64{
		"p2p_rate_limited_total{limit=requests}": 1,
		"p2p_rate_limited_total{limit=bytes}":    1,
		"p2p_rate_limited_total{limit=size}":     1,
		"p2p_rate_allowed_total":                 3,
		"p2p_rate_limiter_peers":                 2,
	}, got)
}
