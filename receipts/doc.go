// Package receipts is the Receipts Flatlining runbook as code: a typed client
// for the node's receipts and node methods, a receipt Validator for node and
// explorer code, and the runbook itself (id "receipts-flatlining"), a
// tbops.Runbook and tbops.Applier.
//
// # Client
//
// [NewClient] takes the node's JSON-RPC URL and the transport's options
// (rpc.WithToken, rpc.WithTimeout, rpc.WithRetries, rpc.WithHTTPClient,
// rpc.WithClock); [NewClientFromRPC] wraps a transport shared with other
// clients. [Client] calls receipts.stats, receipts.validate,
// receipts.reset_validation_state, node.status and node.consensus_status
// (PROTOCOL.md sections 2 and 5). Reads are retried with backoff;
// ResetValidationState is a write and is sent exactly once. receipts.validate
// is treated as an idempotent read (re-checking stored receipts twice gives the
// same answer). An unknown market is refused before anything is sent
// (ErrUnknownMarket). Answers missing the fields a diagnosis depends on
// (emitted_total, last_emitted_height, current_block_height, consensus status,
// validate's range and invalid list) are ErrMalformed, never zeros: a missing
// height read as 0 would make a healthy market look a million blocks stale.
// Other fields the node did not send are nil (JSON null). Transport errors are
// rpc's: the sentinels are aliased here (ErrUnauthorized, ErrMethodNotFound, …)
// and errors.As reaches *rpc.CallError and the node's *rpc.Error (RPCError).
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
// ErrDuplicate.
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
// # Metrics
//
// [Validator.Collector] exports the Validator's counts under the wire
// contract's names, receipt_validation_errors_total{reason} and
// receipt_min_payment_rejected_total, with the constant labels given; register
// it with a prometheus.Registerer.
//
// # Runbook
//
// [NewRunbook] binds a client, a metrics source and Options. Every windowed
// condition is decided only from evidence that covers it — exact RPC fields
// first, else a metric window the source observed whole, or a counter that
// moved (promq's "Time windows") — and is otherwise unknown, with a warning
// saying how much was observed. Symptoms (ids stable):
//
//   - market-not-emitting (critical): a market whose receipts.stats
//     last_emitted_height is StallBlocks (5) or more blocks behind node.status'
//     current_block_height, or that never emitted — block-exact, whatever the
//     market's volume. Where receipts.stats does not answer, the market's
//     ReceiptsMarketNotEmitting alert decides (increase over 1m == 0, for 5s),
//     which needs two minutes of history.
//   - emission-flat (critical): receipt_emitted_total flat or decreasing for 5+
//     blocks. From receipts.stats: every market 5+ blocks behind the tip fires;
//     one within 5 blocks while consensus makes blocks is ok. A stalled chain
//     fires it (no blocks, no receipts). Else from the sum over markets of
//     increase(receipt_emitted_total[1m]) on a covered window.
//   - validation-errors-increasing (warning; critical below 99 %): validation
//     success emitted / (emitted + errors) over 5m below the 99.99 % target.
//     A trickle within the SLO is ok.
//   - min-payment-rejections (warning): rate(receipt_min_payment_rejected_total[5m])
//     above "near-zero", one rejection a minute.
//   - chain-stalled (critical): node.consensus_status "stalled", or
//     block_height_total flat over a covered minute. Not a runbook checkbox: it
//     is step 4 turned into a verdict, because receipts are emitted in blocks
//     and the remedy differs.
//   - explorer-not-updating (warning): only with Options.ExplorerURL, a URL
//     answering JSON {"latest_receipt_height": N}; firing when N is more than 10
//     blocks behind the node's newest receipt. Without a URL, or when the
//     explorer cannot be read, the symptom is unknown: not checked is never ok.
//
// Steps are the runbook's: 1 rate(receipt_emitted_total[1m]) per market and the
// runbook's increase(receipt_emitted_total[10m]) == 0 query (it says "last 10
// blocks" but queries 10 minutes; tbops shows that query as written and adds the
// block-exact "no receipt in the last 10 blocks" from receipts.stats); 2
// validation error rate and breakdown by reason, min-payment rejections; 3
// receipts.stats for each market (the receipts.log grep stays on the host); 4
// node.status, the runbook's increase(block_height_total[50m]) (50 minutes ≈
// 3000 blocks, shown as written) and node.consensus_status. A last step shows
// tbops's own RPC round trips to the node, labelled as what they are: the link
// and tbops itself, never a symptom or SLO of the node.
//
// Paths (the runbook has no letters; tbops names them): A stalled markets
// (restart receipt-emitter, watch stats, systemctl status <market>-market —
// host-side, always plans; not matched when the chain itself is stalled), B
// validation errors (reset validation state, re-validate the last 100 blocks),
// C stalled chain (check consensus, escalate), D min-payment rejections (find
// the market; the runbook offers no remedy). Diagnose never writes; Apply
// carries out B's reset and re-validation only, once.
//
// Alerts: [Rules] is the only definition of the runbook's alerts; the Alerts
// block is promq.EvalRule of each on the same source, three-valued.
//
// SLOs (Options.SLO): emission in all markets (from market-not-emitting);
// validation success > 99.99 % and min-payment rejections near zero (from their
// symptoms); query latency p99 < 100 ms from the node's own
// receipt_query_duration_seconds histogram through the ReceiptsQueryLatencyHigh
// rule, unknown when the node exports none. "Storage: all receipts, > 1 week"
// is not evaluated: no RPC or metric exposes receipt retention (calling
// receipts.validate on week-old blocks would re-validate, which the runbook uses
// as a remedy, not a probe); a step says so.
package receipts
