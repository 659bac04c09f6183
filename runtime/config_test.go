package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestLoadNodeConfigDefaults(t *testing.T) {
	c, sets, warns, err := LoadNodeConfig("", nil)
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.Equal(t, Knobs{ReactorIdlePoll: 100 * time.Millisecond, IOReadBackoff: 10 * time.Millisecond,
		IOWriteBackoff: 10 * time.Millisecond, TLSHandshakeTimeout: 10 * time.Second}, c.Knobs)
	assert.Equal(t, P2PConfig{RateWindowSecs: 1, MaxPerSec: 100, MaxBytesPerSec: 65536, ChainSyncIntervalMS: 500}, c.P2P)
	assert.Equal(t, DefaultNodeConfig(), c)
	assert.Equal(t, DefaultKnobs(), c.Knobs)
	require.Len(t, sets, 8)
	assert.Equal(t, Setting{Key: "runtime.reactor_idle_poll_ms", Env: "TB_REACTOR_IDLE_POLL_MS", Value: 100, Unit: "ms", Source: "default"}, sets[0])
	assert.Equal(t, Setting{Key: "runtime.tls_handshake_timeout_ms", Env: "TB_TLS_HANDSHAKE_TIMEOUT_MS", Value: 10000, Unit: "ms", Source: "default"}, sets[3])
	assert.Equal(t, Setting{Key: "p2p_max_bytes_per_sec", Env: "TB_P2P_MAX_BYTES_PER_SEC", Value: 65536, Unit: "bytes", Source: "default"}, sets[6])
}

// One file, both parts, defaults < file < environment.
func TestLoadNodeConfigPrecedence(t *testing.T) {
	p := writeFile(t, t.TempDir(), "node.toml", `
p2p_rate_window_secs = 2
p2p_max_per_sec = 50
p2p_chain_sync_interval_ms = 0

[runtime]
reactor_idle_poll_ms = 50
io_read_backoff_ms = 20
`)
	c, sets, warns, err := LoadNodeConfig(p, envOf(map[string]string{
		"TB_IO_READ_BACKOFF_MS": "30", "TB_TLS_HANDSHAKE_TIMEOUT_MS": " 2500 ",
		"TB_P2P_MAX_PER_SEC": " 75 ", "TB_P2P_MAX_BYTES_PER_SEC": "131072", "TB_P2P_RATE_WINDOW_SECS": "", // empty = unset
	}))
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.Equal(t, Knobs{ReactorIdlePoll: 50 * time.Millisecond, IOReadBackoff: 30 * time.Millisecond,
		IOWriteBackoff: 10 * time.Millisecond, TLSHandshakeTimeout: 2500 * time.Millisecond}, c.Knobs)
	assert.Equal(t, P2PConfig{RateWindowSecs: 2, MaxPerSec: 75, MaxBytesPerSec: 131072, ChainSyncIntervalMS: 0}, c.P2P)
	assert.Equal(t, []Setting{
		{Key: "runtime.reactor_idle_poll_ms", Env: "TB_REACTOR_IDLE_POLL_MS", Value: 50, Unit: "ms", Source: SourceFile},
		{Key: "runtime.io_read_backoff_ms", Env: "TB_IO_READ_BACKOFF_MS", Value: 30, Unit: "ms", Source: SourceEnv},
		{Key: "runtime.io_write_backoff_ms", Env: "TB_IO_WRITE_BACKOFF_MS", Value: 10, Unit: "ms", Source: SourceDefault},
		{Key: "runtime.tls_handshake_timeout_ms", Env: "TB_TLS_HANDSHAKE_TIMEOUT_MS", Value: 2500, Unit: "ms", Source: SourceEnv},
		{Key: "p2p_rate_window_secs", Env: "TB_P2P_RATE_WINDOW_SECS", Value: 2, Unit: "s", Source: SourceFile},
		{Key: "p2p_max_per_sec", Env: "TB_P2P_MAX_PER_SEC", Value: 75, Unit: "requests", Source: SourceEnv},
		{Key: "p2p_max_bytes_per_sec", Env: "TB_P2P_MAX_BYTES_PER_SEC", Value: 131072, Unit: "bytes", Source: SourceEnv},
		{Key: "p2p_chain_sync_interval_ms", Env: "TB_P2P_CHAIN_SYNC_INTERVAL_MS", Value: 0, Unit: "ms", Source: SourceFile},
	}, sets)
}

