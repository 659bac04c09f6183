package runtime

import "github.com/prometheus/client_golang/prometheus"

// countCollector exports one counter vector of one label whose counts are
// read at each scrape, so counting costs an atomic add and nothing else.
type countCollector struct {
	desc   *prometheus.Desc
	values []string        // the label value of each series
	counts func() []uint64 // each series' count, in values' order
}

func (c *countCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	for i, n := range c.counts() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), c.values[i])
	}
}
