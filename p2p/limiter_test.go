package p2p

import (
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestLimiter(t testing.TB, window, maxReq, maxBytes int, opts ...LimiterOption) *Limiter {
	t.Helper()
	cfg := DefaultConfig()
	cfg.RateWindowSecs, cfg.MaxPerSec, cfg.MaxBytesPerSec = window, maxReq, maxBytes
	l, err := NewLimiter(cfg, append([]LimiterOption{WithSeed(1)}, opts...)...)
	require.NoError(t, err)
	return l
}

func TestLimiterRequests(t *testing.T) {
	l := newTestLimiter(t, 1, 100, 1<<20)
	p := PeerIDFromString("peer-a")
	for i := range 100 {
		require.True(t, l.Allow(p, 10, t0).Allowed(), "request %d", i)
	}
	d := l.Allow(p, 10, t0)
	assert.Equal(t, LimitRequests, d.Limit)
	assert.Equal(t, "requests", d.Limit.String())
	require.Greater(t, d.RetryAfter, time.Duration(0))
	assert.LessOrEqual(t, d.RetryAfter, 1125*time.Millisecond)
	// Another peer is unaffected.
	assert.True(t, l.Allow(PeerIDFromString("peer-b"), 10, t0).Allowed())
	// Just before RetryAfter it still refuses; at RetryAfter it allows.
	assert.False(t, l.Allow(p, 10, t0.Add(d.RetryAfter-time.Nanosecond)).Allowed())
	assert.True(t, l.Allow(p, 10, t0.Add(d.RetryAfter)).Allowed())

	st := l.Stats()
	assert.Equal(t, 2, st.Peers)
	assert.Equal(t, uint64(102), st.Allowed)
	assert.Equal(t, uint64(2), st.RefusedRequests)
}

func TestLimiterBytesAndSize(t *testing.T) {
	l := newTestLimiter(t, 1, 1000, 4096)
	p := PeerID(7)
	assert.True(t, l.Allow(p, 4000, t0).Allowed())
	d := l.Allow(p, 200, t0)
	assert.Equal(t, LimitBytes, d.Limit)
	assert.Greater(t, d.RetryAfter, time.Duration(0))
	assert.True(t, l.Allow(p, 96, t0).Allowed(), "a smaller message still fits")

	d = l.Allow(p, 5000, t0.Add(time.Hour))
	assert.Equal(t, Decision{Limit: LimitSize}, d, "larger than the whole budget: never")
	assert.Equal(t, "size", d.Limit.String())
	assert.True(t, l.Allow(p, -3, t0).Allowed(), "negative size counts as 0")
	st := l.Stats()
	assert.Equal(t, uint64(1), st.RefusedBytes)
	assert.Equal(t, uint64(1), st.RefusedSize)
}

func TestLimiterBothLimitsRefuse(t *testing.T) {
	l := newTestLimiter(t, 1, 2, 2048)
	p := PeerID(9)
	require.True(t, l.Allow(p, 1024, t0).Allowed())
	require.True(t, l.Allow(p, 1024, t0).Allowed())
	d := l.Allow(p, 1024, t0)
	assert.Equal(t, LimitRequests, d.Limit, "requests reported first")
	assert.Greater(t, d.RetryAfter, time.Duration(0))
	assert.True(t, l.Allow(p, 1024, t0.Add(d.RetryAfter)).Allowed())
}

// limitsAt evaluates each limit separately for a message at ns (not before
// the shard's newest time), on a copy: nothing is counted.
func limitsAt(l *Limiter, id, need uint64, ns int64) (okReq, okBytes bool) {
	key := l.hash(id)
	s := &l.shards[key>>l.shift]
	c := &s.cfg
	var p peer
	p.load(s.find(key), c.tickOf(ns))
	return p.req.admits(c.req, 1, ns, p.last, c), p.bytes.admits(c.bytes, need, ns, p.last, c)
}

// wouldAllow is limitsAt for both limits at once.
func wouldAllow(l *Limiter, id, need uint64, ns int64) bool {
	okReq, okBytes := limitsAt(l, id, need, ns)
	return okReq && okBytes
}

// TestFloodRefusalsMatchTheSlowPath: a flooding peer is refused from the
// shard's refusal cache; every such decision must be what the full test says:
// the right limit, and a RetryAfter that is exactly the first passing moment.
func TestFloodRefusalsMatchTheSlowPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	l := newTestLimiter(t, 1, 20, 8192, WithShards(1))
	ns := t0.UnixNano()
	seen := map[Limit]int{}
	for i := range 20000 {
		ns += rng.Int64N(int64(2 * time.Millisecond))
		size := 700 // the flood's message
		if i%50 == 0 {
			size = rng.IntN(100) // now and then a small one that may pass
		}
		key := uint64(1)
		if i%7 == 0 {
			key = 2 // a second peer in the same shard
		}
		okReq, okBytes := limitsAt(l, key, uint64(size), ns)
		d := l.allowNanos(key, size, ns)
		seen[d.Limit]++
		switch {
		case !okReq:
			require.Equal(t, LimitRequests, d.Limit, "step %d", i)
		case !okBytes:
			require.Equal(t, LimitBytes, d.Limit, "step %d", i)
		default:
			require.True(t, d.Allowed(), "step %d", i)
			continue
		}
		at := ns + int64(d.RetryAfter)
		require.True(t, wouldAllow(l, key, uint64(size), at), "step %d: allowed at RetryAfter", i)
		require.False(t, wouldAllow(l, key, uint64(size), at-1), "step %d: refused 1ns before", i)
	}
	assert.Greater(t, seen[LimitRequests], 100)
	assert.Greater(t, seen[LimitBytes], 100)
	assert.Greater(t, seen[LimitNone], 100)
}

