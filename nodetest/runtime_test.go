package nodetest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func scrapeText(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get(n.MetricsURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestRuntimeMetricsFollowTheClock(t *testing.T) {
	clk := NewFakeClock(time.Unix(1_800_000_000, 0))
	healthy := Start(t, WithClock(clk.Now))
	wakeups := Start(t, WithClock(clk.Now), WithScenarioName("runtime-missed-wakeups"))
	reloads := Start(t, WithClock(clk.Now), WithScenarioName("runtime-reload-errors"))
	clk.Advance(60 * time.Second)

	h := scrapeText(t, healthy)
	for _, line := range []string{
		"# TYPE runtime_read_without_ready_total counter", "runtime_read_without_ready_total 12\n",
		"runtime_write_without_ready_total 3\n",
		"# TYPE config_reload_total counter", `config_reload_total{result="ok"} 4` + "\n", `config_reload_total{result="error"} 1` + "\n",
	} {
		assert.Contains(t, h, line)
	}
	w := scrapeText(t, wakeups)
	assert.Contains(t, w, "runtime_read_without_ready_total 162\n", "12 + 2.5/s × 60 s")
	assert.Contains(t, w, "runtime_write_without_ready_total 51\n", "3 + 0.8/s × 60 s")
	assert.Contains(t, w, `config_reload_total{result="error"} 1`+"\n")
	r := scrapeText(t, reloads)
	assert.Contains(t, r, `config_reload_total{result="error"} 3`+"\n", "1 + 60 s / 30 s")
	assert.Contains(t, r, "runtime_read_without_ready_total 12\n")
}

func TestRuntimeScenariosChangeOnlyRuntime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := Healthy(now)
	for name, f := range runtimeScenarios() {
		sc := f(now)
		assert.Equal(t, name, sc.Name)
		assert.NotEmpty(t, sc.Description)
		assert.NotEqual(t, base.Runtime, sc.Runtime, name)
		sc.Runtime, sc.Name, sc.Description = base.Runtime, base.Name, base.Description
		assert.Equal(t, base, sc, "%s changes only the runtime area", name)
	}
	// JSON scenario files can set the runtime state.
	sc, err := ParseScenario([]byte(`{"base":"healthy","runtime":{"read_without_ready":1,"read_without_ready_per_sec":4}}`), "x.json", now)
	require.NoError(t, err)
	assert.Equal(t, 4.0, sc.Runtime.ReadWithoutReadyPerSec)
	assert.True(t, strings.Contains(strings.Join(Scenarios(), ","), "runtime-missed-wakeups"))
}