// Unknown keys are warnings, each once, with a hint where one helps. Keys are
// case-sensitive in both parts of the file.
func TestLoadNodeConfigUnknownKeysWarn(t *testing.T) {
	p := writeFile(t, t.TempDir(), "node.toml", `
listen = "0.0.0.0"
p2p_max_per_second = 10
p2p_max_per_sec = 10
P2P_MAX_PER_SEC = 99
reactor_idle_poll_ms = 1
[runtime]
reactor_idle_poll_ms = 5
REACTOR_IDLE_POLL_MS = 7
io_read_backof_ms = 3
whatever = 1
[runtime.extra]
x = 1
[p2p]
max_per_sec = 5
[other]
z = 1
`)
	c, _, warns, err := LoadNodeConfig(p, nil)
	require.NoError(t, err)
	assert.Equal(t, 5*time.Millisecond, c.Knobs.ReactorIdlePoll, "the upper-case and the top-level ones are ignored")
	assert.Equal(t, 10, c.P2P.MaxPerSec, "P2P_MAX_PER_SEC is not p2p_max_per_sec")
	want := []string{
		`unknown key "P2P_MAX_PER_SEC" ignored (did you mean p2p_max_per_sec?)`,
		`unknown key "listen" ignored`,
		`unknown key "other" ignored`,
		`unknown key "p2p" ignored (p2p knobs are top-level keys such as p2p_max_per_sec, not a [p2p] table)`,
		`unknown key "p2p_max_per_second" ignored (did you mean p2p_max_per_sec?)`,
		`unknown key "reactor_idle_poll_ms" ignored (runtime knobs go in the [runtime] table)`,
		`unknown key "runtime.REACTOR_IDLE_POLL_MS" ignored (did you mean runtime.reactor_idle_poll_ms?)`,
		`unknown key "runtime.extra" ignored (known: reactor_idle_poll_ms, io_read_backoff_ms, io_write_backoff_ms, tls_handshake_timeout_ms)`,
		`unknown key "runtime.io_read_backof_ms" ignored (did you mean runtime.io_read_backoff_ms?)`,
		`unknown key "runtime.whatever" ignored (known: reactor_idle_poll_ms, io_read_backoff_ms, io_write_backoff_ms, tls_handshake_timeout_ms)`,
	}
	require.Len(t, warns, len(want), "%q", warns)
	for i, w := range want {
		assert.Equal(t, "config "+p+": "+w, warns[i])
	}
}

