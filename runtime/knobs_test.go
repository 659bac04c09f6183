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

func TestLoadKnobsDefaults(t *testing.T) {
	k, sets, warns, err := LoadKnobs("", nil)
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.Equal(t, Knobs{ReactorIdlePoll: 100 * time.Millisecond, IOReadBackoff: 10 * time.Millisecond,
		IOWriteBackoff: 10 * time.Millisecond, TLSHandshakeTimeout: 10 * time.Second}, k)
	require.Len(t, sets, 4)
	assert.Equal(t, Setting{Key: "runtime.reactor_idle_poll_ms", Env: "TB_REACTOR_IDLE_POLL_MS", Value: "100", Source: "default"}, sets[0])
	assert.Equal(t, Setting{Key: "runtime.tls_handshake_timeout_ms", Env: "TB_TLS_HANDSHAKE_TIMEOUT_MS", Value: "10000", Source: "default"}, sets[3])
}

func TestLoadKnobsPrecedence(t *testing.T) {
	p := writeFile(t, t.TempDir(), "node.toml", `
p2p_max_per_sec = 50          # p2p's: no warning
p2p_chain_sync_interval_ms = 0

[runtime]
reactor_idle_poll_ms = 50
io_read_backoff_ms = 20
`)
	k, sets, warns, err := LoadKnobs(p, envOf(map[string]string{"TB_IO_READ_BACKOFF_MS": "30", "TB_TLS_HANDSHAKE_TIMEOUT_MS": " 2500 "}))
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.Equal(t, 50*time.Millisecond, k.ReactorIdlePoll)
	assert.Equal(t, 30*time.Millisecond, k.IOReadBackoff) // env beats file
	assert.Equal(t, 10*time.Millisecond, k.IOWriteBackoff)
	assert.Equal(t, 2500*time.Millisecond, k.TLSHandshakeTimeout)
	src := map[string]string{}
	for _, s := range sets {
		src[s.Key] = s.Source + "=" + s.Value
	}
	assert.Equal(t, map[string]string{
		"runtime.reactor_idle_poll_ms":     "file=50",
		"runtime.io_read_backoff_ms":       "env=30",
		"runtime.io_write_backoff_ms":      "default=10",
		"runtime.tls_handshake_timeout_ms": "env=2500",
	}, src)
}

func TestLoadKnobsUnknownKeysWarn(t *testing.T) {
	p := writeFile(t, t.TempDir(), "node.toml", `
listen = "0.0.0.0"
[runtime]
reactor_idle_poll_ms = 5
REACTOR_IDLE_POLL_MS = 7
io_read_backof_ms = 3
[runtime.extra]
x = 1
[p2p_future]
y = 2
[other]
z = 1
`)
	k, _, warns, err := LoadKnobs(p, nil)
	require.NoError(t, err)
	assert.Equal(t, 5*time.Millisecond, k.ReactorIdlePoll, "keys are case-sensitive: the upper-case one is ignored")
	joined := strings.Join(warns, "\n")
	for _, want := range []string{`"listen"`, `"runtime.REACTOR_IDLE_POLL_MS"`, `"runtime.io_read_backof_ms"`, `"runtime.extra"`, `"other"`} {
		assert.Contains(t, joined, want)
	}
	assert.NotContains(t, joined, "p2p_future")
	assert.NotContains(t, joined, "runtime.extra.x", "children of an unknown table are not repeated")
	assert.Len(t, warns, 5)
}

