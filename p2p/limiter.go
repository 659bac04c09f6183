package p2p

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// PeerID identifies a peer to the [Limiter]: a compact comparable key. Use a
// stable number you already have (a connection id, an IPv4 address) or derive
// one with [PeerIDFromString] / [PeerIDFromBytes] once per connection, not per
// message. Two peers with the same PeerID share one budget.
type PeerID uint64

// PeerIDFromString derives a PeerID from a peer's textual identity (node id,
// public key, "ip:port"): the first 8 bytes of its SHA-256. A cryptographic hash
// so that nobody can pick an identity that collides with a victim's and eat its
// budget (finding one takes ~2^64 work). Deterministic across processes.
func PeerIDFromString(s string) PeerID {
	sum := sha256.Sum256([]byte(s))
	return PeerID(binary.LittleEndian.Uint64(sum[:8]))
}

// PeerIDFromBytes is [PeerIDFromString] for a binary identity such as a raw
// public key.
func PeerIDFromBytes(b []byte) PeerID {
	sum := sha256.Sum256(b)
	return PeerID(binary.LittleEndian.Uint64(sum[:8]))
}

// Limit names the limit behind a [Decision].
type Limit uint8

// The limits a decision can report.
const (
	// LimitNone: the message was allowed.
	LimitNone Limit = iota
	// LimitRequests: the peer used up p2p_max_per_sec requests in the window.
	LimitRequests
	// LimitBytes: the message would take the peer over p2p_max_bytes_per_sec
	// bytes in the window.
	LimitBytes
	// LimitSize: the message alone is larger than p2p_max_bytes_per_sec; it can
	// never pass, so RetryAfter is 0 and retrying is pointless.
	LimitSize
)

// String is the limit's metric label: "none", "requests", "bytes" or "size".
func (l Limit) String() string {
	switch l {
	case LimitNone:
		return "none"
	case LimitRequests:
		return "requests"
	case LimitBytes:
		return "bytes"
	case LimitSize:
		return "size"
	}
	return fmt.Sprintf("Limit(%d)", uint8(l))
}

// Decision is the verdict on one message.
type Decision struct {
	// Limit is LimitNone when the message was allowed (and counted), otherwise
	// the limit that refused it. A refused message is not counted. When both
	// per-window limits refuse, Limit is LimitRequests.
	Limit Limit
	// RetryAfter is, for a refusal by LimitRequests or LimitBytes, how long until
	// the same message would be allowed if the peer sent nothing else meanwhile
	// (the later of the two limits when both refuse). 0 when allowed or for
	// LimitSize.
	RetryAfter time.Duration
}

// Allowed reports whether the message was allowed.
func (d Decision) Allowed() bool { return d.Limit == LimitNone }

// subWindows is k, the number of sub-buckets a window is split into. The
// over-admission bound is 1 + 1/k = 1.125 (see the package documentation).
const subWindows = 8

// entry is one peer's state: 64 bytes, one cache line (slab chunks are
// 4 KiB objects, so entries are line-aligned). Each limit keeps the k
// sub-window counters of the current window (a ring indexed by sub-window
// number mod k) plus the one sub-window that is sliding out ("old"). The peer
// id is not stored: the hash is a bijection of the id, its low 32 bits are in
// the index slot and its high 32 bits here, so both together identify the peer
// exactly. Request counters are 16-bit, which is why p2p_max_per_sec stops at
// 50 000 (a bucket never holds more than 1.125 × the limit).
type entry struct {
	hi       uint32 // high 32 bits of the peer's hash
	epoch    uint32 // low 32 bits of the sub-window number of the newest bucket
	req      [subWindows]uint16
	reqOld   uint16
	_        uint16
	bytesOld uint32
	bytes    [subWindows]uint32
}

