package receipts

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/theblock/tbops"
)

// SignatureVerifier checks a receipt's signature. PROTOCOL.md does not define
// what a receipt's signature covers, so the Validator takes the check from its
// caller (a node knows its providers' keys and signing rule).
//
// The receipt is passed by value so that validating does not move the caller's
// receipt to the heap.
type SignatureVerifier interface {
	VerifyReceipt(r Receipt) error
}

// SignatureFunc adapts a function to SignatureVerifier.
type SignatureFunc func(r Receipt) error

// VerifyReceipt calls f.
func (f SignatureFunc) VerifyReceipt(r Receipt) error { return f(r) }

// Schema is one market's field limits. PROTOCOL.md gives one receipt shape for
// all four markets, so the defaults are the same for each; set per-market limits
// (a market-specific payment ceiling, say) in ValidatorConfig.Schemas.
type Schema struct {
	// MaxPayment is the highest payment accepted, in micro-BLOCK (0: no ceiling).
	MaxPayment tbops.Amount
	// MaxIDLen, MaxProviderLen and MaxSignatureLen bound the string fields, in bytes.
	MaxIDLen, MaxProviderLen, MaxSignatureLen int
}

// DefaultSchema is the schema every market gets by default: strings up to 256
// bytes (signatures up to 1024) and no payment ceiling.
func DefaultSchema() Schema {
	return Schema{MaxIDLen: 256, MaxProviderLen: 256, MaxSignatureLen: 1024}
}

// DefaultWindowBlocks is the default duplicate-detection window: one epoch.
const DefaultWindowBlocks = tbops.EpochBlocks

// ValidatorConfig configures a Validator. The zero value is usable.
type ValidatorConfig struct {
	// WindowBlocks is how many recent blocks duplicate detection remembers
	// (default DefaultWindowBlocks). Memory is proportional to the receipts in
	// these blocks, whatever the length of the stream.
	WindowBlocks int64
	// MinPayment is the payment floor (default MinPayment, 0.001 BLOCK); a
	// negative value disables the check.
	MinPayment tbops.Amount
	// Schemas are the markets accepted and their limits (default: the four
	// markets with DefaultSchema). A market not in the map is a schema mismatch.
	Schemas map[Market]Schema
	// Signature checks signatures; nil means signatures are only checked for
	// presence and length, never cryptographically.
	Signature SignatureVerifier
	// MaxAhead, when positive, rejects (schema_mismatch, field block_height) a
	// receipt more than MaxAhead blocks above the newest block seen, so that one
	// receipt with a wild height cannot slide the whole window away. 0 means no
	// limit: use Advance to tell the Validator the chain's tip instead.
	MaxAhead int64
	// Seed seeds the key hashes (default: a random seed, so nobody can craft
	// receipt ids that collide on purpose).
	Seed maphash.Seed
}

// Counts are a Validator's totals since it was made.
type Counts struct {
	Accepted uint64
	// Rejected by reason, for the four reasons.
	Rejected map[Reason]uint64
	// Stale counts the duplicate_detection rejections of receipts older than the window.
	Stale uint64
}

// Validator checks receipts as a node or an explorer ingests them: the market's
// schema, the 0.001 BLOCK floor, the signature, and duplicates by receipt_id and
// by (provider, nonce) over a sliding window of recent blocks. It is safe for
// concurrent use.
//
// Checks run cheapest first — schema, payment floor, signature, duplicates — and
// the first failure is the receipt's reason. Only accepted receipts enter the
// window, so a rejected receipt never makes a later genuine one look duplicate.
//
// Block heights: the window is the WindowBlocks heights ending at the newest
// block seen (the tip). Receipts may arrive out of order within the window. A
// receipt above the tip moves the tip up once it has passed the schema, payment
// and signature checks, forgetting the blocks that fall out; a gap in heights is
// just blocks without receipts. A receipt older than the window is rejected as
// duplicate_detection with Stale set (errors.Is(err, ErrStale)): its uniqueness
// can no longer be proven, and accepting it would let a replay through.
//
// Keys are 64-bit seeded hashes: two different receipts are taken for
// duplicates with probability about n/2^64 for n receipts in the window
// (below 10^-13 for a million).
type Validator struct {
	cfg        ValidatorConfig
	minPayment tbops.Amount

	mu  sync.Mutex
	win window

	accepted atomic.Uint64
	rejected [4]atomic.Uint64 // indexed by reasonIndex
	stale    atomic.Uint64
}

