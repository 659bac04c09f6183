package p2p

import (
	"runtime"
	"sync/atomic"
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
	l := benchLimiter(b, 50_000, 1<<30)
	p := PeerIDFromString("hot")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ { // 40 000 messages per second of clock
		l.Allow(p, 512, t0.Add(time.Duration(i)*25*time.Microsecond))
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

// BenchmarkAllowParallelHotPeers: every P drives its own hot peer (run with
// -cpu 1,2 to see the scaling). Each goroutine has its own clock; a message
// every 250 µs of it keeps every message allowed even when one goroutine
// runs far ahead (a shard decides a late clock at its newest time).
func BenchmarkAllowParallelHotPeers(b *testing.B) {
	l := benchLimiter(b, 50_000, 1<<30)
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := PeerIDFromString(string(rune('a' + next.Add(1))))
		i := 0
		for pb.Next() {
			i++
			l.Allow(p, 512, t0.Add(time.Duration(i)*250*time.Microsecond))
		}
	})
}

const benchPeers = 100_000

// scattered is a fixed pseudo-random visiting order of benchPeers peers.
func scattered() []PeerID {
	ids := make([]PeerID, benchPeers)
	for i := range ids {
		ids[i] = PeerID((uint64(i) * 7919) % benchPeers)
	}
	return ids
}

// BenchmarkAllow100kPeers: decisions spread over 100 000 peers in a scattered
// order (each peer's state is usually out of cache).
func BenchmarkAllow100kPeers(b *testing.B) {
	l := benchLimiter(b, 100, 65536)
	for i := range benchPeers {
		l.Allow(PeerID(i), 512, t0)
	}
	ids := scattered()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// 1 µs of clock per decision: each peer sends 10 per second.
		l.Allow(ids[i%benchPeers], 512, t0.Add(time.Duration(i)*time.Microsecond))
	}
}

// BenchmarkAllowParallel100kPeers: as above from every P at once.
func BenchmarkAllowParallel100kPeers(b *testing.B) {
	l := benchLimiter(b, 100, 65536)
	for i := range benchPeers {
		l.Allow(PeerID(i), 512, t0)
	}
	ids := scattered()
	var start atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(benchPeers / 4))
		for pb.Next() {
			i++
			// 1 µs of clock per decision: each peer sends 10 per second.
			l.Allow(ids[i%benchPeers], 512, t0.Add(time.Duration(i)*time.Microsecond))
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
