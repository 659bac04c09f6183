// Package p2p implements the runbook's "P2P Rate Limiting and Chain Sync"
// section: the p2p knobs and their loader ([LoadConfig]), a per-peer
// sliding-window limiter on requests and bytes ([Limiter]) and the chain-sync
// ticker ([SyncTicker]).
//
// # Configuration
//
// Four knobs, top-level keys of the node's TOML config file, each overridden by
// an environment variable (precedence: defaults < file < environment):
//
//	key                          env                            default  allowed
//	p2p_rate_window_secs         TB_P2P_RATE_WINDOW_SECS        1        1..3600
//	p2p_max_per_sec              TB_P2P_MAX_PER_SEC             100      1..50000
//	p2p_max_bytes_per_sec        TB_P2P_MAX_BYTES_PER_SEC       65536    1024..1073741824
//	p2p_chain_sync_interval_ms   TB_P2P_CHAIN_SYNC_INTERVAL_MS  500      0 (off) or 10..3600000
//
// Decisions where the runbook is open:
//   - p2p_max_per_sec and p2p_max_bytes_per_sec are per window, as the
//     runbook's table says ("max requests per peer per window"), despite their
//     names; with the default 1 s window that is per second.
//   - Ranges: a window under 1 s or over an hour, fewer than 1 request or
//     1 KiB (less than one block header) per window, or a chain-sync period
//     under 10 ms (a busy loop) are refused as mistakes. 50 000 requests per
//     window is the limiter's ceiling (16-bit counters keep a peer in one cache
//     line) and is far above any real peer.
//   - Values must be TOML integers (1.0 and "100" are refused with a clear
//     error); environment values are decimal integers, surrounding spaces
//     ignored, and an empty variable counts as unset.
//   - Unknown keys are warnings, not errors, so a newer node config still loads;
//     a p2p-looking key gets a "did you mean" suggestion. The [runtime] table
//     belongs to package runtime and is not warned about.
//   - Every bad value is reported at once (errors.Join of [*ConfigError], each
//     naming the file or variable, the key, the value and the allowed range).
//     On any error LoadConfig returns the zero Config and no settings: the
//     caller keeps its last good configuration (nothing half-applies).
//
// # Limiter algorithm and its bound
//
// Each peer has, per limit, a sliding-window counter with k = 8 sub-windows of
// W/8: the counts of the 8 sub-windows up to now ("inner") and of the one
// sliding out ("old"). At fraction f into the current sub-window the window
// (now−W, now] holds inner plus an unknown part of old; the limiter estimates
// that part as
//
//	max(old·(1−f), old − L/k)
//
// and admits a message of cost c (1 request, or its size in bytes) only if
// inner + estimate + c ≤ L. The first term is the classic uniform-spread
// assumption; the second caps how far the estimate may fall below the truth
// (the true part is at most old) at L/k. Hence, checked at every admission,
// the true count in the window ending there is ≤ L + L/k, and the maximum over
// all windows of length W (open or closed) is attained at one ending at an
// admission:
//
//	admitted in any window of length W ≤ L × (1 + 1/k) = 1.125 × L
//
// The classic two-bucket counter (previous window weighted by overlap) and
// even the weighted 8-bucket counter without the cap do not meet this: when a
// peer's whole budget lands at the very end of one (sub-)window, the weight
// lets almost another L through within W, nearly 2 × L. The tests show both
// (TestLimiterWorstCaseIsTheBound), check the bound against an exact sliding
// log on random and boundary-burst traffic for requests and bytes, and fuzz it.
// The bound is tight: the adversarial pattern reaches 1.125 × L.
//
// Accuracy the other way: an evenly spaced peer at 8/9 of its limit is never
// refused, whatever the limit and phase; at 99 % it is never refused when
// L ≥ 100; exactly at the limit about one message per window is refused (the
// sliding-out bucket is assumed evenly spread). With L < 8 the 1/k slack is
// less than one message, so a full bucket must slide out completely: with
// L = 3, a fourth request waits until 1.125 W after the first three.
//
// Refusals carry RetryAfter: the exact first nanosecond at which the same
// message would pass if the peer sent nothing else (tested). A message counts
// against both limits only when both allow it; when both refuse, Limit is
// LimitRequests and RetryAfter the later of the two. A message larger than the
// whole byte limit is refused as LimitSize with RetryAfter 0: it can never pass.
//
// # Limiter structure
//
// [PeerID] is a uint64 (use [PeerIDFromString] for textual ids; it is
// SHA-256-based so an id cannot be chosen to collide with a victim's). Peers
// are spread by a seeded bijective hash over a power-of-two number of shards
// (default 8 × GOMAXPROCS, at least 16), each with its own mutex, an
// open-addressing index (8-byte slots, linear probing, backward-shift
// deletion) and a dense slab of 64-byte entries in 4 KiB chunks. The entry
// stores half of the hash instead of the id (the hash is a bijection, the other
// half is in the slot), the 9 request counters as uint16 and the 9 byte
// counters as uint32. Measured: 84 B per peer with the index, 0 allocations per
// decision (new peers allocate a chunk per 64 and grow the index amortised).
// A decision in the shard's current sub-window needs no division. Each shard
// remembers its last refusal: without an admission in between a peer's
// estimate only falls as time passes, so a peer flooding the same message is
// refused (with the exact RetryAfter) without re-deriving it, which keeps the
// flood path, the one an attacker drives, the cheapest.
//
// Memory is bounded by the peers active in the last two windows: a peer idle
// for more than two windows has only expired buckets, so evicting it loses
// nothing. Each decision looks at one entry of its shard (an incremental sweep,
// never a stop-the-world scan) and evicts it if idle; the slab and index shrink
// as peers leave. [Limiter.Prune] evicts all idle peers, one shard at a time,
// for when traffic has gone quiet.
//
// Time comes from the caller (Allow's now), so tests are exact. A clock that
// goes backwards is treated as the newest time the shard has seen, so it never
// refills a budget.
//
// [Limiter.SetConfig] applies a reload without restart and without resetting
// peers: new maxima apply to the next decision; a new window length carries
// each peer's usage over into its newest sub-window (no fresh budget). An
// invalid config changes nothing.
//
// [Limiter.Collector] exports p2p_rate_limited_total{limit="requests"|"bytes"|"size"},
// p2p_rate_allowed_total and p2p_rate_limiter_peers.
//
// # Chain-sync ticker
//
// [SyncTicker] fires every p2p_chain_sync_interval_ms. Interval 0 means off:
// no goroutine, no timer, no ticks (the runbook's isolation tests keep it at 0).
// [SyncTicker.SetInterval] / [SyncTicker.ApplyConfig] change it at run time;
// [SyncTicker.Stop] ends its goroutine and waits for it. Ticks are dropped, not
// queued, when the receiver is busy (like time.Ticker); the clock is
// injectable ([WithTickSource]).
package p2p
