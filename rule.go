package tbops

import "time"

// Rule is one alerting rule of a runbook in Prometheus terms: the runbook's alert
// thresholds and its SLO tables' alert-threshold column, as each domain package
// exports them (treasury.Rules(), energy.Rules(), …). `tbops rules` prints them
// as a Prometheus rules file, one group per runbook.
type Rule struct {
	// Alert is the alert name, CamelCase as Prometheus conventions have it.
	Alert string
	// Expr is the PromQL expression; the alert fires while it returns series.
	Expr string
	// For is how long Expr must hold before the alert fires ("for N epochs" is
	// N × 120 s).
	For time.Duration
	// Severity is StatusCritical (pages on-call) or StatusWarning (creates a ticket).
	Severity Status
	// Summary is one line for the annotation.
	Summary string
	// Runbook is the runbook id (treasury-stuck, …) whose section the alert links to.
	Runbook string
	// SLO names the SLO table row the rule comes from, if any.
	SLO string
}
