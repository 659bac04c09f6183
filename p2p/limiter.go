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

// The limiter's constants; the package documentation explains the algorithm.
const (
	// quantaPerWindow is k: each limit's usage is kept as full quanta of
	// q = ⌈L/k⌉ plus one partial quantum, so at most q − 1 of what is counted
	// can be uncertain, and admitted in any window ≤ L + q − 1 < (1 + 1/k) × L.
	quantaPerWindow = 8
	// ticksPerWindow is K: quanta carry the tick (W/K) they completed in,
	// rounded up, as 8 bits; K < 256 keeps them unambiguous next to the
	// peer's last admission.
	ticksPerWindow = 250
	// lastBits hold the tick of the peer's last admission, modulo 2^15. Every
	// peer is looked at (evicted if idle) at least every 3 × passTicks, so the
	// tick is always less than 2^15 ticks old and reconstructs exactly.
	lastBits  = 15
	lastMask  = 1<<lastBits - 1
	passTicks = 1 << 13

	minBuckets = 8
	maxKicks   = 256 // cuckoo displacements before an insert grows the table
)

// The meta word of a slot.
const (
	usedBit        = 1 << lastBits
	reqOpenShift   = 16 // 13 bits: a partial quantum of requests, < ⌈50 000/8⌉
	reqNShift      = 29 // 4 bits: full quanta of requests, 0..8
	bytesOpenShift = 33 // 27 bits: a partial quantum of bytes, < ⌈2^30/8⌉
	bytesNShift    = 60 // 4 bits: full quanta of bytes, 0..8
	reqOpenMask    = 1<<13 - 1
	bytesOpenMask  = 1<<27 - 1
)

// slot is one peer, key and state together (32 bytes, two per cache line), so
// a decision costs one cache miss. key is the peer's hash (a bijection of its
// id, so it identifies the peer exactly). req and bytes are the rings of the
// two limits' full quanta: one byte per quantum, its completion tick mod 256,
// oldest in the low byte. meta packs the rest (see the constants above).
type slot struct {
	key, meta, req, bytes uint64
}

// bucket is one cache line of the table: a peer lives in one of its two
// buckets (cuckoo hashing), so a lookup reads at most two lines, both known
// from the key and loaded in parallel.
type bucket [2]slot

// usage is one limit's state, decoded: n full quanta of q whose completion
// ticks are in ring, and a partial quantum open < q.
type usage struct{ ring, n, open uint64 }

// peer is a decoded slot. last is the (absolute) tick of the peer's last
// admission: every quantum completed at or before it.
type peer struct {
	last       int64
	req, bytes usage
}

func (p *peer) decode(sl *slot, now int64) {
	m := sl.meta
	p.last = now - int64((uint64(now)-m)&lastMask)
	p.req = usage{sl.req, m >> reqNShift & 15, m >> reqOpenShift & reqOpenMask}
	p.bytes = usage{sl.bytes, m >> bytesNShift, m >> bytesOpenShift & bytesOpenMask}
}

func (p *peer) encode(sl *slot) {
	sl.req, sl.bytes = p.req.ring, p.bytes.ring
	sl.meta = uint64(p.last)&lastMask | usedBit |
		p.req.open<<reqOpenShift | p.req.n<<reqNShift |
		p.bytes.open<<bytesOpenShift | p.bytes.n<<bytesNShift
}

// limitCfg is one limit: max per window and its quantum q = ⌈max/k⌉.
type limitCfg struct{ max, q uint64 }

func newLimitCfg(max int) limitCfg {
	return limitCfg{uint64(max), uint64((max + quantaPerWindow - 1) / quantaPerWindow)}
}

// shardCfg is the part of Config a shard needs, in the units it uses.
type shardCfg struct {
	window, tick int64 // ns; tick = window / K
	req, bytes   limitCfg
}

// tickOf is the tick ns falls in, rounded up: ⌈ns / tick⌉.
func (c *shardCfg) tickOf(ns int64) int64 { return ns/c.tick + min(ns%c.tick, 1) }

