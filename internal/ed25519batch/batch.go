package ed25519batch

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"io"

	"filippo.io/edwards25519"
	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// Sizes of the encodings Verify accepts.
const (
	PublicKeySize = 32
	SignatureSize = 64
)

// Entry is one signature to check.
type Entry struct {
	// PublicKey is the 32-byte encoding of A, hashed into k as given.
	PublicKey []byte
	// Key is PublicKey already decoded by [ParseKey] (optional; e.g. cached
	// by a key registry). A Key of other bytes than PublicKey fails the batch.
	Key *Key
	// Message is the signed message.
	Message []byte
	// Signature is R‖s, 64 bytes.
	Signature []byte
}

// Key is a public key decoded once under the batch's rules, for callers that
// verify many signatures by it.
type Key struct {
	enc [PublicKeySize]byte
	p   curve.EdwardsPoint
	ok  bool // made by ParseKey, not a zero Key
}

// ParseKey decodes a public key under the batch's rules for A: 32 bytes, a
// canonical encoding of a curve point, not of small order.
func ParseKey(b []byte) (*Key, error) {
	k := new(Key)
	if err := decodePoint(&k.p, b); err != nil {
		return nil, err
	}
	k.enc, k.ok = [PublicKeySize]byte(b), true
	return k, nil
}

// Errors of [ParseKey].
var (
	ErrPointLength  = errors.New("ed25519batch: point encoding is not 32 bytes")
	ErrNonCanonical = errors.New("ed25519batch: non-canonical point encoding")
	ErrSmallOrder   = errors.New("ed25519batch: point of small order")
	ErrNotOnCurve   = errors.New("ed25519batch: not a valid curve point")
)

// decodePoint applies the batch's rules for R and A (see the package doc).
func decodePoint(p *curve.EdwardsPoint, b []byte) error {
	switch {
	case len(b) != 32:
		return ErrPointLength
	case !canonicalEncoding(b):
		return ErrNonCanonical
	case smallOrderEncoding(b):
		return ErrSmallOrder
	}
	if _, err := p.SetCompressedY((*curve.CompressedEdwardsY)(b)); err != nil {
		return ErrNotOnCurve
	}
	return nil
}

// Verifier checks batches, reusing its buffers between calls. It is not safe
// for concurrent use; use one per goroutine.
type Verifier struct {
	rand io.Reader
	ram  []byte // R‖A‖M, hashed into k
	rnd  []byte
	// Terms of the multi-scalar multiplication: Rᵢ at i < n, then one per
	// distinct key, then B. coef holds their scalars while they are summed;
	// scalars, in the curve library's form, is what the multiplication reads.
	coef    []edwards25519.Scalar
	scalars []scalar.Scalar
	points  []curve.EdwardsPoint
	sp      []*scalar.Scalar
	pp      []*curve.EdwardsPoint
	keys    map[[PublicKeySize]byte]int
	sum     curve.EdwardsPoint
}

// NewVerifier returns a Verifier drawing its coefficients from rnd
// (crypto/rand when nil).
func NewVerifier(rnd io.Reader) *Verifier {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Verifier{rand: rnd, keys: map[[PublicKeySize]byte]int{}}
}

// Verify reports whether every entry is well formed (see the package
// documentation) and the random linear combination of their equations holds.
// An empty batch is true. On false, verify the entries one by one.
func Verify(entries []Entry, rnd io.Reader) bool {
	return NewVerifier(rnd).Verify(entries)
}

// Verify is [Verify] with v's reader and buffers.
func (v *Verifier) Verify(entries []Entry) bool {
	n := len(entries)
	if n == 0 {
		return true
	}
	v.grow(n)
	if _, err := io.ReadFull(v.rand, v.rnd); err != nil {
		return false
	}
	clear(v.keys)
	next := n // the term of the next new key
	var s, k, sSum edwards25519.Scalar
	var zb [32]byte
	for i := range entries {
		e := &entries[i]
		if len(e.Signature) != SignatureSize {
			return false
		}
		if _, err := s.SetCanonicalBytes(e.Signature[32:]); err != nil {
			return false
		}
		if decodePoint(&v.points[i], e.Signature[:32]) != nil {
			return false
		}
		v.pp[i] = &v.points[i]
		j, ok := v.keyTerm(e, next)
		if !ok {
			return false
		}
		if j == next {
			next++
		}
		v.ram = append(append(append(v.ram[:0], e.Signature[:32]...), e.PublicKey...), e.Message...)
		digest := sha512.Sum512(v.ram)
		if _, err := k.SetUniformBytes(digest[:]); err != nil {
			return false
		}
		z := &v.coef[i]
		copy(zb[:16], v.rnd[16*i:16*i+16])
		if _, err := z.SetCanonicalBytes(zb[:]); err != nil { // < 2¹²⁸ < ℓ
			return false
		}
		v.coef[j].MultiplyAdd(z, &k, &v.coef[j])
		sSum.MultiplyAdd(z, &s, &sSum) // Σ zᵢsᵢ
	}
	v.coef[next].Negate(&sSum)
	v.pp[next] = curve.ED25519_BASEPOINT_POINT
	for t := range next + 1 {
		v.scalars[t].SetBits(v.coef[t].Bytes()) // canonical, so taken as is
	}
	v.sum.MultiscalarMulVartime(v.sp[:next+1], v.pp[:next+1])
	return v.sum.IsSmallOrder()
}