// advance moves the entry's newest bucket forward by d sub-windows (d ≥ 1).
func (e *entry) advance(d uint32) {
	if d > subWindows {
		e.req, e.bytes = [subWindows]uint16{}, [subWindows]uint32{}
		e.reqOld, e.bytesOld = 0, 0
		e.epoch += d
		return
	}
	for ; d > 0; d-- {
		e.epoch++
		i := e.epoch & (subWindows - 1)
		// The slot of the new sub-window holds the bucket from k sub-windows
		// ago: it becomes the one sliding out.
		e.reqOld, e.req[i] = e.req[i], 0
		e.bytesOld, e.bytes[i] = e.bytes[i], 0
	}
}

const (
	chunkShift = 6 // 64 entries (5.5 KiB) per slab chunk
	chunkSize  = 1 << chunkShift
	minSlots   = 16
	fracBits   = 16 // fixed-point resolution of "how far into the sub-window"
	fracOne    = 1 << fracBits
	// idleSubWindows: a peer whose newest bucket is this many sub-windows old
	// has been idle for more than 2 windows; all its buckets are expired.
	idleSubWindows = 2*subWindows + 1
)

// shardCfg is the part of Config a shard needs, in the units it uses.
type shardCfg struct {
	sub      int64  // sub-window length in ns (window / k)
	maxReq   uint64 // requests per window
	maxBytes uint64 // bytes per window
}

// Stats are the limiter's running totals.
type Stats struct {
	Peers           int    // peers with state (active within the last ~2 windows)
	Allowed         uint64 // messages allowed
	RefusedRequests uint64 // refused by the request limit
	RefusedBytes    uint64 // refused by the byte limit
	RefusedSize     uint64 // refused because the message alone exceeds the byte limit
}

// shard is one lock's worth of peers: an open-addressing index (linear
// probing, backward-shift deletion, no tombstones) over a dense slab of
// entries kept in fixed-size chunks, so memory follows the live peer count.
type shard struct {
	mu  sync.Mutex
	cfg shardCfg
	// slots: 0 = empty, else (low 32 bits of the hash) << 32 | (slab index + 1).
	// A peer's home slot comes from the high 32 bits (entry.hi & mask), and
	// the low 32 bits are a fingerprint, so a probe touches the slab only on a
	// fingerprint match.
	slots   []uint64
	chunks  []*[chunkSize]entry
	n       int    // live entries, slab[0:n]
	cursor  int    // incremental idle sweep position
	lastIdx int64  // newest absolute sub-window number seen
	curNs   int64  // lastIdx × cfg.sub: where that sub-window starts, in ns
	allowed uint64 // counters for Stats
	refused [4]uint64
	// The last refusal, so a flooding peer is refused without re-deriving
	// RetryAfter: with no admission in between, a peer's estimate only falls
	// as time passes, so the same message stays refused by requests until
	// fReq and by bytes until fBytes (absolute ns; 0 = that limit passed), and
	// the refusal's RetryAfter is fUntil − now. Cleared by any admission of
	// that peer, any eviction and any config change.
	fHi, fLo             uint32
	fNeed                uint64
	fReq, fBytes, fUntil int64
	_                    [64]byte // keep neighbouring shards' hot fields off this cache line
}

func (s *shard) at(i int) *entry { return &s.chunks[i>>chunkShift][i&(chunkSize-1)] }

// find returns the slot position of the peer with hash hi:lo, or -1.
func (s *shard) find(hi, lo uint32) int {
	mask := len(s.slots) - 1
	for p := int(hi) & mask; ; p = (p + 1) & mask {
		v := s.slots[p]
		if v == 0 {
			return -1
		}
		if uint32(v>>32) == lo && s.at(int(uint32(v))-1).hi == hi {
			return p
		}
	}
}

// slotOf returns the slot position that points at slab entry i.
func (s *shard) slotOf(i int) int {
	mask := len(s.slots) - 1
	for p := int(s.at(i).hi) & mask; ; p = (p + 1) & mask {
		if uint32(s.slots[p]) == uint32(i+1) {
			return p
		}
	}
}

// home is the home slot of the (non-empty) slot value v.
func (s *shard) home(v uint64, mask int) int { return int(s.at(int(uint32(v))-1).hi) & mask }