func toShardCfg(c Config) shardCfg {
	w := int64(c.Window())
	return shardCfg{window: w, tick: w / ticksPerWindow, req: newLimitCfg(c.MaxPerSec), bytes: newLimitCfg(c.MaxBytesPerSec)}
}

// at is the absolute tick of the i-th oldest full quantum.
func (u *usage) at(i uint64, last int64) int64 {
	return last - int64((uint64(last)-u.ring>>(8*i))&0xff)
}

// expire drops the quanta that completed more than W before now (in ticks:
// now − tick > K; the caller has reset a peer idle for longer than that).
func (u *usage) expire(last, now int64) {
	idle := uint64(now - last)
	for u.n > 0 && idle+(uint64(last)-u.ring)&0xff > ticksPerWindow {
		u.ring >>= 8
		u.n--
	}
}

// add counts need, completing quanta at tick now.
func (u *usage) add(lc limitCfg, need uint64, now int64) {
	o := u.open + need
	if o < lc.q {
		u.open = o
		return
	}
	full := o / lc.q
	u.open = o - full*lc.q
	for ; full > 0; full-- {
		u.ring |= (uint64(now) & 0xff) << (8 * u.n)
		u.n++
	}
}

// fits is the admission test far from the limit: the counted usage alone
// fits (inlined into Allow, no division).
func (u *usage) fits(lc limitCfg, need uint64) bool { return u.n*lc.q+u.open+need <= lc.max }

// admits is the admission test at ns: the counted usage minus the credit for
// the part of the oldest quantum that has probably left the window.
func (u *usage) admits(lc limitCfg, need uint64, ns, last int64, c *shardCfg) bool {
	return u.n*lc.q+u.open+need <= lc.max+u.credit(lc.q, ns, last, c)
}

// credit estimates how much of the oldest quantum is older than the window
// [ns − W, ns]: it assumes the quantum was spread evenly over the time
// before its completion that quanta take on average (the mean gap between the
// counted ones), and caps the estimate at q − 1. Everything else counted is
// surely in the window, so the estimate is below the truth by at most q − 1:
// that cap is the whole slack.
func (u *usage) credit(q uint64, ns, last int64, c *shardCfg) uint64 {
	if u.n < 2 {
		return 0
	}
	// With m gaps spanning d, the quantum is taken to start d/m before s0, so
	// the part of it out of the window is (ns − W − s0 + d/m) / (d/m); all
	// scaled by m to stay in integers.
	s0 := u.at(0, last) * c.tick
	d := u.at(u.n-1, last)*c.tick - s0
	x := int64(u.n-1)*(ns-c.window-s0) + d // ≤ d while quantum 0 counts
	if d == 0 || x <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(q, uint64(x))
	est, _ := bits.Div64(hi, lo, uint64(d))
	return min(est, q-1)
}

// retryAfter is the first nanosecond after ns at which admits passes if the
// peer sends nothing else: stretch by stretch as quanta expire (oldest
// first), solving for the moment the credit covers the excess; once no quantum
// is left, the partial one goes when the peer has been idle for a window.
func (u *usage) retryAfter(lc limitCfg, need uint64, ns, last int64, c *shardCfg) time.Duration {
	from := ns // the start of the stretch in which quantum i is the oldest
	var newest int64
	if u.n > 0 {
		newest = u.at(u.n-1, last) * c.tick
	}
	for i := range u.n {
		si := u.at(i, last) * c.tick
		over := int64((u.n-i)*lc.q+u.open+need) - int64(lc.max)
		if over <= 0 {
			return time.Duration(from - ns)
		}
		if d, m := newest-si, int64(u.n-1-i); m > 0 && d > 0 && uint64(over) < lc.q {
			// credit ≥ over ⇔ q·x ≥ over·d ⇔ x ≥ ⌈over·d/q⌉, x = m·(t − W − si) + d
			hi, lo := bits.Mul64(uint64(over), uint64(d))
			x, rem := bits.Div64(hi, lo, lc.q)
			if rem != 0 {
				x++
			}
			return time.Duration(max(si+c.window+ceilDiv(int64(x)-d, m), from) - ns)
		}
		from = si + c.window + 1 // quantum i expires
	}
	if u.open+need > lc.max {
		from = max(from, (last+ticksPerWindow)*c.tick+1)
	}
	return time.Duration(from - ns)
}

