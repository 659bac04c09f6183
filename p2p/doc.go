// Package p2p implements the runbook's "P2P Rate Limiting and Chain Sync"
// section: the p2p knobs ([Config]), a per-peer sliding-window limiter on
// requests and bytes ([Limiter]) and the chain-sync ticker ([SyncTicker]).
//
// # Configuration
//
// Four knobs, top-level keys of the node's TOML config file, each overridden by
// an environment variable (precedence: defaults < file < environment):
//
//	key                          env                            default  allowed
//	p2p_rate_window_secs         TB_P2P_RATE_WINDOW_SECS        1        1..3600 s
//	p2p_max_per_sec              TB_P2P_MAX_PER_SEC             100      1..50000 requests
//	p2p_max_bytes_per_sec        TB_P2P_MAX_BYTES_PER_SEC       65536    1024..1073741824 bytes
//	p2p_chain_sync_interval_ms   TB_P2P_CHAIN_SYNC_INTERVAL_MS  500      0 (off) or 10..3600000 ms
//
// The file holds the runtime knobs too (its [runtime] table), and one loader
// reads it whole: runtime.LoadNodeConfig, whose NodeConfig.P2P converts to a
// Config (p2p.Config(nc.P2P)), and whose errors, warnings and settings cover
// both parts (see package runtime for its rules: integers only, every bad
// value reported at once, unknown keys warned about, nothing half-applied).
// A reload of the file through runtime.Watcher applies both parts.
// [Config.Validate] checks a Config built in code against the same ranges.
//
// Decisions where the runbook is open:
//   - p2p_max_per_sec and p2p_max_bytes_per_sec are per window, as the
//     runbook's table says ("max requests per peer per window"), despite their
//     names; with the default 1 s window that is per second.
//   - Ranges: a window under 1 s or over an hour, fewer than 1 request or
//     1 KiB (less than one block header) per window, or a chain-sync period
//     under 10 ms (a busy loop) are refused as mistakes. 50 000 requests and
//     1 GiB per window are the limiter's ceilings (its packed per-peer state
//     holds a partial quantum of up to 8 191 requests and 2^27 bytes) and are
//     far above any real peer.
//
// # Limiter algorithm and its bound
//
// Per peer and per limit L (requests, or bytes) the limiter keeps a
// compressed log of what it admitted: the admissions cut into quanta of
// q = ⌈L/8⌉ (a message of c bytes fills c units, possibly completing several
// quanta), each full quantum stamped with the time it completed, rounded up
// to a tick of W/250, and one partial quantum of fewer than q units. A quantum
// counts until W after its stamp; the partial one until the peer has been idle
// for a window. What is counted is never less than what the window
// [now − W, now] truly holds, and at most q − 1 more: only the oldest counted
// quantum can lie partly before the window (every later one, and the partial
// one, was filled after it completed).
//
// A message of cost c (1 request, or its size in bytes) is admitted if
// counted + c ≤ L, or, near the limit, if counted − credit + c ≤ L, where the
// credit estimates the part of the oldest quantum that has left the window
// (as if it had been filled evenly over the mean gap between quanta) and is
// capped at q − 1. Hence, checked at every admission, the true count in the
// window ending there is ≤ L + q − 1, and the maximum over all windows of
// length W is attained at one ending at an admission:
//
//	admitted in any window of length W ≤ L + ⌈L/8⌉ − 1 < 1.125 × L
//
// The bound is tight: the adversarial pattern (TestLimiterWorstCaseIsTheBound:
// the oldest quantum in one instant, the next a gap later, so that the credit
// takes the oldest as nearly gone while all of it is still in the window)
// reaches exactly L + ⌈L/8⌉ − 1. The classic two-bucket counter (previous
// window weighted by overlap) admits nearly 2 × L on a burst at a window's end,
// and a pure GCRA with a burst of L admits 2 × L in a window (the burst, then
// the refill): the tests show the first, and check the bound against an exact
// sliding log on random and boundary-burst traffic for requests and bytes; a
// fuzz target checks it on arbitrary traffic.
//
// Accuracy the other way: a burst is exact (a fresh peer gets exactly L at
// once, and all of it again once the burst is a window, plus at most one tick,
// old); an evenly spaced peer at 8/9 of its limit is never refused, whatever
// the limit and phase, nor at 99 % when L ≥ 100 (tested). On random traffic
// at the limit it refuses a few more messages than an exact sliding log (258
// against 243 of 6 000 for L = 100); a peer flooding at three times its limit
// gets 94 % of what an exact log would admit for L = 100 and 99.6 % for
// L = 800 (TestLimiterRandomLoadAgainstExactLog): under overload it errs
// towards refusing.
//
// Refusals carry RetryAfter: the exact first nanosecond at which the same
// message would pass if the peer sent nothing else (tested), found in one walk
// over the at most 8 quanta. A message counts against both limits only when
// both allow it; when both refuse, Limit is LimitRequests and RetryAfter the
// later of the two. A message larger than the whole byte limit is refused as
// LimitSize with RetryAfter 0: it can never pass.
//
// # Limiter structure
//
// [PeerID] is a uint64 (use [PeerIDFromString] for textual ids; it is
// SHA-256-based so an id cannot be chosen to collide with a victim's). Peers
// are spread by a seeded bijective hash over a power-of-two number of shards
// (default 8 × GOMAXPROCS, at least 16), each with its own mutex and a cuckoo
// hash table: 64-byte buckets of two 32-byte slots, a peer in one of two
// buckets picked by its hash. A slot holds the hash (it identifies the peer
// exactly, the hash being a bijection) and the peer's whole state, so a
// decision reads at most two cache lines, both known from the hash and loaded
// together: one dependent cache miss. The state packs, per limit, the 8-bit
// ticks of up to 8 full quanta, their count and the partial quantum (13 bits
// for requests, 27 for bytes), and the tick of the peer's last admission
// (15 bits). A table is rebuilt 75 % full when it reaches 85 % (or a cuckoo
// walk gets long) and when it falls under 25 %, so a peer costs 32/0.85 to
// 32/0.75 bytes: 38 to 43 B for both limits (measured in BENCHMARKS.md). A
// decision allocates nothing (a new peer may trigger an amortised rebuild).
// Each shard remembers its last refusal: without an admission in between a
// peer's count only falls as time passes, so a peer flooding the same message
// is refused (with the exact RetryAfter) without re-deriving it, which keeps
// the flood path, the one an attacker drives, the cheapest.
//
// Memory is bounded by the peers admitted within about the last window: a
// peer not admitted for longer than a window (and a tick) holds nothing that
// still counts, so evicting it loses nothing. Each time its clock reaches a
// new tick, a shard looks at 16 more slots (an incremental sweep, off the
// per-decision path) and evicts their peers if idle; peers moved by a cuckoo
// walk or a rebuild are looked at too, and a rebuild drops every idle peer,
// so a table only grows for live peers. A sweep pass that low
// traffic leaves unfinished is finished after 2^13 ticks (about 33 windows),
// so a last-admission tick never gets 2^15 ticks old and always reads back
// exactly; a shard whose clock jumps by more than a window forgets all its
// peers at once. [Limiter.Prune] evicts all idle peers, one shard at a time,
// for when traffic has gone quiet.
//
// Time comes from the caller (Allow's now), so tests are exact. A clock that
// goes backwards is treated as the newest time the shard has seen, so it never
// refills a budget.
//
// [Limiter.SetConfig] applies a reload without restart and without resetting
// peers: each peer's usage is re-cut into the new quanta, keeping its times
// (converted to the new window's ticks, rounded later); usage a lowered limit
// cannot hold keeps the peer refused until it has left the window. No reload
// hands out a fresh budget. An invalid config changes nothing.
//
// [Limiter.Collector] exports p2p_rate_limited_total{limit="requests"|"bytes"|"size"},
// p2p_rate_allowed_total and p2p_rate_limiter_peers, each series carrying the
// const labels it is given: the collector style of every tbops type that
// exports metrics (package runtime, "Metrics").
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