// Every bad value is an error naming the file or variable, the key, the value
// and the allowed range with its unit; nothing of a bad config is applied.
func TestLoadNodeConfigBadValues(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{"negative", "[runtime]\nio_read_backoff_ms = -5\n", nil,
			[]string{"runtime.io_read_backoff_ms = -5: out of range (allowed 1..10000 ms)"}},
		{"zero poll", "[runtime]\nreactor_idle_poll_ms = 0\n", nil, []string{"reactor_idle_poll_ms = 0", "allowed 1..60000 ms"}},
		{"absurd", "[runtime]\ntls_handshake_timeout_ms = 99999999999\n", nil, []string{"out of range", "100..300000 ms"}},
		{"string", "[runtime]\nio_write_backoff_ms = \"10\"\n", nil, []string{`io_write_backoff_ms = "10"`, "got a string (write it without quotes)"}},
		{"float", "[runtime]\nio_write_backoff_ms = 1.5\n", nil, []string{"= 1.5", "want an integer (ms), got a float"}},
		{"bool", "[runtime]\nio_write_backoff_ms = true\n", nil, []string{"got a boolean"}},
		{"table", "p2p_max_per_sec = {a = 1}\n", nil, []string{"p2p_max_per_sec = a table: want an integer (requests), got a table"}},
		{"runtime not a table", "runtime = 3\n", nil, []string{"want a [runtime] table, got an integer"}},
		{"syntax", "[runtime]\nx = = 1\n", nil, []string{"line 2"}},
		{"duplicate key", "p2p_max_per_sec = 1\np2p_max_per_sec = 2\n", nil, []string{"line 2"}},
		{"p2p negative", "p2p_max_per_sec = -5\n", nil, []string{"p2p_max_per_sec = -5: out of range (allowed 1..50000 requests)"}},
		{"p2p absurd", "p2p_max_bytes_per_sec = 99999999999999\n", nil, []string{"(allowed 1024..1073741824 bytes)"}},
		{"p2p zero window", "p2p_rate_window_secs = 0\n", nil, []string{"p2p_rate_window_secs = 0: out of range (allowed 1..3600 s)"}},
		{"p2p too fast sync", "p2p_chain_sync_interval_ms = 1\n", nil, []string{"(allowed 0 (off) or 10..3600000 ms)"}},
		{"env not int", "", map[string]string{"TB_REACTOR_IDLE_POLL_MS": "fast"},
			[]string{`env TB_REACTOR_IDLE_POLL_MS="fast" (runtime.reactor_idle_poll_ms): not a decimal integer (allowed 1..60000 ms)`}},
		{"env huge", "", map[string]string{"TB_IO_READ_BACKOFF_MS": "99999999999999999999"}, []string{"out of range"}},
		{"env negative", "", map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "-1"}, []string{"TB_TLS_HANDSHAKE_TIMEOUT_MS", "out of range"}},
		{"env p2p", "", map[string]string{"TB_P2P_MAX_PER_SEC": "10k"},
			[]string{`env TB_P2P_MAX_PER_SEC="10k" (p2p_max_per_sec): not a decimal integer (allowed 1..50000 requests)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, "c.toml", tc.file)
			c, sets, warns, err := LoadNodeConfig(p, envOf(tc.env))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if !strings.HasPrefix(tc.name, "env") {
				assert.Contains(t, err.Error(), "config "+p+": ", "the file is named")
			}
			assert.Equal(t, DefaultNodeConfig(), c, "nothing of a bad config is applied")
			assert.Nil(t, sets)
			assert.Nil(t, warns)
		})
	}
}

// Errors of both parts of the file are reported together, each a *ValueError.
func TestLoadNodeConfigReportsEveryError(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.toml", "p2p_max_per_sec = 0\n[runtime]\nio_read_backoff_ms = -1\nio_write_backoff_ms = 0\n")
	_, _, _, err := LoadNodeConfig(p, envOf(map[string]string{"TB_REACTOR_IDLE_POLL_MS": "x", "TB_P2P_MAX_BYTES_PER_SEC": "1"}))
	require.Error(t, err)
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ve *ValueError
		require.True(t, errors.As(e, &ve))
		got = append(got, ve.Spec.Key+"@"+ve.File+ve.Env)
	}
	assert.Equal(t, []string{
		"runtime.reactor_idle_poll_ms@TB_REACTOR_IDLE_POLL_MS",
		"runtime.io_read_backoff_ms@" + p,
		"runtime.io_write_backoff_ms@" + p,
		"p2p_max_per_sec@" + p,
		"p2p_max_bytes_per_sec@TB_P2P_MAX_BYTES_PER_SEC",
	}, got)
}

func TestLoadNodeConfigUnreadable(t *testing.T) {
	dir := t.TempDir()
	_, _, _, err := LoadNodeConfig(filepath.Join(dir, "missing.toml"), nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "missing.toml")

	_, _, _, err = LoadNodeConfig(dir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a directory")

	big := writeFile(t, dir, "big.toml", "# "+strings.Repeat("x", MaxConfigBytes)+"\n")
	_, _, _, err = LoadNodeConfig(big, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")

	if os.Geteuid() != 0 { // root reads anything
		p := writeFile(t, dir, "secret.toml", "[runtime]\n")
		require.NoError(t, os.Chmod(p, 0))
		_, _, _, err = LoadNodeConfig(p, nil)
		require.Error(t, err)
		assert.ErrorIs(t, err, os.ErrPermission)
	}
}

func TestKnobsValidate(t *testing.T) {
	require.NoError(t, DefaultKnobs().Validate())
	k := DefaultKnobs()
	k.IOReadBackoff = 0
	k.ReactorIdlePoll = 1500 * time.Microsecond
	err := k.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "io_read_backoff_ms")
	assert.Contains(t, err.Error(), "reactor_idle_poll_ms")
}

func TestSpecs(t *testing.T) {
	specs := Specs()
	require.Len(t, specs, 8)
	for _, s := range specs {
		assert.True(t, s.inRange(s.Default), s.Key)
		assert.NotEmpty(t, s.Unit, s.Key)
		assert.NotEmpty(t, s.Doc, s.Key)
	}
	assert.Equal(t, "0 (off) or 10..3600000 ms", spec("p2p_chain_sync_interval_ms").Allowed())
}

// FuzzParseNodeConfig: whatever the file and the environment, the loader either
// refuses with an error matching ErrInvalidConfig and applies nothing, or
// returns in-range values whose settings say the same.
func FuzzParseNodeConfig(f *testing.F) {
	f.Add([]byte("[runtime]\nreactor_idle_poll_ms = 50\n"), "", "")
	f.Add([]byte("p2p_max_per_sec = 1\n[runtime]\nio_read_backoff_ms = -1\n"), "5", "")
	f.Add([]byte("runtime = 1"), "abc", "0")
	f.Add([]byte("[runtime.x]\ny = [1, 2]\n[[runtime.z]]\n"), "99999999999999999999", "")
	f.Add([]byte("runtime.tls_handshake_timeout_ms = 1e3\n"), " 100 ", " 20 ")
	f.Add([]byte("p2p_chain_sync_interval_ms = 0\np2p_max_bytes_per_sec = 1024\n"), "", "0")
	f.Add([]byte("p2p_max_per_sec = \"x\"\nfoo = [1, 2]\n[a.b]\nc = 1\n"), "-1", "abc")
	f.Add([]byte("p2p_max_per_sec = 9223372036854775807\n"), "", "")
	f.Add([]byte("\x00[runtime]"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, envBackoff, envSync string) {
		env := envOf(map[string]string{"TB_IO_WRITE_BACKOFF_MS": envBackoff, "TB_P2P_CHAIN_SYNC_INTERVAL_MS": envSync})
		c, sets, warns, err := ParseNodeConfig(data, "fuzz.toml", env)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not match ErrInvalidConfig: %v", err)
			}
			if c != DefaultNodeConfig() || sets != nil || warns != nil {
				t.Fatalf("a bad config leaked values: %+v %v %v", c, sets, warns)
			}
			return
		}
		if verr := c.Knobs.Validate(); verr != nil {
			t.Fatalf("accepted knobs out of range: %v", verr)
		}
		if len(sets) != 8 {
			t.Fatalf("want 8 settings, got %d", len(sets))
		}
		var again NodeConfig
		for _, s := range sets {
			if !spec(s.Key).inRange(s.Value) {
				t.Fatalf("accepted %s = %d", s.Key, s.Value)
			}
			if s.Source == SourceEnv && s.Env != "TB_IO_WRITE_BACKOFF_MS" && s.Env != "TB_P2P_CHAIN_SYNC_INTERVAL_MS" {
				t.Fatalf("env source for a variable that was not set: %v", s)
			}
			again.set(s.Key, s.Value)
		}
		if again != c {
			t.Fatalf("settings %v do not match the config %+v", sets, c)
		}
		for _, w := range warns {
			if !strings.HasPrefix(w, "config fuzz.toml: unknown key ") {
				t.Fatalf("odd warning %q", w)
			}
		}
	})
}
