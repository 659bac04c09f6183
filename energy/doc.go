// Package energy turns the runbook's "Energy RPC Guardrails" and "Energy Stalled"
// sections into code: a typed client of the energy.* methods, signed meter
// readings (sign, verify, batch verify, admission checks), the RPC guard (bearer
// token and per-client sliding-window limit), and Diagnose, the Energy Stalled
// diagnosis (runbook id "energy-stalled").
//
// Decisions where the runbook and PROTOCOL.md leave room:
//
//   - Client: reads are retried (rpc.Client.Read), SubmitReading is sent once.
//     Market calls energy.market and falls back to the reference node's
//     energy.market_state on -32601, remembering which worked. Credits with
//     "provider", disputes with "id", providers with only reputation_score, hex
//     keys and readings with meter_address/kwh_reading are all accepted. The
//     token comes from WithToken or TB_ENERGY_RPC_TOKEN.
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
//     call travels over a protocol the guard cannot see. The id is echoed only when it is a valid string,
//     number or null (else null). Rejections: -33009 with HTTP 200; -33010 with
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
//   - Diagnose: failure rates are per minute everywhere (see
//     FailuresPerMinWarning for the runbook's rate()>1 inconsistency); the
//     critical "counter > 10" reads as more than 10 failures a minute.
//     "Pending credits not decreasing" needs both a flat-or-rising
//     energy_pending_credits_total over 10 m and a pending credit older than
//     10 m when both are known (a steady backlog that turns over is healthy);
//     either alone decides when only it is known. "Readings not settling" is
//     increase(energy_settlements_total[10m]) == 0 while credits are pending.
//     "Disputes increasing" is a rising energy_active_disputes_total over 10 m,
//     else more disputes opened than resolved in 10 m (energy.disputes). Oracle
//     quantiles use a 5 m rate window, falling back to the cumulative buckets the
//     runbook's own queries use. Path C matches when active providers sent no
//     reading for over 10 m, or this host's clock is unsynchronised while
//     settlement is in trouble. The reference node's energy_settlement_total and
//     energy_reading_reject_total are read when the contract's names have no
//     series; a metric with neither is reported missing, never zero.
//   - Settlement-rate and dispute-resolution SLOs come from the RPC (no metric
//     carries them); see (*diag).slos for the formulas.
package energy
