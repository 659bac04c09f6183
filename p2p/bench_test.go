package p2p

import (
	"runtime"
	"testing"
	"time"
)

func benchLimiter(b *testing.B, maxReq, maxBytes int) *Limiter {
	b.Helper()
	cfg := DefaultConfig()
	cfg.MaxPerSec, cfg.MaxBytesPerSec = maxReq, maxBytes
	l, err := NewLimiter(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAllowHotPeer: one peer, limits high enough that every message is
// allowed (the common path).
func BenchmarkAllowHotPeer(b *testing.B) {
	l := benchLimiter(b, 1_000_000, 1<<30)
	p := PeerIDFromString("hot")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Allow(p, 512, t0.Add(time.Duration(i)*100))
	}
}

// BenchmarkAllowHotPeerRefused: one peer far over its limit (every decision
// refuses and computes RetryAfter).
func BenchmarkAllowHotPeerRefused(b *testing.B) {
	l := benchLimiter(b, 100, 65536)
	p := PeerIDFromString("flood")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Allow(p, 512, t0.Add(time.Duration(i)*100))
	}
}

const benchPeers = 100_000

// BenchmarkAllow100kPeers: decisions spread over 100 000 peers in a scattered
// order (each peer's state is usually out of cache).
func BenchmarkAllow100kPeers(b *testing.B) {
	l := benchLimiter(b, 100, 65536)
	for i := range benchPeers {
		l.Allow(PeerID(i), 512, t0)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := PeerID((uint64(i) * 7919) % benchPeers)
		l.Allow(p, 512, t0.Add(time.Duration(i)*10))
	}
}

// BenchmarkAllowParallel100kPeers: as above from every P at once.
func BenchmarkAllowParallel100kPeers(b *testing.B) {
	l := benchLimiter(b, 100, 65536)
	for i := range benchPeers {
		l.Allow(PeerID(i), 512, t0)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := uint64(time.Now().UnixNano())
		for pb.Next() {
			i++
			l.Allow(PeerID((i*7919)%benchPeers), 512, t0.Add(time.Duration(i%1_000_000)*10))
		}
	})
}

// BenchmarkMemoryPerPeer reports heap bytes per peer (both limits) after
// populating 100 000 peers.
func BenchmarkMemoryPerPeer(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := benchLimiter(b, 100, 65536)
		for i := range benchPeers {
			l.Allow(PeerID(i), 512, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchPeers, "B/peer")
		runtime.KeepAlive(l)
	}
}
