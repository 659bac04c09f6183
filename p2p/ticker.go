package p2p

import (
	"sync"
	"time"
)

// TickSource starts a periodic tick of period d (d > 0) and returns its
// channel and a function that stops it. [RealTicks] (time.NewTicker) is the
// default; tests inject their own to fire ticks by hand.
type TickSource func(d time.Duration) (ticks <-chan time.Time, stop func())

// RealTicks is the production [TickSource], backed by time.NewTicker.
func RealTicks(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// SyncTicker fires the periodic chain-sync pull every p2p_chain_sync_interval_ms.
// An interval of 0 (or less) turns it off entirely: no goroutine, no timer, no
// ticks — what the runbook asks for in isolation tests. The interval can be
// changed at run time ([SyncTicker.SetInterval]); Stop ends the goroutine.
//
// Like time.Ticker, C has a one-tick buffer and ticks are dropped, not queued,
// when the receiver is slow; C is never closed.
type SyncTicker struct {
	src TickSource
	c   chan time.Time

	mu       sync.Mutex
	interval time.Duration
	stop     chan struct{} // nil when no goroutine runs
	done     chan struct{}
	stopped  bool
}

// TickerOption configures [NewSyncTicker].
type TickerOption func(*SyncTicker)

// WithTickSource replaces the clock behind the ticker (default [RealTicks]).
func WithTickSource(src TickSource) TickerOption { return func(t *SyncTicker) { t.src = src } }

// NewSyncTicker returns a ticker firing every interval; 0 means off (use
// Config.ChainSyncInterval()). It starts a goroutine only when interval > 0.
func NewSyncTicker(interval time.Duration, opts ...TickerOption) *SyncTicker {
	t := &SyncTicker{src: RealTicks, c: make(chan time.Time, 1)}
	for _, o := range opts {
		o(t)
	}
	t.SetInterval(interval)
	return t
}

// C is the channel the ticks arrive on.
func (t *SyncTicker) C() <-chan time.Time { return t.c }

// Interval is the interval in force (0 = off).
func (t *SyncTicker) Interval() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval
}

// Running reports whether a tick goroutine exists (false when off or stopped).
func (t *SyncTicker) Running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stop != nil
}

// SetInterval changes the interval at run time: 0 (or less) stops the
// goroutine, a positive value (re)starts it with the new period, the same
// value changes nothing (the phase is kept). After Stop it does nothing.
func (t *SyncTicker) SetInterval(d time.Duration) {
	d = max(d, 0)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || (d == t.interval && (d == 0) == (t.stop == nil)) {
		return
	}
	t.halt()
	t.interval = d
	if d > 0 {
		ticks, stopTicks := t.src(d)
		t.stop, t.done = make(chan struct{}), make(chan struct{})
		go t.run(ticks, stopTicks, t.stop, t.done)
	}
}

// ApplyConfig sets the interval from cfg.ChainSyncIntervalMS.
func (t *SyncTicker) ApplyConfig(cfg Config) { t.SetInterval(cfg.ChainSyncInterval()) }

// Stop ends the ticker's goroutine and waits for it to exit. Later calls to
// SetInterval do nothing. Stop may be called more than once.
func (t *SyncTicker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.halt()
	t.stopped = true
	t.interval = 0
}

// halt stops the goroutine, if any, and waits for it. Called with mu held; the
// goroutine never takes mu, so waiting cannot deadlock.
func (t *SyncTicker) halt() {
	if t.stop == nil {
		return
	}
	close(t.stop)
	<-t.done
	t.stop, t.done = nil, nil
}

func (t *SyncTicker) run(ticks <-chan time.Time, stopTicks func(), stop, done chan struct{}) {
	defer close(done)
	defer stopTicks()
	for {
		select {
		case <-stop:
			return
		case now := <-ticks:
			select {
			case t.c <- now:
			default: // receiver busy: drop, as time.Ticker does
			}
		}
	}
}
