package bench

// Side-by-side benchmarks of p2p.Limiter and its peers (p2p_peers_test.go):
// a mutex map of golang.org/x/time/rate limiters, throttled/v2's GCRA over its
// memstore, sethvargo/go-limiter's memorystore (requests only, wall clock) and
// gcraRef, a two-int64 sharded-map GCRA. Each benchmark runs every contender
// as a sub-benchmark (impl=...), one after the other; running the test binary
// several times interleaves them, and benchstat takes medians per contender.
// Besides ns/op each reports cpu-ns/op, the process's CPU time per decision,
// which leaves out time spent waiting for a core on a shared machine.
//
//	cd bench && go test -c -o /tmp/p2pbench . && for i in $(seq 6); do
//	  /tmp/p2pbench -test.run '^$' -test.bench 'P2P[^M]' -test.benchmem -test.cpu 1,2 -test.benchtime 1s
//	  /tmp/p2pbench -test.run '^$' -test.bench P2PMemory -test.benchtime 3x
//	done > /tmp/p2p.txt && go run golang.org/x/perf/cmd/benchstat@latest -col /impl /tmp/p2p.txt

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/theblock/tbops/p2p"
)

var p2pT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const p2pPeers = 100_000

type p2pContender struct {
	name string
	make func() p2pAllower
}

// p2pContenders builds the contenders for cfg. sethvargo/go-limiter runs on
// the wall clock and refills at most about 31 600 tokens per 1 s interval
// (its refill is ⌊interval/tokens⌋ per interval, capped at tokens), so a hot
// peer at benchmark speed is refused whatever its limit: it takes part only
// where withSethvargo says so (floods, many peers, memory).
func p2pContenders(b *testing.B, cfg p2p.Config, withSethvargo bool) []p2pContender {
	keys := newPeerKeys(p2pPeers)
	cs := []p2pContender{
		{"tbops", func() p2pAllower {
			l, err := p2p.NewLimiter(cfg)
			if err != nil {
				b.Fatal(err)
			}
			return tbopsP2P{l}
		}},
		{"xrate-map", func() p2pAllower { return newRateMap(cfg) }},
		{"throttled", func() p2pAllower { return newThrottled(cfg, keys) }},
		{"gcra-ref", func() p2pAllower { return newGCRARef(cfg, max(16, 8*runtime.GOMAXPROCS(0))) }},
	}
	if withSethvargo {
		cs = append(cs, p2pContender{"sethvargo", func() p2pAllower {
			s := newSethvargo(cfg, keys)
			b.Cleanup(s.Close)
			return s
		}})
	}
	return cs
}

// hotConfig allows every message of a hot peer sending 40 000 a second of
// 512 bytes (20 MB/s; 64 MiB per window keeps the GCRA peers' emission
// interval, window / maximum, above a nanosecond).
func hotConfig() p2p.Config {
	cfg := p2p.DefaultConfig()
	cfg.MaxPerSec, cfg.MaxBytesPerSec = 50_000, 64<<20
	return cfg
}

// cpuNanos is the process's CPU time (user + system, all threads). Reported
// per decision beside ns/op, it leaves out the time the benchmark waited for
// a core, which on a shared machine can be most of the wall time.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func reportCPU(b *testing.B, since int64, ops int64) {
	b.ReportMetric(float64(cpuNanos()-since)/float64(ops), "cpu-ns/op")
}

// expect fails the benchmark when the scenario did not take the path it is
// named after (allowed or refused), so a figure always means what its row says.
func expect(b *testing.B, allowed, total int64, wantAllowed bool) {
	b.Helper()
	if wantAllowed && allowed != total {
		b.Fatalf("%d of %d messages refused in an all-allowed scenario", total-allowed, total)
	}
	if !wantAllowed && allowed*100 > total {
		b.Fatalf("%d of %d messages allowed in a flood", allowed, total)
	}
}

// BenchmarkP2PHotPeer: one peer, every message allowed (40 000/s of clock).
func BenchmarkP2PHotPeer(b *testing.B) {
	for _, c := range p2pContenders(b, hotConfig(), false) {
		b.Run("impl="+c.name, func(b *testing.B) {
			a := c.make()
			var allowed, n int64
			b.ReportAllocs()
			cpu := cpuNanos()
			for b.Loop() {
				if a.Allow(42, 512, p2pT0.Add(time.Duration(n)*25*time.Microsecond)) {
					allowed++
				}
				n++
			}
			reportCPU(b, cpu, n)
			expect(b, allowed, n, true)
		})
	}
}

