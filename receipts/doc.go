// Package receipts is the Receipts Flatlining runbook as code: a typed client
// for the node's receipts and node methods, a receipt Validator for node and
// explorer code, and Diagnose/Apply for the runbook (id "receipts-flatlining").
//
// # Client
//
// [Client] calls receipts.stats, receipts.validate, receipts.reset_validation_state,
// node.status and node.consensus_status (PROTOCOL.md sections 2 and 5). Reads are
// retried with backoff; ResetValidationState is a write and is sent exactly once.
// receipts.validate is treated as an idempotent read (re-checking stored receipts
// twice gives the same answer). An unknown market is refused before anything is
// sent (ErrUnknownMarket). Answers missing the fields a diagnosis depends on
// (emitted_total, last_emitted_height, current_block_height, consensus status)
// are ErrMalformed, never zeros: a missing height read as 0 would make a
// healthy market look a million blocks stale.
//
// # Validator
//
// [Validator] checks, cheapest first: the market's schema (required fields,
// string lengths, valid UTF-8, non-negative height and payment, an optional
// per-market payment ceiling — PROTOCOL.md gives one receipt shape, so the four
// markets share DefaultSchema unless configured), the 0.001 BLOCK floor
// (min_payment), the caller's signature check (signature_invalid; PROTOCOL.md
// does not define what a receipt signature covers), and duplicates by
// receipt_id and by (provider, nonce) (duplicate_detection). Each rejection is a
// *RejectError matching ErrSchemaMismatch, ErrMinPayment, ErrSignatureInvalid or
// ErrDuplicate. NewCollector exports the counts under the wire contract's names:
// receipt_validation_errors_total{reason} and receipt_min_payment_rejected_total.
//
// Duplicate detection remembers WindowBlocks blocks (default one epoch, 120):
// two maps of 64-bit seeded hashes (key → block) plus a ring of per-block key
// lists, so the blocks sliding out are deleted key by key and memory follows the
// receipts in the window, not the length of the stream (the maps are rebuilt
// after a burst, since Go maps never shrink). Decisions on block heights:
// receipts may arrive out of order within the window; a receipt above the tip
// moves the window up once it has passed the other checks; a gap is simply
// blocks without receipts (a gap longer than the window forgets everything); a
// receipt older than the window is rejected as duplicate_detection with
// ErrStale, because its uniqueness can no longer be proven. MaxAhead (off by
// default) bounds how far one receipt may move the window; Advance lets a node
// set the tip it knows. Keys are hashes: a false duplicate has probability about
// n/2^64 for n receipts in the window.
//
// # Diagnose
//
// Symptoms (ids stable):
//
//   - emission-flat (critical): receipt_emitted_total flat or decreasing for 5+
//     blocks. Decided from increase(receipt_emitted_total[1m]) summed over the
//     markets == 0 (1m: the shortest range that holds two samples at usual
//     scrape intervals), or from receipts.stats when every market is 5+ blocks
//     behind node.status' current_block_height.
//   - market-not-emitting (critical): a market with no receipt for StallBlocks
//     (5) blocks by receipts.stats last_emitted_height — the block-exact check —
//     or with increase(receipt_emitted_total{market}[1m]) == 0. A market with no
//     series at all while others have some counts as not emitting, with a
//     warning; when the metric has no series at all, it is missing data.
//   - validation-errors-increasing (warning; critical below 99 %): errors grow
//     faster than the SLO allows, i.e. validation success emitted / (emitted +
//     errors) over 5m is below 99.99 %. A trickle within the SLO is a step
//     finding, not a symptom.
//   - min-payment-rejections (warning): rate(receipt_min_payment_rejected_total[5m])
//     above "near-zero", defined as one rejection a minute.
//   - chain-stalled (critical): consensus "stalled" or block_height_total flat
//     over 1m. Not a runbook checkbox: it is step 4 turned into a verdict,
//     because receipts are emitted in blocks and the remedy differs.
//   - explorer-not-updating (warning): only with Options.ExplorerURL, a URL
//     answering JSON {"latest_receipt_height": N}; firing when N is more than 10
//     blocks behind the node's newest receipt. Without a URL the symptom is "not
//     checked": ok, not firing, no warning (no explorer is part of a node, so
//     unknown would turn every healthy doctor run into exit 3). An explorer that
//     cannot be read is unknown with a warning.
//
// Steps are the runbook's: 1 rate(receipt_emitted_total[1m]) per market and the
// runbook's increase(receipt_emitted_total[10m]) == 0 query (it says "last 10
// blocks" but queries 10 minutes; tbops shows that query as written and adds the
// block-exact "no receipt in the last 10 blocks" from receipts.stats); 2
// validation error rate and breakdown by reason, min-payment rejections; 3
// receipts.stats for each market (the receipts.log grep stays on the host); 4
// node.status, the runbook's increase(block_height_total[50m]) (50 minutes ≈
// 3000 blocks, shown as written, while the stall verdict uses 1m), and
// node.consensus_status.
//
// Paths (the runbook has no letters; tbops names them): A stalled markets
// (restart receipt-emitter, watch stats, systemctl status <market>-market —
// host-side, always plans; not matched when the chain itself is stalled), B
// validation errors (reset validation state, re-validate the last 100 blocks),
// C stalled chain (check consensus, escalate), D min-payment rejections (find
// the market; the runbook offers no remedy). Diagnose never writes; Apply
// carries out B's reset and re-validation only.
//
// SLOs (Options.SLO): emission in all markets; validation success > 99.99 %
// (critical below 99 %); min-payment rejections near zero (≤ 1/min); query
// latency p99 < 100 ms, measured on the RPC calls tbops itself makes because
// the node exports no query-latency metric (a single diagnosis has a handful of
// calls, so its p99 is close to the maximum). "Storage: all receipts, > 1
// week" is not evaluated: no RPC or metric exposes receipt retention (calling
// receipts.validate on week-old blocks would re-validate, which the runbook uses
// as a remedy, not a probe); a step says so.
//
// Alerts: [Rules] returns the SLO table's thresholds as Prometheus rules; Diagnose
// evaluates each on the data gathered. Two cannot be evaluated as Prometheus
// would: "< 99 % for 10 min" uses the 10-minute average rate in place of
// holding for 10 minutes, and query latency uses tbops' own observations (the
// rule reads receipt_query_duration_seconds, which the node does not export).
// "Sudden increase" in min-payment rejections is the 5m rate above near-zero
// and above 3× the 1h rate; a scrape source that has observed only seconds
// cannot tell a sudden increase from a steady one, so the alert stays quiet
// there while the min-payment-rejections symptom still fires.
package receipts
