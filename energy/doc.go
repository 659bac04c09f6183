// Package energy turns the runbook's "Energy RPC Guardrails" and "Energy Stalled"
// sections into code: a typed client of the energy.* methods, signed meter
// readings (sign, verify, batch verify, admission checks), the RPC guard (bearer
// token and per-client sliding-window limit), and the Energy Stalled runbook
// (NewRunbook, runbook id "energy-stalled").
//
// # The client
//
// NewClient (or NewClientFromRPC, to share a transport) takes package rpc's
// options: rpc.WithToken for the energy RPC token, rpc.WithTimeout,
// rpc.WithRetries, rpc.WithClock. The client reads no environment variable;
// the command line passes TB_ENERGY_RPC_TOKEN. Reads are retried
// (rpc.Client.Read), SubmitReading is sent once. Market calls energy.market
// and falls back to the reference node's energy.market_state on -32601,
// remembering which worked. Credits with "provider", disputes with "id",
// providers with only reputation_score, hex keys and readings with
// meter_address/kwh_reading are all accepted. A number a record leaves out is
// nil, and null in JSON, never a zero. Errors are the transport's
// *rpc.CallError (CallError) holding the node's *rpc.Error (RPCError), matching
// the sentinels with errors.Is; a node's -33001/-33007/-33008 answer to
// SubmitReading also matches the reading sentinels (ErrVerificationFailed, …),
// and ErrorObject gives the answer a node sends for a local admission error.
//
// # Readings and the guard
//
// Decisions where the runbook and PROTOCOL.md leave room:
//
//   - Readings: keys and signatures are accepted as hex (exactly 2·n digits) or
//     standard base64 (padded or not); Sign writes base64. A public key that is
//     not a curve point or is of small order is invalid_format. A reading's
//     scheme must match the scheme its key is registered for (else
//     scheme_unsupported). Checker runs the cheap checks first (key, scheme,
//     skew, nonce) and records the nonce only after the signature verified, so
//     forged readings cannot burn nonces. Skew is |timestamp − now| > 300 s.
//   - Batch verification is opt-in; its acceptance rules are documented on Batch.
//   - Guard: the rate limit is checked before the token so token guessing is
//     limited too; every energy.* request counts. The guard decides on exactly
//     what the node will execute: it reads the whole body (MaxBody, the node's
//     1 MiB by default, else -32600), walks the whole top-level object without
//     decoding parameters, and forwards exactly the bytes it checked. It
//     refuses, and never forwards, anything an encoding/json node could read
//     differently from that walk: batches, non-objects, a "method" key given
//     twice in any letter case (encoding/json matches keys case-insensitively
//     with Unicode folding and keeps the last), a non-string or invalid-UTF-8
//     method, and invalid JSON (checked after the limit and the token). Requests
//     without a body pass; an Upgrade header (WebSocket, h2c) is dropped, so no
//     call travels over a protocol the guard cannot see. The id is echoed only
//     when it is a valid string, number or null (else null). Rejections: -33009 with HTTP 200; -33010 with
//     HTTP 429, Retry-After (whole seconds, rounded up) and
//     error.data.retry_after_ms. The limiter's accuracy bound is documented in
//     window.go: at most limit·(1+1/8) in any 1 s window for a client whose
//     admissions are spread out, up to 2·limit for one that bursts its whole
//     limit inside 125 ms. Memory is bounded by MaxClients (idle clients
//     evicted first, then random ones). Invalid options are an *OptionError
//     from NewGuard, never a silent default.
//   - GuardServer (what tbops energy guard runs): header, body-read (a timer
//     from the end of the headers, not net/http's ReadTimeout, which would also
//     run while the node answers and cancel the request), idle and upstream
//     timeouts, a cap on open connections (Accept waits, so the excess queues
//     in the kernel), 32 KiB of headers, and a JSON-RPC error with the
//     request's id for every failure it answers (table on GuardServer):
//     HTTP 408 for a body not in time, 502 for an unreachable node, 504 for one
//     that does not answer; 200 for the errors the node itself would give.
//
// # The diagnosis
//
// Every windowed condition is decided only from evidence that covers its
// window (the promq package documentation, "Time windows"), preferring the
// node's exact RPC fields where the runbook allows:
//
//   - readings-not-settling (critical): no settlement in 10 minutes while
//     credits are pending. Decided from the providers' last_settlement and the
//     pending credits: a settlement inside the window, or nothing pending, is
//     ok at once; every provider's last settlement older than the window fires.
//     When not every provider could be read (energy.provider not served, more
//     providers than ProviderLookups), the EnergySettlementStalled rule decides,
//     which needs 10 minutes of samples: a one-second look is unknown.
//   - pending-credits-not-decreasing (warning): a credit pending for more than
//     10 minutes (its created_at), unless energy_pending_credits_total, observed
//     over the whole window, went down; no credit pending that long is ok.
//   - dispute-backlog-increasing (warning, critical over 50 active): more than
//     one dispute more opened than resolved in 10 minutes (opened_at,
//     resolved_at), else the rise of energy_active_disputes_total over a covered
//     window.
//   - oracle-latency-high and signature-failures (warning, critical at the
//     critical rule) are the evaluations of their rules. Failure rates are per
//     minute everywhere (see FailuresPerMinWarning for the runbook's rate()>1
//     inconsistency); the critical "counter > 10" reads as more than 10 failures
//     a minute.
//
// Oracle latency: when a node exports the runbook's oracle_latency_seconds_p95
// gauge, that gauge is its p95; otherwise the p95 is derived from the
// oracle_latency_seconds histogram over the last 5 minutes,
// histogram_quantile(0.95, rate(…_bucket[5m])). The rules say the same per node
// (the `or` of the two), so the alert and the symptom agree, and the symptom's
// detail says which it was. Step 1 also shows the runbook's own cumulative
// quantiles (since the node started).
//
// The Alerts block is promq.EvalRule of each of Rules() on the same source,
// the rules `tbops rules` prints. The reference node's energy_settlement_total
// and energy_reading_reject_total answer where the contract's names have no
// series; a metric with neither is reported missing, never zero.
//
// Paths: A matches on the p95 symptom. B matches when verification_failed and
// invalid_format failures exceed 1 a minute (the runbook's indicator;
// key_not_found and scheme_unsupported fire the symptom but are not Path B);
// step 2 shows the oracle key manager's status (energy.oracle_keys) and
// compares each provider's energy.provider public_key with it, and greps the
// node's logs for signature_verification_failed and SignatureInvalid. C
// matches on timestamp_skew / TimestampSkew lines in the node's logs; when no
// log file could be read, on active providers whose last settlement lags the
// newest by more than 10 minutes (a provider whose clock is off has every
// reading refused). D matches on several providers below 0.5 reputation. The
// settlement-rate and dispute-resolution SLOs come from the RPC (no metric
// carries them).
//
// # Host probes and metrics
//
// The zero Options touch nothing on the machine running tbops. Options.LogGlobs
// names the node's log files to grep (bounded: the last 16 MiB of at most 64
// files; the command line passes DefaultLogGlob); Options.HostClock reads this
// host's clock-sync state (HostClockSync), shown in step 4 as a finding about
// this host (evidence source "host"), never a symptom of the node or a path's
// indicator.
//
// What exports metrics has a Collector(constLabels) method returning a
// prometheus.Collector: Checker (energy_signature_verification_failures_total
// by reason) and Guard (energy_rpc_rejected_total, energy_rpc_rate_limit_rps).
package energy
