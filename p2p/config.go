package p2p

import (
	"errors"
	"strconv"
	"time"

	"github.com/theblock/tbops/internal/nodeconfig"
)

// Config is the p2p section of a node's configuration: the per-peer rate limits
// and the chain-sync interval. The zero value is not valid; start from
// [DefaultConfig], or load the node config file with runtime.LoadNodeConfig,
// whose NodeConfig.P2P converts: p2p.Config(nodeConfig.P2P). Config is a plain
// comparable value, so a reload can compare old and new with ==.
type Config struct {
	// RateWindowSecs is p2p_rate_window_secs: the length of the sliding window
	// both per-peer limits count over, in seconds. Allowed 1..3600.
	RateWindowSecs int
	// MaxPerSec is p2p_max_per_sec: the most requests (messages) one peer may
	// send within one window. Despite the runbook's name it is per window, which
	// is per second with the default 1 s window. Allowed 1..50 000 (the
	// limiter's ceiling, far beyond any real peer).
	MaxPerSec int
	// MaxBytesPerSec is p2p_max_bytes_per_sec: the most message bytes one peer
	// may send within one window. Allowed 1024..1 073 741 824 (1 KiB..1 GiB).
	MaxBytesPerSec int
	// ChainSyncIntervalMS is p2p_chain_sync_interval_ms: how often the node
	// pulls the chain from its peers, in milliseconds. 0 turns the periodic pull
	// off (the runbook's isolation tests); otherwise allowed 10..3 600 000.
	ChainSyncIntervalMS int
}

// Defaults from PROTOCOL.md section 8.
const (
	DefaultRateWindowSecs      = 1
	DefaultMaxPerSec           = 100
	DefaultMaxBytesPerSec      = 65536
	DefaultChainSyncIntervalMS = 500
)

// Config keys (TOML, top level) and the environment variables that override them.
const (
	KeyRateWindowSecs      = "p2p_rate_window_secs"
	KeyMaxPerSec           = "p2p_max_per_sec"
	KeyMaxBytesPerSec      = "p2p_max_bytes_per_sec"
	KeyChainSyncIntervalMS = "p2p_chain_sync_interval_ms"

	EnvRateWindowSecs      = "TB_P2P_RATE_WINDOW_SECS"
	EnvMaxPerSec           = "TB_P2P_MAX_PER_SEC"
	EnvMaxBytesPerSec      = "TB_P2P_MAX_BYTES_PER_SEC"
	EnvChainSyncIntervalMS = "TB_P2P_CHAIN_SYNC_INTERVAL_MS"
)

// DefaultConfig returns the documented defaults: a 1 s window, 100 requests and
// 65 536 bytes per peer per window, chain sync every 500 ms.
func DefaultConfig() Config {
	return Config{
		RateWindowSecs:      DefaultRateWindowSecs,
		MaxPerSec:           DefaultMaxPerSec,
		MaxBytesPerSec:      DefaultMaxBytesPerSec,
		ChainSyncIntervalMS: DefaultChainSyncIntervalMS,
	}
}

// Window is RateWindowSecs as a duration.
func (c Config) Window() time.Duration { return time.Duration(c.RateWindowSecs) * time.Second }

// ChainSyncInterval is ChainSyncIntervalMS as a duration; 0 means off.
func (c Config) ChainSyncInterval() time.Duration {
	return time.Duration(c.ChainSyncIntervalMS) * time.Millisecond
}

// field is one value of a Config and its key.
type field struct {
	key string
	v   int
}

func (c Config) fields() []field {
	return []field{{KeyRateWindowSecs, c.RateWindowSecs}, {KeyMaxPerSec, c.MaxPerSec},
		{KeyMaxBytesPerSec, c.MaxBytesPerSec}, {KeyChainSyncIntervalMS, c.ChainSyncIntervalMS}}
}

// Validate reports every field outside its allowed range as a [*ConfigError]
// (joined with errors.Join when there are several). The ranges are the node
// config loader's (runtime.LoadNodeConfig).
func (c Config) Validate() error {
	var errs []error
	for _, f := range c.fields() {
		k, _ := nodeconfig.Lookup(f.key)
		if !k.InRange(int64(f.v)) {
			errs = append(errs, &ConfigError{Key: f.key, Value: strconv.Itoa(f.v), Reason: "out of range (allowed " + k.Allowed() + ")"})
		}
	}
	return errors.Join(errs...)
}

// ConfigError is one bad value of a Config: which key, the value, and why it
// was refused (including the allowed range).
type ConfigError struct {
	Key    string // the config key, e.g. p2p_max_per_sec
	Value  string // the offending value
	Reason string
}

// Error reads "p2p config: KEY = VALUE: REASON".
func (e *ConfigError) Error() string {
	return "p2p config: " + e.Key + " = " + e.Value + ": " + e.Reason
}
