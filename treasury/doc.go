// Package treasury turns the runbook's "Treasury Stuck", "Settlement Audit" and
// "Explorer Treasury Schema Migration" sections into code: a typed client for
// the gov.treasury.* methods, the dependency analysis, Diagnose (symptoms, the
// five diagnosis steps, resolution paths A–D, alert thresholds, SLOs), Apply
// (Path A's rollbacks, only when asked), WriteBundle (Path D's incident bundle),
// Audit (ledger conservation) and MigrateExplorer.
//
// Decisions where the runbook and PROTOCOL.md leave room:
//
//   - Client: NewClient(url, opts…) builds its own transport; NewClientFrom wraps
//     an existing one (tools inside this module). Reads are retried, Rollback never.
//     Types mirror the wire: times are Unix seconds, amounts tbops.Amount (micro-BLOCK).
//   - Reference-node records (nested {"deps","disbursement"}, tagged status such as
//     {"Queued":{"queued_at":…}}) carry whole BLOCK; a record is treated as a
//     reference record when it is nested or its status is tagged. amount_ct is
//     read as amount, balance_ct as balance (BLOCK), capitalised or tagged history
//     events are accepted. A record that does not decode is skipped and reported
//     (Page.Invalid, ErrRecord from All), so one bad record hides nothing else.
//   - Backlog symptom: promq.HeldFor(backlog > 50, 2 epochs = 240 s); a value at or
//     under 50 now is simply not firing; above 50 without 240 s of samples is unknown.
//   - "No state transitions": there is a backlog and nothing left the queue in 10
//     minutes: sum(increase(governance_disbursements_total{status=~"executed|finalized|rolled_back"}[10m])) == 0.
//     Without that metric: no record's updated_at moved in 10 minutes and the
//     executor had no success in 10 minutes either. No backlog: not firing.
//   - Severities: executor error and no transitions are critical (the runbook's
//     critical alerts cover them); backlog, lag and stale disbursements warnings.
//   - Pending sum (step 5, Path B) is the queued disbursements, as the runbook's jq.
//   - Path A plans a rollback for each pending disbursement whose dependency was
//     rolled back (reason "Dependency X was rolled back"); cycles and missing
//     dependencies are checks, never automatic rollbacks. Dependencies absent from
//     the listing are looked up one by one (MaxDepLookups).
//   - Path C also matches an absent, expired or foreign lease while disbursements
//     are ready, even with last_error null. Executor texts are classified by
//     ClassifyError (the runbook's codes and the reference node's texts).
//   - Path D matches two or more inconsistent records (duplicate ids, executed
//     without tx_hash, pending with one, times running backwards, non-positive
//     amounts) or any record that could not be decoded.
//   - Logs: the runbook's grep is substring and case-sensitive; each file's last
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
