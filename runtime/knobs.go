package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Sources of a knob's value, lowest precedence first.
const (
	SourceDefault = "default"
	SourceFile    = "file"
	SourceEnv     = "env"
)

// MaxConfigBytes caps how much of a config file is read: a node config is a few
// hundred bytes, and a runaway file must not exhaust memory on every reload.
const MaxConfigBytes = 1 << 20

// Knobs are the runtime tuning knobs of RUNBOOK.md "Runtime Tuning Knobs" and
// "TLS Handshake Timeouts" (PROTOCOL.md section 8).
type Knobs struct {
	// ReactorIdlePoll is runtime.reactor_idle_poll_ms: the maximum sleep between
	// reactor polls.
	ReactorIdlePoll time.Duration `json:"reactor_idle_poll"`
	// IOReadBackoff is runtime.io_read_backoff_ms: the fallback delay before
	// retrying a read when readiness is missing.
	IOReadBackoff time.Duration `json:"io_read_backoff"`
	// IOWriteBackoff is runtime.io_write_backoff_ms: the fallback delay before
	// retrying a write when readiness is missing.
	IOWriteBackoff time.Duration `json:"io_write_backoff"`
	// TLSHandshakeTimeout is runtime.tls_handshake_timeout_ms: how long a TLS
	// handshake may take, server and client side.
	TLSHandshakeTimeout time.Duration `json:"tls_handshake_timeout"`
}

// Setting is one knob's effective value and where it came from. The p2p package
// has a type of the same shape, so a command can print both side by side.
type Setting struct {
	// Key is the config-file key, "runtime.reactor_idle_poll_ms".
	Key string `json:"key"`
	// Env is the environment variable that overrides it.
	Env string `json:"env"`
	// Value is the effective value as written in the file (milliseconds).
	Value string `json:"value"`
	// Source is "default", "file" or "env".
	Source string `json:"source"`
}

// KnobSpec describes one knob: its names, default and allowed range, all in
// milliseconds.
type KnobSpec struct {
	// Name is the key inside the [runtime] table.
	Name string
	// Env is the environment variable that overrides the file.
	Env     string
	Default int64
	Min     int64
	Max     int64
	// Doc says what the knob does, for help texts and generated docs.
	Doc string
}

// Key is the knob's full dotted key, "runtime.<name>".
func (s KnobSpec) Key() string { return "runtime." + s.Name }

// Specs lists the runtime knobs in a fixed order with their defaults and ranges.
//
// Ranges (milliseconds, inclusive):
//   - reactor_idle_poll_ms 1..60000: 0 would make the reactor spin; more than a
//     minute between polls means a missed wakeup stalls a peer for minutes.
//   - io_read_backoff_ms and io_write_backoff_ms 1..10000: 0 retries in a busy
//     loop; more than 10 s makes every missed wakeup a visible stall.
//   - tls_handshake_timeout_ms 100..300000: under 100 ms even loopback handshakes
//     on a loaded machine fail; over 5 minutes is no bound against stalled peers.
func Specs() []KnobSpec {
	return []KnobSpec{
		{Name: "reactor_idle_poll_ms", Env: "TB_REACTOR_IDLE_POLL_MS", Default: 100, Min: 1, Max: 60_000,
			Doc: "maximum sleep between reactor polls"},
		{Name: "io_read_backoff_ms", Env: "TB_IO_READ_BACKOFF_MS", Default: 10, Min: 1, Max: 10_000,
			Doc: "fallback delay before retrying reads when readiness is missing"},
		{Name: "io_write_backoff_ms", Env: "TB_IO_WRITE_BACKOFF_MS", Default: 10, Min: 1, Max: 10_000,
			Doc: "fallback delay before retrying writes when readiness is missing"},
		{Name: "tls_handshake_timeout_ms", Env: "TB_TLS_HANDSHAKE_TIMEOUT_MS", Default: 10_000, Min: 100, Max: 300_000,
			Doc: "TLS handshake timeout for HTTP servers and clients"},
	}
}

// DefaultKnobs are the documented defaults: 100 ms idle poll, 10 ms read and
// write backoff, 10 s TLS handshake timeout.
func DefaultKnobs() Knobs {
	var k Knobs
	for _, s := range Specs() {
		k.set(s.Name, s.Default)
	}
	return k
}

