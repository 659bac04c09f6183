// Package nodeconfig is the table of the node config file's keys (PROTOCOL.md
// section 8): the four runtime.* knobs and the four top-level p2p_* keys, each
// with its environment variable, unit, default and allowed range. It is the one
// definition both package runtime (whose LoadNodeConfig reads the file) and
// package p2p (whose Config.Validate checks a Config built in code) use, since
// neither may import the other.
package nodeconfig

import "fmt"

// Key is one key of the node config file.
type Key struct {
	// Key is the key as the runbook writes it: "runtime.reactor_idle_poll_ms"
	// (inside the [runtime] table) or "p2p_max_per_sec" (top level).
	Key string
	// Env is the environment variable that overrides the file.
	Env string
	// Unit is what the integer counts: "ms", "s", "requests" or "bytes".
	Unit string
	// Default is the value when neither the file nor the environment sets it.
	Default int64
	// Min and Max bound the value (inclusive).
	Min, Max int64
	// ZeroOff allows 0 besides Min..Max, meaning off.
	ZeroOff bool
	// Doc says what the key does.
	Doc string
}

// Keys returns every key in a fixed order: the runtime knobs, then p2p's. It
// is an array, so that looking a key up allocates nothing.
//
// Ranges, runtime (milliseconds): reactor_idle_poll_ms 1..60000 (0 spins; more
// than a minute between polls stalls a peer for minutes on a missed wakeup);
// the backoffs 1..10000 (0 retries in a busy loop; over 10 s every missed
// wakeup is a visible stall); tls_handshake_timeout_ms 100..300000 (under
// 100 ms even loopback handshakes fail on a loaded machine; over 5 minutes is
// no bound against stalled peers). p2p: a window of 1 s..1 h, 1..50 000
// requests and 1 KiB..1 GiB per window (the limiter's ceilings, far above any
// real peer), a chain-sync period of 0 (off) or 10 ms..1 h (under 10 ms is a
// busy loop).
func Keys() [8]Key {
	return [8]Key{
		{Key: "runtime.reactor_idle_poll_ms", Env: "TB_REACTOR_IDLE_POLL_MS", Unit: "ms", Default: 100, Min: 1, Max: 60_000,
			Doc: "maximum sleep between reactor polls"},
		{Key: "runtime.io_read_backoff_ms", Env: "TB_IO_READ_BACKOFF_MS", Unit: "ms", Default: 10, Min: 1, Max: 10_000,
			Doc: "fallback delay before retrying reads when readiness is missing"},
		{Key: "runtime.io_write_backoff_ms", Env: "TB_IO_WRITE_BACKOFF_MS", Unit: "ms", Default: 10, Min: 1, Max: 10_000,
			Doc: "fallback delay before retrying writes when readiness is missing"},
		{Key: "runtime.tls_handshake_timeout_ms", Env: "TB_TLS_HANDSHAKE_TIMEOUT_MS", Unit: "ms", Default: 10_000, Min: 100, Max: 300_000,
			Doc: "TLS handshake timeout for HTTP servers and clients"},
		{Key: "p2p_rate_window_secs", Env: "TB_P2P_RATE_WINDOW_SECS", Unit: "s", Default: 1, Min: 1, Max: 3600,
			Doc: "sliding window the per-peer limits count over"},
		{Key: "p2p_max_per_sec", Env: "TB_P2P_MAX_PER_SEC", Unit: "requests", Default: 100, Min: 1, Max: 50_000,
			Doc: "most requests one peer may send per window"},
		{Key: "p2p_max_bytes_per_sec", Env: "TB_P2P_MAX_BYTES_PER_SEC", Unit: "bytes", Default: 65536, Min: 1024, Max: 1 << 30,
			Doc: "most message bytes one peer may send per window"},
		{Key: "p2p_chain_sync_interval_ms", Env: "TB_P2P_CHAIN_SYNC_INTERVAL_MS", Unit: "ms", Default: 500, Min: 10, Max: 3_600_000, ZeroOff: true,
			Doc: "periodic chain-sync pull interval (0 = off, as isolation tests want)"},
	}
}

// Lookup returns the key named key ("p2p_max_per_sec"); ok is false for an
// unknown one.
func Lookup(key string) (k Key, ok bool) {
	for _, k := range Keys() {
		if k.Key == key {
			return k, true
		}
	}
	return Key{}, false
}

// InRange says whether v is allowed.
func (k Key) InRange(v int64) bool {
	return (k.ZeroOff && v == 0) || (v >= k.Min && v <= k.Max)
}

// Allowed describes the range with its unit: "1..10000 ms", "0 (off) or
// 10..3600000 ms".
func (k Key) Allowed() string {
	r := fmt.Sprintf("%d..%d %s", k.Min, k.Max, k.Unit)
	if k.ZeroOff {
		return "0 (off) or " + r
	}
	return r
}
