package energy

import (
	"time"

	"github.com/theblock/tbops"
)

// RunbookID is the runbook id of the Energy Stalled diagnosis.
const RunbookID = "energy-stalled"

// Thresholds of the runbook's symptoms and alerts (RUNBOOK.md "Energy Stalled").
const (
	// OracleP95Warning and OracleP95Critical are oracle_latency_seconds p95 limits (s).
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
	SettleWindow = 10 * time.Minute
	RateWindow   = 5 * time.Minute
)

// Per-node PromQL of the rules and the SLO table. A fleet Prometheus scrapes
// many nodes: sums run only over the domain label (reason), never across
// instances, and keep every target label (instance, job, and any the scrape
// adds), so each alert names its node and N healthy nodes never add up to a
// page.
const (
	// oracleP95 is each node's oracle latency p95 over 5 minutes. No sum:
	// histogram_quantile groups by every label but le, one histogram per node.
	oracleP95 = `histogram_quantile(0.95, rate(oracle_latency_seconds_bucket[5m]))`
	// failuresPerMin is each node's signature verification failures a minute,
	// all reasons. The reference node exports energy_reading_reject_total
	// instead (PROTOCOL.md section 9): `or` takes it for the nodes that have no
	// series of the contract's name, node by node, as Diagnose does.
	failuresPerMin = `(sum without (reason) (rate(energy_signature_verification_failures_total[5m])) or sum without (reason) (rate(energy_reading_reject_total[5m]))) * 60`
	// settlementStalled is a node with no settlement in 10 minutes
	// (energy_settlement_total on the reference node) while that same node has
	// credits pending: an idle market with nothing pending is not stalled.
	settlementStalled = `(increase(energy_settlements_total[10m]) or increase(energy_settlement_total[10m])) == 0 and on(instance, job) energy_pending_credits_total > 0`
	// activeDisputes is the gauge, per node as exported.
	activeDisputes = `energy_active_disputes_total`
)

// Rules returns the runbook's alert thresholds and the expressible rows of the
// Energy SLO table as Prometheus rules, one alert per node (see the PromQL
// constants above). The settlement-rate and dispute-resolution SLOs are not
// here: no metric carries them; Diagnose evaluates them from energy.credits and
// energy.disputes.
func Rules() []tbops.Rule {
	r := func(alert, expr string, sev tbops.Status, forD time.Duration, summary, slo string) tbops.Rule {
		return tbops.Rule{Alert: alert, Expr: expr, For: forD, Severity: sev, Summary: summary, Runbook: RunbookID, SLO: slo}
	}
	return []tbops.Rule{
		r("EnergyOracleLatencyCritical", oracleP95+" > 30", tbops.StatusCritical, 0, "Oracle broken: p95 latency above 30 s", ""),
		r("EnergySignatureFailuresCritical", failuresPerMin+" > 10", tbops.StatusCritical, 0, "Oracle broken: more than 10 signature verification failures a minute", ""),
		r("EnergySettlementStalled", settlementStalled, tbops.StatusCritical, 0,
			"Settlement stalled: no settlement in 10 minutes while credits are pending", ""),
		r("EnergyDisputeBacklogCritical", activeDisputes+" > 50", tbops.StatusCritical, 0, "Dispute backlog critical: more than 50 active disputes", ""),
		r("EnergyOracleLatencyHigh", oracleP95+" > 10", tbops.StatusWarning, 0, "Oracle p95 latency above 10 s", ""),
		r("EnergySignatureFailures", failuresPerMin+" > 1", tbops.StatusWarning, 0, "More than 1 signature verification failure a minute", ""),
		r("EnergyDisputeBacklog", activeDisputes+" > 20", tbops.StatusWarning, 0, "More than 20 active disputes", ""),
		r("EnergyOracleLatencySLO", oracleP95+" > 10", tbops.StatusWarning, 5*time.Minute, "Oracle latency SLO (p95 < 5 s) breached: above 10 s for 5 minutes", "Oracle Latency p95"),
		r("EnergySignatureValidationSLO", failuresPerMin+" > 1", tbops.StatusWarning, 0, "Signature validation SLO (> 99.9 %) at risk: more than 1 failure a minute", "Signature Validation"),
	}
}

// SLODef is one row of the Energy SLO table.
type SLODef struct {
	Name           string
	Target         string
	AlertThreshold string
	// Expr is the PromQL of the alert threshold, "" when no metric carries it.
	Expr string
	For  time.Duration
}

// SLOs returns the Energy SLO table (RUNBOOK.md "SLO Definitions").
func SLOs() []SLODef {
	return []SLODef{
		{Name: "Oracle Latency p95", Target: "< 5s", AlertThreshold: "> 10s for 5 min",
			Expr: oracleP95 + " > 10", For: 5 * time.Minute},
		{Name: "Signature Validation", Target: "> 99.9%", AlertThreshold: "> 1 failure/min",
			Expr: failuresPerMin + " > 1"},
		{Name: "Settlement Rate", Target: "> 95%", AlertThreshold: "< 90% for 10 min", For: 10 * time.Minute},
		{Name: "Dispute Resolution", Target: "< 1 hour", AlertThreshold: "Unresolved > 2 hours"},
	}
}
