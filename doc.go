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
//   - promq: metrics. A Prometheus-API client and an embedded /metrics scraper
//     behind one Source interface that every diagnosis reads from.
//   - treasury, energy, receipts, governor, runtime, p2p: one package per runbook
//     area, each with its typed client, its domain logic and its Diagnose.
//   - nodetest: a simulated node that speaks the wire contract over real HTTP, with
//     scenarios for every runbook symptom and fault injection, for tests and demos.
//   - cmd/tbops: the command-line tool SREs run during an incident.
//
// Reading a Report: Status is the worst of its firing symptoms and alerts
// (critical > warning > unknown > ok). Missing data never reads as zero: the
// symptom is "unknown" and the report carries a warning that says what was
// missing. Actions are plans; nothing changes on a node unless the caller asks.
package tbops
