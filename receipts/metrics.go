package receipts

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of PROTOCOL.md section 7 that the runbook reads and the
// Validator's collector exports.
const (
	MetricValidationErrors   = "receipt_validation_errors_total"
	MetricMinPaymentRejected = "receipt_min_payment_rejected_total"
	MetricEmitted            = "receipt_emitted_total"
	MetricBlockHeight        = "block_height_total"
)

// Collector exports the Validator's rejections under the wire contract's
// metric names: receipt_validation_errors_total{reason} for schema_mismatch,
// duplicate_detection and signature_invalid, and
// receipt_min_payment_rejected_total for the payment floor. Register it with a
// prometheus.Registerer; constLabels (may be nil) are added to every series (a
// node id, say). It reads the Validator's atomic counters at scrape time, so
// validating costs nothing extra.
func (v *Validator) Collector(constLabels prometheus.Labels) prometheus.Collector {
	return &collector{v: v,
		errs: prometheus.NewDesc(MetricValidationErrors, "Receipts that failed validation, by reason.", []string{"reason"}, constLabels),
		minP: prometheus.NewDesc(MetricMinPaymentRejected, "Receipts rejected below the 0.001 BLOCK payment floor.", nil, constLabels),
	}
}

type collector struct {
	v          *Validator
	errs, minP *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.errs
	ch <- c.minP
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counts := c.v.Counts()
	for _, r := range []Reason{ReasonSchemaMismatch, ReasonDuplicate, ReasonSignatureInvalid} {
		ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(counts.Rejected[r]), string(r))
	}
	ch <- prometheus.MustNewConstMetric(c.minP, prometheus.CounterValue, float64(counts.Rejected[ReasonMinPayment]))
}
