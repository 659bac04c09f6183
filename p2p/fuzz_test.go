package p2p

import (
	"strconv"
	"strings"
	"testing"
)

func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("p2p_max_per_sec = 10\n[runtime]\nreactor_idle_poll_ms = 5\n"), "", "")
	f.Add([]byte("p2p_rate_window_secs = 0\n"), "5", "")
	f.Add([]byte("p2p_chain_sync_interval_ms = 0\np2p_max_bytes_per_sec = 1024\n"), "", "0")
	f.Add([]byte("p2p_max_per_sec = \"x\"\nfoo = [1, 2]\n[a.b]\nc = 1\n"), "-1", "abc")
	f.Add([]byte("p2p_max_per_sec = 1e3\n"), "99999999999999999999", " 20 ")
	f.Add([]byte("p2p_max_per_sec = 9223372036854775807\n"), "", "")
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
		cfg, settings, warnings, err := loadConfig("node.toml", data, true, getenv)
		if err != nil {
			if cfg != (Config{}) || settings != nil || warnings != nil {
				t.Fatalf("error %v but a half-applied result: %+v %v %v", err, cfg, settings, warnings)
			}
			if !strings.HasPrefix(err.Error(), "p2p config: ") {
				t.Fatalf("error without the p2p config prefix: %v", err)
			}
			return
		}
		if verr := cfg.Validate(); verr != nil {
			t.Fatalf("loaded an invalid config %+v: %v", cfg, verr)
		}
		if len(settings) != 4 {
			t.Fatalf("want 4 settings, got %v", settings)
		}
		values := []int{cfg.RateWindowSecs, cfg.MaxPerSec, cfg.MaxBytesPerSec, cfg.ChainSyncIntervalMS}
		for i, s := range settings {
			if s.Source != SourceDefault && s.Source != SourceFile && s.Source != SourceEnv {
				t.Fatalf("bad source %q", s.Source)
			}
			if s.Value != strconv.Itoa(values[i]) {
				t.Fatalf("setting %v does not match config %+v", s, cfg)
			}
			if s.Source == SourceEnv && s.Env != EnvMaxPerSec && s.Env != EnvChainSyncIntervalMS {
				t.Fatalf("env source for a variable that was not set: %v", s)
			}
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, "node.toml: unknown key ") {
				t.Fatalf("odd warning %q", w)
			}
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