// TestRetryAfterIsExact: on random traffic, every RetryAfter is the first
// nanosecond at which the message would pass.
func TestRetryAfterIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, window := range []int{1, 3} {
		l := newTestLimiter(t, window, 50, 20000)
		ns := t0.UnixNano()
		checked := 0
		for range 20000 {
			ns += rng.Int64N(int64(time.Duration(window)*time.Second) / 40)
			size := rng.IntN(2000)
			d := l.allowNanos(3, size, ns)
			if d.Allowed() {
				continue
			}
			require.Greater(t, d.RetryAfter, time.Duration(0))
			at := ns + int64(d.RetryAfter)
			require.True(t, wouldAllow(l, 3, uint64(size), at), "allowed at RetryAfter")
			if d.RetryAfter > 1 {
				require.False(t, wouldAllow(l, 3, uint64(size), at-1), "refused 1ns before RetryAfter")
			}
			checked++
		}
		assert.Greater(t, checked, 1000)
	}
}

// event is one message offered to a limiter in the accuracy tests.
type event struct {
	ns   int64
	size int
}

// maxInWindow is the exact sliding-window log: the most admitted messages and
// bytes in any closed window [t-W, t].
func maxInWindow(admitted []event, w int64) (count, bytes int) {
	j, b := 0, 0
	for i, e := range admitted {
		b += e.size
		for admitted[j].ns < e.ns-w {
			b -= admitted[j].size
			j++
		}
		count = max(count, i-j+1)
		bytes = max(bytes, b)
	}
	return count, bytes
}

func offer(l *Limiter, key uint64, evs []event) (admitted []event) {
	sort.Slice(evs, func(i, j int) bool { return evs[i].ns < evs[j].ns })
	for _, e := range evs {
		if l.allowNanos(key, e.size, e.ns).Allowed() {
			admitted = append(admitted, e)
		}
	}
	return admitted
}

