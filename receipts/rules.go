package receipts

import (
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Alert names of Rules().
const (
	AlertMarketNotEmitting    = "ReceiptsMarketNotEmitting"
	AlertMarketSeriesMissing  = "ReceiptsMarketSeriesMissing"
	AlertValidationSuccessLow = "ReceiptsValidationSuccessLow"
	AlertMinPaymentSpike      = "ReceiptsMinPaymentRejectionsSpike"
	AlertQueryLatencyHigh     = "ReceiptsQueryLatencyHigh"
)

// MetricQueryDuration is the histogram the query-latency rule reads. The
// reference node does not export it (PROTOCOL.md section 7 lists no receipts
// query latency): on such nodes the rule and the SLO row are unknown (no
// data). tbops's own round trips to the node are never a stand-in for it.
const MetricQueryDuration = "receipt_query_duration_seconds"

// Rules returns the Receipts SLO table's alert thresholds as Prometheus rules:
// the only definition of each alert. `tbops rules` prints them and Diagnose
// evaluates the same expressions (promq.EvalRule) for its Alerts block.
//
// Every rule is per node, so one Prometheus can scrape a whole fleet: sums run
// only over the domain labels (market, reason), never across instances, and
// keep every target label (instance, job, and any the scrape adds), so each
// alert names its node and N healthy nodes never add up to a page.
//
//   - "Any market = 0 for 5 blocks": increase over 1m per node and market == 0,
//     for 5s. Prometheus cannot see 5 blocks (5 s) at usual 15–30 s scrape
//     intervals, so the range is the shortest that holds two scrapes and the
//     rule fires about a minute into a stall; Diagnose decides the 5 blocks
//     exactly from receipts.stats' last_emitted_height.
//   - A market whose series is missing is ReceiptsMarketSeriesMissing, one
//     rule per market with a static market label (PromQL's label_replace,
//     which promq does not evaluate, is restated this way; the alerts are the
//     same): a node that exports receipt_emitted_total for some market but not
//     this one. A node with no receipt_emitted_total series at all is not
//     flagged: nothing says it exports receipts (absent() would only fire when
//     no node in the fleet exports the market).
//   - "Validation success < 99% for 10 min": emitted / (emitted + errors), 5m
//     rates, each node's own; a node with validation errors and no emitted
//     series counts 0 emitted (success 0 %), one with no error series is silent.
//   - "Sudden increase in receipt_min_payment_rejected_total": the node's 5m
//     rate above near-zero (one a minute) and above 3× its own 1h rate.
//   - "Query latency p99 > 500ms for 5 min": on receipt_query_duration_seconds
//     (see MetricQueryDuration), per series: histogram_quantile groups by every
//     label but le.
func Rules() []promq.Rule {
	rules := []promq.Rule{
		{Alert: AlertMarketNotEmitting, Severity: tbops.StatusCritical, Runbook: RunbookID, SLO: "Emission Rate",
			Expr: notEmittingExpr(), For: StallBlocks * time.Second,
			Summary: "receipt market {{ $labels.market }} is not emitting receipts"},
	}
	for _, m := range Markets() {
		// The summary names the market itself: $labels holds the series' labels,
		// not the rule's.
		rules = append(rules, promq.Rule{Alert: AlertMarketSeriesMissing, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Emission Rate",
			Expr: seriesMissingExpr(m), For: 5 * time.Minute, Labels: map[string]string{"market": string(m)},
			Summary: "receipt market " + string(m) + " has no receipt_emitted_total series"})
	}
	mp5 := minPaymentRateExpr()
	return append(rules,
		promq.Rule{Alert: AlertValidationSuccessLow, Severity: tbops.StatusCritical, Runbook: RunbookID, SLO: "Validation Success",
			Expr: promq.LTc(validationSuccessExpr(), ValidationSuccessAlert), For: ValidationAlertFor,
			Summary: "receipt validation success below 99%"},
		promq.Rule{Alert: AlertMinPaymentSpike, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Min-Payment Rejections",
			Expr: promq.And(promq.GTc(mp5, MinPaymentNearZeroPerSecond),
				promq.Compare(mp5, promq.GT, promq.Mul(promq.Num(MinPaymentSpikeFactor), promq.Rate(promq.Select(MetricMinPaymentRejected), MinPaymentBaseline)))),
			For:     5 * time.Minute,
			Summary: "sudden increase in receipts rejected below the 0.001 BLOCK payment floor"},
		promq.Rule{Alert: AlertQueryLatencyHigh, Severity: tbops.StatusWarning, Runbook: RunbookID, SLO: "Query Latency p99",
			Expr: promq.GTc(queryLatencyP99Expr(), QueryLatencyAlert.Seconds()), For: 5 * time.Minute,
			Summary: "p99 receipts query latency above 500ms"},
	)
}

// notEmittingExpr is increase(receipt_emitted_total[1m]) == 0, per market.
func notEmittingExpr() promq.Expr {
	return promq.EQc(promq.Increase(promq.Select(MetricEmitted), FlatWindow), 0)
}

// seriesMissingExpr is a node that exports receipt_emitted_total, but not for m.
func seriesMissingExpr(m Market) promq.Expr {
	return promq.Unless(promq.GroupWithout(promq.Metric(MetricEmitted), "market"),
		promq.Metric(MetricEmitted, "market", string(m)), promq.Ignoring("market"))
}

// validationSuccessExpr is emitted / (emitted + errors) over 5m, written as
// 1 − errors / (emitted + errors) so that a node with errors and no emitted
// series counts 0 emitted.
func validationSuccessExpr() promq.Expr {
	errs := promq.SumWithout(promq.Rate(promq.Select(MetricValidationErrors), ValidationWindow), "reason")
	emitted := promq.SumWithout(promq.Rate(promq.Select(MetricEmitted), ValidationWindow), "market")
	return promq.Sub(promq.Num(1), promq.Div(errs, promq.Add(promq.Or(emitted, promq.Mul(promq.Num(0), errs)), errs)))
}

// minPaymentRateExpr is rate(receipt_min_payment_rejected_total[5m]).
func minPaymentRateExpr() promq.Expr {
	return promq.Rate(promq.Select(MetricMinPaymentRejected), ValidationWindow)
}

// queryLatencyP99Expr is the node's own p99 receipts query latency over 5m.
func queryLatencyP99Expr() promq.Expr {
	return promq.HistogramQuantile(0.99, promq.Rate(promq.Select(MetricQueryDuration+"_bucket"), 5*time.Minute))
}

// emissionIncreaseExpr is the node's receipts over the last minute, all markets.
func emissionIncreaseExpr() promq.Expr {
	return promq.SumWithout(promq.Increase(promq.Select(MetricEmitted), FlatWindow), "market")
}

// blockIncreaseExpr is the node's blocks over the last minute.
func blockIncreaseExpr() promq.Expr {
	return promq.Increase(promq.Select(MetricBlockHeight), FlatWindow)
}
