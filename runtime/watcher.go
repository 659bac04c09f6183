package runtime

import (
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
)

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

// WatchOption configures NewWatcher.
type WatchOption func(*watchConfig)

type watchConfig struct {
	poll     time.Duration
	forcePol bool
	debounce time.Duration
	logger   *slog.Logger
	counter  *prometheus.CounterVec
	now      func() time.Time
	subBuf   int
}

// WithPollInterval sets how often the file is checked when polling (default
// DefaultPollInterval). When file events are unavailable a change is seen
// within one interval.
func WithPollInterval(d time.Duration) WatchOption {
	return func(c *watchConfig) {
		if d > 0 {
			c.poll = d
		}
	}
}

// WithPolling forces the polling fallback (no file events), as on platforms
// without reliable ones.
func WithPolling() WatchOption { return func(c *watchConfig) { c.forcePol = true } }

// WithDebounce sets how long the watcher waits after the last file event of a
// burst before reloading (default DefaultDebounce): an editor's save is several
// events, and a half-written file must not be loaded.
func WithDebounce(d time.Duration) WatchOption {
	return func(c *watchConfig) {
		if d > 0 {
			c.debounce = d
		}
	}
}

// WithLogger sets where the watcher logs reloads and the polling fallback
// (default slog.Default()).
func WithLogger(l *slog.Logger) WatchOption {
	return func(c *watchConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithReloadCounter makes the watcher count into cv (made by NewReloadCounter),
// so several watchers share one config_reload_total.
func WithReloadCounter(cv *prometheus.CounterVec) WatchOption {
	return func(c *watchConfig) { c.counter = cv }
}

// WithClock injects the clock that stamps changes (default time.Now).
func WithClock(now func() time.Time) WatchOption {
	return func(c *watchConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// NewReloadCounter makes the config_reload_total{result="ok"|"error"} counter
// vector, both series present at zero. Register it with a prometheus.Registerer.
func NewReloadCounter() *prometheus.CounterVec {
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "config_reload_total",
		Help: "Config reload attempts by result; a failed reload keeps the last good configuration.",
	}, []string{"result"})
	cv.WithLabelValues(ReloadOK)
	cv.WithLabelValues(ReloadError)
	return cv
}

// Watcher keeps a configuration loaded from a file current: it reloads the file
// when it changes, swaps the new value in atomically, keeps the last good value
// when the new file does not load, counts every attempt, and tells subscribers.
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
	lastKey string
	fsw     *fsnotify.Watcher
	watched map[string]bool
	polling bool
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
	cfg := watchConfig{poll: DefaultPollInterval, debounce: DefaultDebounce, logger: slog.Default(), now: time.Now, subBuf: 16}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.counter == nil {
		cfg.counter = NewReloadCounter()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: config path %s: %w", path, err)
	}
	w := &Watcher[T]{path: abs, load: load, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}),
		watched: map[string]bool{}}
	key, _, rerr := w.readKey()
	if rerr != nil {
		return nil, rerr
	}
	v, err := load(abs)
	if err != nil {
		return nil, err
	}
	w.cur.Store(&v)
	w.lastKey = key
	w.startEvents()
	go w.run()
	return w, nil
}

// Path is the absolute path of the watched file.
func (w *Watcher[T]) Path() string { return w.path }

// Current returns the configuration now in force. It never blocks and never
// returns a half-updated value. Treat the value as read-only: it is shared.
func (w *Watcher[T]) Current() T { return *w.cur.Load() }

// Collector is the config_reload_total counter vector, for registering.
func (w *Watcher[T]) Collector() prometheus.Collector { return w.cfg.counter }

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

// readKey reads the file and returns a key identifying its state: the content
// hash, or the read error. The same key twice means nothing to reload.
func (w *Watcher[T]) readKey() (key, hash string, err error) {
	data, err := ReadConfigFile(w.path)
	if err != nil {
		return "error:" + err.Error(), "", err
	}
	sum := sha256.Sum256(data)
	hash = hex.EncodeToString(sum[:])
	return "sha256:" + hash, hash, nil
}

// dirs are the directories to watch: the file's own, and the directory of the
// file it resolves to when it is a symlink elsewhere.
func (w *Watcher[T]) dirs() (primary, secondary string) {
	primary = filepath.Dir(w.path)
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		if d := filepath.Dir(real); d != primary {
			secondary = d
		}
	}
	return primary, secondary
}

// startEvents sets up file events; on failure the watcher polls.
func (w *Watcher[T]) startEvents() {
	if w.cfg.forcePol {
		w.setPolling(true)
		w.cfg.logger.Info("config watcher: polling (forced); expect up to one poll interval of delay before reload",
			"path", w.path, "poll_interval", w.cfg.poll)
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

// syncWatches makes the set of watched directories match dirs(). An error
// means the primary directory cannot be watched.
func (w *Watcher[T]) syncWatches() error {
	primary, secondary := w.dirs()
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

func (w *Watcher[T]) run() {
	defer close(w.done)
	defer func() {
		if w.fsw != nil {
			w.closeErr = w.fsw.Close()
		}
	}()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	ticker := time.NewTicker(w.cfg.poll)
	defer ticker.Stop()
	var pendingSince time.Time
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w.fsw != nil && !w.polling {
			events, errs = w.fsw.Events, w.fsw.Errors
		}
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				w.fsw = nil
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
				w.check(ViaEvent)
				continue
			}
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
			w.check(ViaPoll)
		case <-debounce.C:
			pendingSince = time.Time{}
			if err := w.syncWatches(); err != nil {
				w.fallback(err.Error())
			}
			w.check(ViaEvent)
		case <-ticker.C:
			if !w.polling {
				continue
			}
			w.restore()
			w.check(ViaPoll)
		}
	}
}

// check reloads the file if its state changed since the last attempt.
func (w *Watcher[T]) check(via string) {
	key, hash, rerr := w.readKey()
	if key == w.lastKey {
		return
	}
	w.lastKey = key
	old := w.Current()
	ch := Change[T]{Old: old, New: old, Via: via, Hash: hash}
	err := rerr
	if err == nil {
		var v T
		if v, err = w.load(w.path); err == nil {
			w.cur.Store(&v)
			ch.New = v
		}
	}
	ch.At = w.cfg.now()
	if err != nil {
		ch.Result, ch.Err = ReloadError, err
		w.errN.Add(1)
		w.cfg.counter.WithLabelValues(ReloadError).Inc()
		w.cfg.logger.Warn("config reload failed; keeping the last good configuration", "path", w.path, "err", err, "via", via)
	} else {
		ch.Result = ReloadOK
		w.okN.Add(1)
		w.cfg.counter.WithLabelValues(ReloadOK).Inc()
		w.cfg.logger.Info("config reloaded", "path", w.path, "via", via, "sha256", hash)
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
