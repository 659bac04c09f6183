package p2p

import (
	"testing"

	"github.com/theblock/tbops/runtime"
)

// FuzzLoadConfig: whatever the node config file and the environment, what
// runtime's loader accepts converts to a Config that validates and that the
// limiter accepts; what it refuses is refused whole.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("p2p_max_per_sec = 10\n[runtime]\nreactor_idle_poll_ms = 5\n"), "", "")
	f.Add([]byte("p2p_rate_window_secs = 0\n"), "5", "")
	f.Add([]byte("p2p_chain_sync_interval_ms = 0\np2p_max_bytes_per_sec = 1024\n"), "", "0")
	f.Add([]byte("p2p_max_per_sec = \"x\"\nfoo = [1, 2]\n[a.b]\nc = 1\n"), "-1", "abc")
	f.Add([]byte("p2p_max_per_sec = 1e3\n"), "99999999999999999999", " 20 ")
	f.Add([]byte("p2p_max_per_sec = 9223372036854775807\n"), "", "")
	f.Add([]byte("p2p_max_per_sec = 50000\np2p_max_bytes_per_sec = 1073741824\np2p_rate_window_secs = 3600\n"), "", "3600000")
	f.Add([]byte("= broken"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, envMax, envSync string) {
		getenv := func(k string) string {
			switch k {
			case EnvMaxPerSec:
				return envMax
			case EnvChainSyncIntervalMS:
				return envSync
			}
			return ""
		}
		nc, settings, _, err := runtime.ParseNodeConfig(data, "node.toml", getenv)
		cfg := Config(nc.P2P)
		if err != nil {
			if cfg != DefaultConfig() || settings != nil {
				t.Fatalf("error %v but a half-applied result: %+v %v", err, cfg, settings)
			}
			return
		}
		if verr := cfg.Validate(); verr != nil {
			t.Fatalf("loaded an invalid config %+v: %v", cfg, verr)
		}
		if _, err := NewLimiter(cfg); err != nil {
			t.Fatalf("loaded config refused by the limiter: %v", err)
		}
	})
}

// FuzzLimiterBound feeds arbitrary traffic (gaps and sizes from the fuzzer)
// and checks the documented bound against the exact sliding log.
func FuzzLimiterBound(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 255, 255, 1, 2, 3}, uint16(10), uint16(3000))
	f.Add([]byte{200, 1, 200, 1, 0, 0, 0, 0, 0, 0, 0, 0}, uint16(1), uint16(1024))
	f.Fuzz(func(t *testing.T, traffic []byte, maxReq, maxBytes uint16) {
		L := 1 + int(maxReq)%200
		B := 1024 + int(maxBytes)
		l, err := NewLimiter(Config{RateWindowSecs: 1, MaxPerSec: L, MaxBytesPerSec: B}, WithSeed(3))
		if err != nil {
			t.Fatal(err)
		}
		ns := t0.UnixNano()
		var adm []event
		for i := 0; i+1 < len(traffic); i += 2 {
			// gap: 0..255 × 1/64 of an eighth of the window; size: 0..255 × 16 bytes
			ns += int64(traffic[i]) * int64(subWindowNanos(1)) / 64
			size := int(traffic[i+1]) * 16
			if l.allowNanos(1, size, ns).Allowed() {
				adm = append(adm, event{ns, size})
			}
		}
		cnt, byt := maxInWindow(adm, int64(1e9))
		if 8*cnt > 9*L || 8*byt > 9*B {
			t.Fatalf("over the bound: %d/%d requests, %d/%d bytes", cnt, L, byt, B)
		}
	})
}

func subWindowNanos(windowSecs int) int64 { return int64(windowSecs) * 1e9 / quantaPerWindow }
