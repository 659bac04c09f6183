package energy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the checker's failures as
// energy_signature_verification_failures_total{reason}, the runbook's counter,
// one series for each of the four reasons (zero until the first failure), with
// constLabels on every series. Timestamp skew and nonce replays are not
// signature failures and are not counted.
func (c *Checker) Collector(constLabels prometheus.Labels) prometheus.Collector {
	desc := prometheus.NewDesc(MetricFailures, "Meter readings refused by signature verification, by reason.", []string{"reason"}, constLabels)
	return collectorFunc{desc: []*prometheus.Desc{desc}, collect: func(ch chan<- prometheus.Metric) {
		for i, reason := range Reasons() {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(c.failures[i].Load()), reason)
		}
	}}
}

// Collector exports the guard's energy_rpc_rejected_total{reason} and
// energy_rpc_rate_limit_rps, with constLabels on every series.
func (g *Guard) Collector(constLabels prometheus.Labels) prometheus.Collector {
	rejected := prometheus.NewDesc(MetricRPCRejected, "Energy RPC requests rejected by the guard, by reason.", []string{"reason"}, constLabels)
	limit := prometheus.NewDesc("energy_rpc_rate_limit_rps", "The energy RPC guard's limit: requests per second per client.", nil, constLabels)
	return collectorFunc{desc: []*prometheus.Desc{rejected, limit}, collect: func(ch chan<- prometheus.Metric) {
		for _, reason := range []string{RejectRateLimited, RejectUnauthorized} {
			ch <- prometheus.MustNewConstMetric(rejected, prometheus.CounterValue, float64(g.Rejected(reason)), reason)
		}
		ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, float64(g.RPS()))
	}}
}

// collectorFunc is a prometheus.Collector of fixed descriptions whose values
// are read when collected.
type collectorFunc struct {
	desc    []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