// NewValidator returns a Validator, or an error naming the bad setting.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if cfg.WindowBlocks == 0 {
		cfg.WindowBlocks = DefaultWindowBlocks
	}
	if cfg.WindowBlocks < 1 || cfg.WindowBlocks > 1<<20 {
		return nil, fmt.Errorf("receipts: ValidatorConfig.WindowBlocks %d: want 1 to %d blocks", cfg.WindowBlocks, 1<<20)
	}
	if cfg.MaxAhead < 0 {
		return nil, fmt.Errorf("receipts: ValidatorConfig.MaxAhead %d: want 0 (no limit) or more", cfg.MaxAhead)
	}
	if cfg.Schemas == nil {
		cfg.Schemas = map[Market]Schema{}
		for _, m := range Markets() {
			cfg.Schemas[m] = DefaultSchema()
		}
	} else {
		own := make(map[Market]Schema, len(cfg.Schemas))
		for m, s := range cfg.Schemas {
			if s.MaxIDLen <= 0 || s.MaxProviderLen <= 0 || s.MaxSignatureLen <= 0 || s.MaxPayment < 0 {
				return nil, fmt.Errorf("receipts: ValidatorConfig.Schemas[%q]: lengths must be positive and MaxPayment not negative", m)
			}
			own[m] = s
		}
		cfg.Schemas = own // the caller's map may change later; ours must not
	}
	if cfg.Seed == (maphash.Seed{}) {
		cfg.Seed = maphash.MakeSeed()
	}
	v := &Validator{cfg: cfg, minPayment: cfg.MinPayment}
	if v.minPayment == 0 {
		v.minPayment = MinPayment
	}
	v.win.init(cfg.WindowBlocks)
	return v, nil
}

// Validate checks one receipt and, when it passes, remembers it for duplicate
// detection. It returns nil or a *RejectError.
func (v *Validator) Validate(r *Receipt) error {
	if r == nil {
		return v.reject(&RejectError{Reason: ReasonSchemaMismatch, Detail: "nil receipt"})
	}
	if err := v.checkSchema(r); err != nil {
		return v.reject(err)
	}
	if v.minPayment >= 0 && r.Payment < v.minPayment {
		return v.reject(&RejectError{Reason: ReasonMinPayment, ReceiptID: r.ReceiptID, Market: r.Market, Field: "payment",
			Detail: fmt.Sprintf("%s is below the %s floor", r.Payment, v.minPayment)})
	}
	if v.cfg.Signature != nil {
		if err := v.cfg.Signature.VerifyReceipt(*r); err != nil {
			return v.reject(&RejectError{Reason: ReasonSignatureInvalid, ReceiptID: r.ReceiptID, Market: r.Market, Field: "signature", Detail: err.Error()})
		}
	}
	idKey := maphash.String(v.cfg.Seed, r.ReceiptID)
	pairKey := maphash.Comparable(v.cfg.Seed, providerNonce{r.Provider, r.Nonce})

	v.mu.Lock()
	verdict, seenAt := v.win.admit(r.BlockHeight, idKey, pairKey, v.cfg.MaxAhead)
	v.mu.Unlock()

	switch verdict {
	case admitted:
		v.accepted.Add(1)
		return nil
	case staleHeight:
		v.stale.Add(1)
		return v.reject(&RejectError{Reason: ReasonDuplicate, ReceiptID: r.ReceiptID, Market: r.Market, Field: "block_height", Stale: true,
			Detail: fmt.Sprintf("block %d is older than the %d-block window ending at %d", r.BlockHeight, v.cfg.WindowBlocks, seenAt)})
	case tooFarAhead:
		return v.reject(&RejectError{Reason: ReasonSchemaMismatch, ReceiptID: r.ReceiptID, Market: r.Market, Field: "block_height",
			Detail: fmt.Sprintf("block %d is more than %d blocks above the newest block %d", r.BlockHeight, v.cfg.MaxAhead, seenAt)})
	case duplicateID:
		return v.reject(&RejectError{Reason: ReasonDuplicate, ReceiptID: r.ReceiptID, Market: r.Market, Field: "receipt_id",
			Detail: fmt.Sprintf("receipt_id already seen in block %d", seenAt)})
	default: // duplicatePair
		return v.reject(&RejectError{Reason: ReasonDuplicate, ReceiptID: r.ReceiptID, Market: r.Market, Field: "nonce",
			Detail: fmt.Sprintf("provider %q already used nonce %d in block %d", r.Provider, r.Nonce, seenAt)})
	}
}