// field returns the knob called name (the key inside [runtime]), nil when unknown.
func (k *Knobs) field(name string) *time.Duration {
	switch name {
	case "reactor_idle_poll_ms":
		return &k.ReactorIdlePoll
	case "io_read_backoff_ms":
		return &k.IOReadBackoff
	case "io_write_backoff_ms":
		return &k.IOWriteBackoff
	case "tls_handshake_timeout_ms":
		return &k.TLSHandshakeTimeout
	}
	return nil
}

func (k *Knobs) set(name string, ms int64) {
	if f := k.field(name); f != nil {
		*f = time.Duration(ms) * time.Millisecond
	}
}

// Millis returns the knob called name (the key inside [runtime]) in
// milliseconds; ok is false for an unknown name.
func (k Knobs) Millis(name string) (ms int64, ok bool) {
	f := k.field(name)
	if f == nil {
		return 0, false
	}
	return f.Milliseconds(), true
}

// ErrInvalidConfig is matched (errors.Is) by every error about a bad value, a bad
// file or a bad environment variable.
var ErrInvalidConfig = errors.New("invalid runtime configuration")

// ValueError is one knob value that is not acceptable: out of range, not an
// integer, or of the wrong TOML type. It names where the value came from.
type ValueError struct {
	// File is the config file, empty when the value came from the environment.
	File string
	// Key is the dotted config key ("runtime.io_read_backoff_ms").
	Key string
	// Env is the environment variable, set when the value came from it.
	Env string
	// Value is the offending value as written.
	Value string
	// Min and Max are the allowed range in milliseconds.
	Min, Max int64
	// Reason says what is wrong: "out of range", "not an integer", …
	Reason string
}

func (e *ValueError) Error() string {
	where := fmt.Sprintf("config %s: %s = %s", e.File, e.Key, e.Value)
	if e.Env != "" {
		where = fmt.Sprintf("env %s=%q (%s)", e.Env, e.Value, e.Key)
	}
	return fmt.Sprintf("%s: %s (allowed %d..%d ms)", where, e.Reason, e.Min, e.Max)
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

// ReadConfigFile reads a config file, capped at MaxConfigBytes, with errors
// that name the file.
func ReadConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	if st.IsDir() {
		return nil, &FileError{File: path, Err: errors.New("is a directory, want a TOML file")}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	if len(data) > MaxConfigBytes {
		return nil, &FileError{File: path, Err: fmt.Errorf("larger than %d bytes: not a node config", MaxConfigBytes)}
	}
	return data, nil
}

// LoadKnobs loads the runtime knobs: the defaults, overridden by the [runtime]
// table of the TOML file at path (none when path is ""), overridden by the
// environment (getenv; nil means an empty environment). It returns the knobs,
// each knob's effective value with its source, warnings (unknown keys, which are
// ignored), and an error naming the file, key, value and allowed range when any
// value is bad — then the returned Knobs are the defaults and must not be applied.
// Top-level p2p_* keys belong to package p2p and are not warned about.
func LoadKnobs(path string, getenv func(string) string) (Knobs, []Setting, []string, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = ReadConfigFile(path); err != nil {
			return DefaultKnobs(), nil, nil, err
		}
	}
	return ParseKnobs(data, path, getenv)
}

// ParseKnobs is LoadKnobs on the contents of a config file already read; file
// names it in errors. Empty data means no file.
func ParseKnobs(data []byte, file string, getenv func(string) string) (Knobs, []Setting, []string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if file == "" {
		file = "<config>"
	}
	fileVals, warnings, err := parseFile(data, file)
	if err != nil {
		return DefaultKnobs(), nil, warnings, err
	}
	var (
		k    Knobs
		sets []Setting
		errs []error
	)
	for _, s := range Specs() {
		v, src := s.Default, SourceDefault
		if raw, ok := fileVals[s.Name]; ok {
			ms, verr := checkFileValue(s, raw, file)
			if verr != nil {
				errs = append(errs, verr)
			} else {
				v, src = ms, SourceFile
			}
		}
		if raw := getenv(s.Env); raw != "" {
			ms, verr := ParseEnvMillis(s, raw)
			if verr != nil {
				errs = append(errs, verr)
			} else {
				v, src = ms, SourceEnv
			}
		}
		k.set(s.Name, v)
		sets = append(sets, Setting{Key: s.Key(), Env: s.Env, Value: strconv.FormatInt(v, 10), Source: src})
	}
	if len(errs) > 0 {
		return DefaultKnobs(), nil, warnings, errors.Join(errs...)
	}
	return k, sets, warnings, nil
}