// BenchmarkP2PHotPeerRefused: one peer flooding far over the default limits
// (a message every 100 ns of clock against 100 per second).
func BenchmarkP2PHotPeerRefused(b *testing.B) {
	for _, c := range p2pContenders(b, p2p.DefaultConfig(), true) {
		b.Run("impl="+c.name, func(b *testing.B) {
			a := c.make()
			var allowed, n int64
			b.ReportAllocs()
			cpu := cpuNanos()
			for b.Loop() {
				if a.Allow(42, 512, p2pT0.Add(time.Duration(n)*100)) {
					allowed++
				}
				n++
			}
			reportCPU(b, cpu, n)
			if n > 10_000 { // short calibration runs are mostly the initial burst
				expect(b, allowed, n, false)
			}
		})
	}
}

// sharedClock is the clock of the parallel benchmarks: each goroutine moves
// it on by step per message, 64 messages at a time, so every contender sees
// one clock (throttled's store has only one), and a peer never gets more than
// one message per step of it, however the goroutines are scheduled.
type sharedClock struct{ ns atomic.Int64 }

func (c *sharedClock) advance64(step time.Duration) time.Time {
	return p2pT0.Add(time.Duration(c.ns.Add(64 * int64(step))))
}

// BenchmarkP2PParallelHotPeers: every P drives its own hot peer (-cpu 1,2
// shows the scaling: shard locks against one map mutex), all allowed.
func BenchmarkP2PParallelHotPeers(b *testing.B) {
	for _, c := range p2pContenders(b, hotConfig(), false) {
		b.Run("impl="+c.name, func(b *testing.B) {
			a := c.make()
			var next, refused atomic.Int64
			var clock sharedClock
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuNanos()
			b.RunParallel(func(pb *testing.PB) {
				peer := uint64(next.Add(1))
				var now time.Time
				for i := 0; pb.Next(); i++ {
					if i%64 == 0 {
						now = clock.advance64(25 * time.Microsecond)
					}
					if !a.Allow(peer, 512, now) {
						refused.Add(1)
					}
				}
			})
			reportCPU(b, cpu, int64(b.N))
			expect(b, -refused.Load(), 0, true)
		})
	}
}

func p2pScattered() []uint64 {
	ids := make([]uint64, p2pPeers)
	for i := range ids {
		ids[i] = (uint64(i) * 7919) % p2pPeers
	}
	return ids
}

func warm(a p2pAllower) {
	for i := range p2pPeers {
		a.Allow(uint64(i), 512, p2pT0)
	}
}

// BenchmarkP2P100kPeers: 100 000 known peers visited in a scattered order,
// each sending 10 messages per second of clock (default limits, all allowed).
func BenchmarkP2P100kPeers(b *testing.B) {
	ids := p2pScattered()
	for _, c := range p2pContenders(b, p2p.DefaultConfig(), true) {
		b.Run("impl="+c.name, func(b *testing.B) {
			a := c.make()
			warm(a)
			var allowed, n int64
			b.ReportAllocs()
			cpu := cpuNanos()
			for b.Loop() {
				if a.Allow(ids[n%p2pPeers], 512, p2pT0.Add(time.Duration(n)*time.Microsecond)) {
					allowed++
				}
				n++
			}
			reportCPU(b, cpu, n)
			expect(b, allowed, n, true)
		})
	}
}

// BenchmarkP2PParallel100kPeers: the same from every P (-cpu 1,2), each
// goroutine walking the peers from its own starting point.
func BenchmarkP2PParallel100kPeers(b *testing.B) {
	ids := p2pScattered()
	for _, c := range p2pContenders(b, p2p.DefaultConfig(), true) {
		b.Run("impl="+c.name, func(b *testing.B) {
			a := c.make()
			warm(a)
			var start, refused atomic.Int64
			var clock sharedClock
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuNanos()
			b.RunParallel(func(pb *testing.PB) {
				i := start.Add(p2pPeers / 4)
				var now time.Time
				for n := 0; pb.Next(); n++ {
					if n%64 == 0 {
						now = clock.advance64(time.Microsecond)
					}
					i++
					if !a.Allow(ids[i%p2pPeers], 512, now) {
						refused.Add(1)
					}
				}
			})
			reportCPU(b, cpu, int64(b.N))
			expect(b, -refused.Load(), 0, true)
		})
	}
}

// BenchmarkP2PMemoryPerPeer: live heap per peer (both limits; requests only
// for sethvargo) after 100 000 peers sent one message each. String-keyed
// peers format their keys inside the measured region: their maps keep them.
func BenchmarkP2PMemoryPerPeer(b *testing.B) {
	for _, c := range p2pContenders(b, p2p.DefaultConfig(), true) {
		b.Run("impl="+c.name, func(b *testing.B) {
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				a := c.make()
				for i := range p2pPeers {
					a.Allow(uint64(i)+p2pPeers, 512, p2pT0) // ids past the preformatted keys
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/p2pPeers, "B/peer")
				runtime.KeepAlive(a)
			}
		})
	}
}
