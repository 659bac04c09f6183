package treasury

import (
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the id of the Treasury Stuck runbook's reports.
const RunbookID = "treasury-stuck"

// Thresholds of the runbook's symptoms and alerts.
const (
	BacklogWarning     = 50                                  // treasury_disbursement_backlog > 50 …
	BacklogWarningFor  = 2 * tbops.EpochBlocks * time.Second // … for 2 epochs (240 s)
	BacklogCritical    = 100                                 // > 100 …
	BacklogCriticalFor = 3 * tbops.EpochBlocks * time.Second // … for 3 epochs (360 s)
	LagP95Symptom      = 300.0                               // symptom: lag p95 > 300 s
	LagP95Warning      = 600.0                               // alert: lag p95 > 600 s
	ErrorRateCritical  = 1.0                                 // alert: rate(errors[5m]) > 1/s
	StaleAfter         = 72 * time.Hour                      // created > 3 days ago, still queued
	StuckAfter         = time.Hour                           // diagnosis step 2: queued > 1 h
	NoProgressWindow   = 10 * time.Minute                    // increase(…[10m]) == 0
	ErrorRateWindow    = 5 * time.Minute                     // rate(…[5m])
	LagWindow          = 5 * time.Minute                     // the histogram's p95 over rate(…[5m])
)

// Metric names (PROTOCOL.md section 7, and the runbook's p95 gauge).
const (
	MetricBacklog = "treasury_disbursement_backlog"
	MetricBalance = "treasury_balance"
	MetricLag     = "treasury_disbursement_lag_seconds"
	// MetricLagP95 is the gauge the runbook's symptom names; a node may export
	// it beside the histogram (see the package documentation, "Lag p95").
	MetricLagP95        = "treasury_disbursement_lag_seconds_p95"
	MetricTickDuration  = "treasury_executor_tick_duration_seconds"
	MetricErrors        = "treasury_execution_errors_total"
	MetricDisbursements = "governance_disbursements_total"
)

// Alert names of the runbook's Alert Thresholds.
const (
	AlertBacklogCritical = "TreasuryBacklogCritical"
	AlertExecutorFailing = "TreasuryExecutorFailing"
	AlertNoProgress      = "TreasuryNoProgress"
	AlertLatencyHigh     = "TreasuryLatencyHigh"
	AlertBacklogWarning  = "TreasuryBacklogWarning"
)

// Rules returns the runbook's alert thresholds ("Alert Thresholds"), critical
// first, then the alert thresholds of the Treasury SLO table: the one
// definition of each alert, which `tbops rules` prints and Diagnose evaluates.
// "for N epochs" is N × 120 s.
//
// Every rule is per node, so one Prometheus can scrape a whole fleet: sums run
// only over the domain labels (reason, status), never across instances, and
// keep every target label (instance, job, and any the scrape adds), so each
// alert names its node; joins match on(instance, job). The decisions where the
// runbook's lines are open:
//
//   - The executor-failing rate sums the counter's reason label: the runbook's
//     bare rate(…) > 1 compares each reason alone, so errors spread over two
//     reasons at 0.6/s each would never page.
//   - No progress requires a backlog on the same node: the runbook's bare
//     increase(…{status="finalized"}[10m]) == 0 would page on an idle treasury
//     with nothing queued.
//   - The lag p95 is the node's treasury_disbursement_lag_seconds_p95 gauge
//     where it exports one, else histogram_quantile(0.95, …) over the bucket
//     rates of the last 5 minutes (see the package documentation, "Lag p95").
func Rules() []promq.Rule {
	rules := []promq.Rule{
		{Alert: AlertBacklogCritical, Expr: promq.GTc(backlog(), BacklogCritical), For: BacklogCriticalFor, Severity: tbops.StatusCritical,
			Summary: "Treasury backlog accumulating: over 100 disbursements for 3 epochs"},
		{Alert: AlertExecutorFailing, Expr: promq.GTc(errorsPerSecond(), ErrorRateCritical), Severity: tbops.StatusCritical,
			Summary: "Treasury executor failing: over 1 execution error per second"},
		{Alert: AlertNoProgress, Expr: promq.And(promq.EQc(promq.Increase(promq.Select(MetricDisbursements, "status", string(StateFinalized)), NoProgressWindow), 0),
			promq.GTc(backlog(), 0), promq.On("instance", "job")), Severity: tbops.StatusCritical,
			Summary: "Treasury makes no progress: no disbursement finalized in 10 minutes"},
		{Alert: AlertLatencyHigh, Expr: promq.GTc(lagP95(), LagP95Warning), Severity: tbops.StatusWarning,
			Summary: "Treasury disbursement lag p95 over 600 s"},
		{Alert: AlertBacklogWarning, Expr: promq.GTc(backlog(), BacklogWarning), For: BacklogWarningFor, Severity: tbops.StatusWarning,
			Summary: "Treasury backlog over 50 disbursements for 2 epochs"},
	}
	for i := range rules {
		rules[i].Runbook = RunbookID
	}
	for _, slo := range SLOs() {
		rules = append(rules, slo.Alert)
	}
	return rules
}

// lagSymptom is the runbook's lag symptom (p95 > 300 s) as a rule, so that it
// is evaluated exactly as the latency alert; it is not exported.
func lagSymptom() promq.Rule {
	return promq.Rule{Alert: "TreasuryLagSymptom", Expr: promq.GTc(lagP95(), LagP95Symptom), Severity: tbops.StatusWarning, Runbook: RunbookID}
}

// SLORow is one row of the runbook's Treasury SLO table: what measures it, the
// target a measured value must meet (Value Cmp Goal), and its alert threshold
// as a rule.
type SLORow struct {
	Name           string
	Target         string
	AlertThreshold string
	// Measure is the SLO's value per node.
	Measure promq.Expr
	// A value v meets the target when Cmp.Holds(v, Goal).
	Cmp  promq.Cmp
	Goal float64
	// Alert fires when the alert threshold is crossed.
	Alert promq.Rule
}

// Per-node expressions of the rules and the SLO table. Both sides of a ratio
// keep the same labels (the node's target labels), so it divides node by node.

// backlog is the backlog gauge.
func backlog() promq.Expr { return promq.Metric(MetricBacklog) }

// errorsPerSecond is each node's execution errors per second, all reasons.
func errorsPerSecond() promq.Expr {
	return promq.SumWithout(promq.Rate(promq.Select(MetricErrors), ErrorRateWindow), "reason")
}

// donePerSecond is each node's executed and finalized disbursements per second.
func donePerSecond() promq.Expr {
	done := func(s State) promq.Expr {
		return promq.Rate(promq.Select(MetricDisbursements, "status", string(s)), ErrorRateWindow)
	}
	return promq.SumWithout(promq.Or(done(StateExecuted), done(StateFinalized)), "status")
}

// errorRatio is the share of execution attempts that failed over 5 minutes. A
// node with errors and no executed/finalized series at all counts 0 successes
// (the `or 0 *` term), so an executor that only fails still reads 100%.
func errorRatio() promq.Expr {
	return promq.Div(errorsPerSecond(), promq.Add(errorsPerSecond(), promq.Or(donePerSecond(), promq.Mul(promq.Num(0), errorsPerSecond()))))
}

// lagP95 is the node's p95 gauge, or the p95 of its histogram over 5 minutes.
func lagP95() promq.Expr {
	return promq.Or(promq.Metric(MetricLagP95),
		promq.HistogramQuantile(0.95, promq.Rate(promq.Select(MetricLag+"_bucket"), LagWindow)), promq.On("instance", "job"))
}

// SLOs returns the runbook's Treasury SLO table.
func SLOs() []SLORow {
	rows := []SLORow{
		{Name: "Availability", Target: "99.95%", AlertThreshold: "Errors > 0.1% for 5 min",
			Measure: promq.Sub(promq.Num(1), errorRatio()), Cmp: promq.GE, Goal: 0.9995,
			Alert: promq.Rule{Expr: promq.GTc(errorRatio(), 0.001), For: 5 * time.Minute}},
		{Name: "Execution Latency p95", Target: "< 300s", AlertThreshold: "> 600s for 10 min",
			Measure: lagP95(), Cmp: promq.LT, Goal: LagP95Symptom,
			Alert: promq.Rule{Expr: promq.GTc(lagP95(), LagP95Warning), For: 10 * time.Minute}},
		{Name: "Error Rate", Target: "< 0.1%", AlertThreshold: "> 1 error/sec",
			Measure: errorRatio(), Cmp: promq.LT, Goal: 0.001,
			Alert: promq.Rule{Expr: promq.GTc(errorsPerSecond(), ErrorRateCritical)}},
		{Name: "Queue Depth", Target: "< 100", AlertThreshold: "> 100 for 3 epochs",
			Measure: backlog(), Cmp: promq.LT, Goal: BacklogCritical,
			Alert: promq.Rule{Expr: promq.GTc(backlog(), BacklogCritical), For: BacklogCriticalFor}},
	}
	for i := range rows {
		r := &rows[i]
		r.Alert.Alert = "TreasurySLO" + strings.ReplaceAll(r.Name, " ", "")
		r.Alert.Runbook, r.Alert.Severity, r.Alert.SLO = RunbookID, tbops.StatusWarning, r.Name
		r.Alert.Summary = "Treasury SLO " + r.Name + " (target " + r.Target + ") breached: " + r.AlertThreshold
	}
	return rows
}

// ErrorKind classifies the executor's last_error.
type ErrorKind string

// The executor error kinds: the runbook's four (Path C and B) and the reference
// node's lease and circuit-breaker texts; anything else is unknown.
const (
	ErrorNone              ErrorKind = ""
	ErrorLedgerUnavailable ErrorKind = "ledger_unavailable"
	ErrorConsensusTimeout  ErrorKind = "consensus_timeout"
	ErrorDependencyCycle   ErrorKind = "dependency_cycle_detected"
	ErrorInsufficientFunds ErrorKind = "insufficient_funds"
	ErrorLeaseHeld         ErrorKind = "lease_held"
	ErrorCircuitBreaker    ErrorKind = "circuit_breaker_open"
	ErrorUnknown           ErrorKind = "unknown"
)

// ClassifyError maps an executor last_error text to its kind. It accepts the
// runbook's exact codes and the reference node's texts ("lease_held_by node_b",
// "circuit_breaker_open …", "insufficient treasury BLOCK balance …").
func ClassifyError(msg string) ErrorKind {
	m := strings.ToLower(strings.TrimSpace(msg))
	switch {
	case m == "":
		return ErrorNone
	case strings.HasPrefix(m, "ledger_unavailable") || strings.Contains(m, "ledger unavailable"):
		return ErrorLedgerUnavailable
	case strings.HasPrefix(m, "consensus_timeout") || strings.Contains(m, "consensus timeout"):
		return ErrorConsensusTimeout
	case strings.HasPrefix(m, "dependency_cycle_detected") || strings.Contains(m, "dependency cycle"):
		return ErrorDependencyCycle
	case strings.HasPrefix(m, "insufficient_funds") || strings.Contains(m, "insufficient treasury") || strings.Contains(m, "insufficient funds"):
		return ErrorInsufficientFunds
	case strings.HasPrefix(m, "lease_held"):
		return ErrorLeaseHeld
	case strings.HasPrefix(m, "circuit_breaker_open") || strings.Contains(m, "circuit breaker open"):
		return ErrorCircuitBreaker
	}
	return ErrorUnknown
}

// NextCheck is the runbook's next step for an executor error kind: what it
// means and the command to run.
func NextCheck(k ErrorKind) (meaning, command string) {
	switch k {
	case ErrorLedgerUnavailable:
		return "Ledger connection lost", "systemctl status ledger-node"
	case ErrorConsensusTimeout:
		return "Consensus stalled", "contract-cli node consensus --status"
	case ErrorDependencyCycle:
		return "Circular dependency found. Review recent disbursement submissions", "tbops treasury diagnose -o json | jq '.steps[] | select(.id==\"dependency-failures\")'"
	case ErrorInsufficientFunds:
		return "Treasury balance below what is waiting to execute (Path B)", "watch -n 30 'tbops treasury balance'"
	case ErrorLeaseHeld:
		return "Another node holds the executor lease: check that node; restart here only after the lease expired", "tbops treasury balance -o json | jq .executor"
	case ErrorCircuitBreaker:
		return "The executor's circuit breaker opened after repeated failures: find the failures in the logs; it closes after its cool-down", "grep -E 'treasury_executor|DisbursementError' /var/log/node/*.log | tail -100"
	}
	return "Unknown error. Check logs", "tail -100 /var/log/node/*.log"
}
