package p2p

import "github.com/prometheus/client_golang/prometheus"

// Metric names exported by [Limiter.Collector].
const (
	// MetricRateLimited counts refused messages by limit:
	// p2p_rate_limited_total{limit="requests"|"bytes"|"size"}.
	MetricRateLimited = "p2p_rate_limited_total"
	// MetricRateAllowed counts allowed messages: p2p_rate_allowed_total.
	MetricRateAllowed = "p2p_rate_allowed_total"
	// MetricRatePeers is the number of peers the limiter holds state for:
	// p2p_rate_limiter_peers.
	MetricRatePeers = "p2p_rate_limiter_peers"
)

type collector struct {
	l                     *Limiter
	limited, allowed, pps *prometheus.Desc
}

// Collector returns a Prometheus collector for the limiter's counts, with
// constLabels on every series (nil for none; use them to tell several limiters
// apart, e.g. {"listener": "p2p"}). Register it with your registry. It reads
// [Limiter.Stats] on each scrape, so the decision path pays nothing for it.
// Every tbops type that exports metrics does it this way (see package runtime,
// "Metrics").
func (l *Limiter) Collector(constLabels prometheus.Labels) prometheus.Collector {
	return &collector{
		l: l,
		limited: prometheus.NewDesc(MetricRateLimited,
			"P2P messages refused by the per-peer rate limiter, by the limit that refused them (requests, bytes, or size: one message larger than the byte limit).",
			[]string{"limit"}, constLabels),
		allowed: prometheus.NewDesc(MetricRateAllowed, "P2P messages allowed by the per-peer rate limiter.", nil, constLabels),
		pps:     prometheus.NewDesc(MetricRatePeers, "Peers the p2p rate limiter holds state for (admitted within about the last window).", nil, constLabels),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limited
	ch <- c.allowed
	ch <- c.pps
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(c.limited, prometheus.CounterValue, float64(st.RefusedRequests), LimitRequests.String())
	ch <- prometheus.MustNewConstMetric(c.limited, prometheus.CounterValue, float64(st.RefusedBytes), LimitBytes.String())
	ch <- prometheus.MustNewConstMetric(c.limited, prometheus.CounterValue, float64(st.RefusedSize), LimitSize.String())
	ch <- prometheus.MustNewConstMetric(c.allowed, prometheus.CounterValue, float64(st.Allowed))
	ch <- prometheus.MustNewConstMetric(c.pps, prometheus.GaugeValue, float64(st.Peers))
}
