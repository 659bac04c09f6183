package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair is a test config whose two fields must be equal: a reader that ever saw
// them differ would have seen a torn value.
type pair struct{ A, B int }

func loadPair(path string) (pair, error) {
	data, err := ReadConfigFile(path)
	if err != nil {
		return pair{}, err
	}
	var p pair
	if _, err := toml.Decode(string(data), &p); err != nil {
		return pair{}, fmt.Errorf("config %s: %w", path, err)
	}
	if p.A != p.B {
		return pair{}, fmt.Errorf("config %s: A=%d and B=%d must be equal", path, p.A, p.B)
	}
	return p, nil
}

func pairTOML(n int) string { return fmt.Sprintf("A = %d\nB = %d\n", n, n) }

// replace writes content to a temporary file beside path and renames it over
// path: the atomic replace editors and config managers do.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func next[T any](t *testing.T, ch <-chan Change[T]) Change[T] {
	t.Helper()
	select {
	case c, ok := <-ch:
		require.True(t, ok, "subscription closed")
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
	}
	panic("unreachable")
}

// nextPastEmptied is next, past refusals of the empty file an in-place write
// goes through: a writer stalled between truncate and write for a settle
// period (a loaded machine) gets its empty file refused, never applied.
func nextPastEmptied[T any](t *testing.T, ch <-chan Change[T]) Change[T] {
	t.Helper()
	c := next(t, ch)
	for c.Result == ReloadError && errors.Is(c.Err, ErrConfigEmptied) {
		c = next(t, ch)
	}
	return c
}

// quiet is a logger that records what the watcher logs.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLog() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func startPair(t *testing.T, path string, opts ...WatchOption) (*Watcher[pair], <-chan Change[pair]) {
	t.Helper()
	lg, _ := newLog()
	opts = append([]WatchOption{WithDebounce(20 * time.Millisecond), WithSettle(50 * time.Millisecond),
		WithPollInterval(50 * time.Millisecond), WithLogger(lg)}, opts...)
	w, err := NewWatcher(path, loadPair, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return w, w.Subscribe()
}

func TestWatcherRenameReplaceAndBadFile(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	w, ch := startPair(t, p)
	assert.Equal(t, pair{1, 1}, w.Current())
	assert.False(t, w.Polling())

	replace(t, p, pairTOML(2))
	c := next(t, ch)
	assert.Equal(t, ReloadOK, c.Result)
	assert.NoError(t, c.Err)
	assert.Equal(t, pair{1, 1}, c.Old)
	assert.Equal(t, pair{2, 2}, c.New)
	assert.Equal(t, ViaEvent, c.Via)
	assert.Len(t, c.Hash, 64)
	assert.Equal(t, pair{2, 2}, w.Current())

	// A file that does not validate changes nothing and is counted.
	replace(t, p, "A = 3\nB = 4\n")
	c = next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	require.Error(t, c.Err)
	assert.Contains(t, c.Err.Error(), "must be equal")
	assert.Equal(t, pair{2, 2}, c.New, "the last good config stays")
	assert.Equal(t, pair{2, 2}, w.Current())

	// Unparseable, too.
	replace(t, p, "A = = \n")
	c = next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	assert.Equal(t, pair{2, 2}, w.Current())

	// The same bytes again (a touch, an identical save) reload nothing: the next
	// change seen is the fix.
	replace(t, p, "A = = \n")
	replace(t, p, pairTOML(5))
	c = next(t, ch)
	assert.Equal(t, ReloadOK, c.Result)
	assert.Equal(t, pair{5, 5}, c.New)

	ok, failed := w.Reloads()
	assert.Equal(t, uint64(2), ok)
	assert.Equal(t, uint64(2), failed)
	require.NoError(t, testutil.CollectAndCompare(w.Collector(nil), strings.NewReader(`
# HELP config_reload_total Config reload attempts by result; a failed reload keeps the last good configuration.
# TYPE config_reload_total counter
config_reload_total{result="error"} 2
config_reload_total{result="ok"} 2
`)))
}