// exactAdmitted is what an exact sliding log limiter admits (for comparison):
// how many messages and bytes.
func exactAdmitted(evs []event, w int64, maxReq, maxBytes int) (int, int) {
	var adm []event
	j, b := 0, 0
	for _, e := range evs {
		for j < len(adm) && adm[j].ns <= e.ns-w {
			b -= adm[j].size
			j++
		}
		if len(adm)-j+1 <= maxReq && b+e.size <= maxBytes {
			adm = append(adm, e)
			b += e.size
		}
	}
	return len(adm), sumSize(adm)
}

func sumSize(evs []event) (n int) {
	for _, e := range evs {
		n += e.size
	}
	return n
}

func randomTraffic(rng *rand.Rand, w int64, n int, meanGap int64, maxSize int) []event {
	evs := make([]event, n)
	ns := t0.UnixNano()
	for i := range evs {
		ns += rng.Int64N(2 * meanGap)
		evs[i] = event{ns, 1 + rng.IntN(maxSize)}
	}
	return evs
}

// boundaryBursts puts bursts within a hair of window and sub-window edges,
// the traffic that breaks naive fixed and two-bucket counters.
func boundaryBursts(rng *rand.Rand, w int64, bursts, burstLen, maxSize int) []event {
	var evs []event
	base := (t0.UnixNano()/w + 1) * w
	sub := w / quantaPerWindow
	for i := range bursts {
		edge := base + int64(i/2)*w/2 + int64(rng.IntN(quantaPerWindow))*sub
		if rng.IntN(2) == 0 {
			edge = base + int64(i)*w // a window edge
		}
		jitter := rng.Int64N(2*sub/10+1) - sub/10
		for range burstLen {
			evs = append(evs, event{edge + jitter + rng.Int64N(sub/50+1), 1 + rng.IntN(maxSize)})
		}
	}
	return evs
}

func TestLimiterAccuracyAgainstExactLog(t *testing.T) {
	type tc struct {
		name             string
		window, req, byt int
		gen              func(rng *rand.Rand, w int64) []event
	}
	cases := []tc{
		{"random requests", 1, 100, 1 << 30, func(rng *rand.Rand, w int64) []event {
			return randomTraffic(rng, w, 50000, w/300, 100)
		}},
		{"random bytes", 2, 50_000, 65536, func(rng *rand.Rand, w int64) []event {
			return randomTraffic(rng, w, 30000, w/400, 2000)
		}},
		{"random both", 1, 100, 65536, func(rng *rand.Rand, w int64) []event {
			return randomTraffic(rng, w, 50000, w/250, 1200)
		}},
		{"boundary bursts requests", 1, 100, 1 << 30, func(rng *rand.Rand, w int64) []event {
			return boundaryBursts(rng, w, 200, 150, 10)
		}},
		{"boundary bursts bytes", 1, 50_000, 65536, func(rng *rand.Rand, w int64) []event {
			return boundaryBursts(rng, w, 200, 120, 1500)
		}},
		{"boundary bursts small limit", 3, 8, 4096, func(rng *rand.Rand, w int64) []event {
			return boundaryBursts(rng, w, 300, 20, 600)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := int64(c.window) * int64(time.Second)
			for seed := range uint64(5) {
				rng := rand.New(rand.NewPCG(seed, 99))
				evs := c.gen(rng, w)
				l := newTestLimiter(t, c.window, c.req, c.byt)
				adm := offer(l, 42, evs)
				require.NotEmpty(t, adm)
				cnt, byt := maxInWindow(adm, w)
				assert.LessOrEqual(t, float64(cnt), 1.125*float64(c.req), "requests in a window")
				assert.LessOrEqual(t, float64(byt), 1.125*float64(c.byt), "bytes in a window")
				exact, exactBytes := exactAdmitted(evs, w, c.req, c.byt)
				assert.GreaterOrEqual(t, float64(len(adm)), 0.85*float64(exact), "admits most of what the exact log does")
				t.Logf("seed %d: offered %d, admitted %d msgs %d B (exact log %d msgs %d B), max in a window %d/%d req, %d/%d B",
					seed, len(evs), len(adm), sumSize(adm), exact, exactBytes, cnt, c.req, byt, c.byt)
			}
		})
	}
}

