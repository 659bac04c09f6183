package runtime

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// Reload results, the values of config_reload_total's result label.
const (
	ReloadOK    = "ok"
	ReloadError = "error"
)

// Ways a reload was noticed.
const (
	ViaEvent = "event"
	ViaPoll  = "poll"
)

// Defaults of the watcher's options.
const (
	DefaultPollInterval = 2 * time.Second
	DefaultDebounce     = 100 * time.Millisecond
	DefaultSettle       = 250 * time.Millisecond
)

// ErrConfigEmptied is matched (errors.Is) by the error of a reload refused
// because the file became empty while the configuration in force came from a
// file that was not: that is a writer caught between truncating the file and
// writing it far more often than a wish to run on defaults.
var ErrConfigEmptied = errors.New("file became empty")

// Change is one reload attempt, as delivered to subscribers.
type Change[T any] struct {
	// Old is the configuration before the attempt.
	Old T
	// New is the configuration now running: the new one when Result is ok, Old
	// (the last good one, unchanged) when Result is error.
	New T
	// Result is ReloadOK or ReloadError.
	Result string
	// Err says why the reload failed (nil when ok). It names the file.
	Err error
	// At is when the attempt ended (the watcher's clock).
	At time.Time
	// Via says how the change was noticed: ViaEvent or ViaPoll.
	Via string
	// Hash is the SHA-256 (hex) of the file contents the attempt read, empty
	// when the file could not be read.
	Hash string
}

// WatchOption configures NewWatcher; make one with the With… functions.
type WatchOption struct{ apply func(*watchConfig) }

type watchConfig struct {
	poll     time.Duration
	forcePol bool
	debounce time.Duration
	settle   time.Duration
	logger   *slog.Logger
	now      func() time.Time
	subBuf   int
	// events, when set, replaces fsnotify: tests send the events themselves.
	events chan fsnotify.Event
}

// WithPollInterval sets how often the file is checked when polling (default
// DefaultPollInterval). When file events are unavailable a change is seen
// within one interval and applied once it has settled (WithSettle).
func WithPollInterval(d time.Duration) WatchOption {
	return WatchOption{func(c *watchConfig) {
		if d > 0 {
			c.poll = d
		}
	}}
}

// WithPolling forces the polling fallback (no file events), as on platforms
// without reliable ones.
func WithPolling() WatchOption { return WatchOption{func(c *watchConfig) { c.forcePol = true }} }

// WithDebounce sets how long the watcher waits after the last file event of a
// burst before reloading (default DefaultDebounce): an editor's save is several
// events, and a half-written file must not be loaded.
func WithDebounce(d time.Duration) WatchOption {
	return WatchOption{func(c *watchConfig) {
		if d > 0 {
			c.debounce = d
		}
	}}
}

// WithSettle sets how long a file written in place must stay unchanged before
// it is applied (default DefaultSettle): the watcher reads it, waits d, reads
// it again, and applies it only when both reads hashed the same and no event
// about the file arrived in between. It is what keeps a truncate-then-write
// from being applied half-written. A file renamed into place is complete when
// it appears and is applied without settling; while polling, every change
// settles, since polling cannot tell the two apart.
func WithSettle(d time.Duration) WatchOption {
	return WatchOption{func(c *watchConfig) {
		if d > 0 {
			c.settle = d
		}
	}}
}

// withEvents makes the watcher take its file events from ch instead of
// fsnotify, so tests can drive the event path on virtual time.
func withEvents(ch chan fsnotify.Event) WatchOption {
	return WatchOption{func(c *watchConfig) { c.events = ch }}
}

// WithLogger sets where the watcher logs reloads and the polling fallback
// (default slog.Default()).
func WithLogger(l *slog.Logger) WatchOption {
	return WatchOption{func(c *watchConfig) {
		if l != nil {
			c.logger = l
		}
	}}
}

// WithClock injects the clock that stamps changes (default time.Now).
func WithClock(now func() time.Time) WatchOption {
	return WatchOption{func(c *watchConfig) {
		if now != nil {
			c.now = now
		}
	}}
}