func TestWatcherInPlaceWriteAndDeleteRecreate(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	w, ch := startPair(t, p)

	// Truncate and write in place: the file settles before it is applied, so
	// the empty file between the two (a valid {0 0} here) is never applied.
	require.NoError(t, os.WriteFile(p, []byte(pairTOML(2)), 0o644))
	c := nextPastEmptied(t, ch)
	require.Equal(t, ReloadOK, c.Result, "err: %v", c.Err)
	assert.Equal(t, pair{2, 2}, c.New)
	assert.Equal(t, pair{2, 2}, w.Current())

	require.NoError(t, os.Remove(p))
	c = next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	assert.ErrorIs(t, c.Err, os.ErrNotExist)
	assert.Equal(t, pair{2, 2}, w.Current(), "a deleted file keeps the last good config")

	writeFile(t, dir, "node.toml", pairTOML(3))
	c = next(t, ch)
	assert.Equal(t, ReloadOK, c.Result)
	assert.Equal(t, pair{3, 3}, w.Current())
}

// TestWatcherSymlinkSwap does what Kubernetes does to a mounted ConfigMap:
// node.toml -> ..data/node.toml, ..data -> ..<timestamp>; an update writes a new
// timestamped directory and renames a fresh symlink over ..data.
func TestWatcherSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(ts string, n int) {
		require.NoError(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
		writeFile(t, filepath.Join(dir, ts), "node.toml", pairTOML(n))
	}
	mk("..2026_01", 1)
	require.NoError(t, os.Symlink("..2026_01", filepath.Join(dir, "..data")))
	require.NoError(t, os.Symlink("..data/node.toml", filepath.Join(dir, "node.toml")))
	w, ch := startPair(t, filepath.Join(dir, "node.toml"))
	assert.Equal(t, pair{1, 1}, w.Current())

	swap := func(ts string, n int, old string) {
		mk(ts, n)
		require.NoError(t, os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		require.NoError(t, os.RemoveAll(filepath.Join(dir, old)))
	}
	swap("..2026_02", 2, "..2026_01")
	c := next(t, ch)
	require.Equal(t, ReloadOK, c.Result, "err: %v", c.Err)
	assert.Equal(t, pair{2, 2}, w.Current())

	swap("..2026_03", 3, "..2026_02")
	c = next(t, ch)
	require.Equal(t, ReloadOK, c.Result, "err: %v", c.Err)
	assert.Equal(t, pair{3, 3}, w.Current())
	assert.False(t, w.Polling(), "a removed symlink target directory is not a reason to poll")
}

// TestWatcherSymlinkToOtherDir edits, in place, the target of a symlink that
// lives in another directory: only the target's directory sees events.
func TestWatcherSymlinkToOtherDir(t *testing.T) {
	real, link := t.TempDir(), t.TempDir()
	target := writeFile(t, real, "node.toml", pairTOML(1))
	require.NoError(t, os.Symlink(target, filepath.Join(link, "node.toml")))
	w, ch := startPair(t, filepath.Join(link, "node.toml"), WithPollInterval(time.Hour))
	require.NoError(t, os.WriteFile(target, []byte(pairTOML(2)), 0o644))
	c := next(t, ch)
	assert.Equal(t, ViaEvent, c.Via)
	assert.Equal(t, pair{2, 2}, w.Current())
}

func TestWatcherDirectoryDisappears(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "conf")
	require.NoError(t, os.Mkdir(dir, 0o755))
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	lg, logs := newLog()
	w, ch := startPair(t, p, WithLogger(lg))

	require.NoError(t, os.RemoveAll(dir))
	c := next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	assert.ErrorIs(t, c.Err, os.ErrNotExist)
	assert.Equal(t, pair{1, 1}, w.Current())
	require.Eventually(t, w.Polling, 10*time.Second, 5*time.Millisecond)
	assert.Contains(t, logs.String(), "expect up to one poll interval of delay")

	// The directory comes back: the file is found by polling, and file events
	// are restored.
	require.NoError(t, os.Mkdir(dir, 0o755))
	writeFile(t, dir, "node.toml", pairTOML(2))
	c = next(t, ch)
	assert.Equal(t, ReloadOK, c.Result, "err: %v", c.Err)
	assert.Equal(t, pair{2, 2}, w.Current())
	require.Eventually(t, func() bool { return !w.Polling() }, 10*time.Second, 5*time.Millisecond)
	assert.Contains(t, logs.String(), "file events restored")

	replace(t, p, pairTOML(3))
	c = next(t, ch)
	assert.Equal(t, pair{3, 3}, c.New)
}

