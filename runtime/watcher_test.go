package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
	opts = append([]WatchOption{WithDebounce(20 * time.Millisecond), WithPollInterval(50 * time.Millisecond), WithLogger(lg)}, opts...)
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
	cv := w.Collector().(*prometheus.CounterVec)
	assert.Equal(t, 2.0, counterValue(t, cv.WithLabelValues("ok")))
	assert.Equal(t, 2.0, counterValue(t, cv.WithLabelValues("error")))
}

func TestWatcherInPlaceWriteAndDeleteRecreate(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", pairTOML(1))
	w, ch := startPair(t, p)

	// Truncate and write in place: a check between the two may see an empty
	// file (a valid {0 0} here), so wait for the final content.
	require.NoError(t, os.WriteFile(p, []byte(pairTOML(2)), 0o644))
	c := next(t, ch)
	for c.New != (pair{2, 2}) {
		c = next(t, ch)
	}
	require.Equal(t, ReloadOK, c.Result, "err: %v", c.Err)
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
	c = next(t, ch)
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

func TestWatcherSharedCounterAndKnobs(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "node.toml", "[runtime]\nio_read_backoff_ms = 20\n")
	cv := NewReloadCounter()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(cv))
	load := func(path string) (Knobs, error) {
		k, _, _, err := LoadKnobs(path, nil)
		return k, err
	}
	w, err := NewWatcher(p, load, WithReloadCounter(cv), WithDebounce(10*time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer w.Close()
	ch := w.Subscribe()
	assert.Equal(t, 20*time.Millisecond, w.Current().IOReadBackoff)

	replace(t, p, "[runtime]\nio_read_backoff_ms = -1\n")
	c := next(t, ch)
	assert.Equal(t, ReloadError, c.Result)
	assert.ErrorIs(t, c.Err, ErrInvalidConfig)
	assert.Equal(t, 20*time.Millisecond, w.Current().IOReadBackoff)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	assert.Equal(t, "config_reload_total", mfs[0].GetName())
	got := map[string]float64{}
	for _, m := range mfs[0].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	assert.Equal(t, map[string]float64{"ok": 0, "error": 1}, got, "both result series are exported")
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
	w, err := NewWatcher(p, loadPair, WithPolling(), WithPollInterval(time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
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

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:goruntime.Stack(buf, true)])
}