// insert appends a fresh entry for hash hi:lo and indexes it.
func (s *shard) insert(hi, lo uint32, epoch uint32) *entry {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.resize(len(s.slots) * 2)
	}
	if s.n == len(s.chunks)*chunkSize {
		s.chunks = append(s.chunks, new([chunkSize]entry))
	}
	i := s.n
	s.n++
	e := s.at(i)
	*e = entry{hi: hi, epoch: epoch}
	mask := len(s.slots) - 1
	p := int(hi) & mask
	for s.slots[p] != 0 {
		p = (p + 1) & mask
	}
	s.slots[p] = uint64(lo)<<32 | uint64(i+1)
	return e
}

func (s *shard) resize(n int) {
	old := s.slots
	s.slots = make([]uint64, n)
	mask := n - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		p := s.home(v, mask)
		for s.slots[p] != 0 {
			p = (p + 1) & mask
		}
		s.slots[p] = v
	}
}

// deleteSlot empties slot p and shifts the probe chain back over it.
func (s *shard) deleteSlot(p int) {
	mask := len(s.slots) - 1
	for {
		s.slots[p] = 0
		q := p
		for {
			q = (q + 1) & mask
			v := s.slots[q]
			if v == 0 {
				return
			}
			home := s.home(v, mask)
			// Move v into the hole at p unless its home lies cyclically in (p, q].
			if (q > p && (home <= p || home > q)) || (q < p && home <= p && home > q) {
				s.slots[p] = v
				p = q
				break
			}
		}
	}
}

// remove evicts slab entry i: unindex it, move the last entry into its place.
func (s *shard) remove(i int) {
	s.deleteSlot(s.slotOf(i))
	last := s.n - 1
	if i != last {
		lp := s.slotOf(last)
		*s.at(i) = *s.at(last)
		s.slots[lp] = s.slots[lp]&^(1<<32-1) | uint64(i+1)
	}
	s.n--
	s.fUntil = 0 // the cached refusal may have been this peer's
	// Give memory back: drop a trailing chunk once a whole spare chunk is free,
	// and halve the index when it is less than 1/8 full.
	if c := len(s.chunks); c > 1 && s.n <= (c-2)*chunkSize {
		s.chunks[c-1] = nil
		s.chunks = s.chunks[:c-1]
	}
	if len(s.slots) > minSlots && s.n*8 < len(s.slots) {
		s.resize(len(s.slots) / 2)
	}
}

// Limiter limits each peer to p2p_max_per_sec requests and
// p2p_max_bytes_per_sec bytes within any p2p_rate_window_secs window (with the
// documented 1.125 over-admission bound). It is safe for concurrent use; a
// decision takes one shard lock and allocates nothing.
type Limiter struct {
	shards []shard
	shift  uint // shard = hash >> shift
	seed0  uint64
	seed1  uint64 // odd

	cfgMu sync.Mutex // serialises SetConfig
	cfg   Config     // guarded by cfgMu
}

type limiterOptions struct {
	shards int
	seed   uint64
	seeded bool
}

// LimiterOption configures [NewLimiter].
type LimiterOption func(*limiterOptions)

// WithShards sets the number of lock shards, rounded up to a power of two and
// clamped to 1..4096. Default: 8 × GOMAXPROCS, at least 16.
func WithShards(n int) LimiterOption { return func(o *limiterOptions) { o.shards = n } }

// WithSeed fixes the hash seed (default: random per limiter, so peers cannot
// aim many ids at one shard or probe chain across processes).
func WithSeed(seed uint64) LimiterOption {
	return func(o *limiterOptions) { o.seed, o.seeded = seed, true }
}