// TestLimiterRandomLoadAgainstExactLog: on random traffic the limiter admits
// nearly what an exact sliding log admits at and below the limit, and errs
// towards refusing under overload (the figures in the package documentation).
func TestLimiterRandomLoadAgainstExactLog(t *testing.T) {
	w := int64(time.Second)
	for _, c := range []struct {
		limit   int
		load    float64 // offered rate, in limits per window
		atLeast float64 // admitted, as a fraction of the exact log's
	}{
		{100, 0.9, 0.995}, {100, 1, 0.99}, {100, 3, 0.93},
		{800, 0.9, 0.999}, {800, 1, 0.995}, {800, 3, 0.995},
	} {
		rng := rand.New(rand.NewPCG(0, 7))
		n := int(float64(c.limit) * c.load * 60)
		evs := randomTraffic(rng, w, n, int64(float64(w)/(float64(c.limit)*c.load)), 100)
		got := len(offer(newTestLimiter(t, 1, c.limit, 1<<30), 1, evs))
		exact, _ := exactAdmitted(evs, w, c.limit, 1<<30)
		t.Logf("L=%d at %.1f×: %d offered, refused %d (exact log %d): %.2f%% of the exact log",
			c.limit, c.load, n, n-got, n-exact, 100*float64(got)/float64(exact))
		assert.GreaterOrEqual(t, float64(got), c.atLeast*float64(exact), "L=%d at %.1f×", c.limit, c.load)
	}
}

// bound is the documented over-admission bound for a limit: L + ⌈L/8⌉ − 1,
// under 1.125 × L.
func bound(limit int) int { return limit + (limit+quantaPerWindow-1)/quantaPerWindow - 1 }

// TestLimiterWorstCaseIsTheBound: the pattern that fools the estimate most
// reaches the bound exactly (so the accuracy tests can fail) and never passes
// it. The oldest quantum arrives in one instant, the next one a gap later: the
// estimate takes the oldest as spread over the gap before it, so just before
// it leaves the window it is credited as almost gone, while all of it is
// still in.
func TestLimiterWorstCaseIsTheBound(t *testing.T) {
	const L = 800 // q = 100
	w := int64(time.Second)
	gap := w / 4
	base := (t0.UnixNano()/w + 1) * w
	var evs []event
	for range L / 8 {
		evs = append(evs, event{base, 1})
	}
	for range L - L/8 {
		evs = append(evs, event{base + gap, 1})
	}
	for range L {
		evs = append(evs, event{base + w - 1, 1}) // still within [base, base+W]
	}
	l := newTestLimiter(t, 1, L, 1<<30)
	cnt, _ := maxInWindow(offer(l, 1, evs), w)
	assert.Equal(t, bound(L), cnt, "the bound is reached")
	assert.Less(t, float64(cnt), 1.125*L)

	// The same for bytes.
	evs = evs[:0]
	const B = 8192 // q = 1024
	evs = append(evs, event{base, 1024}, event{base + gap, B - 1024})
	for range 2000 {
		evs = append(evs, event{base + w - 1, 1})
	}
	l = newTestLimiter(t, 1, 50_000, B)
	_, byt := maxInWindow(offer(l, 1, evs), w)
	assert.Equal(t, bound(B), byt)

	// The limit at the very end of one window, then a steady stream: the
	// classic two-bucket counter (previous window weighted by overlap) admits
	// nearly 2x, why the limiter does not use it; the limiter stays within.
	evs = evs[:0]
	for range L {
		evs = append(evs, event{base + w - 1, 1})
	}
	for ns := base + w; ns < base+3*w; ns += w / 20000 {
		evs = append(evs, event{ns, 1})
	}
	cnt2, _ := maxInWindow(twoBucket(evs, w, L), w)
	assert.Greater(t, cnt2, L*18/10)
	cnt, _ = maxInWindow(offer(newTestLimiter(t, 1, L, 1<<30), 1, evs), w)
	assert.LessOrEqual(t, cnt, bound(L))
}