// ceilDiv is ⌈a / m⌉ for m > 0.
func ceilDiv(a, m int64) int64 {
	if a <= 0 {
		return -(-a / m)
	}
	return (a + m - 1) / m
}

// Stats are the limiter's running totals.
type Stats struct {
	Peers           int    // peers with state (active within about a window)
	Allowed         uint64 // messages allowed
	RefusedRequests uint64 // refused by the request limit
	RefusedBytes    uint64 // refused by the byte limit
	RefusedSize     uint64 // refused because the message alone exceeds the byte limit
}

// shard is one lock's worth of peers: a cuckoo hash table of slots (two
// choices of bucket per peer, two slots per bucket) kept between a quarter
// and 85 % full (75 % after a rebuild), and swept incrementally for idle
// peers.
type shard struct {
	mu      sync.Mutex
	cfg     shardCfg
	table   []bucket
	n       int   // live peers
	lastNs  int64 // newest time seen
	now     int64 // its tick, ⌈lastNs / tick⌉
	cursor  int   // incremental sweep position (slot index)
	passAt  int64 // tick at which the current sweep pass started
	rng     uint64
	allowed uint64
	refused [4]uint64
	// The last refusal, so a flooding peer is refused without re-deriving
	// RetryAfter: with no admission in between, a peer's estimate only falls
	// as time passes, so the same message stays refused by requests until
	// fReq and by bytes until fUntil (absolute ns; fReq 0 = requests passed),
	// and the refusal's RetryAfter is fUntil − now. Cleared by any admission of
	// that peer, any eviction and any config change.
	fKey, fNeed  uint64
	fReq, fUntil int64
	_            [56]byte // 256 bytes in all: neighbouring shards share no cache line
}

// homes are the two buckets a key may live in.
func (s *shard) homes(key uint64) (int, int) {
	nb := uint64(len(s.table))
	return int(uint64(uint32(key)) * nb >> 32), int((key * 0x9e3779b97f4a7c15) >> 32 * nb >> 32)
}

func (s *shard) slotAt(i int) *slot { return &s.table[i>>1][i&1] }

// find returns the peer's slot, or nil.
func (s *shard) find(key uint64) *slot {
	b1, b2 := s.homes(key)
	x, y := &s.table[b1], &s.table[b2]
	// Both lines are read before any comparison, so their misses overlap.
	k0, k1, k2, k3 := x[0].key, x[1].key, y[0].key, y[1].key
	switch {
	case k0 == key && x[0].meta&usedBit != 0:
		return &x[0]
	case k1 == key && x[1].meta&usedBit != 0:
		return &x[1]
	case k2 == key && y[0].meta&usedBit != 0:
		return &y[0]
	case k3 == key && y[1].meta&usedBit != 0:
		return &y[1]
	}
	return nil
}

// idle reports whether the peer in sl has not been admitted for more than a
// window at tick now: all its usage has expired, so forgetting it loses
// nothing.
func idle(sl *slot, now int64) bool {
	return (uint64(now)-sl.meta)&lastMask > ticksPerWindow
}

// insert stores a new peer, rebuilding the table when it is 85 % full or a
// cuckoo walk gets long.
func (s *shard) insert(sl slot) {
	if (s.n+1)*20 > len(s.table)*2*17 {
		s.rebuild(0)
	}
	for {
		homeless, ok := s.place(sl)
		if ok {
			s.n++
			return
		}
		s.rebuild(len(s.table)*6/5 + 1) // recounts the peers in the table
		sl = homeless
	}
}

