package receipts

import (
	"fmt"
	"strings"
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
// Every rule is per node, so one Prometheus can scrape a whole fleet: sums run
// only over the domain labels (market, reason), never across instances, and
// keep every target label (instance, job, and any the scrape adds), so each
// alert names its node and N healthy nodes never add up to a page.
//
//   - "Any market = 0 for 5 blocks": increase over 1m per node and market == 0,
//     for 5s. Prometheus cannot see 5 blocks (5 s) at usual 15–30 s scrape
//     intervals, so the range is the shortest that holds two scrapes and the
//     rule fires about a minute into a stall; `tbops receipts diagnose` sees the
//     5 blocks exactly through receipts.stats.
//   - A market whose series is missing is the separate
//     ReceiptsMarketSeriesMissing rule: a node that exports receipt_emitted_total
//     for some market but not for this one (the "is a receipts node" marker is
//     having any receipt_emitted_total series, as Diagnose decides), labelled
//     with the missing market. A node with no receipt_emitted_total series at
//     all is not flagged: like Diagnose, the rule only calls a market missing
//     when the node's other markets show it exports receipts (absent() would
//     only fire when no node in the fleet exports the market).
//   - "Validation success < 99% for 10 min": emitted / (emitted + errors), 5m
//     rates, each node's own; a node with validation errors and no emitted
//     series counts 0 emitted (success 0 %), one with no error series is silent.
//   - "Sudden increase in receipt_min_payment_rejected_total": the node's 5m
//     rate above near-zero (one a minute) and above 3× its own 1h rate.
//   - "Query latency p99 > 500ms for 5 min": on receipt_query_duration_seconds
//     (see MetricQueryDuration), per series: histogram_quantile groups by every
//     label but le.
func Rules() []tbops.Rule {
	var missing []string
	for _, m := range Markets() {
		missing = append(missing, fmt.Sprintf(`label_replace(group without (market) (%[1]s) unless ignoring (market) %[1]s{market=%[2]q}, "market", %[2]q, "", "")`,
			MetricEmitted, m))
	}
	emitted := fmt.Sprintf("sum without (market) (rate(%s[5m]))", MetricEmitted)
	errs := fmt.Sprintf("sum without (reason) (rate(%s[5m]))", MetricValidationErrors)
	mp5 := fmt.Sprintf("rate(%s[5m])", MetricMinPaymentRejected)
	return []tbops.Rule{
		{Alert: AlertMarketNotEmitting, Severity: tbops.StatusCritical, Runbook: RunbookID, SLO: "Emission Rate",
			Expr:    fmt.Sprintf("increase(%s[1m]) == 0", MetricEmitted),
			For:     StallBlocks * time.Second,
			Summary: "receipt market {{ $labels.market }} is not emitting receipts"},
		{Alert: AlertMarketSeriesMissing, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Emission Rate",
			Expr: strings.Join(missing, " or "), For: 5 * time.Minute,
			Summary: "receipt market {{ $labels.market }} has no receipt_emitted_total series"},
		{Alert: AlertValidationSuccessLow, Severity: tbops.StatusCritical, Runbook: RunbookID, SLO: "Validation Success",
			Expr: fmt.Sprintf("1 - %[2]s / ((%[1]s or 0 * %[2]s) + %[2]s) < %[3]g",
				emitted, errs, ValidationSuccessAlert),
			For:     ValidationAlertFor,
			Summary: "receipt validation success below 99%"},
		{Alert: AlertMinPaymentSpike, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Min-Payment Rejections",
			Expr: fmt.Sprintf("%[1]s > %.6[2]g and %[1]s > %[3]d * rate(%[4]s[1h])",
				mp5, MinPaymentNearZeroPerSecond, MinPaymentSpikeFactor, MetricMinPaymentRejected),
			For:     5 * time.Minute,
			Summary: "sudden increase in receipts rejected below the 0.001 BLOCK payment floor"},
		{Alert: AlertQueryLatencyHigh, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Query Latency p99",
			Expr: fmt.Sprintf("histogram_quantile(0.99, rate(%s_bucket[5m])) > %g",
				MetricQueryDuration, QueryLatencyAlert.Seconds()),
			For:     5 * time.Minute,
			Summary: "p99 receipts query latency above 500ms"},
	}
}