func twoBucket(evs []event, w int64, limit int) (admitted []event) {
	var win int64 = -1
	prev, cur := 0, 0
	for _, e := range evs {
		if i := e.ns / w; i != win {
			if i == win+1 {
				prev = cur
			} else {
				prev = 0
			}
			cur, win = 0, i
		}
		frac := float64(e.ns%w) / float64(w)
		if float64(prev)*(1-frac)+float64(cur)+1 <= float64(limit) {
			cur++
			admitted = append(admitted, e)
		}
	}
	return admitted
}

// TestLimiterSteadyTrafficNeverRefused: an evenly spaced peer is never
// refused at 8/9 of its limit, whatever the limit and phase, nor at 99% when
// the limit is 100 or more. (At exactly the limit about one message per window
// is refused: the sliding-out bucket is assumed evenly spread.)
func TestLimiterSteadyTrafficNeverRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	check := func(L int, rate float64) {
		trials, windows := 10, 10
		if L > 1000 {
			trials, windows = 2, 3
		}
		for range trials {
			l := newTestLimiter(t, 1, L, 1<<30)
			gap := int64(float64(time.Second) / float64(L) / rate)
			ns := t0.UnixNano() + rng.Int64N(int64(time.Second))
			for i := range windows * L {
				if !l.allowNanos(5, 100, ns).Allowed() {
					t.Fatalf("L=%d rate=%.3f message %d refused", L, rate, i)
				}
				ns += gap
			}
		}
	}
	for _, L := range []int{1, 2, 3, 7, 8, 9, 16, 100, 1000} {
		check(L, 8.0/9)
	}
	for _, L := range []int{100, 101, 1000, 12345, 50000} {
		check(L, 0.99)
	}
}

func TestLimiterClockBackwards(t *testing.T) {
	l := newTestLimiter(t, 1, 10, 1<<20)
	for i := range 10 {
		require.True(t, l.Allow(1, 1, t0.Add(time.Duration(i)*time.Millisecond)).Allowed())
	}
	d := l.Allow(1, 1, t0.Add(-time.Hour))
	assert.Equal(t, LimitRequests, d.Limit, "going back in time does not refill the budget")
	assert.Greater(t, d.RetryAfter, time.Duration(0))
	assert.Equal(t, LimitRequests, l.Allow(1, 1, time.Unix(0, -5)).Limit, "pre-1970: same")
	assert.True(t, l.Allow(1, 1, t0.Add(1200*time.Millisecond)).Allowed())
}

func tableSlots(l *Limiter) (slots int) {
	for i := range l.shards {
		slots += 2 * len(l.shards[i].table)
	}
	return slots
}