// parseFile decodes the TOML and returns the raw values of the [runtime] table.
// It walks the decoded map rather than decoding into a struct because the TOML
// decoder matches struct fields case-insensitively: the node's keys are
// case-sensitive, so REACTOR_IDLE_POLL_MS must be reported as unknown, not
// silently applied.
func parseFile(data []byte, file string) (map[string]any, []string, error) {
	out := map[string]any{}
	if len(data) == 0 {
		return out, nil, nil
	}
	var doc map[string]any
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, &FileError{File: file, Line: pe.Position.Line, Err: errors.New(pe.Message)}
		}
		return nil, nil, &FileError{File: file, Err: err}
	}
	known := map[string]bool{}
	for _, s := range Specs() {
		known[s.Name] = true
	}
	var warnings []string
	for _, key := range md.Keys() {
		switch {
		case len(key) == 1 && key[0] == "runtime":
		case strings.HasPrefix(key[0], "p2p_"):
			// p2p's keys (and anything under them) are p2p.LoadConfig's to judge.
		case len(key) == 1:
			warnings = append(warnings, fmt.Sprintf("config %s: unknown key %q ignored", file, key.String()))
		case key[0] == "runtime" && len(key) == 2 && known[key[1]]:
		case key[0] == "runtime" && len(key) == 2:
			warnings = append(warnings, fmt.Sprintf("config %s: unknown key %q ignored (known: %s)", file, key.String(), knownKeys()))
		}
		// Deeper keys belong to a table already warned about.
	}
	rt, ok := doc["runtime"]
	if !ok {
		return out, warnings, nil
	}
	table, ok := rt.(map[string]any)
	if !ok {
		return nil, warnings, &FileError{File: file, Err: fmt.Errorf("runtime: want a [runtime] table, got %s", tomlType(rt))}
	}
	for name, v := range table {
		if known[name] {
			out[name] = v
		}
	}
	return out, warnings, nil
}

func knownKeys() string {
	var names []string
	for _, s := range Specs() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

func tomlType(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a datetime"
	}
	return fmt.Sprintf("%T", v)
}

func checkFileValue(s KnobSpec, raw any, file string) (int64, error) {
	e := &ValueError{File: file, Key: s.Key(), Min: s.Min, Max: s.Max}
	switch v := raw.(type) {
	case int64:
		e.Value = strconv.FormatInt(v, 10)
		if v < s.Min || v > s.Max {
			e.Reason = "out of range"
			return 0, e
		}
		return v, nil
	case string:
		e.Value = strconv.Quote(v)
		e.Reason = "want an integer number of milliseconds, got a string (write it without quotes)"
	case float64:
		e.Value = strconv.FormatFloat(v, 'g', -1, 64)
		e.Reason = "want an integer number of milliseconds, got a float"
	default:
		e.Value = fmt.Sprint(v)
		e.Reason = "want an integer number of milliseconds, got " + tomlType(v)
	}
	return 0, e
}

// ParseEnvMillis parses an environment override of the knob s: a decimal
// integer of milliseconds within the knob's range (surrounding spaces allowed).
func ParseEnvMillis(s KnobSpec, raw string) (int64, error) {
	e := &ValueError{Key: s.Key(), Env: s.Env, Value: raw, Min: s.Min, Max: s.Max}
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		e.Reason = "want an integer number of milliseconds"
		if errors.Is(err, strconv.ErrRange) {
			e.Reason = "out of range"
		}
		return 0, e
	}
	if v < s.Min || v > s.Max {
		e.Reason = "out of range"
		return 0, e
	}
	return v, nil
}

// Validate checks knobs built in code against the same ranges the loader
// enforces (for example after a caller adjusted one).
func (k Knobs) Validate() error {
	var errs []error
	for _, s := range Specs() {
		d := *k.field(s.Name)
		ms := d.Milliseconds()
		if ms < s.Min || ms > s.Max || d%time.Millisecond != 0 {
			errs = append(errs, &ValueError{File: "<code>", Key: s.Key(), Value: d.String(), Min: s.Min, Max: s.Max,
				Reason: "out of range or not a whole number of milliseconds"})
		}
	}
	return errors.Join(errs...)
}