func TestLoadKnobsBadValues(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{"negative", "[runtime]\nio_read_backoff_ms = -5\n", nil,
			[]string{"runtime.io_read_backoff_ms = -5", "out of range", "allowed 1..10000 ms"}},
		{"zero poll", "[runtime]\nreactor_idle_poll_ms = 0\n", nil, []string{"reactor_idle_poll_ms = 0", "allowed 1..60000 ms"}},
		{"absurd", "[runtime]\ntls_handshake_timeout_ms = 99999999999\n", nil, []string{"out of range", "100..300000"}},
		{"string", "[runtime]\nio_write_backoff_ms = \"10\"\n", nil, []string{`io_write_backoff_ms = "10"`, "got a string"}},
		{"float", "[runtime]\nio_write_backoff_ms = 1.5\n", nil, []string{"= 1.5", "got a float"}},
		{"bool", "[runtime]\nio_write_backoff_ms = true\n", nil, []string{"got a boolean"}},
		{"runtime not a table", "runtime = 3\n", nil, []string{"want a [runtime] table, got an integer"}},
		{"syntax", "[runtime]\nx = = 1\n", nil, []string{"line 2"}},
		{"env not int", "", map[string]string{"TB_REACTOR_IDLE_POLL_MS": "fast"},
			[]string{`env TB_REACTOR_IDLE_POLL_MS="fast"`, "integer", "1..60000"}},
		{"env huge", "", map[string]string{"TB_IO_READ_BACKOFF_MS": "99999999999999999999"}, []string{"out of range"}},
		{"env negative", "", map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "-1"}, []string{"TB_TLS_HANDSHAKE_TIMEOUT_MS", "out of range"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, "c.toml", tc.file)
			k, sets, _, err := LoadKnobs(p, envOf(tc.env))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if !strings.HasPrefix(tc.name, "env") {
				assert.Contains(t, err.Error(), p, "the file is named")
			}
			assert.Equal(t, DefaultKnobs(), k, "nothing of a bad config is applied")
			assert.Nil(t, sets)
		})
	}
}

func TestLoadKnobsReportsEveryError(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.toml", "[runtime]\nio_read_backoff_ms = -1\nio_write_backoff_ms = 0\n")
	_, _, _, err := LoadKnobs(p, envOf(map[string]string{"TB_REACTOR_IDLE_POLL_MS": "x"}))
	require.Error(t, err)
	var ves []*ValueError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ve *ValueError
		require.True(t, errors.As(e, &ve))
		ves = append(ves, ve)
	}
	require.Len(t, ves, 3)
	assert.Equal(t, "TB_REACTOR_IDLE_POLL_MS", ves[0].Env)
	assert.Equal(t, "runtime.io_read_backoff_ms", ves[1].Key)
	assert.Equal(t, p, ves[1].File)
}

func TestLoadKnobsUnreadable(t *testing.T) {
	dir := t.TempDir()
	_, _, _, err := LoadKnobs(filepath.Join(dir, "missing.toml"), nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "missing.toml")

	_, _, _, err = LoadKnobs(dir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a directory")

	big := writeFile(t, dir, "big.toml", "# "+strings.Repeat("x", MaxConfigBytes)+"\n")
	_, _, _, err = LoadKnobs(big, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")

	if os.Geteuid() != 0 { // root reads anything
		p := writeFile(t, dir, "secret.toml", "[runtime]\n")
		require.NoError(t, os.Chmod(p, 0))
		_, _, _, err = LoadKnobs(p, nil)
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

func FuzzParseKnobs(f *testing.F) {
	f.Add([]byte("[runtime]\nreactor_idle_poll_ms = 50\n"), "")
	f.Add([]byte("p2p_max_per_sec = 1\n[runtime]\nio_read_backoff_ms = -1\n"), "5")
	f.Add([]byte("runtime = 1"), "abc")
	f.Add([]byte("[runtime.x]\ny = [1, 2]\n[[runtime.z]]\n"), "99999999999999999999")
	f.Add([]byte("runtime.tls_handshake_timeout_ms = 1e3\n"), " 100 ")
	f.Add([]byte("\x00[runtime]"), "")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		k, sets, _, err := ParseKnobs(data, "fuzz.toml", envOf(map[string]string{"TB_IO_WRITE_BACKOFF_MS": env}))
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not match ErrInvalidConfig: %v", err)
			}
			if k != DefaultKnobs() || sets != nil {
				t.Fatalf("a bad config leaked values: %+v %v", k, sets)
			}
			return
		}
		if verr := k.Validate(); verr != nil {
			t.Fatalf("accepted knobs out of range: %v", verr)
		}
		if len(sets) != 4 {
			t.Fatalf("want 4 settings, got %d", len(sets))
		}
	})
}
