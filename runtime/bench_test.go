package runtime

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkWatcherCurrent measures what every reader of a hot-reloaded config
// pays: one atomic load, no lock, from many goroutines at once.
func BenchmarkWatcherCurrent(b *testing.B) {
	p := filepath.Join(b.TempDir(), "node.toml")
	if err := os.WriteFile(p, []byte("[runtime]\nio_read_backoff_ms = 20\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	load := func(path string) (Knobs, error) {
		k, _, _, err := LoadKnobs(path, nil)
		return k, err
	}
	w, err := NewWatcher(p, load, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var sink Knobs
		for pb.Next() {
			sink = w.Current()
		}
		_ = sink
	})
}

// BenchmarkRWMutexCurrent is the usual alternative, a read lock around the value.
func BenchmarkRWMutexCurrent(b *testing.B) {
	var mu sync.RWMutex
	v := DefaultKnobs()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var sink Knobs
		for pb.Next() {
			mu.RLock()
			sink = v
			mu.RUnlock()
		}
		_ = sink
	})
}

// BenchmarkParseKnobs is one reload's parse and validation of a typical file.
func BenchmarkParseKnobs(b *testing.B) {
	data := []byte("p2p_max_per_sec = 50\np2p_chain_sync_interval_ms = 500\n\n[runtime]\nreactor_idle_poll_ms = 50\nio_read_backoff_ms = 20\nio_write_backoff_ms = 20\ntls_handshake_timeout_ms = 5000\n")
	env := func(k string) string {
		if k == "TB_IO_READ_BACKOFF_MS" {
			return "30"
		}
		return ""
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ParseKnobs(data, "node.toml", env); err != nil {
			b.Fatal(err)
		}
	}
}