// place puts sl into one of its buckets, displacing residents along a short
// random walk (a displaced resident that is idle is dropped instead, which
// ends the walk). It returns the peer left without a slot if the walk is too
// long.
func (s *shard) place(sl slot) (slot, bool) {
	b, _ := s.homes(sl.key)
	for range maxKicks {
		b1, b2 := s.homes(sl.key)
		for _, bi := range [2]int{b1, b2} {
			for j := range s.table[bi] {
				if r := &s.table[bi][j]; r.meta&usedBit == 0 {
					*r = sl
					return slot{}, true
				}
			}
		}
		// Kick out a resident of the bucket sl did not come from.
		if b == b1 {
			b = b2
		} else {
			b = b1
		}
		s.rng = s.rng*6364136223846793005 + 1442695040888963407
		r := &s.table[b][s.rng>>63]
		sl, *r = *r, sl
		if idle(&sl, s.now) {
			s.n--
			s.fUntil = 0 // the cached refusal may have been this peer's
			return slot{}, true
		}
	}
	return sl, false
}

// rebuild re-places the peers into a new table 75 % full (at least minNb
// buckets), dropping idle ones; afterwards every peer has just been looked
// at, so a new sweep pass starts.
func (s *shard) rebuild(minNb int) {
	live := 0
	for i := range 2 * len(s.table) {
		if sl := s.slotAt(i); sl.meta&usedBit != 0 && !idle(sl, s.now) {
			live++
		}
	}
	old, nb := s.table, max(minNb, live*2/3+1, minBuckets)
	for !s.refill(old, nb) {
		nb = nb*6/5 + 1
	}
	s.cursor, s.passAt, s.fUntil = 0, s.now, 0
}

// refill places the live peers of old into a table of nb buckets; false if a
// cuckoo walk failed (the caller retries bigger).
func (s *shard) refill(old []bucket, nb int) bool {
	s.table, s.n = make([]bucket, nb), 0
	for i := range old {
		for j := range old[i] {
			sl := &old[i][j]
			if sl.meta&usedBit == 0 || idle(sl, s.now) {
				continue
			}
			if _, ok := s.place(*sl); !ok {
				return false
			}
			s.n++
		}
	}
	return true
}

// remove evicts the peer in sl.
func (s *shard) remove(sl *slot) {
	*sl = slot{}
	s.n--
	s.fUntil = 0 // the cached refusal may have been this peer's
}

// shrink gives memory back once the table is less than a quarter full.
func (s *shard) shrink() {
	if len(s.table) > minBuckets && s.n*2 < len(s.table) {
		s.rebuild(0)
	}
}

// sweepStep looks at one slot and evicts its peer if idle: the incremental
// sweep that gives memory back without ever scanning a whole table at once.
func (s *shard) sweepStep() {
	if s.cursor >= 2*len(s.table) {
		s.cursor, s.passAt = 0, s.now
	}
	if sl := s.slotAt(s.cursor); sl.meta&usedBit != 0 && idle(sl, s.now) {
		s.remove(sl)
		s.shrink()
	}
	s.cursor++
}

// sweepPerTick is how many slots the sweep looks at each time a shard's clock
// reaches a new tick: off the per-decision path, and a table of n slots is
// swept every n/16 ticks of traffic.
const sweepPerTick = 16

// sweepAll evicts every idle peer and starts a new pass; it returns how many
// it evicted.
func (s *shard) sweepAll(now int64) int {
	evicted := 0
	for i := range 2 * len(s.table) {
		if sl := s.slotAt(i); sl.meta&usedBit != 0 && idle(sl, now) {
			s.remove(sl)
			evicted++
		}
	}
	s.cursor, s.passAt = 0, s.now
	s.shrink()
	return evicted
}

// clear forgets every peer (all of them idle).
func (s *shard) clear() {
	s.table = make([]bucket, minBuckets)
	s.n, s.cursor, s.passAt, s.fUntil = 0, 0, s.now, 0
}

