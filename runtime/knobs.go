package runtime

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/theblock/tbops/internal/nodeconfig"
)

// Knobs are the runtime tuning knobs of RUNBOOK.md "Runtime Tuning Knobs" and
// "TLS Handshake Timeouts" (PROTOCOL.md section 8).
type Knobs struct {
	// ReactorIdlePoll is runtime.reactor_idle_poll_ms: the maximum sleep between
	// reactor polls.
	ReactorIdlePoll time.Duration `json:"reactor_idle_poll_ns"`
	// IOReadBackoff is runtime.io_read_backoff_ms: the fallback delay before
	// retrying a read when readiness is missing.
	IOReadBackoff time.Duration `json:"io_read_backoff_ns"`
	// IOWriteBackoff is runtime.io_write_backoff_ms: the fallback delay before
	// retrying a write when readiness is missing.
	IOWriteBackoff time.Duration `json:"io_write_backoff_ns"`
	// TLSHandshakeTimeout is runtime.tls_handshake_timeout_ms: how long a TLS
	// handshake may take, server and client side.
	TLSHandshakeTimeout time.Duration `json:"tls_handshake_timeout_ns"`
}

// P2PConfig is the p2p part of the node config file: the top-level p2p_* keys,
// as plain integers. Its fields are those of p2p.Config, so p2p.Config(c)
// converts it (this package cannot name p2p's type: domain packages do not
// import each other).
type P2PConfig struct {
	// RateWindowSecs is p2p_rate_window_secs.
	RateWindowSecs int
	// MaxPerSec is p2p_max_per_sec (requests per peer per window).
	MaxPerSec int
	// MaxBytesPerSec is p2p_max_bytes_per_sec (bytes per peer per window).
	MaxBytesPerSec int
	// ChainSyncIntervalMS is p2p_chain_sync_interval_ms (0 = off).
	ChainSyncIntervalMS int
}

// NodeConfig is everything the node config file sets: the runtime knobs (the
// [runtime] table) and the p2p keys (top level). It is a comparable value.
type NodeConfig struct {
	Knobs Knobs
	P2P   P2PConfig
}

// KnobSpec describes one key of the node config file: its names, unit,
// default and allowed range.
type KnobSpec struct {
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
	// ZeroOff allows 0 besides Min..Max, meaning off
	// (p2p_chain_sync_interval_ms).
	ZeroOff bool
	// Doc says what the key does, for help texts and generated docs.
	Doc string
}

// Allowed describes the range with its unit: "1..10000 ms", "0 (off) or
// 10..3600000 ms".
func (s KnobSpec) Allowed() string { return nodeconfig.Key(s).Allowed() }

func (s KnobSpec) inRange(v int64) bool { return nodeconfig.Key(s).InRange(v) }

// Specs lists every key of the node config file in a fixed order, the four
// runtime knobs first, with their defaults and ranges.
//
// Ranges, runtime (milliseconds): reactor_idle_poll_ms 1..60000 (0 would
// spin; more than a minute between polls stalls a peer for minutes on a
// missed wakeup); io_read_backoff_ms and io_write_backoff_ms 1..10000 (0
// retries in a busy loop; over 10 s makes every missed wakeup a visible
// stall); tls_handshake_timeout_ms 100..300000 (under 100 ms even loopback
// handshakes fail on a loaded machine; over 5 minutes is no bound against
// stalled peers). p2p: see package p2p.
func Specs() []KnobSpec {
	keys := nodeconfig.Keys()
	out := make([]KnobSpec, len(keys))
	for i, k := range keys {
		out[i] = KnobSpec(k)
	}
	return out
}

func spec(key string) KnobSpec {
	k, _ := nodeconfig.Lookup(key)
	return KnobSpec(k)
}

// DefaultNodeConfig is every key at its documented default.
func DefaultNodeConfig() NodeConfig {
	var c NodeConfig
	for _, s := range Specs() {
		c.set(s.Key, s.Default)
	}
	return c
}

// DefaultKnobs are the documented defaults: 100 ms idle poll, 10 ms read and
// write backoff, 10 s TLS handshake timeout.
func DefaultKnobs() Knobs { return DefaultNodeConfig().Knobs }

