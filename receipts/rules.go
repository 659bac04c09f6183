package receipts

import (
	"fmt"
	"time"

	"github.com/theblock/tbops"
)

// Alert names of Rules().
const (
	AlertMarketNotEmitting    = "ReceiptsMarketNotEmitting"
	AlertMarketSeriesMissing  = "ReceiptsMarketSeriesMissing"
	AlertValidationSuccessLow = "ReceiptsValidationSuccessLow"
	AlertMinPaymentSpike      = "ReceiptsMinPaymentRejectionsSpike"
	AlertQueryLatencyHigh     = "ReceiptsQueryLatencyHigh"
)

// MetricQueryDuration is the histogram the query-latency rule reads. The node
// does not export it (PROTOCOL.md section 7 lists no receipts query latency):
// the rule stays silent on such nodes, and Diagnose measures the latency tbops
// itself observes instead.
const MetricQueryDuration = "receipt_query_duration_seconds"

// Rules returns the Receipts SLO table's alert thresholds as Prometheus rules.
//
//   - "Any market = 0 for 5 blocks": increase over 1m per market == 0, for 5s.
//     Prometheus cannot see 5 blocks (5 s) at usual 15–30 s scrape intervals, so
//     the range is the shortest that holds two scrapes and the rule fires about a
//     minute into a stall; `tbops receipts diagnose` sees the 5 blocks exactly
//     through receipts.stats. A market whose series is absent altogether is the
//     separate ReceiptsMarketSeriesMissing rule.
//   - "Validation success < 99% for 10 min": emitted / (emitted + errors), 5m rates.
//   - "Sudden increase in receipt_min_payment_rejected_total": the 5m rate above
//     near-zero (one a minute) and above 3× the 1h rate.
//   - "Query latency p99 > 500ms for 5 min": on receipt_query_duration_seconds
//     (see MetricQueryDuration).
func Rules() []tbops.Rule {
	var absent string
	for i, m := range Markets() {
		if i > 0 {
			absent += " or "
		}
		absent += fmt.Sprintf(`absent(%s{market=%q})`, MetricEmitted, m)
	}
	mp5 := fmt.Sprintf("rate(%s[5m])", MetricMinPaymentRejected)
	return []tbops.Rule{
		{Alert: AlertMarketNotEmitting, Severity: tbops.StatusCritical, Runbook: RunbookID, SLO: "Emission Rate",
			Expr:    fmt.Sprintf("sum by (market) (increase(%s[1m])) == 0", MetricEmitted),
			For:     StallBlocks * time.Second,
			Summary: "receipt market {{ $labels.market }} is not emitting receipts"},
		{Alert: AlertMarketSeriesMissing, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Emission Rate",
			Expr: absent, For: 5 * time.Minute,
			Summary: "receipt market {{ $labels.market }} has no receipt_emitted_total series"},
		{Alert: AlertValidationSuccessLow, Severity: tbops.StatusCritical, Runbook: RunbookID, SLO: "Validation Success",
			Expr: fmt.Sprintf("sum(rate(%[1]s[5m])) / (sum(rate(%[1]s[5m])) + sum(rate(%[2]s[5m]))) < %g",
				MetricEmitted, MetricValidationErrors, ValidationSuccessAlert),
			For:     ValidationAlertFor,
			Summary: "receipt validation success below 99%"},
		{Alert: AlertMinPaymentSpike, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Min-Payment Rejections",
			Expr: fmt.Sprintf("sum(%[1]s) > %.6[2]g and sum(%[1]s) > %[3]d * sum(rate(%[4]s[1h]))",
				mp5, MinPaymentNearZeroPerSecond, MinPaymentSpikeFactor, MetricMinPaymentRejected),
			For:     5 * time.Minute,
			Summary: "sudden increase in receipts rejected below the 0.001 BLOCK payment floor"},
		{Alert: AlertQueryLatencyHigh, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Query Latency p99",
			Expr: fmt.Sprintf("histogram_quantile(0.99, sum by (le) (rate(%s_bucket[5m]))) > %g",
				MetricQueryDuration, QueryLatencyAlert.Seconds()),
			For:     5 * time.Minute,
			Summary: "p99 receipts query latency above 500ms"},
	}
}