// Watcher keeps a configuration loaded from a file current: it reloads the file
// when it changes, swaps the new value in atomically, keeps the last good value
// when the new file does not load, counts every attempt, and tells subscribers.
// A file written in place is applied only once its content has settled
// (WithSettle), and a file that became empty is refused (ErrConfigEmptied)
// unless the running configuration's file was empty too.
// It watches the file's directory (so replacing the file by rename, deleting and
// recreating it, and Kubernetes-style symlink swaps are all seen), and falls back
// to polling when file events are unavailable, overflow, or the directory goes
// away. All methods are safe for concurrent use.
type Watcher[T any] struct {
	path string
	load func(string) (T, error)
	cfg  watchConfig

	cur atomic.Pointer[T]

	mu     sync.Mutex
	subs   []chan Change[T]
	closed bool

	okN, errN atomic.Uint64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owned by the run goroutine only.
	lastKey    string      // the content (or read error) of the last attempt
	goodEmpty  bool        // the configuration in force came from an empty file
	target     string      // what path resolves to, for matching events
	inPlace    bool        // the file was written in place since the last attempt
	pending    *snapshot   // content waiting for the settle period
	pendingVia string      // how it was noticed
	settleT    *time.Timer // fires when pending has been stable for the settle period
	fsw        *fsnotify.Watcher
	watched    map[string]bool
	polling    bool
}

// snapshot is one read of the file.
type snapshot struct {
	key   string // identifies the state: the content hash, or the read error
	hash  string // hex SHA-256 of the content, "" when unreadable
	empty bool   // nothing but white space
	err   error
}

// NewWatcher loads the file at path with load and starts watching it. The first
// load must succeed: there is no last good configuration to keep yet. Close the
// watcher when done; it stops every goroutine it started.
func NewWatcher[T any](path string, load func(path string) (T, error), opts ...WatchOption) (*Watcher[T], error) {
	if path == "" {
		return nil, errors.New("runtime: NewWatcher: empty config path")
	}
	if load == nil {
		return nil, errors.New("runtime: NewWatcher: nil load function")
	}
	cfg := watchConfig{poll: DefaultPollInterval, debounce: DefaultDebounce, settle: DefaultSettle,
		logger: slog.Default(), now: time.Now, subBuf: 16}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&cfg)
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: config path %s: %w", path, err)
	}
	w := &Watcher[T]{path: abs, load: load, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}),
		watched: map[string]bool{}}
	s := w.read()
	if s.err != nil {
		return nil, s.err
	}
	v, err := load(abs)
	if err != nil {
		return nil, err
	}
	w.cur.Store(&v)
	w.lastKey, w.goodEmpty = s.key, s.empty
	w.settleT = time.NewTimer(time.Hour)
	w.settleT.Stop()
	w.startEvents()
	go w.run()
	return w, nil
}

// Path is the absolute path of the watched file.
func (w *Watcher[T]) Path() string { return w.path }

// Current returns the configuration now in force. It never blocks and never
// returns a half-updated value. Treat the value as read-only: it is shared.
func (w *Watcher[T]) Current() T { return *w.cur.Load() }

// Collector exports config_reload_total{result="ok"|"error"}: this watcher's
// reload attempts (the initial load is not one), both series from zero, with
// constLabels on each (nil for none; use them to tell several watchers apart,
// e.g. {"config": "node"}). Register it with a prometheus.Registerer; it reads
// Reloads at each scrape.
func (w *Watcher[T]) Collector(constLabels prometheus.Labels) prometheus.Collector {
	return &countCollector{
		desc: prometheus.NewDesc(MetricConfigReload,
			"Config reload attempts by result; a failed reload keeps the last good configuration.",
			[]string{"result"}, constLabels),
		values: []string{ReloadOK, ReloadError},
		counts: func() []uint64 {
			ok, failed := w.Reloads()
			return []uint64{ok, failed}
		},
	}
}

// Reloads returns how many reload attempts succeeded and failed (the initial
// load is not counted).
func (w *Watcher[T]) Reloads() (ok, failed uint64) { return w.okN.Load(), w.errN.Load() }

// Polling says whether the watcher is polling now (forced, or as a fallback).
func (w *Watcher[T]) Polling() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polling
}

// Subscribe returns a channel that receives every reload attempt from now on,
// ok or error. The channel is buffered; a subscriber that falls more than 16
// changes behind loses the oldest ones (Current is always right). It is closed
// by Close.
func (w *Watcher[T]) Subscribe() <-chan Change[T] {
	ch := make(chan Change[T], w.cfg.subBuf)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		close(ch)
		return ch
	}
	w.subs = append(w.subs, ch)
	return ch
}

