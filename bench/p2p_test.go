package bench

// Side-by-side benchmarks of p2p.Limiter and the usual alternative: a map of
// golang.org/x/time/rate limiters, one per peer and per limit, behind a mutex.
// Run: cd bench && go test -run '^$' -bench P2P -benchmem -benchtime 1s -cpu 1,2

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/theblock/tbops/p2p"
)

// p2pAllower is what both contenders offer: decide one message.
type p2pAllower interface {
	Allow(peer uint64, size int, now time.Time) bool
}

type tbopsP2P struct{ l *p2p.Limiter }

func (t tbopsP2P) Allow(peer uint64, size int, now time.Time) bool {
	return t.l.Allow(p2p.PeerID(peer), size, now).Allowed()
}

// rateMap is the common hand-rolled per-peer limiter: a token bucket per
// limit, created on first sight, never evicted.
type rateMap struct {
	mu       sync.Mutex
	peers    map[uint64]*peerRate
	reqRate  rate.Limit
	reqBurst int
	byteRate rate.Limit
	byteBurs int
}

type peerRate struct{ req, bytes *rate.Limiter }

func newRateMap(cfg p2p.Config) *rateMap {
	w := cfg.Window().Seconds()
	return &rateMap{
		peers:    map[uint64]*peerRate{},
		reqRate:  rate.Limit(float64(cfg.MaxPerSec) / w),
		reqBurst: cfg.MaxPerSec,
		byteRate: rate.Limit(float64(cfg.MaxBytesPerSec) / w),
		byteBurs: cfg.MaxBytesPerSec,
	}
}

func (m *rateMap) Allow(peer uint64, size int, now time.Time) bool {
	m.mu.Lock()
	p := m.peers[peer]
	if p == nil {
		p = &peerRate{rate.NewLimiter(m.reqRate, m.reqBurst), rate.NewLimiter(m.byteRate, m.byteBurs)}
		m.peers[peer] = p
	}
	m.mu.Unlock()
	return p.req.AllowN(now, 1) && p.bytes.AllowN(now, size)
}

var p2pT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const p2pPeers = 100_000

func p2pContenders(b *testing.B, cfg p2p.Config) []struct {
	name string
	make func() p2pAllower
} {
	return []struct {
		name string
		make func() p2pAllower
	}{
		{"tbops", func() p2pAllower {
			l, err := p2p.NewLimiter(cfg)
			if err != nil {
				b.Fatal(err)
			}
			return tbopsP2P{l}
		}},
		{"xrate-map", func() p2pAllower { return newRateMap(cfg) }},
	}
}

func p2pScattered() []uint64 {
	ids := make([]uint64, p2pPeers)
	for i := range ids {
		ids[i] = (uint64(i) * 7919) % p2pPeers
	}
	return ids
}

// BenchmarkP2PHotPeer: one peer, every message allowed (40 000/s of clock).
func BenchmarkP2PHotPeer(b *testing.B) {
	cfg := p2p.DefaultConfig()
	cfg.MaxPerSec, cfg.MaxBytesPerSec = 50_000, 1<<30
	for _, c := range p2pContenders(b, cfg) {
		b.Run(c.name, func(b *testing.B) {
			a := c.make()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				a.Allow(42, 512, p2pT0.Add(time.Duration(i)*25*time.Microsecond))
			}
		})
	}
}

// BenchmarkP2PParallelHotPeers: every P drives its own hot peer (-cpu 1,2
// shows the scaling: shard locks vs the map's one mutex).
func BenchmarkP2PParallelHotPeers(b *testing.B) {
	cfg := p2p.DefaultConfig()
	cfg.MaxPerSec, cfg.MaxBytesPerSec = 50_000, 1<<30
	for _, c := range p2pContenders(b, cfg) {
		b.Run(c.name, func(b *testing.B) {
			a := c.make()
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				peer := next.Add(1) * 0x9e3779b97f4a7c15
				i := 0
				for pb.Next() {
					i++
					a.Allow(peer, 512, p2pT0.Add(time.Duration(i)*25*time.Microsecond))
				}
			})
		})
	}
}

// BenchmarkP2PHotPeerRefused: one peer flooding far over the default limits.
func BenchmarkP2PHotPeerRefused(b *testing.B) {
	cfg := p2p.DefaultConfig()
	for _, c := range p2pContenders(b, cfg) {
		b.Run(c.name, func(b *testing.B) {
			a := c.make()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				a.Allow(42, 512, p2pT0.Add(time.Duration(i)*100))
			}
		})
	}
}

// BenchmarkP2P100kPeers: 100 000 known peers visited in a scattered order,
// each sending 10 messages per second of clock (default limits).
func BenchmarkP2P100kPeers(b *testing.B) {
	cfg := p2p.DefaultConfig()
	ids := p2pScattered()
	for _, c := range p2pContenders(b, cfg) {
		b.Run(c.name, func(b *testing.B) {
			a := c.make()
			for i := range p2pPeers {
				a.Allow(uint64(i), 512, p2pT0)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				a.Allow(ids[i%p2pPeers], 512, p2pT0.Add(time.Duration(i)*time.Microsecond))
			}
		})
	}
}

// BenchmarkP2PParallel100kPeers: the same from every P (run with -cpu 1,2 to
// see the scaling).
func BenchmarkP2PParallel100kPeers(b *testing.B) {
	cfg := p2p.DefaultConfig()
	ids := p2pScattered()
	for _, c := range p2pContenders(b, cfg) {
		b.Run(c.name, func(b *testing.B) {
			a := c.make()
			for i := range p2pPeers {
				a.Allow(uint64(i), 512, p2pT0)
			}
			var start atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(start.Add(p2pPeers / 4))
				for pb.Next() {
					i++
					a.Allow(ids[i%p2pPeers], 512, p2pT0.Add(time.Duration(i)*time.Microsecond))
				}
			})
		})
	}
}

// BenchmarkP2PMemoryPerPeer: live heap per peer (both limits) after 100 000
// peers sent one message each.
func BenchmarkP2PMemoryPerPeer(b *testing.B) {
	cfg := p2p.DefaultConfig()
	for _, c := range p2pContenders(b, cfg) {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				a := c.make()
				for i := range p2pPeers {
					a.Allow(uint64(i)*0x9e3779b97f4a7c15, 512, p2pT0)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/p2pPeers, "B/peer")
				runtime.KeepAlive(a)
			}
		})
	}
}
