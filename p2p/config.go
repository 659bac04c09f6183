package p2p

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the p2p section of a node's configuration: the per-peer rate limits
// and the chain-sync interval. The zero value is not valid; start from
// [DefaultConfig] or [LoadConfig]. Config is a plain comparable value, so a
// reload can compare old and new with ==.
type Config struct {
	// RateWindowSecs is p2p_rate_window_secs: the length of the sliding window
	// both per-peer limits count over, in seconds. Allowed 1..3600.
	RateWindowSecs int
	// MaxPerSec is p2p_max_per_sec: the most requests (messages) one peer may
	// send within one window. Despite the runbook's name it is per window, which
	// is per second with the default 1 s window. Allowed 1..50 000 (the
	// limiter's per-peer counters are 16-bit to keep a peer in one cache line;
	// 50 000 messages per window from one peer is far beyond any real peer).
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

// Sources a [Setting] can come from, lowest precedence first.
const (
	SourceDefault = "default"
	SourceFile    = "file"
	SourceEnv     = "env"
)

// Setting is one knob's effective value and where it came from, for display
// (`tbops runtime knobs`) and for logs after a reload.
type Setting struct {
	Key, Env string // the TOML key and its environment variable
	Value    string // the effective value, decimal
	Source   string // SourceDefault, SourceFile or SourceEnv
}

// knob describes one key: its limits and where it lives in Config. The table
// is immutable (built by knobs()), so there is no package-level mutable state.
type knob struct {
	key, env string
	def      int
	min, max int
	zeroOK   bool // 0 is allowed in addition to min..max (0 = off)
	field    func(*Config) *int
}

func knobs() [4]knob {
	return [4]knob{
		{KeyRateWindowSecs, EnvRateWindowSecs, DefaultRateWindowSecs, 1, 3600, false,
			func(c *Config) *int { return &c.RateWindowSecs }},
		{KeyMaxPerSec, EnvMaxPerSec, DefaultMaxPerSec, 1, 50_000, false,
			func(c *Config) *int { return &c.MaxPerSec }},
		{KeyMaxBytesPerSec, EnvMaxBytesPerSec, DefaultMaxBytesPerSec, 1024, 1 << 30, false,
			func(c *Config) *int { return &c.MaxBytesPerSec }},
		{KeyChainSyncIntervalMS, EnvChainSyncIntervalMS, DefaultChainSyncIntervalMS, 10, 3_600_000, true,
			func(c *Config) *int { return &c.ChainSyncIntervalMS }},
	}
}

func (k knob) allowed() string {
	if k.zeroOK {
		return fmt.Sprintf("0 (off) or %d..%d", k.min, k.max)
	}
	return fmt.Sprintf("%d..%d", k.min, k.max)
}

func (k knob) inRange(v int64) bool {
	return (k.zeroOK && v == 0) || (v >= int64(k.min) && v <= int64(k.max))
}

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

// Validate reports every field outside its allowed range as a [*ConfigError]
// (joined with errors.Join when there are several).
func (c Config) Validate() error {
	var errs []error
	for _, k := range knobs() {
		v := *k.field(&c)
		if !k.inRange(int64(v)) {
			errs = append(errs, &ConfigError{Key: k.key, Value: strconv.Itoa(v),
				Reason: "out of range (allowed " + k.allowed() + ")"})
		}
	}
	return errors.Join(errs...)
}

// ConfigError is one bad value: which file or environment variable, which key,
// the value as written, and why it was refused (including the allowed range).
type ConfigError struct {
	File   string // the config file, "" when the value came from the environment or a Config literal
	Key    string // the TOML key, e.g. p2p_max_per_sec
	Env    string // the environment variable when the value came from it, else ""
	Value  string // the offending value as written
	Reason string
}

// Error formats the problem on one line, starting "p2p config: ".
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("p2p config: ")
	switch {
	case e.Env != "" && e.File == "":
		fmt.Fprintf(&b, "env %s=%q (%s): ", e.Env, e.Value, e.Key)
	case e.File != "":
		fmt.Fprintf(&b, "%s: %s = %s: ", e.File, e.Key, e.Value)
	default:
		fmt.Fprintf(&b, "%s = %s: ", e.Key, e.Value)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// fileKnobs is what the TOML file is decoded into. Fields are `any` so a value
// of the wrong type becomes our own clear error instead of a decoder message,
// and MetaData.Undecoded() lists everything else as unknown.
type fileKnobs struct {
	RateWindowSecs      any `toml:"p2p_rate_window_secs"`
	MaxPerSec           any `toml:"p2p_max_per_sec"`
	MaxBytesPerSec      any `toml:"p2p_max_bytes_per_sec"`
	ChainSyncIntervalMS any `toml:"p2p_chain_sync_interval_ms"`
}

func (f *fileKnobs) get(key string) any {
	switch key {
	case KeyRateWindowSecs:
		return f.RateWindowSecs
	case KeyMaxPerSec:
		return f.MaxPerSec
	case KeyMaxBytesPerSec:
		return f.MaxBytesPerSec
	case KeyChainSyncIntervalMS:
		return f.ChainSyncIntervalMS
	}
	return nil
}

// LoadConfig builds the p2p configuration with precedence defaults < file <
// environment. path is the node's TOML config file ("" = no file; a named file
// that is missing or unreadable is an error). getenv looks up environment
// variables (os.Getenv in production; nil = no environment); an empty value
// counts as unset.
//
// It returns the config, one [Setting] per knob (in a fixed order), warnings
// (unknown keys in the file; the [runtime] table belongs to package runtime and
// is not warned about), or an error. On error the Config is the zero value and
// nothing should be applied: every problem found is reported, each a
// [*ConfigError] naming the file or variable, the key, the value and the allowed
// range, joined with errors.Join.
func LoadConfig(path string, getenv func(string) string) (Config, []Setting, []string, error) {
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Config{}, nil, nil, fmt.Errorf("p2p config: %s: no such file (pass no --config to use defaults and environment only): %w", path, err)
			}
			return Config{}, nil, nil, fmt.Errorf("p2p config: read %s: %w", path, err)
		}
		data = b
	}
	return loadConfig(path, data, path != "", getenv)
}