// Close stops watching, waits for the watcher's goroutines to end and closes
// subscriber channels. It is safe to call more than once.
func (w *Watcher[T]) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		<-w.done
		w.mu.Lock()
		w.closed = true
		for _, ch := range w.subs {
			close(ch)
		}
		w.subs = nil
		w.mu.Unlock()
	})
	return w.closeErr
}

func (w *Watcher[T]) setPolling(p bool) {
	w.mu.Lock()
	w.polling = p
	w.mu.Unlock()
}

// read reads and hashes the file. The same key twice means nothing to reload.
func (w *Watcher[T]) read() snapshot {
	data, err := ReadConfigFile(w.path)
	if err != nil {
		return snapshot{key: "error:" + err.Error(), err: err}
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	return snapshot{key: "sha256:" + hash, hash: hash, empty: len(bytes.TrimSpace(data)) == 0}
}

// resolve records what the path resolves to now and returns the directories
// to watch: the file's own, and the directory of the file it resolves to when
// it is a symlink elsewhere.
func (w *Watcher[T]) resolve() (primary, secondary string) {
	primary, w.target = filepath.Dir(w.path), w.path
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		w.target = real
		if d := filepath.Dir(real); d != primary {
			secondary = d
		}
	}
	return primary, secondary
}

// startEvents sets up file events; on failure the watcher polls.
func (w *Watcher[T]) startEvents() {
	w.resolve()
	if w.cfg.forcePol {
		w.setPolling(true)
		w.cfg.logger.Info("config watcher: polling (forced); expect up to one poll interval of delay before reload",
			"path", w.path, "poll_interval", w.cfg.poll)
		return
	}
	if w.cfg.events != nil {
		return
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		w.fallback(fmt.Sprintf("file events unavailable: %v", err))
		return
	}
	w.fsw = fsw
	if err := w.syncWatches(); err != nil {
		w.fallback(err.Error())
	}
}

// syncWatches makes the set of watched directories match resolve(). An error
// means the primary directory cannot be watched.
func (w *Watcher[T]) syncWatches() error {
	primary, secondary := w.resolve()
	if w.fsw == nil {
		return nil // polling, or tests sending events
	}
	want := map[string]bool{primary: true}
	if secondary != "" {
		want[secondary] = true
	}
	for d := range w.watched {
		if !want[d] {
			_ = w.fsw.Remove(d)
			delete(w.watched, d)
		}
	}
	for d := range want {
		if w.watched[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			if d == primary {
				return fmt.Errorf("cannot watch config directory %s: %v", d, err)
			}
			continue // the symlink target's directory is a bonus
		}
		w.watched[d] = true
	}
	return nil
}

// fallback switches to polling and says so, as the runbook asks.
func (w *Watcher[T]) fallback(reason string) {
	if w.polling {
		return
	}
	w.setPolling(true)
	w.cfg.logger.Warn("config watcher: falling back to polling; expect up to one poll interval of delay before reload",
		"path", w.path, "reason", reason, "poll_interval", w.cfg.poll)
}

// restore tries to go back from polling to file events.
func (w *Watcher[T]) restore() {
	if w.cfg.forcePol || !w.polling {
		return
	}
	if w.fsw == nil {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			return
		}
		w.fsw = fsw
	}
	w.watched = map[string]bool{}
	if err := w.syncWatches(); err != nil {
		return
	}
	w.setPolling(false)
	w.cfg.logger.Info("config watcher: file events restored", "path", w.path)
}

// eventSource is where file events come from now: none while polling.
func (w *Watcher[T]) eventSource() (<-chan fsnotify.Event, <-chan error) {
	switch {
	case w.cfg.events != nil && !w.polling:
		return w.cfg.events, nil
	case w.fsw != nil && !w.polling:
		return w.fsw.Events, w.fsw.Errors
	}
	return nil, nil
}