// keyTerm returns the term of e's key, starting one at next for a key not
// seen yet in this batch; false when the key breaks the rules.
func (v *Verifier) keyTerm(e *Entry, next int) (int, bool) {
	if len(e.PublicKey) != PublicKeySize {
		return 0, false
	}
	enc := [PublicKeySize]byte(e.PublicKey)
	if j, ok := v.keys[enc]; ok {
		return j, true
	}
	switch {
	case e.Key != nil:
		if !e.Key.ok || e.Key.enc != enc {
			return 0, false
		}
		v.pp[next] = &e.Key.p
	case decodePoint(&v.points[next], e.PublicKey) != nil:
		return 0, false
	default:
		v.pp[next] = &v.points[next]
	}
	v.coef[next] = edwards25519.Scalar{}
	v.keys[enc] = next
	return next, true
}

// grow sizes the buffers for n entries (2n+1 terms at most).
func (v *Verifier) grow(n int) {
	if cap(v.rnd) < 16*n {
		v.rnd = make([]byte, 16*n)
	}
	v.rnd = v.rnd[:16*n]
	if t := 2*n + 1; len(v.coef) < t {
		v.coef = make([]edwards25519.Scalar, t)
		v.scalars = make([]scalar.Scalar, t)
		v.points = make([]curve.EdwardsPoint, t)
		v.sp = make([]*scalar.Scalar, t)
		v.pp = make([]*curve.EdwardsPoint, t)
		for i := range v.sp {
			v.sp[i] = &v.scalars[i]
		}
	}
}

// SmallOrder reports whether [8]p is the identity: p is one of the eight
// points of the torsion subgroup (including the identity).
func SmallOrder(p *edwards25519.Point) bool {
	var q edwards25519.Point
	return q.MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}

// smallOrderEncodings are the canonical encodings of the eight points of the
// torsion subgroup: the identity, (0, −1), the two points of order 4 (y = 0)
// and the four of order 8.
var smallOrderEncodings = [8][32]byte{
	{0x01},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{},
	{31: 0x80},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa},
}

// smallOrderEncoding reports whether the canonical encoding b is that of a
// point of small order: a comparison instead of three doublings, exact because
// a canonical encoding is the point's only one.
func smallOrderEncoding(b []byte) bool {
	for i := range smallOrderEncodings {
		if [32]byte(b) == smallOrderEncodings[i] {
			return true
		}
	}
	return false
}

// Canonical reports whether b, 32 bytes, is how Point.Bytes would encode the
// point it decodes to (for bytes that decode at all): y < p, and the sign bit
// clear when x = 0 (y = ±1). It needs no field inversion.
func Canonical(b []byte) bool { return len(b) == 32 && canonicalEncoding(b) }

func canonicalEncoding(b []byte) bool {
	_ = b[31]
	// Is the 255-bit y ≥ p = 2²⁵⁵ − 19, or y = p − 1?
	top := b[31]&0x7f == 0x7f
	for i := 1; top && i < 31; i++ {
		top = b[i] == 0xff
	}
	if top && b[0] >= 0xed {
		return false
	}
	if b[31]&0x80 == 0 {
		return true
	}
	// Sign bit set: not canonical if x = 0, i.e. y = 1 or y = p − 1.
	if top && b[0] == 0xec {
		return false
	}
	if b[0] != 1 || b[31]&0x7f != 0 {
		return true
	}
	for i := 1; i < 31; i++ {
		if b[i] != 0 {
			return true
		}
	}
	return false
}
