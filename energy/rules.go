package energy

import (
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the runbook id of the Energy Stalled diagnosis.
const RunbookID = "energy-stalled"

// Thresholds of the runbook's symptoms and alerts (RUNBOOK.md "Energy Stalled").
const (
	// OracleP95Warning and OracleP95Critical are oracle latency p95 limits (s).
	OracleP95Warning  = 10.0
	OracleP95Critical = 30.0
	// FailuresPerMinWarning and FailuresPerMinCritical are signature
	// verification failures per minute. The runbook's symptom and SLO say
	// "> 1/min"; its warning alert writes rate(…[5m]) > 1, which is per second
	// (60/min) and would sit above the critical one. tbops reads both alerts per
	// minute: warning > 1/min, critical > 10/min (the critical alert's bare
	// "counter > 10" would page forever once a node ever had 11 failures).
	FailuresPerMinWarning  = 1.0
	FailuresPerMinCritical = 10.0
	// DisputesWarning and DisputesCritical are energy_active_disputes_total limits.
	DisputesWarning  = 20.0
	DisputesCritical = 50.0
	// ReputationFloor is the composite score below which a provider is "poor".
	ReputationFloor = 0.5
)

// Windows the runbook's expressions use.
const (
	// SettleWindow is the window of "no settlement" (increase(…[10m]) == 0), of
	// "pending credits not decreasing" and of "disputes increasing".
	SettleWindow = 10 * time.Minute
	// RateWindow is the window of the failure rate and of the oracle p95
	// derived from the histogram.
	RateWindow = 5 * time.Minute
)

// Metric names (PROTOCOL.md section 7, the runbook's p95 gauge, and the
// reference node's names of section 9).
const (
	// MetricOracleP95 is the runbook's gauge; when a node exports it, it is
	// the oracle p95 (see the package documentation, "Oracle latency").
	MetricOracleP95       = "oracle_latency_seconds_p95"
	MetricOracleLatency   = "oracle_latency_seconds"
	MetricFailures        = "energy_signature_verification_failures_total"
	MetricFailuresRef     = "energy_reading_reject_total"
	MetricPendingCredits  = "energy_pending_credits_total"
	MetricActiveDisputes  = "energy_active_disputes_total"
	MetricSettlements     = "energy_settlements_total"
	MetricSettlementsRef  = "energy_settlement_total"
	MetricSlashing        = "energy_slashing_total"
	MetricRPCRejected     = "energy_rpc_rejected_total"
	metricOracleLatencyLE = MetricOracleLatency + "_bucket"
)

// Alert names of Rules().
const (
	AlertOracleLatencyCritical     = "EnergyOracleLatencyCritical"
	AlertSignatureFailuresCritical = "EnergySignatureFailuresCritical"
	AlertSettlementStalled         = "EnergySettlementStalled"
	AlertDisputeBacklogCritical    = "EnergyDisputeBacklogCritical"
	AlertOracleLatencyHigh         = "EnergyOracleLatencyHigh"
	AlertSignatureFailures         = "EnergySignatureFailures"
	AlertDisputeBacklog            = "EnergyDisputeBacklog"
	AlertOracleLatencySLO          = "EnergyOracleLatencySLO"
	AlertSignatureValidationSLO    = "EnergySignatureValidationSLO"
)

// The rules' expressions, per node. A fleet Prometheus scrapes many nodes: sums
// run only over the domain label (reason), never across instances, and keep
// every target label (instance, job, and any the scrape adds), so each alert
// names its node and N healthy nodes never add up to a page. Where the
// reference node names a metric differently (PROTOCOL.md section 9), `or` takes
// its name for the nodes that have no series of the contract's, node by node.

// oracleP95 is each node's oracle latency p95: its oracle_latency_seconds_p95
// gauge when it exports one, else histogram_quantile over the last 5 minutes of
// its histogram (no sum: histogram_quantile groups by every label but le, one
// histogram per node).
func oracleP95() promq.Expr {
	return promq.Or(promq.Metric(MetricOracleP95),
		promq.HistogramQuantile(0.95, promq.Rate(promq.Select(metricOracleLatencyLE), RateWindow)))
}

// failuresPerMin is each node's signature verification failures a minute of
// the given reasons (all reasons when none are given).
func failuresPerMin(reasons ...string) promq.Expr {
	perNode := func(metric string) promq.Expr {
		var e promq.Expr
		for _, sel := range reasonSelectors(metric, reasons) {
			r := promq.Rate(sel, RateWindow)
			if e == nil {
				e = r
			} else {
				e = promq.Or(e, r) // distinct reason labels: the union
			}
		}
		return promq.SumWithout(e, "reason")
	}
	return promq.Mul(promq.Or(perNode(MetricFailures), perNode(MetricFailuresRef)), promq.Num(60))
}

func reasonSelectors(metric string, reasons []string) []promq.Selector {
	if len(reasons) == 0 {
		return []promq.Selector{promq.Select(metric)}
	}
	out := make([]promq.Selector, 0, len(reasons))
	for _, r := range reasons {
		out = append(out, promq.Select(metric, "reason", r))
	}
	return out
}

// settlementStalled is a node with no settlement in 10 minutes while that same
// node has credits pending: an idle market with nothing pending is not stalled.
func settlementStalled() promq.Expr {
	settled := promq.Or(promq.Increase(promq.Select(MetricSettlements), SettleWindow),
		promq.Increase(promq.Select(MetricSettlementsRef), SettleWindow))
	return promq.And(promq.EQc(settled, 0), promq.GTc(promq.Metric(MetricPendingCredits), 0), promq.On("instance", "job"))
}

// Rules returns the runbook's alert thresholds and the expressible rows of the
// Energy SLO table as Prometheus rules, one alert per node (see the
// expressions above). They are the only definition of these alerts: `tbops
// rules` prints them and Diagnose evaluates them with promq.EvalRule. The
// settlement-rate and dispute-resolution SLOs are not here: no metric carries
// them; Diagnose evaluates them from energy.credits and energy.disputes.
func Rules() []promq.Rule {
	r := func(alert string, expr promq.Expr, sev tbops.Status, forD time.Duration, summary, slo string) promq.Rule {
		return promq.Rule{Alert: alert, Expr: expr, For: forD, Severity: sev, Summary: summary, Runbook: RunbookID, SLO: slo}
	}
	crit, warn := tbops.StatusCritical, tbops.StatusWarning
	disputes := promq.Metric(MetricActiveDisputes)
	return []promq.Rule{
		r(AlertOracleLatencyCritical, promq.GTc(oracleP95(), OracleP95Critical), crit, 0, "Oracle broken: p95 latency above 30 s", ""),
		r(AlertSignatureFailuresCritical, promq.GTc(failuresPerMin(), FailuresPerMinCritical), crit, 0, "Oracle broken: more than 10 signature verification failures a minute", ""),
		r(AlertSettlementStalled, settlementStalled(), crit, 0, "Settlement stalled: no settlement in 10 minutes while credits are pending", ""),
		r(AlertDisputeBacklogCritical, promq.GTc(disputes, DisputesCritical), crit, 0, "Dispute backlog critical: more than 50 active disputes", ""),
		r(AlertOracleLatencyHigh, promq.GTc(oracleP95(), OracleP95Warning), warn, 0, "Oracle p95 latency above 10 s", ""),
		r(AlertSignatureFailures, promq.GTc(failuresPerMin(), FailuresPerMinWarning), warn, 0, "More than 1 signature verification failure a minute", ""),
		r(AlertDisputeBacklog, promq.GTc(disputes, DisputesWarning), warn, 0, "More than 20 active disputes", ""),
		r(AlertOracleLatencySLO, promq.GTc(oracleP95(), OracleP95Warning), warn, 5*time.Minute, "Oracle latency SLO (p95 < 5 s) breached: above 10 s for 5 minutes", "Oracle Latency p95"),
		r(AlertSignatureValidationSLO, promq.GTc(failuresPerMin(), FailuresPerMinWarning), warn, 0, "Signature validation SLO (> 99.9 %) at risk: more than 1 failure a minute", "Signature Validation"),
	}
}

// SLODef is one row of the Energy SLO table.
type SLODef struct {
	Name           string // the table's Metric column
	Target         string // its Target column
	AlertThreshold string // its Alert Threshold column
	// Alert is the rule of Rules() that carries the alert threshold, "" when
	// no metric carries it.
	Alert string
	// Expr is that rule's PromQL ("" without one).
	Expr string
	For  time.Duration // how long the threshold must hold
}

// SLOs returns the Energy SLO table (RUNBOOK.md "SLO Definitions").
func SLOs() []SLODef {
	rules := map[string]promq.Rule{}
	for _, r := range Rules() {
		rules[r.Alert] = r
	}
	row := func(name, target, threshold, alert string, forD time.Duration) SLODef {
		d := SLODef{Name: name, Target: target, AlertThreshold: threshold, Alert: alert, For: forD}
		if r, ok := rules[alert]; ok {
			d.Expr, d.For = r.PromQL(), r.For
		}
		return d
	}
	return []SLODef{
		row("Oracle Latency p95", "< 5s", "> 10s for 5 min", AlertOracleLatencySLO, 0),
		row("Signature Validation", "> 99.9%", "> 1 failure/min", AlertSignatureValidationSLO, 0),
		row("Settlement Rate", "> 95%", "< 90% for 10 min", "", 10*time.Minute),
		row("Dispute Resolution", "< 1 hour", "Unresolved > 2 hours", "", 0),
	}
}
