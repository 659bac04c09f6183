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

// wouldAllow replays the admission test on a copy of the peer's entry, so a
// test can probe a time without counting anything.
func wouldAllow(l *Limiter, key uint64, need uint64, ns int64) bool {
	h := l.hash(key)
	s := &l.shards[h>>l.shift]
	p := s.find(uint32(h>>32), uint32(h))
	if p < 0 {
		return need <= s.cfg.maxBytes
	}
	e := *s.at(int(uint32(s.slots[p])) - 1)
	idx := ns / s.cfg.sub
	rem := ns - idx*s.cfg.sub
	if d := int32(uint32(idx) - e.epoch); d > 0 {
		e.advance(uint32(d))
	}
	frac := uint64((rem << fracBits) / s.cfg.sub)
	return fits(sum16(&e.req), uint64(e.reqOld), 1, s.cfg.maxReq, frac) &&
		fits(sum32(&e.bytes), uint64(e.bytesOld), need, s.cfg.maxBytes, frac)
}

// limitsAt evaluates each limit separately for a message at ns, on a copy.
func limitsAt(l *Limiter, key uint64, need uint64, ns int64) (okReq, okBytes bool) {
	h := l.hash(key)
	s := &l.shards[h>>l.shift]
	p := s.find(uint32(h>>32), uint32(h))
	if p < 0 {
		return true, need <= s.cfg.maxBytes
	}
	e := *s.at(int(uint32(s.slots[p])) - 1)
	idx := ns / s.cfg.sub
	rem := ns - idx*s.cfg.sub
	if d := int32(uint32(idx) - e.epoch); d > 0 {
		e.advance(uint32(d))
	}
	frac := uint64((rem << fracBits) / s.cfg.sub)
	return fits(sum16(&e.req), uint64(e.reqOld), 1, s.cfg.maxReq, frac),
		fits(sum32(&e.bytes), uint64(e.bytesOld), need, s.cfg.maxBytes, frac)
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
	sub := w / subWindows
	for i := range bursts {
		edge := base + int64(i/2)*w/2 + int64(rng.IntN(subWindows))*sub
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
				t.Logf("seed %d: offered %d, admitted %d msgs %d B (exact log %d msgs %d B), max in a window %d/%d req, %d/%d B",
					seed, len(evs), len(adm), sumSize(adm), exact, exactBytes, cnt, c.req, byt, c.byt)
			}
		})
	}
}

// TestLimiterWorstCaseIsTheBound: all of the limit at the very end of one
// sub-window, then a steady stream: the adversarial pattern reaches the bound
// (so the accuracy test above can fail) and never passes it.
func TestLimiterWorstCaseIsTheBound(t *testing.T) {
	const L = 800
	w := int64(time.Second)
	sub := w / subWindows
	base := (t0.UnixNano()/w + 1) * w
	var evs []event
	for range L {
		evs = append(evs, event{base + sub - 1, 1})
	}
	for ns := base + sub; ns < base+3*w; ns += w / 20000 {
		evs = append(evs, event{ns, 1})
	}
	l := newTestLimiter(t, 1, L, 1<<30)
	cnt, _ := maxInWindow(offer(l, 1, evs), w)
	assert.LessOrEqual(t, cnt, L+L/subWindows)
	assert.GreaterOrEqual(t, cnt, L+L/subWindows-2, "the bound is tight")

	// The classic two-bucket counter (previous window weighted by overlap)
	// admits nearly 2x when the limit arrives at the very end of a window:
	// why the limiter does not use it.
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
	assert.LessOrEqual(t, cnt, L+L/subWindows)
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

func TestLimiterEvictsIdlePeers(t *testing.T) {
	l := newTestLimiter(t, 1, 100, 1<<20, WithShards(4))
	const n = 5000
	for i := range n {
		require.True(t, l.Allow(PeerID(i), 1, t0).Allowed())
	}
	assert.Equal(t, n, l.Stats().Peers)
	var slotsBefore int
	for i := range l.shards {
		slotsBefore += len(l.shards[i].slots)
	}

	// Within 2 windows nobody is evicted: their state still matters.
	later := t0.Add(time.Second)
	for range n {
		l.Allow(PeerID(n+1), 0, later)
	}
	assert.Equal(t, n+1, l.Stats().Peers)

	// Idle for more than 2 windows: a few active peers' decisions (which land
	// in every shard) sweep them out.
	later = t0.Add(2*time.Second + 200*time.Millisecond)
	for i := range 3 * n {
		l.Allow(PeerID(n+2+i%64), 0, later)
	}
	assert.LessOrEqual(t, l.Stats().Peers, 64+n/10, "most idle peers evicted incrementally")
	assert.GreaterOrEqual(t, l.Prune(later.Add(3*time.Second)), 64)
	assert.Equal(t, 0, l.Prune(later.Add(3*time.Second)), "Prune is idempotent")
	assert.Equal(t, 0, l.Stats().Peers)
	var slotsAfter, chunks int
	for i := range l.shards {
		slotsAfter += len(l.shards[i].slots)
		chunks += len(l.shards[i].chunks)
	}
	assert.Less(t, slotsAfter, slotsBefore/8, "index shrank")
	assert.LessOrEqual(t, chunks, 8, "slab shrank")

	// An evicted peer comes back with a full budget, as it would have anyway.
	for range 100 {
		require.True(t, l.Allow(PeerID(3), 1, later.Add(3*time.Second)).Allowed())
	}
}

func TestLimiterPruneKeepsActive(t *testing.T) {
	l := newTestLimiter(t, 1, 100, 1<<20)
	l.Allow(1, 1, t0)
	l.Allow(2, 1, t0.Add(2*time.Second))
	assert.Equal(t, 1, l.Prune(t0.Add(2200*time.Millisecond)))
	assert.Equal(t, 1, l.Stats().Peers)
}

// TestShardIndexModel stresses the open-addressing index (backward-shift
// deletion, swap-removal, resizing) against a map, with hashes that share home
// slots and fingerprints all the time.
func TestShardIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	hash := func(k uint64) (hi, lo uint32) { return uint32(k % 13), uint32(k % 5) }
	s := &shard{slots: make([]uint64, minSlots)}
	model := map[uint64]uint32{}
	for step := range 20000 {
		k := uint64(rng.IntN(400))
		hi, lo := hash(k)
		hi += uint32(k) << 8 // keep hi:lo unique per key while homes still collide
		p := s.find(hi, lo)
		_, ok := model[k]
		require.Equal(t, ok, p >= 0, "step %d key %d", step, k)
		if !ok {
			s.insert(hi, lo, uint32(step))
			model[k] = uint32(step)
			continue
		}
		if rng.IntN(2) == 0 {
			s.remove(int(uint32(s.slots[p])) - 1)
			delete(model, k)
		}
		require.Equal(t, len(model), s.n)
	}
	for k, ep := range model {
		hi, lo := hash(k)
		p := s.find(hi+uint32(k)<<8, lo)
		require.GreaterOrEqual(t, p, 0)
		assert.Equal(t, ep, s.at(int(uint32(s.slots[p]))-1).epoch)
	}
}

func TestEntryIsOneCacheLine(t *testing.T) {
	assert.Equal(t, uintptr(64), unsafe.Sizeof(entry{}))
	l := newTestLimiter(t, 1, 100, 1<<20)
	l.Allow(1, 1, t0)
	for i := range l.shards {
		for _, c := range l.shards[i].chunks {
			assert.Zero(t, uintptr(unsafe.Pointer(c))%64, "chunk is line-aligned")
		}
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