// ValidateJSON decodes one receipt (see DecodeReceipt) and validates it. A
// decoding failure is counted as a schema mismatch.
func (v *Validator) ValidateJSON(data []byte) (Receipt, error) {
	r, err := DecodeReceipt(data)
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) {
			return r, v.reject(re)
		}
		return r, err
	}
	return r, v.Validate(&r)
}

// Advance tells the Validator the chain has reached height (a node or explorer
// knows its tip): blocks more than WindowBlocks below it are forgotten. A
// height at or below the current tip changes nothing.
func (v *Validator) Advance(height int64) {
	v.mu.Lock()
	v.win.advance(height)
	v.mu.Unlock()
}

// Tip returns the newest block height seen (-1 before the first receipt).
func (v *Validator) Tip() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.win.tip
}

// Len returns how many receipts the window holds now.
func (v *Validator) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.win.ids)
}

// Reset forgets every remembered receipt (the node's reset-validation-state).
// Counts are kept: they are counters.
func (v *Validator) Reset() {
	v.mu.Lock()
	v.win.init(v.cfg.WindowBlocks)
	v.mu.Unlock()
}

// Counts returns the totals so far.
func (v *Validator) Counts() Counts {
	c := Counts{Accepted: v.accepted.Load(), Stale: v.stale.Load(), Rejected: make(map[Reason]uint64, 4)}
	for i, r := range Reasons() {
		c.Rejected[r] = v.rejected[i].Load()
	}
	return c
}

// WindowBlocks returns the window length in blocks.
func (v *Validator) WindowBlocks() int64 { return v.cfg.WindowBlocks }

func (v *Validator) reject(e *RejectError) error {
	v.rejected[reasonIndex(e.Reason)].Add(1)
	return e
}

func reasonIndex(r Reason) int {
	switch r {
	case ReasonSchemaMismatch:
		return 0
	case ReasonDuplicate:
		return 1
	case ReasonSignatureInvalid:
		return 2
	}
	return 3
}

func (v *Validator) checkSchema(r *Receipt) *RejectError {
	s, ok := v.cfg.Schemas[r.Market]
	if !ok {
		if r.Market == "" {
			return schemaErr(*r, "market", "required field empty")
		}
		return schemaErr(*r, "market", fmt.Sprintf("unknown market %.64q", string(r.Market)))
	}
	if err := checkString(*r, "receipt_id", r.ReceiptID, s.MaxIDLen); err != nil {
		return err
	}
	if err := checkString(*r, "provider", r.Provider, s.MaxProviderLen); err != nil {
		return err
	}
	if err := checkString(*r, "signature", r.Signature, s.MaxSignatureLen); err != nil {
		return err
	}
	if r.BlockHeight < 0 {
		return schemaErr(*r, "block_height", fmt.Sprintf("%d is negative", r.BlockHeight))
	}
	if r.Payment < 0 {
		return schemaErr(*r, "payment", fmt.Sprintf("%d micro-BLOCK is negative", int64(r.Payment)))
	}
	if s.MaxPayment > 0 && r.Payment > s.MaxPayment {
		return schemaErr(*r, "payment", fmt.Sprintf("%s is above the %s market's ceiling of %s", r.Payment, r.Market, s.MaxPayment))
	}
	return nil
}

