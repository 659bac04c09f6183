package energy

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Sliding-window limiter behind the Guard.
//
// Each client has windowSlots+1 counters of W/windowSlots each (125 ms for a 1 s
// window). At time t in slot s with fraction f of that slot elapsed, the estimate
// of requests admitted in (t−W, t] is
//
//	est = c[s−K+1] + … + c[s] + c[s−K]·(1−f)
//
// i.e. the K newest slots exactly plus the part of the oldest slot still inside
// the window, assuming its requests were spread evenly (the two-bucket weighted
// approximation, with K = 8 buckets instead of 2). A request is admitted when
// est + 1 ≤ limit, and then counted.
//
// Accuracy bound (tested against an exact sliding log in window_test.go): the
// estimate errs only on the oldest slot, by at most c[s−K]·f, so the number of
// requests admitted in ANY window of length W is at most limit + (the most
// admitted in one slot). For traffic spread so that no slot admits more than
// limit/K — any client at or under its rate — that is ≤ limit·(1+1/K) =
// 1.125·limit; a client that bursts its whole limit into one 125 ms slot can, in
// the worst case, get up to 2·limit in a window ending just before that slot
// leaves it. A client sending steadily at the limit is admitted at the limit
// (no under-admission beyond rounding).
const windowSlots = 8

type window struct {
	slot   int64                   // newest slot index (time / slot length)
	counts [windowSlots + 1]uint32 // ring by slot index
}

// advance moves the window to slot s, zeroing the slots that passed.
func (w *window) advance(s int64) {
	d := s - w.slot
	switch {
	case d <= 0:
		return
	case d > windowSlots:
		w.counts = [windowSlots + 1]uint32{}
	default:
		for i := w.slot + 1; i <= s; i++ {
			w.counts[i%(windowSlots+1)] = 0
		}
	}
	w.slot = s
}

// estimate returns the full-slot sum and the oldest slot's count at slot s.
func (w *window) parts(s int64) (full uint64, oldest uint32) {
	for i := s - windowSlots + 1; i <= s; i++ {
		full += uint64(w.counts[mod(i)])
	}
	return full, w.counts[mod(s-windowSlots)]
}

func mod(i int64) int64 {
	m := i % (windowSlots + 1)
	if m < 0 {
		m += windowSlots + 1
	}
	return m
}

// allow decides one request at instant t (ns since the epoch) under limit per
// window of slotLen·K; it returns the wait until a request would be admitted.
func (w *window) allow(t, slotLen int64, limit uint64) (bool, time.Duration) {
	s := t / slotLen
	w.advance(s)
	full, old := w.parts(s)
	frac := float64(t%slotLen) / float64(slotLen)
	est := float64(full) + float64(old)*(1-frac)
	if est+1 <= float64(limit) {
		w.counts[mod(s)]++
		return true, 0
	}
	return false, w.retryAfter(s, t, slotLen, limit, full, old)
}

// retryAfter computes when est+1 ≤ limit will first hold if nothing else is
// admitted: the oldest slot drains linearly until the boundary, then the next
// slot becomes the oldest.
func (w *window) retryAfter(s, t, slotLen int64, limit uint64, full uint64, old uint32) time.Duration {
	need := float64(limit) - 1 // est must drop to need
	if limit == 0 {
		return time.Duration(slotLen * windowSlots)
	}
	boundary := (s + 1) * slotLen
	for k := int64(0); k <= windowSlots; k++ {
		if float64(full) <= need {
			// within this slot: full + old·(1−f) ≤ need  ⇔  f ≥ 1 − (need−full)/old
			if old == 0 {
				return clampWait(boundary - slotLen - t)
			}
			f := 1 - (need-float64(full))/float64(old)
			if f < 0 {
				f = 0
			}
			at := boundary - slotLen + int64(f*float64(slotLen)) + 1
			return clampWait(at - t)
		}
		// move to the next slot: slot s−K+1+k becomes the oldest
		next := w.counts[mod(s-windowSlots+1+k)]
		full -= uint64(next)
		old = next
		boundary += slotLen
	}
	return clampWait(boundary - t)
}

func clampWait(ns int64) time.Duration {
	if ns < int64(time.Millisecond) {
		return time.Millisecond
	}
	return time.Duration(ns)
}

// limiter is the per-client state, in shards, with a cap on clients.
type limiter struct {
	shards   [limiterShards]limShard
	perShard int
}

const limiterShards = 64

type limShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*window
	// free recycles evicted windows so a flood does not churn the allocator.
	free []*window
	_    [24]byte // keep shards on separate cache lines
}

func newLimiter(maxClients int) *limiter {
	l := &limiter{perShard: max(maxClients/limiterShards, 1)}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*window, min(l.perShard, 1024))
	}
	return l
}

func shardOf(a netip.Addr) int {
	b := a.As16()
	x := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])*0x9E3779B97F4A7C15
	x ^= x >> 29
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 32
	return int(x % limiterShards)
}

func (l *limiter) allow(a netip.Addr, t, slotLen int64, limit uint64) (bool, time.Duration) {
	sh := &l.shards[shardOf(a)]
	sh.mu.Lock()
	w, ok := sh.m[a]
	if !ok {
		if len(sh.m) >= l.perShard {
			sh.evict(t/slotLen, l.perShard)
		}
		if n := len(sh.free); n > 0 {
			w = sh.free[n-1]
			sh.free = sh.free[:n-1]
			*w = window{}
		} else {
			w = new(window)
		}
		w.slot = t / slotLen
		sh.m[a] = w
	}
	okk, wait := w.allow(t, slotLen, limit)
	sh.mu.Unlock()
	return okk, wait
}

// evict frees room in a full shard: every client idle for a whole window (its
// state is equivalent to a fresh one, so nothing is lost), and, when that is not
// enough, arbitrary active clients (map order is random) up to an eighth of the
// shard, so the cost is amortised over the next inserts. An evicted active
// client starts a fresh window: over-admission is possible only when more than
// MaxClients distinct clients are active within one window.
func (sh *limShard) evict(s int64, cap int) {
	quota := max(cap/8, 1)
	freed := 0
	for k, w := range sh.m {
		if s-w.slot > windowSlots || freed < quota {
			delete(sh.m, k)
			if len(sh.free) < quota {
				sh.free = append(sh.free, w)
			}
			freed++
		}
	}
}

func (l *limiter) clients() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
