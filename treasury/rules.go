package treasury

import (
	"strings"
	"time"

	"github.com/theblock/tbops"
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
)

// Metric names (PROTOCOL.md section 7).
const (
	MetricBacklog       = "treasury_disbursement_backlog"
	MetricBalance       = "treasury_balance"
	MetricLag           = "treasury_disbursement_lag_seconds"
	MetricTickDuration  = "treasury_executor_tick_duration_seconds"
	MetricErrors        = "treasury_execution_errors_total"
	MetricDisbursements = "governance_disbursements_total"
)

// Rules returns the runbook's alert thresholds ("Alert Thresholds"), critical
// first, then the alert thresholds of the Treasury SLO table. "for N epochs" is
// N × 120 s.
//
// Every rule is per node, so one Prometheus can scrape a whole fleet: sums run
// only over the domain labels (reason, status), never across instances, and
// keep every target label (instance, job, and any the scrape adds), so each
// alert names its node. The decisions where the runbook's lines are open:
//
//   - The executor-failing rate sums the counter's reason label: the runbook's
//     bare rate(…) > 1 compares each reason alone, so errors spread over two
//     reasons at 0.6/s each would never page.
//   - No progress requires a backlog on the same node: the runbook's bare
//     increase(…{status="finalized"}[10m]) == 0 would page on an idle treasury
//     with nothing queued.
//   - The lag p95 is the runbook's histogram_quantile over the cumulative
//     buckets, with no sum: histogram_quantile groups by every label but le,
//     which is already one histogram per node.
func Rules() []tbops.Rule {
	rules := []tbops.Rule{
		{Alert: "TreasuryBacklogCritical", Runbook: RunbookID, Severity: tbops.StatusCritical, Expr: MetricBacklog + " > 100", For: BacklogCriticalFor,
			Summary: "Treasury backlog accumulating: over 100 disbursements for 3 epochs"},
		{Alert: "TreasuryExecutorFailing", Runbook: RunbookID, Severity: tbops.StatusCritical, Expr: errorsPerSecond + " > 1",
			Summary: "Treasury executor failing: over 1 execution error per second"},
		{Alert: "TreasuryNoProgress", Runbook: RunbookID, Severity: tbops.StatusCritical, Expr: `increase(` + MetricDisbursements + `{status="finalized"}[10m]) == 0 and on(instance, job) ` + MetricBacklog + ` > 0`,
			Summary: "Treasury makes no progress: no disbursement finalized in 10 minutes"},
		{Alert: "TreasuryLatencyHigh", Runbook: RunbookID, Severity: tbops.StatusWarning, Expr: lagP95 + " > 600",
			Summary: "Treasury disbursement lag p95 over 600 s"},
		{Alert: "TreasuryBacklogWarning", Runbook: RunbookID, Severity: tbops.StatusWarning, Expr: MetricBacklog + " > 50", For: BacklogWarningFor,
			Summary: "Treasury backlog over 50 disbursements for 2 epochs"},
	}
	for _, slo := range SLOs() {
		rules = append(rules, tbops.Rule{Alert: "TreasurySLO" + strings.ReplaceAll(slo.Name, " ", ""), Runbook: RunbookID,
			Severity: tbops.StatusWarning, Expr: slo.AlertExpr, For: slo.AlertFor, SLO: slo.Name,
			Summary: "Treasury SLO " + slo.Name + " (target " + slo.Target + ") breached: " + slo.AlertThreshold})
	}
	return rules
}

// SLORow is one row of the runbook's Treasury SLO table, with the PromQL that
// measures it and the alert threshold as a rule expression.
type SLORow struct {
	Name           string `json:"name"`
	Target         string `json:"target"`
	AlertThreshold string `json:"alert_threshold"`
	// Expr measures the SLO; AlertExpr fires when the alert threshold is crossed
	// for AlertFor.
	Expr      string        `json:"expr"`
	AlertExpr string        `json:"alert_expr"`
	AlertFor  time.Duration `json:"alert_for"`
}

// Per-node PromQL of the rules and the SLO table. Both sides of the ratio keep
// the same labels (the node's target labels), so it divides node by node.
const (
	// errorsPerSecond is each node's execution errors per second, all reasons.
	errorsPerSecond = "sum without (reason) (rate(" + MetricErrors + "[5m]))"
	// donePerSecond is each node's executed and finalized disbursements per second.
	donePerSecond = "sum without (status) (rate(" + MetricDisbursements + `{status=~"executed|finalized"}[5m]))`
	// errorRatio is the share of execution attempts that failed over 5 minutes.
	// A node with errors and no executed/finalized series at all counts 0
	// successes (the `or 0 *` term), so an executor that only fails still reads 100%.
	errorRatio = errorsPerSecond + " / (" + errorsPerSecond + " + (" + donePerSecond + " or 0 * " + errorsPerSecond + "))"
	// lagP95 is the runbook's p95 over the cumulative buckets, one per node.
	lagP95 = "histogram_quantile(0.95, " + MetricLag + "_bucket)"
)

// SLOs returns the runbook's Treasury SLO table.
func SLOs() []SLORow {
	return []SLORow{
		{Name: "Availability", Target: "99.95%", AlertThreshold: "Errors > 0.1% for 5 min",
			Expr: "1 - (" + errorRatio + ")", AlertExpr: "(" + errorRatio + ") > 0.001", AlertFor: 5 * time.Minute},
		{Name: "Execution Latency p95", Target: "< 300s", AlertThreshold: "> 600s for 10 min",
			Expr: "histogram_quantile(0.95, " + MetricLag + "_bucket)", AlertExpr: lagP95 + " > 600", AlertFor: 10 * time.Minute},
		{Name: "Error Rate", Target: "< 0.1%", AlertThreshold: "> 1 error/sec",
			Expr: errorRatio, AlertExpr: errorsPerSecond + " > 1"},
		{Name: "Queue Depth", Target: "< 100", AlertThreshold: "> 100 for 3 epochs",
			Expr: MetricBacklog, AlertExpr: MetricBacklog + " > 100", AlertFor: BacklogCriticalFor},
	}
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
