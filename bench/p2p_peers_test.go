package bench

// The peers p2p.Limiter is measured against, each behind p2pAllower. All of
// them are asked the same question: may this peer send one message of size
// bytes at now (requests and bytes per window), except sethvargo/go-limiter,
// which limits requests only and reads the wall clock itself.

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	slimiter "github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	"golang.org/x/time/rate"

	"github.com/theblock/tbops/p2p"
)

// p2pAllower is what every contender offers: decide one message.
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
	mu        sync.Mutex
	peers     map[uint64]*peerRate
	reqRate   rate.Limit
	reqBurst  int
	byteRate  rate.Limit
	byteBurst int
}

type peerRate struct{ req, bytes *rate.Limiter }

func newRateMap(cfg p2p.Config) *rateMap {
	w := cfg.Window().Seconds()
	return &rateMap{
		peers:     map[uint64]*peerRate{},
		reqRate:   rate.Limit(float64(cfg.MaxPerSec) / w),
		reqBurst:  cfg.MaxPerSec,
		byteRate:  rate.Limit(float64(cfg.MaxBytesPerSec) / w),
		byteBurst: cfg.MaxBytesPerSec,
	}
}

func (m *rateMap) Allow(peer uint64, size int, now time.Time) bool {
	m.mu.Lock()
	p := m.peers[peer]
	if p == nil {
		p = &peerRate{rate.NewLimiter(m.reqRate, m.reqBurst), rate.NewLimiter(m.byteRate, m.byteBurst)}
		m.peers[peer] = p
	}
	m.mu.Unlock()
	return p.req.AllowN(now, 1) && p.bytes.AllowN(now, size)
}

// peerKeys holds the string keys of peers 0..n-1, formatted once, so the
// string-keyed peers are measured without the cost of formatting a key per
// call (their memory benchmark formats keys inside the measured region, since
// their maps keep them).
type peerKeys []string

func newPeerKeys(n int) peerKeys {
	k := make(peerKeys, n)
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}

func (k peerKeys) of(peer uint64) string {
	if peer < uint64(len(k)) {
		return k[peer]
	}
	return strconv.FormatUint(peer, 10)
}

// throttledGCRA is github.com/throttled/throttled/v2: one GCRA limiter per
// limit over its in-memory store (unbounded map, its fastest mode), the clock
// injected through the store. Burst = the per-window maximum, rate = maximum
// per window.
type throttledGCRA struct {
	keys       peerKeys
	clock      *atomic.Int64
	req, bytes *throttled.GCRARateLimiterCtx
}

func newThrottled(cfg p2p.Config, keys peerKeys) p2pAllower {
	clock := new(atomic.Int64)
	limiter := func(n int) *throttled.GCRARateLimiterCtx {
		st, err := memstore.New(0)
		if err != nil {
			panic(err)
		}
		st.SetTimeNow(func() time.Time { return time.Unix(0, clock.Load()) })
		q := throttled.RateQuota{MaxRate: throttled.PerDuration(n, cfg.Window()), MaxBurst: n - 1}
		l, err := throttled.NewGCRARateLimiterCtx(throttled.WrapStoreWithContext(st), q)
		if err != nil {
			panic(err)
		}
		return l
	}
	return &throttledGCRA{keys: keys, clock: clock, req: limiter(cfg.MaxPerSec), bytes: limiter(cfg.MaxBytesPerSec)}
}

func (t *throttledGCRA) Allow(peer uint64, size int, now time.Time) bool {
	// The store has one clock for every caller: keep it monotonic (a late
	// caller is decided at the newest time, as p2p.Limiter does), or a
	// goroutine that lags would turn other peers' time back.
	for ns, old := now.UnixNano(), t.clock.Load(); ns > old && !t.clock.CompareAndSwap(old, ns); old = t.clock.Load() {
	}
	key := t.keys.of(peer)
	limited, _, err := t.req.RateLimitCtx(context.Background(), key, 1)
	if err != nil || limited {
		return false
	}
	limited, _, err = t.bytes.RateLimitCtx(context.Background(), key, size)
	return err == nil && !limited
}

// sethvargoLimiter is github.com/sethvargo/go-limiter's memorystore: requests
// only (it has no cost per take) and always on the wall clock (no injection),
// so its "now" is the machine's, not the benchmark's.
type sethvargoLimiter struct {
	keys  peerKeys
	store slimiter.Store
}

func newSethvargo(cfg p2p.Config, keys peerKeys) *sethvargoLimiter {
	st, err := memorystore.New(&memorystore.Config{Tokens: uint64(cfg.MaxPerSec), Interval: cfg.Window()})
	if err != nil {
		panic(err)
	}
	return &sethvargoLimiter{keys: keys, store: st}
}

func (s *sethvargoLimiter) Allow(peer uint64, _ int, _ time.Time) bool {
	_, _, _, ok, err := s.store.Take(context.Background(), s.keys.of(peer))
	return err == nil && ok
}

func (s *sethvargoLimiter) Close() { _ = s.store.Close(context.Background()) }

// gcraRef is the reference the issue asked for: a plain sharded map of two
// int64 per peer, the GCRA "theoretical arrival times" of its requests and
// bytes. Burst = the per-window maximum, so it admits up to 2 × the maximum
// in a window (a full burst, then the refill); it neither evicts nor bounds
// memory. It shows what the simplest state costs.
type gcraRef struct {
	shards        []gcraShard
	shift         uint
	window        int64
	reqT, byteT   int64 // emission intervals: window / maximum, in ns
	reqMax, bytes int
}

type gcraShard struct {
	mu sync.Mutex
	m  map[uint64]gcraTAT
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

type gcraTAT struct{ req, bytes int64 }

func newGCRARef(cfg p2p.Config, shards int) *gcraRef {
	n, shift := 1, uint(64)
	for n < shards {
		n, shift = n<<1, shift-1
	}
	g := &gcraRef{
		shards: make([]gcraShard, n), shift: shift, window: int64(cfg.Window()),
		reqT: int64(cfg.Window()) / int64(cfg.MaxPerSec), byteT: int64(cfg.Window()) / int64(cfg.MaxBytesPerSec),
	}
	for i := range g.shards {
		g.shards[i].m = map[uint64]gcraTAT{}
	}
	return g
}

func (g *gcraRef) Allow(peer uint64, size int, now time.Time) bool {
	ns := now.UnixNano()
	s := &g.shards[(peer*0x9e3779b97f4a7c15)>>g.shift]
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[peer]
	req := max(st.req, ns) + g.reqT
	bytes := max(st.bytes, ns) + int64(size)*g.byteT
	if req-ns > g.window || bytes-ns > g.window {
		return false
	}
	s.m[peer] = gcraTAT{req, bytes}
	return true
}
