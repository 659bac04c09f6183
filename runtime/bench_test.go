package runtime

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/BurntSushi/toml"
)

// BenchmarkWatcherCurrent measures what every reader of a hot-reloaded config
// pays: one atomic load, no lock, from many goroutines at once.
func BenchmarkWatcherCurrent(b *testing.B) {
	p := filepath.Join(b.TempDir(), "node.toml")
	if err := os.WriteFile(p, []byte("[runtime]\nio_read_backoff_ms = 20\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	load := func(path string) (Knobs, error) {
		c, _, _, err := LoadNodeConfig(path, nil)
		return c.Knobs, err
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

// typicalConfig is a node config with both parts set.
var typicalConfig = []byte("p2p_max_per_sec = 50\np2p_chain_sync_interval_ms = 500\n\n[runtime]\nreactor_idle_poll_ms = 50\nio_read_backoff_ms = 20\nio_write_backoff_ms = 20\ntls_handshake_timeout_ms = 5000\n")

// BenchmarkParseNodeConfig is one reload's parse and validation of a typical
// file, both parts, with one environment override.
func BenchmarkParseNodeConfig(b *testing.B) {
	env := func(k string) string {
		if k == "TB_IO_READ_BACKOFF_MS" {
			return "30"
		}
		return ""
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ParseNodeConfig(typicalConfig, "node.toml", env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTOMLStruct is the peer: the TOML decoder alone filling a
// struct, with no validation, sources or unknown-key warnings.
func BenchmarkDecodeTOMLStruct(b *testing.B) {
	type file struct {
		MaxPerSec   int64 `toml:"p2p_max_per_sec"`
		ChainSyncMS int64 `toml:"p2p_chain_sync_interval_ms"`
		Runtime     struct {
			IdlePoll     int64 `toml:"reactor_idle_poll_ms"`
			ReadBackoff  int64 `toml:"io_read_backoff_ms"`
			WriteBackoff int64 `toml:"io_write_backoff_ms"`
			TLSTimeout   int64 `toml:"tls_handshake_timeout_ms"`
		} `toml:"runtime"`
	}
	b.ReportAllocs()
	for b.Loop() {
		var f file
		if _, err := toml.Decode(string(typicalConfig), &f); err != nil {
			b.Fatal(err)
		}
	}
}
