package p2p

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.toml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, settings, warnings, err := LoadConfig("", nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), cfg)
	assert.Equal(t, Config{RateWindowSecs: 1, MaxPerSec: 100, MaxBytesPerSec: 65536, ChainSyncIntervalMS: 500}, cfg)
	assert.Empty(t, warnings)
	require.Len(t, settings, 4)
	for _, s := range settings {
		assert.Equal(t, SourceDefault, s.Source, s.Key)
	}
	assert.Equal(t, Setting{Key: "p2p_max_bytes_per_sec", Env: "TB_P2P_MAX_BYTES_PER_SEC", Value: "65536", Source: "default"}, settings[2])
}

func TestLoadConfigPrecedence(t *testing.T) {
	path := writeFile(t, `
# node config
p2p_rate_window_secs = 2
p2p_max_per_sec = 50
p2p_chain_sync_interval_ms = 0

[runtime]
reactor_idle_poll_ms = 50
io_read_backoff_ms = 5
`)
	cfg, settings, warnings, err := LoadConfig(path, envMap(map[string]string{
		"TB_P2P_MAX_PER_SEC":       " 75 ",
		"TB_P2P_MAX_BYTES_PER_SEC": "131072",
		"TB_P2P_RATE_WINDOW_SECS":  "", // empty = unset
	}))
	require.NoError(t, err)
	assert.Empty(t, warnings, "the [runtime] table belongs to package runtime")
	assert.Equal(t, Config{RateWindowSecs: 2, MaxPerSec: 75, MaxBytesPerSec: 131072, ChainSyncIntervalMS: 0}, cfg)
	assert.Equal(t, []Setting{
		{Key: KeyRateWindowSecs, Env: EnvRateWindowSecs, Value: "2", Source: SourceFile},
		{Key: KeyMaxPerSec, Env: EnvMaxPerSec, Value: "75", Source: SourceEnv},
		{Key: KeyMaxBytesPerSec, Env: EnvMaxBytesPerSec, Value: "131072", Source: SourceEnv},
		{Key: KeyChainSyncIntervalMS, Env: EnvChainSyncIntervalMS, Value: "0", Source: SourceFile},
	}, settings)
	assert.Equal(t, 0, int(cfg.ChainSyncInterval()))
	assert.Equal(t, "2s", cfg.Window().String())
}

func TestLoadConfigUnknownKeysWarn(t *testing.T) {
	path := writeFile(t, `
p2p_max_per_second = 10
p2p_max_per_sec = 10
log_level = "debug"
[runtime]
whatever = 1
[rpc]
listen = "127.0.0.1:3030"
tls = { cert = "a" }
[p2p]
max_per_sec = 5
`)
	cfg, _, warnings, err := LoadConfig(path, nil)
	require.NoError(t, err)
	assert.Equal(t, 10, cfg.MaxPerSec)
	require.Len(t, warnings, 4, "%q", warnings)
	joined := strings.Join(warnings, "\n")
	assert.Contains(t, joined, path+`: unknown key "p2p_max_per_second" ignored (did you mean p2p_max_per_sec?)`)
	assert.Contains(t, joined, `unknown key "log_level" ignored`)
	assert.Contains(t, joined, `unknown key "rpc" ignored`)
	assert.Contains(t, joined, `unknown key "p2p" ignored (p2p knobs are top-level keys such as p2p_max_per_sec, not a [p2p] table)`)
	assert.NotContains(t, joined, "runtime")
}

func TestLoadConfigErrors(t *testing.T) {
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{"negative", "p2p_max_per_sec = -5\n", nil,
			[]string{"p2p_max_per_sec = -5: out of range (allowed 1..50000)"}},
		{"absurd", "p2p_max_bytes_per_sec = 99999999999999\n", nil,
			[]string{"p2p_max_bytes_per_sec = 99999999999999: out of range (allowed 1024..1073741824)"}},
		{"zero window", "p2p_rate_window_secs = 0\n", nil,
			[]string{"p2p_rate_window_secs = 0: out of range (allowed 1..3600)"}},
		{"too fast sync", "p2p_chain_sync_interval_ms = 1\n", nil,
			[]string{"p2p_chain_sync_interval_ms = 1: out of range (allowed 0 (off) or 10..3600000)"}},
		{"string", "p2p_max_per_sec = \"100\"\n", nil,
			[]string{`p2p_max_per_sec = "100": want an integer (1..50000), got a string`}},
		{"float", "p2p_rate_window_secs = 1.5\n", nil,
			[]string{"p2p_rate_window_secs = 1.5: want an integer (1..3600), got a float"}},
		{"env garbage", "", map[string]string{"TB_P2P_MAX_PER_SEC": "10k"},
			[]string{`env TB_P2P_MAX_PER_SEC="10k" (p2p_max_per_sec): not a decimal integer (allowed 1..50000)`}},
		{"env negative", "", map[string]string{"TB_P2P_CHAIN_SYNC_INTERVAL_MS": "-1"},
			[]string{`env TB_P2P_CHAIN_SYNC_INTERVAL_MS="-1" (p2p_chain_sync_interval_ms): out of range (allowed 0 (off) or 10..3600000)`}},
		{"several at once", "p2p_max_per_sec = 0\np2p_rate_window_secs = 7200\n",
			map[string]string{"TB_P2P_MAX_BYTES_PER_SEC": "1"},
			[]string{"p2p_rate_window_secs = 7200", "p2p_max_per_sec = 0", "TB_P2P_MAX_BYTES_PER_SEC=\"1\""}},
		{"syntax", "p2p_max_per_sec = \n", nil, []string{"line 1"}},
		{"duplicate key", "p2p_max_per_sec = 1\np2p_max_per_sec = 2\n", nil, []string{"line 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			cfg, settings, warnings, err := LoadConfig(path, envMap(tc.env))
			require.Error(t, err)
			assert.Equal(t, Config{}, cfg, "nothing half-applied")
			assert.Nil(t, settings)
			assert.Nil(t, warnings)
			assert.True(t, strings.HasPrefix(err.Error(), "p2p config: "), err.Error())
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if tc.name != "syntax" && tc.name != "duplicate key" {
				var ce *ConfigError
				require.ErrorAs(t, err, &ce)
				assert.NotEmpty(t, ce.Key)
			}
		})
	}
}

func TestLoadConfigFileProblems(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.toml")
	_, _, _, err := LoadConfig(missing, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)

	dir := t.TempDir()
	_, _, _, err = LoadConfig(dir, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read "+dir)

	if os.Geteuid() != 0 { // root reads anything
		p := writeFile(t, "p2p_max_per_sec = 1\n")
		require.NoError(t, os.Chmod(p, 0))
		_, _, _, err = LoadConfig(p, nil)
		require.Error(t, err)
		assert.True(t, errors.Is(err, fs.ErrPermission), err.Error())
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.MaxPerSec = -1
	c.RateWindowSecs = 0
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p2p_rate_window_secs = 0: out of range (allowed 1..3600)")
	assert.Contains(t, err.Error(), "p2p_max_per_sec = -1: out of range")
}
