package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Sources of a setting's value, lowest precedence first.
const (
	SourceDefault = "default"
	SourceFile    = "file"
	SourceEnv     = "env"
)

// MaxConfigBytes caps how much of a config file is read: a node config is a few
// hundred bytes, and a runaway file must not exhaust memory on every reload.
const MaxConfigBytes = 1 << 20

// Setting is one key's effective value and where it came from, for display
// (`tbops runtime knobs`) and for logs after a reload.
type Setting struct {
	// Key is the config key: "runtime.reactor_idle_poll_ms", "p2p_max_per_sec".
	Key string `json:"key"`
	// Env is the environment variable that overrides it.
	Env string `json:"env"`
	// Value is the effective value, in Unit.
	Value int64 `json:"value"`
	// Unit is what Value counts: "ms", "s", "requests" or "bytes".
	Unit string `json:"unit"`
	// Source is SourceDefault, SourceFile or SourceEnv.
	Source string `json:"source"`
}

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

// LoadNodeConfig loads the node config: every key's default, overridden by
// the TOML file at path (none when path is ""; a named file that is missing
// is an error), overridden by the environment (getenv; nil means an empty
// environment, and an empty variable counts as unset). It returns the
// configuration, every key's effective value with its source (runtime knobs
// first, in the order of Specs), warnings (unknown keys, which are ignored),
// and an error when anything is bad: every bad value at once (errors.Join of
// *ValueError, each naming the file or variable, the key, the value and the
// allowed range), or a *FileError for a file that cannot be read or parsed.
// All match ErrInvalidConfig. On error the configuration is the defaults,
// without settings or warnings, and must not be applied.
func LoadNodeConfig(path string, getenv func(string) string) (NodeConfig, []Setting, []string, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = ReadConfigFile(path); err != nil {
			return DefaultNodeConfig(), nil, nil, err
		}
	}
	return ParseNodeConfig(data, path, getenv)
}

// ParseNodeConfig is LoadNodeConfig on the contents of a config file already
// read; file names it in errors and warnings. Empty data means no file.
func ParseNodeConfig(data []byte, file string, getenv func(string) string) (NodeConfig, []Setting, []string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if file == "" {
		file = "<config>"
	}
	fileVals, warnings, err := parseFile(data, file)
	if err != nil {
		return DefaultNodeConfig(), nil, nil, err
	}
	var (
		c    NodeConfig
		sets []Setting
		errs []error
	)
	for _, s := range Specs() {
		v, src := s.Default, SourceDefault
		if raw, ok := fileVals[s.Key]; ok {
			if n, err := fileValue(s, raw, file); err != nil {
				errs = append(errs, err)
			} else {
				v, src = n, SourceFile
			}
		}
		if raw := getenv(s.Env); raw != "" {
			if n, err := envValue(s, raw); err != nil {
				errs = append(errs, err)
			} else {
				v, src = n, SourceEnv
			}
		}
		c.set(s.Key, v)
		sets = append(sets, Setting{Key: s.Key, Env: s.Env, Value: v, Unit: s.Unit, Source: src})
	}
	if len(errs) > 0 {
		return DefaultNodeConfig(), nil, nil, errors.Join(errs...)
	}
	return c, sets, warnings, nil
}

// parseFile decodes the TOML and returns the raw values of the known keys,
// by full key. It walks the decoded map rather than decoding into a struct
// because the TOML decoder matches struct fields case-insensitively: the
// node's keys are case-sensitive, so REACTOR_IDLE_POLL_MS must be reported as
// unknown, not silently applied.
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
	table := map[string]any{}
	if rt, ok := doc["runtime"]; ok {
		if table, ok = rt.(map[string]any); !ok {
			return nil, nil, &FileError{File: file, Err: fmt.Errorf("runtime: want a [runtime] table, got %s", tomlType(rt))}
		}
	}
	for _, s := range Specs() {
		v, ok := doc[s.Key]
		if name, inTable := strings.CutPrefix(s.Key, "runtime."); inTable {
			v, ok = table[name]
		}
		if ok {
			out[s.Key] = v
		}
	}
	return out, unknownKeys(md.Keys(), file), nil
}

func isKey(key string) bool { return spec(key).Key != "" }

// unknownKeys warns about every key that is not a node config key, once per
// table: the children of an unknown table are not repeated.
func unknownKeys(keys []toml.Key, file string) []string {
	var out []string
	for _, key := range keys {
		full := key.String()
		switch {
		case len(key) == 1 && key[0] == "runtime":
		case len(key) > 2 || (len(key) == 2 && key[0] != "runtime"):
			// Inside a table already judged: a known key's bad value is an
			// error, an unknown table is warned about once.
		default:
			if !isKey(full) {
				out = append(out, fmt.Sprintf("config %s: unknown key %q ignored%s", file, full, hint(key)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// hint suggests what an unknown key may have meant.
func hint(key toml.Key) string {
	if len(key) == 1 && strings.EqualFold(key[0], "p2p") {
		return " (p2p knobs are top-level keys such as p2p_max_per_sec, not a [p2p] table)"
	}
	if len(key) == 1 && isKey("runtime."+key[0]) {
		return " (runtime knobs go in the [runtime] table)"
	}
	if m := closestKey(key.String()); m != "" {
		return fmt.Sprintf(" (did you mean %s?)", m)
	}
	if key[0] == "runtime" {
		return " (known: " + knownRuntimeKeys() + ")"
	}
	return ""
}

// closestKey suggests a known key within edit distance 3 of a misspelt one.
func closestKey(s string) string {
	best, bestD := "", 4
	for _, k := range Specs() {
		if d := editDistance(strings.ToLower(s), k.Key); d < bestD {
			best, bestD = k.Key, d
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

// fileValue checks one value of the file.
func fileValue(s KnobSpec, raw any, file string) (int64, error) {
	e := &ValueError{File: file, Spec: s}
	switch v := raw.(type) {
	case int64:
		if s.inRange(v) {
			return v, nil
		}
		e.Value, e.Reason = strconv.FormatInt(v, 10), "out of range"
	case string:
		e.Value = strconv.Quote(v)
		e.Reason = fmt.Sprintf("want an integer (%s), got a string (write it without quotes)", s.Unit)
	case float64:
		e.Value = strconv.FormatFloat(v, 'g', -1, 64)
		e.Reason = fmt.Sprintf("want an integer (%s), got a float", s.Unit)
	default:
		e.Value = tomlType(v)
		e.Reason = fmt.Sprintf("want an integer (%s), got %s", s.Unit, tomlType(v))
	}
	return 0, e
}

// envValue parses an environment override: a decimal integer within the
// key's range, surrounding spaces allowed.
func envValue(s KnobSpec, raw string) (int64, error) {
	e := &ValueError{Env: s.Env, Value: raw, Spec: s}
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		e.Reason = "out of range"
	case err != nil:
		e.Reason = "not a decimal integer"
	case !s.inRange(v):
		e.Reason = "out of range"
	default:
		return v, nil
	}
	return 0, e
}