func TestLimiterEvictsIdlePeers(t *testing.T) {
	l := newTestLimiter(t, 1, 100, 1<<20, WithShards(4))
	const n = 5000
	for i := range n {
		require.True(t, l.Allow(PeerID(i), 1, t0).Allowed())
	}
	assert.Equal(t, n, l.Stats().Peers)
	slotsBefore := tableSlots(l)
	assert.Less(t, slotsBefore, n*2, "table at least half full")

	// Within a window nobody is evicted: their usage still counts.
	later := t0.Add(time.Second)
	for range n {
		l.Allow(PeerID(n+1), 0, later)
	}
	assert.Equal(t, n+1, l.Stats().Peers)

	// Idle for more than a window: the active peers' decisions, which land in
	// every shard, sweep them out as the shards' clocks move on.
	later = later.Add(10 * time.Millisecond)
	for i := range 3 * n {
		l.Allow(PeerID(n+2+i%64), 0, later.Add(time.Duration(i)*40*time.Microsecond))
	}
	later = later.Add(time.Duration(3*n) * 40 * time.Microsecond)
	assert.LessOrEqual(t, l.Stats().Peers, 64+n/10, "most idle peers evicted incrementally")
	assert.Less(t, tableSlots(l), slotsBefore/8, "table shrank")
	assert.GreaterOrEqual(t, l.Prune(later.Add(3*time.Second)), 64)
	assert.Equal(t, 0, l.Prune(later.Add(3*time.Second)), "Prune is idempotent")
	assert.Equal(t, 0, l.Stats().Peers)

	// An evicted peer comes back with a full budget, as it would have anyway.
	for range 100 {
		require.True(t, l.Allow(PeerID(3), 1, later.Add(3*time.Second)).Allowed())
	}
}

// TestLimiterIdleShardForgetsExactly: a peer's last admission is kept modulo
// 2^15 ticks, so the sweep must reach every idle peer before that wraps, even
// in a shard with little traffic. Here 10 000 peers go idle while one peer
// keeps the shard's clock moving for 2^15 ticks and a little more: without
// the sweep an idle peer would look as if it had sent 0.4 s ago.
func TestLimiterIdleShardForgetsExactly(t *testing.T) {
	l := newTestLimiter(t, 1, 1, 1<<20, WithShards(1))
	for i := range 10_000 {
		require.True(t, l.Allow(PeerID(i), 1, t0).Allowed())
	}
	end := t0.Add(1<<lastBits*4*time.Millisecond + 400*time.Millisecond)
	for at := t0.Add(900 * time.Millisecond); at.Before(end); at = at.Add(900 * time.Millisecond) {
		l.Allow(PeerID(20_000), 1, at) // allowed or not, it moves the shard's clock
	}
	for i := range 10_000 {
		require.True(t, l.Allow(PeerID(i), 1, end).Allowed(), "peer %d", i)
	}
}

func TestLimiterPruneKeepsActive(t *testing.T) {
	l := newTestLimiter(t, 1, 100, 1<<20)
	l.Allow(1, 1, t0)
	l.Allow(2, 1, t0.Add(2*time.Second))
	assert.Equal(t, 1, l.Prune(t0.Add(2200*time.Millisecond)))
	assert.Equal(t, 1, l.Stats().Peers)
}

// TestShardIndexModel stresses the cuckoo table (displacements, growth,
// shrinking, the sweep) against a map, with a table small enough that walks
// and resizes happen all the time. Each peer's slot carries a tag that must
// survive every move.
func TestShardIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := &shard{cfg: toShardCfg(DefaultConfig()), now: 1000, rng: 1}
	s.clear()
	live := func(tag uint64) slot {
		return slot{meta: usedBit | uint64(s.now)&lastMask, req: tag}
	}
	model := map[uint64]uint64{}
	for step := range 50_000 {
		key := rng.Uint64N(3000) * 0x9e3779b97f4a7c15
		sl := s.find(key)
		tag, ok := model[key]
		require.Equal(t, ok, sl != nil, "step %d", step)
		switch {
		case !ok:
			fresh := live(uint64(step))
			fresh.key = key
			s.insert(fresh)
			model[key] = uint64(step)
		case rng.IntN(3) == 0:
			require.Equal(t, tag, sl.req, "step %d: the peer kept its state", step)
			s.remove(sl)
			s.shrink()
			delete(model, key)
		default:
			s.sweepStep()
		}
		require.Equal(t, len(model), s.n, "step %d", step)
	}
	used := 0
	for i := range 2 * len(s.table) {
		if s.slotAt(i).meta&usedBit != 0 {
			used++
		}
	}
	assert.Equal(t, s.n, used)
	for key, tag := range model {
		sl := s.find(key)
		require.NotNil(t, sl)
		assert.Equal(t, tag, sl.req)
	}
	assert.LessOrEqual(t, float64(s.n)/float64(2*len(s.table)), 0.85)
	assert.GreaterOrEqual(t, float64(s.n)/float64(2*len(s.table)), 0.25)
}

