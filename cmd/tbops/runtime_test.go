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

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
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
	assert.Regexp(t, `runtime.reactor_idle_poll_ms\s+100\s+ms\s+default\s+TB_REACTOR_IDLE_POLL_MS`, out)
	assert.Regexp(t, `p2p_chain_sync_interval_ms\s+500\s+ms\s+default\s+TB_P2P_CHAIN_SYNC_INTERVAL_MS`, out)
	assert.Regexp(t, `p2p_max_bytes_per_sec\s+65536\s+bytes\s+default`, out)

	// -o json: numbers as numbers, the unit beside them, null for no file.
	code, out, errOut = runCLI(t, nil, "runtime", "knobs", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Nil(t, res["config"])
	assert.Equal(t, []any{}, res["warnings"])
	assert.Equal(t, map[string]any{"key": "runtime.reactor_idle_poll_ms", "env": "TB_REACTOR_IDLE_POLL_MS",
		"value": 100.0, "unit": "ms", "source": "default"}, res["runtime"].([]any)[0])
}

func TestRuntimeKnobsFileEnvAndJSON(t *testing.T) {
	p := writeConfig(t, t.TempDir(), "p2p_max_per_sec = 50\n[runtime]\nio_read_backoff_ms = 20\n")
	env := map[string]string{"TB_CONFIG": p, "TB_IO_WRITE_BACKOFF_MS": "7", "TB_P2P_RATE_WINDOW_SECS": "2"}
	code, out, errOut := runCLI(t, env, "runtime", "knobs")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "config: "+p)
	assert.Regexp(t, `runtime.io_read_backoff_ms\s+20\s+ms\s+file`, out)
	assert.Regexp(t, `runtime.io_write_backoff_ms\s+7\s+ms\s+env`, out)
	assert.Regexp(t, `p2p_max_per_sec\s+50\s+requests\s+file`, out)
	assert.Regexp(t, `p2p_rate_window_secs\s+2\s+s\s+env`, out)

	// --config beats TB_CONFIG.
	other := writeConfig(t, t.TempDir(), "[runtime]\nreactor_idle_poll_ms = 5\n")
	code, out, errOut = runCLI(t, env, "runtime", "knobs", "--config", other, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Config   string           `json:"config"`
		Runtime  []map[string]any `json:"runtime"`
		P2P      []map[string]any `json:"p2p"`
		Warnings []string         `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, other, res.Config)
	require.Len(t, res.Runtime, 4)
	require.Len(t, res.P2P, 4)
	assert.Equal(t, map[string]any{"key": "runtime.reactor_idle_poll_ms", "env": "TB_REACTOR_IDLE_POLL_MS", "value": 5.0, "unit": "ms", "source": "file"}, res.Runtime[0])
	assert.Equal(t, map[string]any{"key": "p2p_rate_window_secs", "env": "TB_P2P_RATE_WINDOW_SECS", "value": 2.0, "unit": "s", "source": "env"}, res.P2P[0])
	assert.NotNil(t, res.Warnings)
}

func TestRuntimeKnobsWarningsAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "listen = \"0.0.0.0\"\n[runtime]\nio_read_backof_ms = 3\n")
	code, out, _ := runCLI(t, nil, "runtime", "knobs", "--config", p)
	assert.Equal(t, 1, code, "unknown keys are warnings")
	assert.Equal(t, 1, strings.Count(out, `"listen"`), "an unknown key is reported once:\n%s", out)
	assert.Contains(t, out, `"runtime.io_read_backof_ms"`)
	code, out, _ = runCLI(t, nil, "runtime", "knobs", "--config", p, "-o", "json")
	assert.Equal(t, 1, code)
	var res struct {
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Len(t, res.Warnings, 2, "json prints the same warnings")
	assert.Contains(t, res.Warnings[0]+res.Warnings[1], `"listen"`)

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
		map[string]any{"key": "runtime.io_read_backoff_ms", "old": 20.0, "new": 40.0, "unit": "ms", "old_source": "file", "new_source": "file"},
		map[string]any{"key": "p2p_max_per_sec", "old": 100.0, "new": 50.0, "unit": "requests", "old_source": "default", "new_source": "file"},
	}, ls[1]["changes"], "one reload applies both parts")

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
	assert.Contains(t, out.String(), "runtime.reactor_idle_poll_ms: 100 (file) -> 50 ms (file)")
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

	code, _, errOut = runCLI(t, nil, "runtime", "watch", "--config", p, "--settle", "0s")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--settle 0s: want a positive duration")
}

// waitJSONLines waits (bounded) until watch has printed n JSON lines.
func waitJSONLines(t *testing.T, out, errOut *syncBuffer, n int) []map[string]any {
	t.Helper()
	require.Eventually(t, func() bool { return len(out.lines(t)) >= n }, 10*time.Second, 5*time.Millisecond,
		"stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	return out.lines(t)
}

// warningsOf is a watch line's warnings array; it must be present.
func warningsOf(t *testing.T, line map[string]any) []string {
	t.Helper()
	raw, ok := line["warnings"].([]any)
	require.True(t, ok, "no warnings array in %v", line)
	var out []string
	for _, w := range raw {
		out = append(out, w.(string))
	}
	return out
}

// TestRuntimeWatchWarningsSurviveReloads: the unknown-key warning that knobs
// shows stays on every line while the config that has it is in force, ok or
// failed reloads alike, and the reason a reload was not applied (a bad value,
// an emptied file) comes first.
func TestRuntimeWatchWarningsSurviveReloads(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "listen = \"0.0.0.0\"\np2p_max_per_sec = 50\n")
	out, errOut, stop := startWatch(t, nil, "runtime", "watch", "--config", p, "--settle", "50ms", "-o", "json")
	ls := waitJSONLines(t, out, errOut, 1)
	require.Len(t, warningsOf(t, ls[0]), 1)
	assert.Contains(t, warningsOf(t, ls[0])[0], `unknown key "listen"`)

	writeConfig(t, dir, "listen = \"0.0.0.0\"\np2p_max_per_sec = 900\n")
	ls = waitJSONLines(t, out, errOut, 2)
	assert.Equal(t, "ok", ls[1]["result"])
	require.Len(t, warningsOf(t, ls[1]), 1, "a reload keeps the warning")
	assert.Contains(t, warningsOf(t, ls[1])[0], `unknown key "listen"`)

	writeConfig(t, dir, "p2p_max_per_sec = -1\n")
	ls = waitJSONLines(t, out, errOut, 3)
	assert.Equal(t, "error", ls[2]["result"])
	ws := warningsOf(t, ls[2])
	require.Len(t, ws, 2)
	assert.Contains(t, ws[0], "p2p_max_per_sec")
	assert.Contains(t, ws[1], `unknown key "listen"`, "the config in force still has the unknown key")

	// Emptied in place, as `: > node.toml` does: refused, never the defaults.
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	ls = waitJSONLines(t, out, errOut, 4)
	assert.Equal(t, "error", ls[3]["result"])
	assert.Empty(t, ls[3]["changes"], "p2p_max_per_sec stays 900")
	ws = warningsOf(t, ls[3])
	require.Len(t, ws, 2)
	assert.Contains(t, ws[0], "became empty")
	assert.Contains(t, ws[0], "write the new config to a temporary file and rename it into place")
	assert.Equal(t, ws[0], ls[3]["error"])

	writeConfig(t, dir, "p2p_max_per_sec = 70\n")
	ls = waitJSONLines(t, out, errOut, 5)
	assert.Equal(t, "ok", ls[4]["result"])
	assert.Empty(t, warningsOf(t, ls[4]), "the fixed config has nothing to warn about")
	assert.Equal(t, 0, stop())
}

// TestRuntimeWatchTableWarnings: the table output prints the same warnings on
// every line.
func TestRuntimeWatchTableWarnings(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, dir, "listen = 1\n")
	out, _, stop := startWatch(t, nil, "runtime", "watch", "--config", p)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "loaded") }, 10*time.Second, 5*time.Millisecond)
	writeConfig(t, dir, "listen = 1\np2p_max_per_sec = 900\n")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "reload ok") }, 10*time.Second, 5*time.Millisecond, out.String())
	writeConfig(t, dir, "listen = 1\np2p_max_per_sec = 0\n")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "reload error") }, 10*time.Second, 5*time.Millisecond, out.String())
	assert.Equal(t, 0, stop())
	assert.Equal(t, 3, strings.Count(out.String(), `! config `+p+`: unknown key "listen"`), out.String())
	assert.Regexp(t, `reload error \(event\): the last good configuration stays in force\n  ! .*p2p_max_per_sec`, out.String())
}

// Under doctor's short observation (two scrapes about a second apart) the
// reactor's 15-minute rules cannot be decided: runtime-reactor is unknown,
// never a page from a guess, and says what would decide it.
// On a one-second look (--history 0, as a real node without --prom), the
// reactor's 15-minute rules are unknown and say what would decide them; the
// simulated node's replayed history decides them (the scenario matrix).
func TestDoctorRuntimeScenarios(t *testing.T) {
	for _, sc := range []string{"healthy", "runtime-missed-wakeups", "runtime-reload-errors"} {
		t.Run(sc, func(t *testing.T) {
			_, out, errOut := runCLI(t, nil, "doctor", "--scenario", sc, "--history", "0", "-o", "json")
			var res doctorResult
			require.NoError(t, json.Unmarshal([]byte(out), &res), errOut)
			var found bool
			for _, r := range res.Reports {
				if r.Runbook != "runtime-reactor" {
					continue
				}
				found = true
				reportcheck.Valid(t, r)
				assert.Equal(t, tbops.StatusUnknown, r.Status, "%v", r.Warnings)
				assert.Empty(t, r.Firing())
				assert.Regexp(t, `runtime_read_without_ready_total: only \ds of the 15m window observed: pass --prom URL, or run tbops serve`,
					strings.Join(r.Warnings, "\n"))
				assert.Contains(t, r.Scope, "scrape ")
			}
			assert.True(t, found)
		})
	}
}

func TestRuntimeDiagnoseAgainstSim(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("runtime-missed-wakeups"))
	code, out, errOut := runCLI(t, nil, "runtime", "diagnose", "--rpc", n.URL())
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, out, "UNKNOWN runtime-reactor")
	assert.Contains(t, out, "of the 15m window observed")

	// A config that does not load is a warning on the report; the defaults are shown.
	p := writeConfig(t, t.TempDir(), "[runtime]\nio_read_backoff_ms = 0\n")
	code, out, errOut = runCLI(t, nil, "runtime", "diagnose", "--rpc", n.URL(), "--config", p, "-o", "json")
	assert.Equal(t, 3, code, errOut)
	var r tbops.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	reportcheck.Valid(t, r)
	assert.Equal(t, n.URL(), r.Target)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "runtime knobs: config "+p+": runtime.io_read_backoff_ms = 0: out of range (allowed 1..10000 ms) (showing the defaults)")
}
