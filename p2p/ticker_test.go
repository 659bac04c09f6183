package p2p

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manualTicks is a TickSource the test drives: it records every ticker
// started and lets the test fire ticks into the live one.
type manualTicks struct {
	mu      sync.Mutex
	started []time.Duration
	live    chan time.Time
	stopped int
}

func (m *manualTicks) source(d time.Duration) (<-chan time.Time, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = append(m.started, d)
	ch := make(chan time.Time)
	m.live = ch
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.stopped++
	}
}

func (m *manualTicks) fire(t *testing.T, at time.Time) {
	t.Helper()
	m.mu.Lock()
	ch := m.live
	m.mu.Unlock()
	select {
	case ch <- at:
	case <-time.After(5 * time.Second):
		t.Fatal("ticker goroutine is not receiving")
	}
}

func (m *manualTicks) counts() ([]time.Duration, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]time.Duration(nil), m.started...), m.stopped
}

func recv(t *testing.T, c <-chan time.Time) time.Time {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no tick")
	}
	return time.Time{}
}

func TestSyncTickerOffMeansNothing(t *testing.T) {
	m := &manualTicks{}
	before := runtime.NumGoroutine()
	tk := NewSyncTicker(0, WithTickSource(m.source))
	assert.False(t, tk.Running())
	assert.Equal(t, before, runtime.NumGoroutine(), "no goroutine when off")
	started, _ := m.counts()
	assert.Empty(t, started, "no ticker when off")
	tk.SetInterval(-5 * time.Millisecond)
	assert.False(t, tk.Running())
	assert.Equal(t, time.Duration(0), tk.Interval())
	select {
	case <-tk.C():
		t.Fatal("tick while off")
	case <-time.After(20 * time.Millisecond):
	}
	tk.Stop()
}

func TestSyncTickerReconfigure(t *testing.T) {
	m := &manualTicks{}
	tk := NewSyncTicker(500*time.Millisecond, WithTickSource(m.source))
	defer tk.Stop()
	require.True(t, tk.Running())
	m.fire(t, t0)
	assert.Equal(t, t0, recv(t, tk.C()))

	tk.SetInterval(500 * time.Millisecond) // same: keeps the running ticker
	tk.ApplyConfig(Config{ChainSyncIntervalMS: 250})
	assert.Equal(t, 250*time.Millisecond, tk.Interval())
	m.fire(t, t0.Add(time.Second))
	assert.Equal(t, t0.Add(time.Second), recv(t, tk.C()))

	tk.SetInterval(0)
	assert.False(t, tk.Running())
	started, stopped := m.counts()
	assert.Equal(t, []time.Duration{500 * time.Millisecond, 250 * time.Millisecond}, started)
	assert.Equal(t, 2, stopped, "every underlying ticker stopped")

	tk.SetInterval(time.Second)
	assert.True(t, tk.Running())
	tk.Stop()
	tk.Stop()
	assert.False(t, tk.Running())
	tk.SetInterval(time.Second)
	assert.False(t, tk.Running(), "no restart after Stop")
	started, stopped = m.counts()
	assert.Len(t, started, 3)
	assert.Equal(t, 3, stopped)
}

func TestSyncTickerDropsWhenBusy(t *testing.T) {
	m := &manualTicks{}
	tk := NewSyncTicker(time.Second, WithTickSource(m.source))
	defer tk.Stop()
	for i := range 5 {
		m.fire(t, t0.Add(time.Duration(i)*time.Second))
	}
	// The goroutine has taken all 5; the first is buffered, the rest dropped.
	assert.Equal(t, t0, recv(t, tk.C()))
	select {
	case v := <-tk.C():
		t.Fatalf("unexpected queued tick %v", v)
	default:
	}
}

func TestSyncTickerRealClock(t *testing.T) {
	before := runtime.NumGoroutine()
	tk := NewSyncTicker(2 * time.Millisecond)
	recv(t, tk.C())
	recv(t, tk.C())
	tk.Stop()
	assert.False(t, tk.Running())
	// Stop waited for the goroutine's exit; poll briefly only for the runtime
	// to retire it (assert.Eventually would add goroutines of its own).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "Stop leaves no goroutine behind")
}

func TestSyncTickerConcurrent(t *testing.T) {
	m := &manualTicks{}
	tk := NewSyncTicker(time.Second, WithTickSource(m.source))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tk.SetInterval(time.Duration((w+i)%3) * time.Millisecond)
				_ = tk.Interval()
			}
		}()
	}
	wg.Wait()
	tk.Stop()
	started, stopped := m.counts()
	assert.Equal(t, len(started), stopped, "every ticker started was stopped")
}
