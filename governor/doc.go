// Package governor turns the runbook's "Economics Autopilot Gate" and "Ad Market
// Quality + Cost Signals" sections into code: a typed client of the governor
// methods, decision files with canonical JSON and BLAKE3 snapshot hashes, the
// auditing workflow as a report, gate streaks, the governor mode from the
// environment, the rollback play and the ad-market signals.
//
// # Client
//
// [NewClient] takes the node's URL and the transport's options (rpc.WithToken,
// rpc.WithTimeout, rpc.WithRetries, rpc.WithHTTPClient, rpc.WithClock); an
// invalid one is an error there. [NewClientFromRPC] wraps a transport shared
// with other clients. The client gives [Client.Status], [Client.Intents]
// (gate filter), [Client.Snapshot] (epoch) and [Client.SubmitIntent], a write
// that is sent once and never retried. Reads are retried by the transport.
// Errors are the transport's: errors.Is matches the sentinels aliased here
// ([ErrNotFound], [ErrMethodNotFound], …) and errors.As finds the
// *rpc.CallError and the node's [RPCError].
// The reference node's shapes (PROTOCOL.md section 9) are accepted too:
// governor.decisions with snapshot_hash_hex when governor.intents answers
// -32601 (filtered by gate on the client), autopilot_enabled for
// economics_autopilot, economics_prev_market_metrics as an array of
// {market, utilization_ppm, provider_margin_ppm} for telemetry_gauges_ppm, and
// the gate names ad_targeting_contextual / ad_targeting_presence, which are
// normalised to ad_contextual / ad_presence everywhere ([NormalizeGate]; the
// node's own name stays in [Gate].RawName). A gate filter given with either
// name is sent to the node in the contract's form.
//
// # Canonical JSON and the snapshot hash
//
// The snapshot hash ([SnapshotHash], [HashBytes]) is the lower-case hex of
// BLAKE3-256 over the canonical encoding of the decision object without its
// top-level snapshot_hash and attestation keys (keys of those names deeper in the
// object are hashed like any other). The canonical encoding ([Canonical]) is
// exactly PROTOCOL.md section 6:
//
//   - compact: no whitespace anywhere;
//   - object keys sorted by their UTF-8 bytes at every level; arrays in order;
//   - strings escape only `"` as \", `\` as \\, and control characters: \n, \r
//     and \t by name, every other character in U+0000–U+001F and U+007F–U+009F
//     as \u00XX with upper-case hex (so \b is \u0008 and \f is \u000C); `/`, `<`,
//     `>`, `&`, U+2028/U+2029 and all other non-ASCII stay raw UTF-8;
//   - integers in plain decimal; a float with no fractional part with ".0"
//     (3.0, 1e21 as 1000000000000000000000.0, -0.0 as -0.0), any other float in
//     the shortest decimal that round-trips (strconv 'f', -1), never with an
//     exponent (1e-7 is 0.0000001); NaN and infinities are errors;
//   - a parsed file is re-encoded with each number's literal exactly as
//     written ([Number]): 1.50 stays 1.50 and 1E2 stays 1E2, so a canonical file
//     with no snapshot_hash key hashes to BLAKE3 of its own bytes;
//   - from Go values: nil, bool, string, every integer and float kind, [Number],
//     json.Number, json.RawMessage (parsed strictly, then re-encoded), maps with
//     string keys, slices, arrays, pointers and structs (exported fields named by
//     their json tag, "-" and omitempty honoured, embedded structs not
//     flattened). Strings that are not valid UTF-8 are errors, never replaced.
//
// Parsing ([Parse]) is strict, because a hash must never depend on how
// leniently a file was read: RFC 8259 grammar only; duplicate object keys at any
// level are rejected (which value "wins" would change the hash); anything but
// whitespace after the value is rejected (trailing garbage, a second value);
// invalid UTF-8, unescaped control characters, lone or reversed UTF-16 surrogate
// escapes, a byte-order mark, comments, NaN/Infinity, leading zeros and "1."
// are rejected; nesting is limited to 512 levels. Whitespace around the value
// is allowed (files may end with a newline). Every error is a [SyntaxError] with
// the byte offset.
//
// # Decision files
//
// Files are <data_dir>/governor/decisions/epoch-{E}.json with E zero-padded to
// 20 digits ([FileName], [ParseFileName]; "epoch-7.json" is reported as a wrong
// name with the right one), and an optional sidecar <same>.sig =
// {"payload_hash_hex","pubkey_hex","signature_hex"}: Ed25519 over the 32 raw
// digest bytes, and payload_hash_hex must equal the file's computed hash.
// A decision must carry the keys action, epoch, gate, intent_id, metrics_raw,
// metrics_summary, params_patch and reason (extra keys are kept and hashed);
// epoch must be a non-negative integer equal to the one in the file name; a
// stored snapshot_hash must be 64 hex digits and equal the computed hash (hex
// is compared case-insensitively).
//
// [VerifyDir] streams a directory: names are read in batches of 512, at most
// VerifyOptions.Concurrency files (default GOMAXPROCS, at most 16) are read
// and hashed at once, and each [FileResult] is handed to a callback, so memory
// does not grow with the directory (only the names are remembered, to find .sig
// sidecars whose decision file is missing). Every problem is named with its file
// ([FileResult.Err]); one bad file never stops the others. Names starting with
// "." (temporary files a writer renames into place) and subdirectories are
// skipped; any other misnamed entry is a bad-name problem. A missing sidecar
// is a signature-missing problem that fails the file only with
// VerifyOptions.RequireSignatures (signatures are optional in the protocol);
// VerifyOptions.TrustedKeys restricts the accepted signers. VerifyDir checks
// signatures in batches of 64 per worker (a random linear combination of the
// cofactored Ed25519 equations, the terms of one key folded into one scalar,
// about 2.8x cheaper per signature for one signing key; see BENCHMARKS.md); a batch that fails is re-checked signature
// by signature with crypto/ed25519, so every failure is found and named by the
// standard check. The two can differ only on signatures whose key or R carries
// a small-order component, which only the key's owner can produce;
// VerifyOptions.NoBatch turns batching off. [VerifyFile] and [Sidecar.Verify]
// always use crypto/ed25519. Files over
// [MaxFileBytes] are reported as unreadable rather than read.
//
// # Audit
//
// [Audit] is the runbook's auditing workflow as a tbops.Report with runbook id
// "governor-audit"; [NewRunbook] binds it to a node as a tbops.Runbook and
// tbops.Applier. Decisions come from Options.Dir when given; without a
// directory (a remote node, and doctor, which never has one) the audit compares
// the node's governor.snapshot answers instead: the economics decisions are
// then those of the epochs the economics intents name, or else the status's
// epoch's if it is one. Symptoms (each with evidence naming both values and
// where each came from): status-hash-mismatch, intent-hash-mismatch and
// file-hash-mismatch (critical), intent-decision-missing (warning), with a
// directory decision-files-invalid (warning), signature-invalid (critical) and,
// with RequireSignatures, signature-missing (warning); gauge-drift (warning:
// the economics_* gauges, and the status's telemetry_gauges_ppm and
// economics_sample, against the fields of the newest economics sample they
// mirror, PROTOCOL.md section 6 "Gauge ↔ sample"; values are equal within a
// relative 1e-9); ad-gate-streak-mismatch (warning: ad_gate_streak_windows per
// tier against the enter streak of the ad_contextual / ad_presence gates).
// An intent is matched to its decision by intent_id, else by epoch. Steps
// list the gates with their streak progress ([Gate.Progress]: the enter streak
// of an inactive gate, the exit streak of an active one, against
// streak_required), the economics autopilot state, the ad quality and cost
// signals ([ReadAdSignals], [CheckTiers]) and, with Options.Getenv, the mode
// this host's environment selects. The rollback play is the path "rollback",
// matched when a hash, signature, gauge or ad-streak check fires.
//
// The Alerts block is [Rules] evaluated on the metrics source with
// promq.EvalRule, the definition `tbops rules` prints: the telemetry alert's
// `for: 10m` is decided only by history that covers it, so one short
// observation of a node without economics gauges is unknown, not a page.
// Hash and file checks cannot be PromQL. Report.Scope names the source.
//
// # What decides a comparison
//
// The audit reads the metrics first, then the node, then the decisions, and a
// comparison is decided only when the order of those reads cannot explain a
// difference. It takes the governor's cadence to be the epoch's: a decision of
// epoch E is made by the end of epoch E, and streaks move once per window, at
// an epoch's end.
//
//   - An equal value is ok whenever it was observed.
//   - A gauge that differs from the newest decision's sample is a drift only
//     when the scrape was of a later epoch than the decision (the block height
//     read before the gauges, block_height_total or the reference node's
//     block_height, over 120, bounds the scrape's epoch from below): the
//     decision was then made before the gauges were sampled and is still the
//     newest, so they must mirror it. Otherwise the gauge may predate the
//     decision, and the comparison is unknown with a warning. The status's own
//     telemetry_gauges_ppm and economics_sample are held to the status's epoch
//     the same way.
//   - An ad tier's streak gauge that differs from its gate's enter streak is a
//     mismatch only when the scrape and governor.status are of one epoch;
//     across a boundary the streak may have moved on.
//   - A status hash that names not the newest decision but the newest before
//     the status's epoch (or one of that epoch or later) is unknown: the newer
//     decisions may have been made after the status was read, since the files
//     are read after it. One epoch later it is decided. This takes a decision
//     file to be written before its hash is served.
//   - A gauge that is absent is no data (unknown), never a drift of 0, and so
//     is a decision that could not be read (a directory that could not be
//     read, a governor.snapshot that failed other than "not found").
//   - Without a metrics source the gauge, ad and alert checks are unknown.
//
// The governor exports no metrics of its own, so it has no Collector.
//
// # Mode and rollback
//
// [ModeFromEnv] reads TB_GOVERNOR_ENABLED ("1"/"true" on, "0"/"false" or unset
// off) and TB_GOVERNOR_SHADOW_ONLY (shadow by default; only "0"/"false" select
// apply; "1"/"true" or unset keep shadow). Values are trimmed and compared
// case-insensitively; any other value is an [EnvError] naming the variable, so
// a typo never silently selects apply. The library never reads the process
// environment itself: Options.Getenv is how a program passes it. [PlanRollback]
// fills the runbook's rollback play with the node's current values: pause
// (TB_GOVERNOR_ENABLED=0), back to shadow (TB_GOVERNOR_SHADOW_ONLY=1), submit
// the exit intent (governor.submit_intent {gate, action: "exit", reason}),
// confirm economics_autopilot=false (or the gate inactive), re-enable from the
// known-good sample. [Runbook.Apply] carries out an audit report's play and
// [ExecuteRollback] a [RollbackPlan]'s: only the step that calls the node, the
// exit intent, sent once and never retried, and not at all when an exit intent
// of the gate is already pending or the gate is inactive, then the
// confirmation; the environment steps happen on the governor's host and stay
// instructions.
package governor