func checkString(r Receipt, field, v string, max int) *RejectError {
	switch {
	case v == "":
		return schemaErr(r, field, "required field empty")
	case len(v) > max:
		return schemaErr(r, field, fmt.Sprintf("%d bytes, over the %d-byte limit", len(v), max))
	case !utf8.ValidString(v):
		return schemaErr(r, field, "not valid UTF-8")
	}
	return nil
}

type providerNonce struct {
	provider string
	nonce    uint64
}

// verdicts of window.admit.
const (
	admitted = iota
	staleHeight
	tooFarAhead
	duplicateID
	duplicatePair
)

// window remembers the keys of the receipts accepted in the last size blocks:
// one map per key kind (key → block height) for O(1) lookups, and per-block
// generations (a ring of key lists) so that the blocks sliding out are deleted
// key by key. Lists keep their capacity, so the steady state allocates nothing.
type window struct {
	size  int64
	tip   int64
	ids   map[uint64]int64
	pairs map[uint64]int64
	gens  [][]genKeys
	genAt []int64 // height each ring slot holds, -1 when empty
	peak  int     // largest len(ids) since the maps were last rebuilt
}

type genKeys struct{ id, pair uint64 }

func (w *window) init(size int64) {
	w.size, w.tip = size, -1
	w.ids, w.pairs = map[uint64]int64{}, map[uint64]int64{}
	w.gens = make([][]genKeys, size)
	w.genAt = make([]int64, size)
	for i := range w.genAt {
		w.genAt[i] = -1
	}
	w.peak = 0
}

// admit checks one receipt's keys at height h and records them when new. It
// returns the verdict and, for rejections, the height that explains it.
func (w *window) admit(h int64, id, pair uint64, maxAhead int64) (int, int64) {
	if w.tip >= 0 {
		if h <= w.tip-w.size {
			return staleHeight, w.tip
		}
		if maxAhead > 0 && h-w.tip > maxAhead {
			return tooFarAhead, w.tip
		}
	}
	w.advance(h)
	if at, ok := w.ids[id]; ok {
		return duplicateID, at
	}
	if at, ok := w.pairs[pair]; ok {
		return duplicatePair, at
	}
	slot := h % w.size
	if w.genAt[slot] != h {
		// Only reachable for an empty slot: every older height in it was evicted
		// when the tip passed it.
		w.gens[slot] = w.gens[slot][:0]
		w.genAt[slot] = h
	}
	w.gens[slot] = append(w.gens[slot], genKeys{id, pair})
	w.ids[id] = h
	w.pairs[pair] = h
	if n := len(w.ids); n > w.peak {
		w.peak = n
	}
	return admitted, 0
}

// advance moves the tip up to h, evicting the blocks that leave the window.
func (w *window) advance(h int64) {
	if h <= w.tip {
		return
	}
	old := w.tip
	w.tip = h
	if old < 0 {
		return
	}
	if h-old >= w.size { // a jump past the whole window: forget everything
		clear(w.ids)
		clear(w.pairs)
		for i := range w.gens {
			w.gens[i] = w.gens[i][:0]
			w.genAt[i] = -1
		}
		w.shrink()
		return
	}
	for x := old - w.size + 1; x <= h-w.size; x++ {
		if x < 0 {
			continue
		}
		slot := x % w.size
		if w.genAt[slot] != x {
			continue
		}
		for _, k := range w.gens[slot] {
			if w.ids[k.id] == x {
				delete(w.ids, k.id)
			}
			if w.pairs[k.pair] == x {
				delete(w.pairs, k.pair)
			}
		}
		w.gens[slot] = w.gens[slot][:0]
		w.genAt[slot] = -1
	}
	w.shrink()
}

// shrink rebuilds the maps after a burst has passed: Go maps never give memory
// back, so without this a one-off spike would pin its peak size forever.
func (w *window) shrink() {
	const minRebuild = 1 << 16
	if w.peak < minRebuild || len(w.ids) > w.peak/4 {
		return
	}
	ids := make(map[uint64]int64, len(w.ids))
	for k, v := range w.ids {
		ids[k] = v
	}
	pairs := make(map[uint64]int64, len(w.pairs))
	for k, v := range w.pairs {
		pairs[k] = v
	}
	w.ids, w.pairs, w.peak = ids, pairs, len(ids)
}