// NewLimiter returns a limiter for cfg (only the rate fields are used). It
// fails if cfg does not [Config.Validate].
func NewLimiter(cfg Config, opts ...LimiterOption) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := limiterOptions{shards: max(16, 8*runtime.GOMAXPROCS(0))}
	for _, f := range opts {
		f(&o)
	}
	if !o.seeded {
		o.seed = rand.Uint64()
	}
	n := 1
	for n < min(max(o.shards, 1), 4096) {
		n <<= 1
	}
	l := &Limiter{
		shards: make([]shard, n),
		shift:  uint(64 - bits.TrailingZeros(uint(n))),
		seed0:  o.seed ^ 0x2d358dccaa6c78a5,
		seed1:  (o.seed^0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9 | 1,
		cfg:    cfg,
	}
	sc := toShardCfg(cfg)
	for i := range l.shards {
		l.shards[i].cfg = sc
		l.shards[i].slots = make([]uint64, minSlots)
	}
	return l, nil
}

func toShardCfg(c Config) shardCfg {
	return shardCfg{
		sub:      int64(c.Window()) / subWindows,
		maxReq:   uint64(c.MaxPerSec),
		maxBytes: uint64(c.MaxBytesPerSec),
	}
}

// hash mixes a peer id with the limiter's seed. Every step is invertible (xor
// with the seed, multiply by an odd number, then murmur3's fmix64), so distinct
// ids have distinct hashes: that is what lets an entry store half the hash
// instead of the id. The top bits pick the shard, the high half the home slot,
// the low half is the fingerprint.
func (l *Limiter) hash(key uint64) uint64 {
	x := (key ^ l.seed0) * l.seed1
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Allow decides one message of size bytes from peer at time now, and counts it
// if allowed. Time should not go backwards; where it does (clock steps, callers
// racing between reading the clock and deciding) the newest time the peer's
// shard has seen is used instead, so a backwards step never refills a budget.
// Negative sizes count as 0.
func (l *Limiter) Allow(peer PeerID, size int, now time.Time) Decision {
	return l.allowNanos(uint64(peer), size, now.UnixNano())
}

func (l *Limiter) allowNanos(key uint64, size int, ns int64) Decision {
	h := l.hash(key)
	s := &l.shards[h>>l.shift]
	s.mu.Lock()
	d := s.allow(uint32(h>>32), uint32(h), size, ns)
	s.mu.Unlock()
	return d
}

func (s *shard) allow(hi, lo uint32, size int, ns int64) Decision {
	c := s.cfg
	need := uint64(max(size, 0))
	if need > c.maxBytes {
		s.refused[LimitSize]++
		return Decision{Limit: LimitSize}
	}
	if ns < 0 {
		ns = 0
	}
	// Most decisions fall in the shard's newest sub-window: no division then.
	rem := ns - s.curNs
	clamped := false
	switch {
	case rem >= c.sub:
		idx := ns / c.sub
		rem = ns - idx*c.sub
		s.lastIdx, s.curNs = idx, idx*c.sub
	case rem < 0:
		// Time went backwards (or callers raced between reading the clock and
		// taking the lock): decide at the shard's newest sub-window instead, so
		// no peer's buckets ever run backwards.
		rem, clamped = 0, true
	}
	cur := uint32(s.lastIdx)

	// Incremental eviction: look at one slab entry per decision.
	if s.n > 0 {
		if s.cursor >= s.n {
			s.cursor = 0
		}
		if cur-s.at(s.cursor).epoch >= idleSubWindows {
			s.remove(s.cursor)
		} else {
			s.cursor++
		}
	}

	if ns < s.fUntil && !clamped && hi == s.fHi && lo == s.fLo && need == s.fNeed {
		lim := LimitBytes
		if ns < s.fReq {
			lim = LimitRequests
		}
		s.refused[lim]++
		return Decision{Limit: lim, RetryAfter: time.Duration(s.fUntil - ns)}
	}

	var e *entry
	if p := s.find(hi, lo); p >= 0 {
		e = s.at(int(uint32(s.slots[p])) - 1)
		if d := cur - e.epoch; d > 0 { // epochs never pass s.lastIdx, so d ≥ 0
			e.advance(d)
		}
	} else {
		// A new peer has empty buckets, and need ≤ both maxima: it is allowed.
		e = s.insert(hi, lo, cur)
	}

	sReq := sum16(&e.req)
	sBytes := sum32(&e.bytes)
	// Far from a limit, counting all of old still fits; only near a limit do
	// we need frac (a division) and the exact test.
	okReq := sReq+1+uint64(e.reqOld) <= c.maxReq
	okBytes := sBytes+need+uint64(e.bytesOld) <= c.maxBytes
	if !okReq || !okBytes {
		frac := uint64((rem << fracBits) / c.sub)
		okReq = okReq || fits(sReq, uint64(e.reqOld), 1, c.maxReq, frac)
		okBytes = okBytes || fits(sBytes, uint64(e.bytesOld), need, c.maxBytes, frac)
	}
	if okReq && okBytes {
		i := cur & (subWindows - 1)
		e.req[i]++
		e.bytes[i] += uint32(need)
		s.allowed++
		if hi == s.fHi && lo == s.fLo {
			s.fUntil = 0
		}
		return Decision{}
	}
	var d Decision
	var raReq, raBytes time.Duration
	if !okReq {
		var ring [subWindows]uint32
		for i, v := range e.req {
			ring[i] = uint32(v)
		}
		raReq = retryAfter(&ring, uint64(e.reqOld), cur, rem, 1, c.maxReq, c.sub)
		d = Decision{Limit: LimitRequests, RetryAfter: raReq}
	}
	if !okBytes {
		raBytes = retryAfter(&e.bytes, uint64(e.bytesOld), cur, rem, need, c.maxBytes, c.sub)
		if d.Limit == LimitNone {
			d.Limit = LimitBytes
		}
		d.RetryAfter = max(d.RetryAfter, raBytes)
	}
	s.refused[d.Limit]++
	if !clamped {
		s.fHi, s.fLo, s.fNeed = hi, lo, need
		s.fReq, s.fBytes, s.fUntil = 0, 0, ns+int64(d.RetryAfter)
		if raReq > 0 {
			s.fReq = ns + int64(raReq)
		}
		if raBytes > 0 {
			s.fBytes = ns + int64(raBytes)
		}
	}
	return d
}

func sum16(b *[subWindows]uint16) uint64 {
	return uint64(b[0]) + uint64(b[1]) + uint64(b[2]) + uint64(b[3]) +
		uint64(b[4]) + uint64(b[5]) + uint64(b[6]) + uint64(b[7])
}

func sum32(b *[subWindows]uint32) uint64 {
	return uint64(b[0]) + uint64(b[1]) + uint64(b[2]) + uint64(b[3]) +
		uint64(b[4]) + uint64(b[5]) + uint64(b[6]) + uint64(b[7])
}

// fits is the admission test. inner is the count of the k sub-windows up to
// now, old the count of the sub-window sliding out, frac how far (in 1/2^16)
// we are into the current sub-window. The window (now-W, now] holds inner plus
// an unknown part of old. The estimate of that part is
//
//	max(old × (1 − frac), old − max/k)
//
// the usual uniform-spread share, but never less than old − max/k, so the
// estimate is below the truth by at most max/k: admitted in any window of
// length W ≤ max × (1 + 1/k). With steady traffic (old ≤ max/k) the second
// term is ≤ 0 and it is the classic sliding-window counter.
func fits(inner, old, need, limit, frac uint64) bool {
	if inner+need > limit {
		return false
	}
	// old − limit/k ≤ limit − inner − need, times k (exact in integers).
	if (inner+need+old)*subWindows > limit*(subWindows+1) {
		return false
	}
	// old × (1 − frac) ≤ limit − inner − need, in 1/2^16 fixed point; frac was
	// rounded down, so this errs towards refusing.
	return old*(fracOne-frac) <= (limit-inner-need)<<fracBits
}

// retryAfter finds the earliest time, with no further admissions, at which
// fits() passes: it walks forward through the next k+1 sub-windows, where
// buckets slide out one by one, and solves for the fraction within the first
// sub-window where both conditions hold.
func retryAfter(ring *[subWindows]uint32, old uint64, cur uint32, rem int64, need, limit uint64, sub int64) time.Duration {
	inner := sum32(ring)
	for j := range int64(subWindows + 1) {
		if j > 0 {
			// In sub-window cur+j the bucket of sub-window cur+j-k slides out;
			// it sits in the ring slot that sub-window cur+j will reuse.
			b := uint64(ring[(cur+uint32(j))&(subWindows-1)])
			inner -= b
			old = b
		}
		if inner+need > limit || (inner+need+old)*subWindows > limit*(subWindows+1) {
			continue
		}
		var f int64 // the smallest frac at which old × (1 − frac) fits
		if old > 0 {
			if q := ((limit - inner - need) << fracBits) / old; q < fracOne {
				f = fracOne - int64(q)
			}
		}
		remNeed := (f*sub + fracOne - 1) >> fracBits // frac ≥ f ⇔ rem ≥ ⌈f·sub/2^16⌉
		return time.Duration(max(j*sub+remNeed-rem, 1))
	}
	// Sub-window cur+k+1: everything has slid out.
	return time.Duration(int64(subWindows+1)*sub - rem)
}

// SetConfig applies a new configuration at run time without resetting peers:
// each peer keeps what it has used. New maxima apply to the next decision. A
// new window length re-buckets each peer's recent usage (it is carried over as
// if it all happened in the peer's newest sub-window, which errs towards
// refusing), so a reload never hands out a fresh budget. Shards switch one at
// a time, each under its own lock, so decisions never see a torn config. An
// invalid cfg changes nothing and returns the validation error.
func (l *Limiter) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cfgMu.Lock()
	defer l.cfgMu.Unlock()
	sc := toShardCfg(cfg)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		if s.cfg.sub != sc.sub {
			s.rebucket(s.cfg.sub, sc.sub)
		}
		s.cfg = sc
		s.curNs = s.lastIdx * sc.sub
		s.fUntil = 0
		s.mu.Unlock()
	}
	l.cfg = cfg
	return nil
}