// TestSlotLayout: a peer is 32 bytes, two to a 64-byte bucket, and tables are
// line-aligned, so a lookup reads whole cache lines.
func TestSlotLayout(t *testing.T) {
	assert.Equal(t, uintptr(32), unsafe.Sizeof(slot{}))
	assert.Equal(t, uintptr(64), unsafe.Sizeof(bucket{}))
	assert.Zero(t, unsafe.Sizeof(shard{})%64, "shards do not share cache lines")
	l := newTestLimiter(t, 1, 100, 1<<20)
	for i := range 50_000 {
		l.Allow(PeerID(i), 1, t0)
	}
	for i := range l.shards {
		assert.Zero(t, uintptr(unsafe.Pointer(&l.shards[i].table[0]))%64, "table is line-aligned")
	}
}

// TestHashIsInjective: the limiter relies on distinct ids having distinct
// hashes (it stores half the hash, not the id).
func TestHashIsInjective(t *testing.T) {
	l := newTestLimiter(t, 1, 100, 1<<20)
	seen := map[uint64]uint64{}
	for i := range uint64(200000) {
		for _, k := range []uint64{i, i << 32, ^i, i * 0x9e3779b97f4a7c15} {
			h := l.hash(k)
			if prev, ok := seen[h]; ok {
				require.Equal(t, prev, k)
			}
			seen[h] = k
		}
	}
}

// TestLimiterLargestConfig: the largest limits Validate allows fit the packed
// state: a burst of exactly the limit passes, one more does not, and a window
// later it all passes again.
func TestLimiterLargestConfig(t *testing.T) {
	l := newTestLimiter(t, 3600, 50_000, 1<<30)
	for i := range 50_000 {
		require.True(t, l.Allow(1, 0, t0).Allowed(), "request %d", i)
	}
	assert.Equal(t, LimitRequests, l.Allow(1, 0, t0).Limit)
	for range 8 {
		require.True(t, l.Allow(2, 1<<27, t0).Allowed())
	}
	d := l.Allow(2, 1, t0)
	assert.Equal(t, LimitBytes, d.Limit)
	assert.Equal(t, time.Hour+time.Nanosecond, d.RetryAfter)
	later := t0.Add(time.Hour + time.Nanosecond)
	assert.True(t, l.Allow(1, 0, later).Allowed())
	assert.True(t, l.Allow(2, 1<<30, later).Allowed())
}

// TestLimiterSetConfigLowersLimit: usage beyond what a lowered limit can
// hold keeps the peer refused until it has left the window, never longer.
func TestLimiterSetConfigLowersLimit(t *testing.T) {
	l := newTestLimiter(t, 1, 1000, 1<<20)
	for range 1000 {
		require.True(t, l.Allow(5, 1, t0).Allowed())
	}
	cfg := l.Config()
	cfg.MaxPerSec = 10
	require.NoError(t, l.SetConfig(cfg))
	d := l.Allow(5, 1, t0.Add(500*time.Millisecond))
	assert.Equal(t, LimitRequests, d.Limit)
	assert.Equal(t, 500*time.Millisecond+time.Nanosecond, d.RetryAfter, "when the 1000 leave the window")
	for range 10 {
		require.True(t, l.Allow(5, 1, t0.Add(time.Second+time.Nanosecond)).Allowed())
	}
	assert.False(t, l.Allow(5, 1, t0.Add(time.Second+time.Nanosecond)).Allowed())
}