// advance moves the shard's clock to ns (never backwards: an earlier ns is
// decided at the newest time seen, so a clock step never refills a budget)
// and returns the time the decision is taken at.
func (s *shard) advance(ns int64) int64 {
	if ns <= s.lastNs {
		return s.lastNs
	}
	s.lastNs = ns
	if tk := s.cfg.tick; ns > s.now*tk {
		t := s.cfg.tickOf(ns)
		allIdle := t-s.now > ticksPerWindow
		s.now = t
		switch {
		case allIdle:
			s.clear() // everyone was idle for more than a window
		case t-s.passAt >= passTicks:
			s.sweepAll(t) // finish a pass that low traffic left unfinished
		default:
			for range sweepPerTick {
				s.sweepStep()
			}
		}
	}
	return ns
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
// aim many ids at one shard or bucket across processes).
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
		s := &l.shards[i]
		s.cfg, s.rng = sc, o.seed+uint64(i)
		s.clear()
	}
	return l, nil
}

// hash mixes a peer id with the limiter's seed. Every step is invertible (xor
// with the seed, multiply by an odd number, then murmur3's fmix64), so distinct
// ids have distinct hashes: that is what lets a slot store the hash instead of
// the id. The top bits pick the shard, the rest the buckets.
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

func (l *Limiter) allowNanos(id uint64, size int, ns int64) Decision {
	key := l.hash(id)
	s := &l.shards[key>>l.shift]
	s.mu.Lock()
	d := s.allow(key, size, ns)
	s.mu.Unlock()
	return d
}

// load sets p to the peer's usage at tick now: its decoded slot with expired
// quanta dropped, or a fresh state.
func (p *peer) load(sl *slot, now int64) {
	if sl == nil || idle(sl, now) {
		*p = peer{last: now}
		return
	}
	p.decode(sl, now)
	p.req.expire(p.last, now)
	p.bytes.expire(p.last, now)
}

func (s *shard) allow(key uint64, size int, ns int64) Decision {
	c := &s.cfg
	need := uint64(max(size, 0))
	if need > c.bytes.max {
		s.refused[LimitSize]++
		return Decision{Limit: LimitSize}
	}
	ns = s.advance(ns)

	if ns < s.fUntil && key == s.fKey && need == s.fNeed {
		lim := LimitBytes
		if ns < s.fReq {
			lim = LimitRequests
		}
		s.refused[lim]++
		return Decision{Limit: lim, RetryAfter: time.Duration(s.fUntil - ns)}
	}

	sl := s.find(key)
	var p peer
	p.load(sl, s.now)
	okReq := p.req.fits(c.req, 1) || p.req.admits(c.req, 1, ns, p.last, c)
	okBytes := p.bytes.fits(c.bytes, need) || p.bytes.admits(c.bytes, need, ns, p.last, c)
	if okReq && okBytes {
		p.req.add(c.req, 1, s.now)
		p.bytes.add(c.bytes, need, s.now)
		p.last = s.now
		if sl != nil {
			p.encode(sl)
		} else {
			// A new peer has no usage, and need ≤ both maxima: it is allowed.
			fresh := slot{key: key}
			p.encode(&fresh)
			s.insert(fresh)
		}
		s.allowed++
		if key == s.fKey {
			s.fUntil = 0
		}
		return Decision{}
	}
	var d Decision
	var raReq time.Duration
	if !okReq {
		raReq = p.req.retryAfter(c.req, 1, ns, p.last, c)
		d = Decision{Limit: LimitRequests, RetryAfter: raReq}
	}
	if !okBytes {
		if d.Limit == LimitNone {
			d.Limit = LimitBytes
		}
		d.RetryAfter = max(d.RetryAfter, p.bytes.retryAfter(c.bytes, need, ns, p.last, c))
	}
	s.refused[d.Limit]++
	s.fKey, s.fNeed, s.fReq, s.fUntil = key, need, 0, ns+int64(d.RetryAfter)
	if raReq > 0 {
		s.fReq = ns + int64(raReq)
	}
	return d
}