func TestWatcherForcedPolling(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	lg, logs := newLog()
	w, ch := startPair(t, p, WithPolling(), WithPollInterval(20*time.Millisecond), WithLogger(lg))
	assert.True(t, w.Polling())
	assert.Contains(t, logs.String(), "expect up to one poll interval of delay")

	replace(t, p, pairTOML(2))
	c := next(t, ch)
	assert.Equal(t, ViaPoll, c.Via)
	assert.Equal(t, pair{2, 2}, w.Current())

	// Same size, same second: only the content hash tells them apart.
	require.NoError(t, os.WriteFile(p, []byte(pairTOML(3)), 0o644))
	c = nextPastEmptied(t, ch)
	assert.Equal(t, pair{3, 3}, c.New)

	require.NoError(t, os.Remove(p))
	c = next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	writeFile(t, dir, "node.toml", pairTOML(4))
	c = next(t, ch)
	assert.Equal(t, pair{4, 4}, c.New)
	assert.True(t, w.Polling(), "forced polling stays polling")
}

func TestWatcherInitialLoadMustSucceed(t *testing.T) {
	dir := t.TempDir()
	_, err := NewWatcher(filepath.Join(dir, "none.toml"), loadPair)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)

	p := writeFile(t, dir, "bad.toml", "A = 1\nB = 2\n")
	_, err = NewWatcher(p, loadPair)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must be equal")

	_, err = NewWatcher("", loadPair)
	require.Error(t, err)
	_, err = NewWatcher[pair](p, nil)
	require.Error(t, err)
}