func TestLimiterSetConfig(t *testing.T) {
	l := newTestLimiter(t, 1, 10, 1<<20)
	p := PeerID(11)
	for range 10 {
		require.True(t, l.Allow(p, 1, t0).Allowed())
	}
	require.False(t, l.Allow(p, 1, t0).Allowed())

	// Raise the limit: the peer keeps its 10 and gets exactly 5 more.
	cfg := l.Config()
	cfg.MaxPerSec = 15
	require.NoError(t, l.SetConfig(cfg))
	for range 5 {
		require.True(t, l.Allow(p, 1, t0).Allowed())
	}
	require.False(t, l.Allow(p, 1, t0).Allowed())

	// Longer window: no fresh budget; usage now counts for the longer window.
	cfg.RateWindowSecs = 10
	require.NoError(t, l.SetConfig(cfg))
	assert.False(t, l.Allow(p, 1, t0.Add(500*time.Millisecond)).Allowed())
	assert.False(t, l.Allow(p, 1, t0.Add(5*time.Second)).Allowed(), "15 used within the new 10 s window")
	assert.True(t, l.Allow(p, 1, t0.Add(12*time.Second)).Allowed())

	// Shorter window again.
	cfg.RateWindowSecs = 1
	require.NoError(t, l.SetConfig(cfg))
	assert.True(t, l.Allow(p, 1, t0.Add(14*time.Second)).Allowed())

	// Invalid: refused whole, nothing changes.
	bad := cfg
	bad.MaxPerSec = 0
	err := l.SetConfig(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p2p_max_per_sec = 0")
	assert.Equal(t, cfg, l.Config())
}

func TestNewLimiterRejectsBadConfig(t *testing.T) {
	_, err := NewLimiter(Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p2p_rate_window_secs = 0")
}

func TestPeerIDFromString(t *testing.T) {
	a := PeerIDFromString("12D3KooWabc")
	assert.Equal(t, a, PeerIDFromString("12D3KooWabc"))
	assert.Equal(t, a, PeerIDFromBytes([]byte("12D3KooWabc")))
	assert.NotEqual(t, a, PeerIDFromString("12D3KooWabd"))
}

// TestLimiterConcurrent hammers Allow from several goroutines while another
// reconfigures; run with -race. Every call is accounted for exactly once.
func TestLimiterConcurrent(t *testing.T) {
	l := newTestLimiter(t, 1, 50, 1<<16, WithShards(4))
	const workers, calls = 6, 20000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		cfgs := []Config{
			{RateWindowSecs: 1, MaxPerSec: 50, MaxBytesPerSec: 1 << 16, ChainSyncIntervalMS: 500},
			{RateWindowSecs: 2, MaxPerSec: 10, MaxBytesPerSec: 4096, ChainSyncIntervalMS: 0},
			{RateWindowSecs: 1, MaxPerSec: 50000, MaxBytesPerSec: 1 << 30, ChainSyncIntervalMS: 100},
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			assert.NoError(t, l.SetConfig(cfgs[i%len(cfgs)]))
		}
	}()
	var cw sync.WaitGroup
	for w := range workers {
		cw.Add(1)
		go func() {
			defer cw.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			ns := t0.UnixNano()
			for range calls {
				ns += rng.Int64N(int64(time.Millisecond))
				d := l.allowNanos(rng.Uint64N(300), rng.IntN(3000), ns)
				if !d.Allowed() && d.Limit != LimitSize && d.RetryAfter <= 0 {
					t.Errorf("refusal without RetryAfter: %+v", d)
					return
				}
			}
		}()
	}
	cw.Wait()
	close(stop)
	wg.Wait()
	st := l.Stats()
	assert.Equal(t, uint64(workers*calls), st.Allowed+st.RefusedRequests+st.RefusedBytes+st.RefusedSize)
	assert.LessOrEqual(t, st.Peers, 300)
	assert.Greater(t, st.Allowed, uint64(0))
	assert.Greater(t, st.RefusedRequests+st.RefusedBytes, uint64(0))
}