// SetConfig applies a new configuration at run time without resetting peers:
// each peer keeps what it has used. New maxima apply to the next decision,
// with each peer's usage re-cut into the new quanta; a new window length
// keeps each quantum's time (rounded later, never earlier). Where a lowered
// limit leaves more usage than the new state can hold, the newest is kept and
// the peer stays refused until it expires. So a reload never hands out a fresh
// budget. Shards switch one at a time, each under its own lock, so decisions
// never see a torn config. An invalid cfg changes nothing and returns the
// validation error.
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
		if s.cfg != sc {
			s.reconfigure(sc)
		}
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

// reconfigure re-expresses every peer in the new configuration.
func (s *shard) reconfigure(sc shardCfg) {
	old := s.cfg
	s.cfg = sc
	s.now = sc.tickOf(s.lastNs)
	// A time in old ticks, as a new tick: no later than the shard's time in
	// ns (a quantum completed by then), rounded up.
	conv := func(t int64) int64 {
		return sc.tickOf(min(t*old.tick, s.lastNs))
	}
	oldNow := old.tickOf(s.lastNs)
	for i := range 2 * len(s.table) {
		sl := s.slotAt(i)
		if sl.meta&usedBit == 0 {
			continue
		}
		if idle(sl, oldNow) {
			s.remove(sl)
			continue
		}
		var p peer
		p.load(sl, oldNow)
		last := conv(p.last)
		np := peer{last: last}
		np.req = p.req.recut(old.req, sc.req, p.last, last, s.now, conv)
		np.bytes = p.bytes.recut(old.bytes, sc.bytes, p.last, last, s.now, conv)
		if s.now-last > ticksPerWindow {
			s.remove(sl)
			continue
		}
		np.encode(sl)
	}
	s.cursor, s.passAt, s.fUntil = 0, s.now, 0
}

// recut pours the usage, oldest quantum first and the partial one last (at
// the peer's last admission), into quanta of the new size at converted ticks,
// dropping those that have expired under the new window. A quantum takes the
// tick of the old quantum that completes it: never earlier than its content.
// If more than k quanta result (a lowered limit), the newest k are kept and
// the partial quantum is full: the peer stays refused until they expire, by
// when the dropped older ones have expired too.
func (u *usage) recut(from, to limitCfg, oldLast, newLast, now int64, conv func(int64) int64) usage {
	var newest [quantaPerWindow]int64 // ring buffer of the newest quanta's ticks
	var acc, total uint64
	pour := func(amount uint64, t int64) {
		acc += amount
		full := acc / to.q
		acc -= full * to.q
		for range min(full, quantaPerWindow) {
			newest[total%quantaPerWindow] = t
			total++
		}
		total += full - min(full, quantaPerWindow)
	}
	for i := range u.n {
		if t := conv(u.at(i, oldLast)); now-t <= ticksPerWindow {
			pour(from.q, t)
		}
	}
	pour(u.open, newLast)
	nu := usage{open: acc}
	first := uint64(0)
	if total > quantaPerWindow {
		first, nu.open = total-quantaPerWindow, to.q-1
	}
	for i := first; i < total; i++ {
		nu.ring |= (uint64(newest[i%quantaPerWindow]) & 0xff) << (8 * nu.n)
		nu.n++
	}
	return nu
}

// Prune evicts, shard by shard, every peer idle for more than a window at now
// (no admission since), and returns how many it evicted. Allow already
// evicts incrementally (a few slots each time a shard's clock ticks); Prune is
// for giving memory back after a burst of peers when traffic has gone quiet.
// Evicting an idle peer loses nothing: all of its usage has left the window.
func (l *Limiter) Prune(now time.Time) int {
	ns := max(now.UnixNano(), 0)
	evicted := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		t := max(s.cfg.tickOf(ns), s.now)
		if t-s.now > ticksPerWindow {
			evicted += s.n
			s.clear()
		} else {
			evicted += s.sweepAll(t)
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
