package nodetest

import "time"

// RuntimeState is the node runtime's telemetry (PROTOCOL.md section 7): the
// missed-wakeup counters of the IO reactor and the config hot-reload counter.
// Each counter starts at its value and grows by its per-second rate with the
// node clock. The runtime area has no JSON-RPC methods.
type RuntimeState struct {
	// ReadWithoutReady is runtime_read_without_ready_total at the node's start;
	// ReadWithoutReadyPerSec its growth (0 on a healthy reactor).
	ReadWithoutReady       float64 `json:"read_without_ready"`
	ReadWithoutReadyPerSec float64 `json:"read_without_ready_per_sec,omitempty"`
	// WriteWithoutReady and WriteWithoutReadyPerSec are the same for
	// runtime_write_without_ready_total.
	WriteWithoutReady       float64 `json:"write_without_ready"`
	WriteWithoutReadyPerSec float64 `json:"write_without_ready_per_sec,omitempty"`
	// ReloadOK and ReloadError are config_reload_total{result="ok"|"error"} at
	// the start; the PerSec fields their growth.
	ReloadOK          float64 `json:"reload_ok"`
	ReloadOKPerSec    float64 `json:"reload_ok_per_sec,omitempty"`
	ReloadError       float64 `json:"reload_error"`
	ReloadErrorPerSec float64 `json:"reload_error_per_sec,omitempty"`
}

// shift has nothing to move: the runtime state holds no times.
func (s *RuntimeState) shift(d int64) {}

// healthyRuntime is a reactor that has missed a few wakeups in its life but
// misses none now, and a config reloaded a few times, the last failure long ago
// (flat counters).
func healthyRuntime(now time.Time) RuntimeState {
	return RuntimeState{ReadWithoutReady: 12, WriteWithoutReady: 3, ReloadOK: 4, ReloadError: 1}
}

func runtimeScenarios() map[string]func(time.Time) Scenario {
	return map[string]func(time.Time) Scenario{
		"runtime-missed-wakeups": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name = "runtime-missed-wakeups"
			s.Description = "the IO reactor misses wakeups: reads and writes keep succeeding without readiness events"
			s.Runtime.ReadWithoutReadyPerSec, s.Runtime.WriteWithoutReadyPerSec = 2.5, 0.8
			return s
		},
		"runtime-reload-errors": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name = "runtime-reload-errors"
			s.Description = "config reloads fail: the node keeps running its last good configuration"
			s.Runtime.ReloadErrorPerSec = 1.0 / 30 // a broken file retried on every change
			return s
		},
	}
}

func runtimeMetrics(sc *Scenario, now time.Time, el float64) []Metric {
	r := sc.Runtime
	reload := events("config_reload_total", map[string]string{"result": "ok"}, r.ReloadOK, r.ReloadOKPerSec).
		Merge(events("config_reload_total", map[string]string{"result": "error"}, r.ReloadError, r.ReloadErrorPerSec))
	reload.Help = "Config reload attempts by result."
	read := events("runtime_read_without_ready_total", nil, r.ReadWithoutReady, r.ReadWithoutReadyPerSec)
	read.Help = "Reads that succeeded without a readiness event (missed IO wakeups)."
	write := events("runtime_write_without_ready_total", nil, r.WriteWithoutReady, r.WriteWithoutReadyPerSec)
	write.Help = "Writes that succeeded without a readiness event (missed IO wakeups)."
	return []Metric{reload, read, write}
}

// events is a counter of whole events: it steps as a real one does (a reload
// error every 30 s is flat for 30 s, then one more), so a short observation
// sees what a real node's would.
func events(name string, labels map[string]string, start, perSecond float64) Metric {
	m := Counter(name, labels, start, perSecond)
	m.Series[0].Integer = true
	return m
}

// registerRuntime registers nothing: PROTOCOL.md has no runtime methods.
func (n *Node) registerRuntime() {}