// maxConfigFile bounds what we parse; a node config is a few KiB.
const maxConfigFile = 4 << 20

// loadConfig is LoadConfig after the file was read (the fuzz target's entry).
func loadConfig(path string, data []byte, haveFile bool, getenv func(string) string) (Config, []Setting, []string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	name := path
	if name == "" {
		name = "config"
	}
	var (
		fk       fileKnobs
		warnings []string
	)
	if haveFile {
		if len(data) > maxConfigFile {
			return Config{}, nil, nil, fmt.Errorf("p2p config: %s: file is %d bytes, larger than the %d-byte limit for a node config", name, len(data), maxConfigFile)
		}
		md, err := toml.Decode(string(data), &fk)
		if err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				return Config{}, nil, nil, fmt.Errorf("p2p config: %s: line %d: %s", name, pe.Position.Line, pe.Message)
			}
			return Config{}, nil, nil, fmt.Errorf("p2p config: %s: %w", name, err)
		}
		warnings = unknownKeys(name, md.Undecoded())
	}

	cfg := DefaultConfig()
	settings := make([]Setting, 0, 4)
	var errs []error
	for _, k := range knobs() {
		val, src := int64(k.def), SourceDefault
		if raw := fk.get(k.key); raw != nil {
			v, ok := raw.(int64)
			if !ok {
				errs = append(errs, &ConfigError{File: name, Key: k.key, Value: tomlValue(raw),
					Reason: fmt.Sprintf("want an integer (%s), got %s", k.allowed(), tomlType(raw))})
				continue
			}
			if !k.inRange(v) {
				errs = append(errs, &ConfigError{File: name, Key: k.key, Value: strconv.FormatInt(v, 10),
					Reason: "out of range (allowed " + k.allowed() + ")"})
				continue
			}
			val, src = v, SourceFile
		}
		if s := strings.TrimSpace(getenv(k.env)); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				errs = append(errs, &ConfigError{Env: k.env, Key: k.key, Value: s,
					Reason: "not a decimal integer (allowed " + k.allowed() + ")"})
				continue
			}
			if !k.inRange(v) {
				errs = append(errs, &ConfigError{Env: k.env, Key: k.key, Value: s,
					Reason: "out of range (allowed " + k.allowed() + ")"})
				continue
			}
			val, src = v, SourceEnv
		}
		*k.field(&cfg) = int(val)
		settings = append(settings, Setting{Key: k.key, Env: k.env, Value: strconv.FormatInt(val, 10), Source: src})
	}
	if len(errs) > 0 {
		return Config{}, nil, nil, errors.Join(errs...)
	}
	return cfg, settings, warnings, nil
}

// unknownKeys turns undecoded keys into warnings, skipping the [runtime] table
// (package runtime reads it) and the children of a table already reported.
func unknownKeys(name string, keys []toml.Key) []string {
	var out []string
	reported := map[string]bool{}
	for _, k := range keys {
		if len(k) == 0 || k[0] == "runtime" {
			continue
		}
		if len(k) > 1 && reported[k[0]] {
			continue
		}
		reported[k[0]] = true
		w := fmt.Sprintf("%s: unknown key %q ignored", name, k.String())
		if strings.EqualFold(k[0], "p2p") {
			w += " (p2p knobs are top-level keys such as p2p_max_per_sec, not a [p2p] table)"
		} else if len(k) == 1 {
			if m := closestKnob(k[0]); m != "" {
				w += fmt.Sprintf(" (did you mean %s?)", m)
			}
		}
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}

// closestKnob suggests a p2p key within edit distance 3 of a misspelt one.
func closestKnob(s string) string {
	if !strings.HasPrefix(strings.ToLower(s), "p2p") {
		return ""
	}
	best, bestD := "", 4
	for _, k := range knobs() {
		if d := editDistance(strings.ToLower(s), k.key); d < bestD {
			best, bestD = k.key, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func tomlValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []any, map[string]any:
		return tomlType(v)
	}
	s := fmt.Sprint(v)
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return s
}