// duration returns the runtime knob called key, nil when key is not one.
func (k *Knobs) duration(key string) *time.Duration {
	switch key {
	case "runtime.reactor_idle_poll_ms":
		return &k.ReactorIdlePoll
	case "runtime.io_read_backoff_ms":
		return &k.IOReadBackoff
	case "runtime.io_write_backoff_ms":
		return &k.IOWriteBackoff
	case "runtime.tls_handshake_timeout_ms":
		return &k.TLSHandshakeTimeout
	}
	return nil
}

// integer returns the p2p key called key, nil when key is not one.
func (p *P2PConfig) integer(key string) *int {
	switch key {
	case "p2p_rate_window_secs":
		return &p.RateWindowSecs
	case "p2p_max_per_sec":
		return &p.MaxPerSec
	case "p2p_max_bytes_per_sec":
		return &p.MaxBytesPerSec
	case "p2p_chain_sync_interval_ms":
		return &p.ChainSyncIntervalMS
	}
	return nil
}

func (c *NodeConfig) set(key string, v int64) {
	if d := c.Knobs.duration(key); d != nil {
		*d = time.Duration(v) * time.Millisecond
	} else if n := c.P2P.integer(key); n != nil {
		*n = int(v)
	}
}

// Millis returns the runtime knob called key ("runtime.io_read_backoff_ms") in
// milliseconds; ok is false for any other key.
func (k Knobs) Millis(key string) (ms int64, ok bool) {
	d := k.duration(key)
	if d == nil {
		return 0, false
	}
	return d.Milliseconds(), true
}

// Validate checks knobs built in code against the ranges the loader enforces
// (for example after a caller adjusted one); every bad knob is a *ValueError.
func (k Knobs) Validate() error {
	var errs []error
	for _, s := range Specs() {
		d := k.duration(s.Key)
		if d == nil {
			continue
		}
		if ms := d.Milliseconds(); !s.inRange(ms) || *d%time.Millisecond != 0 {
			errs = append(errs, &ValueError{File: "<code>", Value: d.String(), Spec: s,
				Reason: "out of range or not a whole number of milliseconds"})
		}
	}
	return errors.Join(errs...)
}

// ErrInvalidConfig is matched (errors.Is) by every error about a bad value, a bad
// file or a bad environment variable.
var ErrInvalidConfig = errors.New("invalid node configuration")

// ValueError is one value that is not acceptable: out of range, not an
// integer, or of the wrong TOML type. It names where the value came from.
type ValueError struct {
	// File is the config file, empty when the value came from the environment.
	File string
	// Env is the environment variable, set when the value came from it.
	Env string
	// Value is the offending value as written.
	Value string
	// Reason says what is wrong: "out of range", "want an integer (ms), got a
	// string", …
	Reason string
	// Spec is the key, with its unit and allowed range.
	Spec KnobSpec
}

// Error reads "config FILE: KEY = VALUE: REASON (allowed RANGE)", or for the
// environment "env VAR="VALUE" (KEY): …".
func (e *ValueError) Error() string {
	where := fmt.Sprintf("config %s: %s = %s", e.File, e.Spec.Key, e.Value)
	if e.Env != "" {
		where = fmt.Sprintf("env %s=%q (%s)", e.Env, e.Value, e.Spec.Key)
	}
	return fmt.Sprintf("%s: %s (allowed %s)", where, e.Reason, e.Spec.Allowed())
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ValueError) Is(target error) bool { return target == ErrInvalidConfig }

// FileError is a config file that could not be read or parsed.
type FileError struct {
	File string
	// Line is the 1-based line of a parse error, 0 when not a parse error.
	Line int
	Err  error
}

// Error reads "config FILE: line N: what".
func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config %s: line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("config %s: %v", e.File, e.Err)
}

// Unwrap returns the underlying error (an fs error for an unreadable file).
func (e *FileError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *FileError) Is(target error) bool { return target == ErrInvalidConfig }

// knownRuntimeKeys lists the keys inside the [runtime] table, for a warning.
func knownRuntimeKeys() string {
	var names []string
	for _, s := range Specs() {
		if name, ok := strings.CutPrefix(s.Key, "runtime."); ok {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}
