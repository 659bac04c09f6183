// Package tbops turns the Fast-Mainnet operations runbook into code.
//
// The runbook's bash, jq and curl snippets become typed clients for the node's
// JSON-RPC, metric queries with evidence, rate limiters, snapshot-hash checks and
// diagnosis functions. Every diagnosis returns the same shape, a [Report]: which
// symptoms fire (with the value, the threshold and the evidence that shows it),
// which diagnosis steps found what, which resolution paths match and the actions
// each one plans, and which alerts of the runbook would fire.
//
// The packages:
//
//   - rpc: the JSON-RPC 2.0 transport every client shares (Read retried, Call
//     sent once, one deadline per call), typed errors, and server helpers.
//   - promq: metrics. A Prometheus-API client and an embedded /metrics scraper
//     behind one Source interface that every diagnosis reads from, and alert
//     rules as expressions evaluated with Prometheus' semantics (EvalRule).
//   - node, treasury, energy, receipts, governor, runtime, p2p: one package per
//     runbook area, each with its typed client (NewClient), its domain logic and
//     its Runbook (NewRunbook).
//   - serve: the continuous doctor, for programs that embed it.
//   - nodetest: a simulated node that speaks the wire contract over real HTTP, with
//     scenarios for every runbook symptom and fault injection, for tests and demos.
//   - cmd/tbops: the command-line tool SREs run during an incident.
//
// A [Runbook] is one runbook bound to one node; [Diagnose] runs a list of them.
//
// Reading a Report: Status is the worst of its symptoms, raised by firing alerts
// and breached SLOs (critical > warning > unknown > ok); an undecided alert does
// not make an otherwise decided report unknown. Missing data never reads as
// zero: the value is nil (null in JSON), the symptom "unknown", and the report
// carries a warning that says what was missing and what would decide it. The
// JSON shape is report.schema.json ([ReportSchema]). Actions are plans; nothing
// changes on a node unless the caller asks.
package tbops