func (w *Watcher[T]) run() {
	defer close(w.done)
	defer func() {
		if w.fsw != nil {
			w.closeErr = w.fsw.Close()
		}
	}()
	defer w.settleT.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	ticker := time.NewTicker(w.cfg.poll)
	defer ticker.Stop()
	var pendingSince time.Time
	for {
		events, errs := w.eventSource()
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				w.fsw, w.cfg.events = nil, nil
				w.fallback("file event stream closed")
				continue
			}
			if w.watched[ev.Name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// A watched directory itself went away (or moved): its watch is
				// gone. The primary one means polling until it is back.
				delete(w.watched, ev.Name)
				_ = w.fsw.Remove(ev.Name)
				if err := w.syncWatches(); err != nil {
					w.fallback(err.Error())
				}
				w.consider(ViaEvent)
				continue
			}
			w.noteEvent(ev)
			// Any event in the directory may change what the path resolves to
			// (a ..data symlink swap names other files): re-check after the burst.
			now := time.Now()
			if pendingSince.IsZero() {
				pendingSince = now
			}
			// Keep postponing during a burst, but not for more than 10 debounces.
			if now.Sub(pendingSince) < 10*w.cfg.debounce {
				debounce.Reset(w.cfg.debounce)
			}
		case err, ok := <-errs:
			if !ok {
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.fallback("file events overflowed: " + err.Error())
			} else {
				w.cfg.logger.Warn("config watcher: file event error", "path", w.path, "err", err)
			}
			w.consider(ViaPoll)
		case <-debounce.C:
			pendingSince = time.Time{}
			if err := w.syncWatches(); err != nil {
				w.fallback(err.Error())
			}
			w.consider(ViaEvent)
		case <-w.settleT.C:
			w.settled()
		case <-ticker.C:
			if !w.polling {
				continue
			}
			w.restore()
			w.consider(ViaPoll)
		}
	}
}

// noteEvent applies the settle rule to one event: a write to the file itself
// is an in-place edit, which must settle before it is applied, and any event
// about the file restarts a settle period under way.
func (w *Watcher[T]) noteEvent(ev fsnotify.Event) {
	if ev.Name != w.path && ev.Name != w.target {
		return
	}
	if ev.Has(fsnotify.Write) {
		w.inPlace = true
	}
	w.pending = nil
	w.settleT.Stop()
}

// consider reads the file after a burst of events or at a poll. A change
// renamed into place is attempted at once; one written in place, or seen by
// polling (which cannot tell the two apart), waits for the settle period.
func (w *Watcher[T]) consider(via string) {
	s := w.read()
	switch {
	case s.key == w.lastKey:
		w.pending, w.inPlace = nil, false
		w.settleT.Stop()
	case via == ViaEvent && !w.inPlace:
		w.pending = nil
		w.settleT.Stop()
		w.attempt(s, via)
	case w.pending != nil && w.pending.key == s.key:
		// Already settling this content; the settle timer decides.
	default:
		w.pending, w.pendingVia = &s, via
		w.settleT.Reset(w.cfg.settle)
	}
}

// settled runs when the pending content has had the settle period without an
// event about the file: it is attempted when a second read finds the same
// bytes, and settles again otherwise.
func (w *Watcher[T]) settled() {
	p := w.pending
	if p == nil {
		return
	}
	w.pending = nil
	if s := w.read(); s.key == p.key {
		w.attempt(s, w.pendingVia)
		return
	}
	w.consider(w.pendingVia)
}

// attempt loads the file read as s and swaps it in, or keeps the last good
// configuration and says why. An emptied file is refused.
func (w *Watcher[T]) attempt(s snapshot, via string) {
	var v T
	err := s.err
	if err == nil && s.empty && !w.goodEmpty {
		err = fmt.Errorf("config %s: %w while the running configuration's was not, so it is not applied; "+
			"write the new config to a temporary file and rename it into place", w.path, ErrConfigEmptied)
	}
	if err == nil {
		v, err = w.load(w.path)
		if w.read().key != s.key {
			// Written to while it loaded: what was loaded may be neither version.
			w.inPlace = true
			w.consider(via)
			return
		}
	}
	w.lastKey, w.inPlace = s.key, false
	old := w.Current()
	ch := Change[T]{Old: old, New: old, Via: via, Hash: s.hash, At: w.cfg.now()}
	if err != nil {
		ch.Result, ch.Err = ReloadError, err
		w.errN.Add(1)
		w.cfg.logger.Warn("config reload failed; keeping the last good configuration", "path", w.path, "err", err, "via", via)
	} else {
		w.cur.Store(&v)
		w.goodEmpty = s.empty
		ch.Result, ch.New = ReloadOK, v
		w.okN.Add(1)
		w.cfg.logger.Info("config reloaded", "path", w.path, "via", via, "sha256", s.hash)
	}
	w.notify(ch)
}

// notify delivers ch to every subscriber without blocking: a full channel
// drops its oldest change to make room for the newest.
func (w *Watcher[T]) notify(ch Change[T]) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, sub := range w.subs {
		select {
		case sub <- ch:
			continue
		default:
		}
		select {
		case <-sub:
		default:
		}
		select {
		case sub <- ch:
		default:
		}
	}
}
