// Package treasury turns the runbook's "Treasury Stuck", "Settlement Audit" and
// "Explorer Treasury Schema Migration" sections into code: a typed client for
// the gov.treasury.* methods, the dependency analysis, the Treasury Stuck
// runbook (NewRunbook: Diagnose, with its symptoms, five diagnosis steps,
// resolution paths A–D, alert thresholds and SLOs, and Apply, Path A's
// rollbacks), WriteBundle (Path D's incident bundle), Audit (ledger
// conservation) and MigrateExplorer.
//
// The package exports no metrics of its own, so it has no Collector.
//
// # Client
//
// NewClient(url, opts…) takes package rpc's options (rpc.WithToken,
// rpc.WithTimeout, rpc.WithRetries, rpc.WithHTTPClient, rpc.WithClock); an
// invalid one is an error there. NewClientFromRPC shares one *rpc.Client between
// domain clients. Reads are retried, Rollback never. Errors are rpc's:
// errors.Is with the aliased sentinels (ErrNotFound, ErrInvalidParams, …),
// errors.As to *CallError (rpc.CallError) naming the method and URL;
// ErrInvalidArgument is an argument refused before anything was sent.
//
// Types mirror the wire: times are Unix seconds, amounts tbops.Amount
// (micro-BLOCK), and a field the node sent as null or not at all is nil, never
// 0 (the executor's times and counts). Encoding a record writes the protocol's
// shape, so a record printed as JSON is what a protocol node returns and the
// runbook's jq paths (.proposal.deps, .status.state, .executor.last_error) work
// on it. Reference-node records (nested {"deps","disbursement"}, tagged status
// such as {"Queued":{"queued_at":…}}) carry whole BLOCK; a record is treated as
// a reference record when it is nested or its status is tagged. amount_ct is
// read as amount, balance_ct as balance (BLOCK), capitalised or tagged history
// events are accepted; a reference record's updated_at, which it lacks, is its
// status's timestamp. A record that does not decode is skipped and reported
// (Page.Invalid, ErrRecord from All), so one bad record hides nothing else.
//
// # Time windows
//
// Every windowed condition follows promq's rule ("Time windows" in its package
// documentation): decided only from evidence that covers the window, else
// unknown with a warning saying how much was observed. Exact RPC evidence is
// preferred wherever the runbook allows it:
//
//   - Alerts: the Alerts block is promq.EvalRule of each of Rules() on the
//     source Diagnose is given (and the SLO table's rules with Options.SLO),
//     the one definition `tbops rules` prints. An alert's value is shown only
//     when the samples give it exactly.
//   - Backlog > 50 for 2 epochs (240 s): the TreasuryBacklogWarning rule's
//     evaluation. When the metrics do not decide it, the records may: more than
//     50 disbursements queued (status.changed_at) since before the window kept
//     the backlog above 50 throughout it, and 50 or fewer queued on a node
//     without the gauge cannot have held above 50.
//   - No state transitions: decided from the records and the executor
//     snapshot. Its value is the seconds since the newest change the node shows
//     (a record's updated_at or status.changed_at, the executor's
//     last_success_at); a change within 10 minutes, or an empty queue, is ok at
//     once; more than 10 minutes while disbursements are queued fires
//     (critical) when the whole listing and the executor snapshot were read.
//     Otherwise the TreasuryNoProgress rule decides, or leaves it unknown. The
//     rule itself (no disbursement finalized in 10 minutes while a backlog
//     waits) needs 10 minutes of history, or a finalized counter that moved.
//   - Executor error, stale disbursements and inconsistent records are RPC
//     facts, decided at once.
//
// # Lag p95
//
// The runbook names the gauge treasury_disbursement_lag_seconds_p95 (symptom
// > 300 s) and the histogram treasury_disbursement_lag_seconds (alert > 600 s).
// Where a node exports the gauge it decides, as the runbook says; otherwise the
// p95 is derived from the histogram over the last 5 minutes,
// histogram_quantile(0.95, rate(…_bucket[5m])), like energy's oracle latency,
// rather than over the cumulative buckets, whose lifetime quantile a long
// healthy past keeps low. Rules and Diagnose share the expression, an `or` of
// the two per node (on instance, job). The lag symptom's detail says which one
// the value came from; a missing gauge is not warned about (PROTOCOL.md lists
// only the histogram).
//
// # Other decisions where the runbook leaves room
//
//   - Severities: executor error and no transitions are critical (the runbook's
//     critical alerts cover them); backlog, lag and stale disbursements warnings.
//   - Pending sum (step 5, Path B) is the queued disbursements, as the runbook's jq.
//   - Path A plans a rollback for each pending disbursement whose dependency was
//     rolled back (reason "Dependency X was rolled back"); cycles and missing
//     dependencies are checks, never automatic rollbacks. Dependencies absent from
//     the listing are looked up one by one (MaxDepLookups). Apply carries out the
//     planned rollbacks once each and never cascades: the disbursements that
//     depended on them are the next level, which a warning points out.
//   - Path B's "insufficient_funds increasing" is known from a counter that
//     moved, even on a short observation (its rise is a lower bound).
//   - Path C also matches an absent, expired or foreign lease while disbursements
//     are ready, even with last_error null. Executor texts are classified by
//     ClassifyError (the runbook's codes and the reference node's texts).
//   - Path D matches two or more inconsistent records (duplicate ids, executed
//     without tx_hash, pending with one, times running backwards, non-positive
//     amounts) or any record that could not be decoded.
//   - Hermetic by default: the zero Options read no file; step 4 reads the log
//     files Options.LogGlobs names (the command line passes DefaultLogGlob).
//     The runbook's grep is substring and case-sensitive; each file's last
//     16 MiB is read; missing files are findings, not failures.
//   - Audit: Expected = initial (first snapshot's balance − its delta) + accruals −
//     executed + refunds (+ queued deltas, 0 on the protocol's node); Actual is the
//     current balance when no end epoch is given, else the last snapshot's balance;
//     the percentage is relative to Expected. A disbursement is in an epoch range
//     when its scheduled_epoch is.
//   - Migration: one transaction holding SQLite's exclusive lock on the file
//     (locking_mode=EXCLUSIVE, then BEGIN EXCLUSIVE, so that WAL readers are
//     refused too) with a short busy timeout (200 ms); a database another
//     connection has open is ErrDatabaseBusy; both amount_ct and amount present
//     is refused; indexes using amount_it (by column or in their SQL) are dropped
//     before the column. OpenExplorerDB opens the exact path given (an escaped
//     file: URI, mode=rw) and never creates a database.
package treasury
