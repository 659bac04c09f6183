package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
)

func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "node.toml")
	tmp := p + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, p))
	return p
}

func TestRuntimeKnobsDefaults(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "runtime", "knobs")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "defaults and environment")
	assert.Regexp(t, `runtime.reactor_idle_poll_ms\s+100\s+default\s+TB_REACTOR_IDLE_POLL_MS`, out)
	assert.Regexp(t, `p2p_chain_sync_interval_ms\s+500\s+default\s+TB_P2P_CHAIN_SYNC_INTERVAL_MS`, out)
}

func TestRuntimeKnobsFileEnvAndJSON(t *testing.T) {
	p := writeConfig(t, t.TempDir(), "p2p_max_per_sec = 50\n[runtime]\nio_read_backoff_ms = 20\n")
	env := map[string]string{"TB_CONFIG": p, "TB_IO_WRITE_BACKOFF_MS": "7", "TB_P2P_RATE_WINDOW_SECS": "2"}
	code, out, errOut := runCLI(t, env, "runtime", "knobs")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "config: "+p)
	assert.Regexp(t, `runtime.io_read_backoff_ms\s+20\s+file`, out)
	assert.Regexp(t, `runtime.io_write_backoff_ms\s+7\s+env`, out)
	assert.Regexp(t, `p2p_max_per_sec\s+50\s+file`, out)
	assert.Regexp(t, `p2p_rate_window_secs\s+2\s+env`, out)

	// --config beats TB_CONFIG.
	other := writeConfig(t, t.TempDir(), "[runtime]\nreactor_idle_poll_ms = 5\n")
	code, out, errOut = runCLI(t, env, "runtime", "knobs", "--config", other, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Config   string              `json:"config"`
		Runtime  []map[string]string `json:"runtime"`
		P2P      []map[string]string `json:"p2p"`
		Warnings []string            `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, other, res.Config)
	require.Len(t, res.Runtime, 4)
	require.Len(t, res.P2P, 4)
	assert.Equal(t, map[string]string{"key": "runtime.reactor_idle_poll_ms", "env": "TB_REACTOR_IDLE_POLL_MS", "value": "5", "source": "file"}, res.Runtime[0])
	assert.Equal(t, "p2p_rate_window_secs", res.P2P[0]["key"])
	assert.Equal(t, "env", res.P2P[0]["source"])
	assert.NotNil(t, res.Warnings)
}

func TestRuntimeKnobsWarningsAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "listen = \"0.0.0.0\"\n[runtime]\nio_read_backof_ms = 3\n")
	code, out, _ := runCLI(t, nil, "runtime", "knobs", "--config", p)
	assert.Equal(t, 1, code, "unknown keys are warnings")
	assert.Equal(t, 1, strings.Count(out, `"listen"`), "a key unknown to both loaders is reported once:\n%s", out)
	assert.Contains(t, out, `"runtime.io_read_backof_ms"`)

	p = writeConfig(t, dir, "p2p_max_per_sec = -3\n[runtime]\nio_read_backoff_ms = -1\n")
	code, out, errOut := runCLI(t, nil, "runtime", "knobs", "--config", p)
	assert.Equal(t, 3, code)
	assert.Empty(t, out)
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	assert.Contains(t, errOut, "runtime.io_read_backoff_ms = -1")
	assert.Contains(t, errOut, "allowed 1..10000 ms")
	assert.Contains(t, errOut, "p2p_max_per_sec")

	code, _, errOut = runCLI(t, map[string]string{"TB_REACTOR_IDLE_POLL_MS": "soon"}, "runtime", "knobs")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, `TB_REACTOR_IDLE_POLL_MS="soon"`)

	code, _, errOut = runCLI(t, nil, "runtime", "knobs", "--config", filepath.Join(dir, "nope.toml"))
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "nope.toml")
}

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the JSON lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

func startWatch(t *testing.T, env map[string]string, args ...string) (out, errOut *syncBuffer, stop func() int) {
	t.Helper()
	out, errOut = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, strings.NewReader(""), out, errOut, func(k string) string { return env[k] })
	}()
	stopped := false
	code := 0
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return out, errOut, stop
}

func TestRuntimeWatchJSON(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "[runtime]\nio_read_backoff_ms = 20\n")
	out, errOut, stop := startWatch(t, nil, "runtime", "watch", "--config", p, "-o", "json")
	waitLines := func(n int) []map[string]any {
		t.Helper()
		require.Eventually(t, func() bool { return len(out.lines(t)) >= n }, 10*time.Second, 5*time.Millisecond,
			"stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
		return out.lines(t)
	}
	ls := waitLines(1)
	assert.Equal(t, "loaded", ls[0]["event"])
	assert.Equal(t, "ok", ls[0]["result"])
	assert.Len(t, ls[0]["settings"], 8)

	writeConfig(t, dir, "p2p_max_per_sec = 50\n[runtime]\nio_read_backoff_ms = 40\n")
	ls = waitLines(2)
	assert.Equal(t, "reload", ls[1]["event"])
	assert.Equal(t, "ok", ls[1]["result"])
	assert.Equal(t, "event", ls[1]["via"])
	assert.ElementsMatch(t, []any{
		map[string]any{"key": "runtime.io_read_backoff_ms", "old": "20", "new": "40", "old_source": "file", "new_source": "file"},
		map[string]any{"key": "p2p_max_per_sec", "old": "100", "new": "50", "old_source": "default", "new_source": "file"},
	}, ls[1]["changes"])

	writeConfig(t, dir, "[runtime]\nio_read_backoff_ms = 0\n")
	ls = waitLines(3)
	assert.Equal(t, "error", ls[2]["result"])
	assert.Contains(t, ls[2]["error"], "runtime.io_read_backoff_ms = 0")
	assert.Empty(t, ls[2]["changes"], "the last good configuration stays")

	assert.Equal(t, 0, stop(), "Ctrl-C ends watch with 0")
}

func TestRuntimeWatchTableAndPolling(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "[runtime]\nreactor_idle_poll_ms = 100\n")
	out, errOut, stop := startWatch(t, map[string]string{"TB_CONFIG": p}, "runtime", "watch", "--poll", "--poll-interval", "20ms")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "loaded") }, 10*time.Second, 5*time.Millisecond)
	writeConfig(t, dir, "[runtime]\nreactor_idle_poll_ms = 50\n")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "reload ok (poll)") }, 10*time.Second, 5*time.Millisecond, out.String())
	assert.Contains(t, out.String(), "runtime.reactor_idle_poll_ms: 100 (file) -> 50 (file)")
	writeConfig(t, dir, "[runtime\n")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "reload error (poll)") }, 10*time.Second, 5*time.Millisecond, out.String())
	assert.Contains(t, out.String(), "the last good configuration stays in force")
	assert.Equal(t, 0, stop())
	assert.Contains(t, errOut.String(), "expect up to one poll interval of delay")
}

func TestRuntimeWatchNeedsAGoodConfig(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "runtime", "watch")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--config FILE or set TB_CONFIG")

	p := writeConfig(t, t.TempDir(), "[runtime]\nio_write_backoff_ms = 99999\n")
	code, _, errOut = runCLI(t, nil, "runtime", "watch", "--config", p)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "io_write_backoff_ms = 99999")
}

func TestDoctorRuntimeScenarios(t *testing.T) {
	for _, sc := range []string{"runtime-missed-wakeups", "runtime-reload-errors"} {
		t.Run(sc, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "doctor", "--scenario", sc, "-o", "json")
			assert.Equal(t, 1, code, errOut)
			var res struct {
				Reports []struct {
					Runbook  string `json:"runbook"`
					Status   string `json:"status"`
					Symptoms []struct {
						ID     string `json:"id"`
						Firing bool   `json:"firing"`
					} `json:"symptoms"`
				} `json:"reports"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &res))
			var found bool
			for _, r := range res.Reports {
				if r.Runbook != "runtime-reactor" {
					continue
				}
				found = true
				assert.Equal(t, "warning", r.Status)
				var firing []string
				for _, s := range r.Symptoms {
					if s.Firing {
						firing = append(firing, s.ID)
					}
				}
				if sc == "runtime-reload-errors" {
					assert.Equal(t, []string{"config-reload-errors"}, firing)
				} else {
					assert.Equal(t, []string{"read-without-ready-growing", "write-without-ready-growing"}, firing)
				}
			}
			assert.True(t, found)
		})
	}
}

func TestRuntimeDiagnoseAgainstSim(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("runtime-missed-wakeups"))
	code, out, errOut := runCLI(t, nil, "runtime", "diagnose", "--rpc", n.URL())
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "WARNING runtime-reactor")
	assert.Contains(t, out, "Path A")
}