// Config returns the configuration in force.
func (l *Limiter) Config() Config {
	l.cfgMu.Lock()
	defer l.cfgMu.Unlock()
	return l.cfg
}

func (s *shard) rebucket(oldSub, newSub int64) {
	newLast := s.lastIdx * oldSub / newSub
	for i := range s.n {
		e := s.at(i)
		abs := s.lastIdx - int64(uint32(s.lastIdx)-e.epoch)
		// The end of the peer's newest sub-window, in new sub-windows.
		ne := min(((abs+1)*oldSub-1)/newSub, newLast)
		r := sum16(&e.req) + uint64(e.reqOld)
		b := sum32(&e.bytes) + uint64(e.bytesOld)
		*e = entry{hi: e.hi, epoch: uint32(ne)}
		e.req[e.epoch&(subWindows-1)] = uint16(min(r, 1<<16-1))
		e.bytes[e.epoch&(subWindows-1)] = uint32(min(b, 1<<32-1))
	}
	s.lastIdx = newLast
}

// Prune evicts, shard by shard, every peer idle for more than two windows at
// now, and returns how many it evicted. Allow already evicts incrementally (it
// looks at one peer per decision); Prune is for giving memory back after a
// burst of peers when traffic has gone quiet. Evicting an idle peer loses
// nothing: all of its buckets have expired.
func (l *Limiter) Prune(now time.Time) int {
	ns := max(now.UnixNano(), 0)
	evicted := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		cur := uint32(max(ns/s.cfg.sub, s.lastIdx))
		for j := s.n - 1; j >= 0; j-- {
			if cur-s.at(j).epoch >= idleSubWindows {
				s.remove(j)
				evicted++
			}
		}
		if s.cursor > s.n {
			s.cursor = 0
		}
		s.mu.Unlock()
	}
	return evicted
}

// Stats returns the running totals and the number of peers with state.
func (l *Limiter) Stats() Stats {
	var st Stats
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Peers += s.n
		st.Allowed += s.allowed
		st.RefusedRequests += s.refused[LimitRequests]
		st.RefusedBytes += s.refused[LimitBytes]
		st.RefusedSize += s.refused[LimitSize]
		s.mu.Unlock()
	}
	return st
}