// TestWatcherNodeConfigAndCollectors: a reload of the node config applies both
// of its parts; a bad one applies neither. Each watcher exports its own
// config_reload_total, told apart by its const labels in one registry.
func TestWatcherNodeConfigAndCollectors(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", "p2p_max_per_sec = 50\n[runtime]\nio_read_backoff_ms = 20\n")
	other := writeFile(t, dir, "other.toml", "")
	load := func(path string) (NodeConfig, error) {
		c, _, _, err := LoadNodeConfig(path, nil)
		return c, err
	}
	opts := []WatchOption{WithDebounce(10 * time.Millisecond), WithLogger(slog.New(slog.DiscardHandler))}
	w, err := NewWatcher(p, load, opts...)
	require.NoError(t, err)
	defer w.Close()
	w2, err := NewWatcher(other, load, opts...)
	require.NoError(t, err)
	defer w2.Close()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(w.Collector(prometheus.Labels{"config": "node"})))
	require.NoError(t, reg.Register(w2.Collector(prometheus.Labels{"config": "other"})))
	require.Error(t, reg.Register(w2.Collector(prometheus.Labels{"config": "other"})), "the same series twice is refused")
	ch := w.Subscribe()
	assert.Equal(t, 20*time.Millisecond, w.Current().Knobs.IOReadBackoff)
	assert.Equal(t, 50, w.Current().P2P.MaxPerSec)

	replace(t, p, "p2p_max_per_sec = 70\n[runtime]\nio_read_backoff_ms = 30\n")
	c := next(t, ch)
	require.Equal(t, ReloadOK, c.Result, "%v", c.Err)
	assert.Equal(t, 30*time.Millisecond, w.Current().Knobs.IOReadBackoff)
	assert.Equal(t, 70, w.Current().P2P.MaxPerSec, "one reload applies both parts")

	replace(t, p, "p2p_max_per_sec = 90\n[runtime]\nio_read_backoff_ms = -1\n")
	c = next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	assert.ErrorIs(t, c.Err, ErrInvalidConfig)
	assert.Equal(t, 70, w.Current().P2P.MaxPerSec, "a bad runtime knob keeps the p2p part too")

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP config_reload_total Config reload attempts by result; a failed reload keeps the last good configuration.
# TYPE config_reload_total counter
config_reload_total{config="node",result="error"} 1
config_reload_total{config="node",result="ok"} 1
config_reload_total{config="other",result="error"} 0
config_reload_total{config="other",result="ok"} 0
`)))
}

// TestWatcherReadersNeverSeeTornValues reads Current from many goroutines while
// the file is replaced again and again (run with -race).
func TestWatcherReadersNeverSeeTornValues(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(0))
	w, ch := startPair(t, p, WithDebounce(time.Millisecond))
	var stop atomic.Bool
	var torn atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if v := w.Current(); v.A != v.B {
					torn.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		replace(t, p, pairTOML(i))
		if i%5 == 0 {
			for c := next(t, ch); c.New.A != i; c = next(t, ch) {
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, torn.Load())
	assert.Equal(t, pair{20, 20}, w.Current())
}

func TestWatcherCloseStopsGoroutines(t *testing.T) {
	before := goruntime.NumGoroutine()
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	for _, opts := range [][]WatchOption{nil, {WithPolling(), WithPollInterval(time.Millisecond)}} {
		w, err := NewWatcher(p, loadPair, append(opts, WithLogger(slog.New(slog.DiscardHandler)))...)
		require.NoError(t, err)
		ch := w.Subscribe()
		replace(t, p, pairTOML(2))
		replace(t, p, pairTOML(1))
		require.NoError(t, w.Close())
		require.NoError(t, w.Close(), "Close twice is fine")
		for range ch { // closed by Close
		}
		_, open := <-w.Subscribe()
		assert.False(t, open, "subscribing after Close gives a closed channel")
	}
	// Poll in this goroutine: require.Eventually would add goroutines of its own.
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.LessOrEqual(t, goruntime.NumGoroutine(), before, "goroutines outlived Close:\n%s", stacks())
}

func TestWatcherSlowSubscriberGetsNewest(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(0))
	w, err := NewWatcher(p, loadPair, WithPolling(), WithPollInterval(time.Millisecond), WithSettle(time.Millisecond),
		WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer w.Close()
	slow := w.Subscribe()
	fast := w.Subscribe()
	for i := 1; i <= 40; i++ {
		replace(t, p, pairTOML(i))
		for c := next(t, fast); c.New.A != i; c = next(t, fast) {
		}
	}
	var last Change[pair]
	n := 0
	for len(slow) > 0 {
		last = <-slow
		n++
	}
	assert.LessOrEqual(t, n, 16)
	assert.Equal(t, 40, last.New.A, "the newest change is never the one dropped")
}

func TestChangeErrIsTyped(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	w, ch := startPair(t, p)
	require.NoError(t, os.Mkdir(p+".d", 0o755))
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.Rename(p+".d", p)) // the path is now a directory
	c := next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	var fe *FileError
	require.True(t, errors.As(c.Err, &fe))
	assert.Contains(t, c.Err.Error(), "is a directory")
	assert.Equal(t, pair{1, 1}, w.Current())
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:goruntime.Stack(buf, true)])
}

// sim is a watcher on a real file whose file events the test sends itself,
// run inside a testing/synctest bubble: time is virtual, so debounce and
// settle periods pass without the test sleeping through them, and every
// schedule is exact. Each write helper sends the events inotify reports for it.
type sim struct {
	t       *testing.T
	path    string
	w       *Watcher[pair]
	events  chan fsnotify.Event
	changes <-chan Change[pair]
}

// startSim must be called inside the bubble; it closes the watcher when the
// test ends.
func startSim(t *testing.T, content string, load func(string) (pair, error), opts ...WatchOption) *sim {
	t.Helper()
	s := &sim{t: t, path: writeFile(t, t.TempDir(), "node.toml", content), events: make(chan fsnotify.Event, 1024)}
	if load == nil {
		load = loadPair
	}
	lg, _ := newLog()
	opts = append([]WatchOption{withEvents(s.events), WithPollInterval(time.Hour), WithLogger(lg)}, opts...)
	w, err := NewWatcher(s.path, load, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	s.w, s.changes = w, w.Subscribe()
	return s
}

func (s *sim) send(name string, op fsnotify.Op) { s.events <- fsnotify.Event{Name: name, Op: op} }

// writeInPlace truncates the file and writes content, as `>` and os.WriteFile do.
func (s *sim) writeInPlace(content string) {
	require.NoError(s.t, os.WriteFile(s.path, []byte(content), 0o644))
	s.send(s.path, fsnotify.Write)
}

// appendTo appends content, as `>>` does.
func (s *sim) appendTo(content string) {
	f, err := os.OpenFile(s.path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(s.t, err)
	_, err = f.WriteString(content)
	require.NoError(s.t, err)
	require.NoError(s.t, f.Close())
	s.send(s.path, fsnotify.Write)
}

// renameIntoPlace writes a temporary file and renames it over the config.
func (s *sim) renameIntoPlace(content string) {
	tmp := s.path + ".tmp"
	require.NoError(s.t, os.WriteFile(tmp, []byte(content), 0o644))
	s.send(tmp, fsnotify.Create)
	s.send(tmp, fsnotify.Write)
	require.NoError(s.t, os.Rename(tmp, s.path))
	s.send(tmp, fsnotify.Rename)
	s.send(s.path, fsnotify.Create)
}

// drain lets the watcher finish what it can do now and returns the changes it
// delivered since the last drain.
func (s *sim) drain() []Change[pair] {
	synctest.Wait()
	var out []Change[pair]
	for {
		select {
		case c := <-s.changes:
			out = append(out, c)
		default:
			return out
		}
	}
}

// applied is the configurations the changes applied, in order.
func applied(cs []Change[pair]) []pair {
	out := []pair{}
	for _, c := range cs {
		if c.Result == ReloadOK {
			out = append(out, c.New)
		}
	}
	return out
}

// TestSettleTruncateThenAppend is issue #14.7's
// `: > node.toml; sleep 0.3; echo … >> node.toml`: the empty file in between
// (a valid {0 0} here, the defaults) is never applied. A pause shorter than the
// settle period leaves one reload, of the final file; a longer one lets the
// empty file settle, and it is refused with a warning saying what to do.
func TestSettleTruncateThenAppend(t *testing.T) {
	for _, tc := range []struct {
		pause   time.Duration
		refused int
	}{{300 * time.Millisecond, 0}, {2 * time.Second, 1}} {
		t.Run(tc.pause.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := startSim(t, pairTOML(1), nil)
				s.writeInPlace("")
				time.Sleep(tc.pause)
				early := s.drain()
				assert.Equal(t, pair{1, 1}, s.w.Current(), "the last good configuration stays while the file is empty")
				s.appendTo(pairTOML(900))
				time.Sleep(time.Second)
				all := append(early, s.drain()...)

				assert.Equal(t, []pair{{900, 900}}, applied(all), "only the final file is applied")
				require.Len(t, all, tc.refused+1)
				if tc.refused > 0 {
					c := all[0]
					assert.Equal(t, ReloadError, c.Result)
					require.ErrorIs(t, c.Err, ErrConfigEmptied)
					assert.Contains(t, c.Err.Error(), s.path)
					assert.Contains(t, c.Err.Error(), "write the new config to a temporary file and rename it into place")
					assert.Equal(t, pair{1, 1}, c.New)
				}
				assert.Equal(t, pair{900, 900}, s.w.Current())
				ok, failed := s.w.Reloads()
				assert.Equal(t, [2]uint64{1, uint64(tc.refused)}, [2]uint64{ok, failed})
			})
		})
	}
}

// TestSettleRapidRewrites rewrites the file in place 200 times: only the final
// value is applied, plus any value that stayed for a settle period (the pause
// case). Gaps of 10 ms outlast the debounce cap (10 × 100 ms), so the watcher
// does read intermediate values; they never settle. Polling reads them too.
func TestSettleRapidRewrites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gap     time.Duration
		pauseAt int // the writer pauses for a second after this value
		polling bool
		want    []pair
	}{
		{name: "back to back", want: []pair{{200, 200}}},
		{name: "1ms apart", gap: time.Millisecond, want: []pair{{200, 200}}},
		{name: "10ms apart", gap: 10 * time.Millisecond, want: []pair{{200, 200}}},
		{name: "polling 10ms apart", gap: 10 * time.Millisecond, polling: true, want: []pair{{200, 200}}},
		{name: "pause at 100", gap: time.Millisecond, pauseAt: 100, want: []pair{{100, 100}, {200, 200}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var opts []WatchOption
				if tc.polling {
					opts = []WatchOption{WithPolling(), WithPollInterval(20 * time.Millisecond)}
				}
				s := startSim(t, pairTOML(0), nil, opts...)
				var all []Change[pair]
				for i := 1; i <= 200; i++ {
					if tc.polling {
						require.NoError(t, os.WriteFile(s.path, []byte(pairTOML(i)), 0o644))
					} else {
						s.writeInPlace(pairTOML(i))
					}
					time.Sleep(tc.gap)
					if i == tc.pauseAt {
						time.Sleep(time.Second)
					}
					all = append(all, s.drain()...)
				}
				time.Sleep(2 * time.Second)
				all = append(all, s.drain()...)
				assert.Equal(t, tc.want, applied(all))
				assert.Len(t, all, len(tc.want), "no failed attempts either")
				assert.Equal(t, pair{200, 200}, s.w.Current())
			})
		})
	}
}

// TestSettleRenameIsPrompt: a file renamed into place is applied right after
// the debounce, without waiting for the settle period (an hour here); an
// in-place write waits for it.
func TestSettleRenameIsPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := startSim(t, pairTOML(1), nil, WithSettle(time.Hour))
		s.renameIntoPlace(pairTOML(2))
		time.Sleep(DefaultDebounce + time.Millisecond)
		assert.Equal(t, []pair{{2, 2}}, applied(s.drain()))

		s.writeInPlace(pairTOML(3))
		time.Sleep(time.Minute)
		assert.Empty(t, s.drain(), "an in-place write waits for the settle period")
		assert.Equal(t, pair{2, 2}, s.w.Current())
		time.Sleep(time.Hour)
		assert.Equal(t, []pair{{3, 3}}, applied(s.drain()))
	})
}

// TestSettleEventsAboutOtherFiles: writes to other files in the directory do
// not restart a settle period; any event about the file itself does.
func TestSettleEventsAboutOtherFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := startSim(t, pairTOML(1), nil)
		other := filepath.Join(filepath.Dir(s.path), "other.log")
		step := DefaultDebounce + DefaultSettle/2
		s.writeInPlace(pairTOML(2))
		time.Sleep(step)
		s.send(other, fsnotify.Write)
		time.Sleep(step)
		assert.Equal(t, []pair{{2, 2}}, applied(s.drain()), "settled although other.log was written meanwhile")

		s.writeInPlace(pairTOML(3))
		time.Sleep(step)
		s.send(s.path, fsnotify.Chmod)
		time.Sleep(step)
		assert.Empty(t, s.drain(), "an event about the file restarts the settle period")
		time.Sleep(step)
		assert.Equal(t, []pair{{3, 3}}, applied(s.drain()))
	})
}

// TestEmptiedFileRefused: an empty file is refused whichever way it arrives,
// unless the configuration in force came from an empty file too.
func TestEmptiedFileRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := startSim(t, pairTOML(1), nil)
		s.renameIntoPlace(" \n\t\n")
		time.Sleep(time.Second)
		cs := s.drain()
		require.Len(t, cs, 1)
		assert.Equal(t, ReloadError, cs[0].Result)
		assert.ErrorIs(t, cs[0].Err, ErrConfigEmptied)
		assert.Equal(t, pair{1, 1}, s.w.Current())

		s.renameIntoPlace("# on purpose: all defaults\n")
		time.Sleep(time.Second)
		assert.Equal(t, []pair{{0, 0}}, applied(s.drain()), "a comment says it is meant")
	})
	synctest.Test(t, func(t *testing.T) {
		s := startSim(t, "", nil)
		s.renameIntoPlace("\n")
		time.Sleep(time.Second)
		assert.Equal(t, []pair{{0, 0}}, applied(s.drain()), "empty while the running one was empty too")
	})
}

// TestSettleWrittenWhileLoading: a write that lands while the file is being
// loaded (its event not yet delivered) drops what was loaded; the new content
// settles and is applied instead.
func TestSettleWrittenWhileLoading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var path string
		var once sync.Once
		load := func(p string) (pair, error) {
			v, err := loadPair(p)
			if v.A == 2 {
				once.Do(func() { require.NoError(t, os.WriteFile(path, []byte(pairTOML(3)), 0o644)) })
			}
			return v, err
		}
		s := startSim(t, pairTOML(1), load)
		path = s.path
		s.renameIntoPlace(pairTOML(2))
		time.Sleep(time.Second)
		assert.Equal(t, []pair{{3, 3}}, applied(s.drain()))
		ok, failed := s.w.Reloads()
		assert.Equal(t, [2]uint64{1, 0}, [2]uint64{ok, failed}, "the torn load is not an attempt")
	})
}

// TestWatcherTruncateThenAppendRealEvents runs issue #14.7's sequence against
// real file events and the default debounce and settle: whatever the machine's
// timing, the empty file is never applied and the final one is.
func TestWatcherTruncateThenAppendRealEvents(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	lg, _ := newLog()
	w, err := NewWatcher(p, loadPair, WithLogger(lg), WithPollInterval(time.Hour))
	require.NoError(t, err)
	defer w.Close()
	ch := w.Subscribe()

	require.NoError(t, os.WriteFile(p, nil, 0o644))
	time.Sleep(300 * time.Millisecond) // the issue's `sleep 0.3`
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(pairTOML(900))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	for c := next(t, ch); c.New != (pair{900, 900}); c = next(t, ch) {
		require.Equal(t, ReloadError, c.Result, "applied %v before the final file", c.New)
		require.ErrorIs(t, c.Err, ErrConfigEmptied)
	}
	assert.Equal(t, pair{900, 900}, w.Current())
}

// TestWatcherRapidRewritesRealEvents rewrites the file in place 200 times,
// 10 ms apart, with readers checking Current all along. The 2 s burst outlasts
// the debounce cap, so intermediate values are read; none is applied but the
// final one — unless the writer happened to stall for a settle period right
// after writing it — and no reader sees a torn value.
func TestWatcherRapidRewritesRealEvents(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(0))
	lg, _ := newLog()
	w, err := NewWatcher(p, loadPair, WithLogger(lg), WithPollInterval(time.Hour))
	require.NoError(t, err)
	defer w.Close()
	ch := w.Subscribe()
	var stop atomic.Bool
	var torn atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			if v := w.Current(); v.A != v.B {
				torn.Add(1)
			}
			time.Sleep(time.Millisecond) // leave the CPU to the writer and the watcher
		}
	})
	written := make([]time.Time, 202) // written[i]: when value i was in place
	for i := 1; i <= 200; i++ {
		require.NoError(t, os.WriteFile(p, []byte(pairTOML(i)), 0o644))
		written[i] = time.Now()
		time.Sleep(10 * time.Millisecond) // pacing the writer, not a wait for the watcher
	}
	written[201] = time.Now().Add(time.Hour)
	for c := next(t, ch); c.New.A != 200; c = next(t, ch) {
		if errors.Is(c.Err, ErrConfigEmptied) {
			continue // the writer stalled between truncate and write: refused, not applied
		}
		require.Equal(t, ReloadOK, c.Result, "err: %v", c.Err)
		i := c.New.A
		assert.GreaterOrEqual(t, written[i+1].Sub(written[i]), DefaultSettle,
			"value %d was applied although it was replaced before it could settle", i)
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, torn.Load())
	assert.Equal(t, pair{200, 200}, w.Current())
}
