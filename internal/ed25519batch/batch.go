package ed25519batch

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"hash"
	"io"

	"filippo.io/edwards25519"
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
	// Point is A already decompressed (optional; e.g. cached by a key
	// registry). When set it must be the decoding of PublicKey; it is trusted,
	// not re-derived.
	Point *edwards25519.Point
	// Message is the signed message.
	Message []byte
	// Signature is R‖s, 64 bytes.
	Signature []byte
}

// Verifier checks batches, reusing its buffers between calls. It is not safe
// for concurrent use; use one per goroutine.
type Verifier struct {
	rand    io.Reader
	h       hash.Hash
	digest  [sha512.Size]byte
	zbuf    [32]byte
	rnd     []byte
	scalars []edwards25519.Scalar
	points  []edwards25519.Point
	sp      []*edwards25519.Scalar
	pp      []*edwards25519.Point
	keys    map[[32]byte]int
	sum     edwards25519.Point
	tmp     edwards25519.Scalar
}

// NewVerifier returns a Verifier drawing its coefficients from rnd
// (crypto/rand when nil).
func NewVerifier(rnd io.Reader) *Verifier {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Verifier{rand: rnd, h: sha512.New(), keys: map[[32]byte]int{}}
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
	// Layout of the backing arrays: Rᵢ at i < n, distinct keys from n on, B last.
	nk := 0
	var s, zk edwards25519.Scalar
	sSum := &v.tmp
	*sSum = edwards25519.Scalar{}
	for i := range entries {
		e := &entries[i]
		if len(e.PublicKey) != PublicKeySize || len(e.Signature) != SignatureSize {
			return false
		}
		if _, err := s.SetCanonicalBytes(e.Signature[32:]); err != nil {
			return false
		}
		R := &v.points[i]
		if !canonicalEncoding(e.Signature[:32]) {
			return false
		}
		if _, err := R.SetBytes(e.Signature[:32]); err != nil || SmallOrder(R) {
			return false
		}
		var key [32]byte
		copy(key[:], e.PublicKey)
		j, ok := v.keys[key]
		if !ok {
			j = n + nk
			A := &v.points[j]
			if !canonicalEncoding(e.PublicKey) {
				return false
			}
			if e.Point != nil {
				A.Set(e.Point)
			} else if _, err := A.SetBytes(e.PublicKey); err != nil {
				return false
			}
			if SmallOrder(A) {
				return false
			}
			v.scalars[j] = edwards25519.Scalar{}
			v.keys[key] = j
			nk++
		}
		v.h.Reset()
		v.h.Write(e.Signature[:32])
		v.h.Write(e.PublicKey)
		v.h.Write(e.Message)
		k := &zk
		if _, err := k.SetUniformBytes(v.h.Sum(v.digest[:0])); err != nil {
			return false
		}
		z := &v.scalars[i]
		copy(v.zbuf[:16], v.rnd[16*i:16*i+16])
		if _, err := z.SetCanonicalBytes(v.zbuf[:]); err != nil { // < 2¹²⁸ < ℓ
			return false
		}
		v.scalars[j].MultiplyAdd(z, k, &v.scalars[j])
		sSum.MultiplyAdd(z, &s, sSum)
	}
	m := n + nk
	v.scalars[m].Negate(sSum)
	v.points[m].Set(edwards25519.NewGeneratorPoint())
	sp, pp := v.sp[:m+1], v.pp[:m+1]
	for i := range sp {
		sp[i], pp[i] = &v.scalars[i], &v.points[i]
	}
	v.sum.VarTimeMultiScalarMult(sp, pp)
	return SmallOrder(&v.sum)
}

// grow sizes the buffers for n entries (2n+1 terms at most).
func (v *Verifier) grow(n int) {
	if cap(v.rnd) < 16*n {
		v.rnd = make([]byte, 16*n)
	}
	v.rnd = v.rnd[:16*n]
	if t := 2*n + 1; len(v.scalars) < t {
		v.scalars = make([]edwards25519.Scalar, t)
		v.points = make([]edwards25519.Point, t)
		v.sp = make([]*edwards25519.Scalar, t)
		v.pp = make([]*edwards25519.Point, t)
	}
}

// SmallOrder reports whether [8]p is the identity: p is one of the eight
// points of the torsion subgroup (including the identity).
func SmallOrder(p *edwards25519.Point) bool {
	var q edwards25519.Point
	return q.MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}

// Errors of [ParsePoint].
var (
	ErrPointLength  = errors.New("ed25519batch: point encoding is not 32 bytes")
	ErrNonCanonical = errors.New("ed25519batch: non-canonical point encoding")
	ErrNotOnCurve   = errors.New("ed25519batch: not a valid curve point")
)

// ParsePoint decodes a 32-byte point encoding, requiring it to be canonical
// (it re-encodes to the same bytes). It does not check the order; see
// [SmallOrder].
func ParsePoint(b []byte) (*edwards25519.Point, error) {
	if len(b) != 32 {
		return nil, ErrPointLength
	}
	if !canonicalEncoding(b) {
		return nil, ErrNonCanonical
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, ErrNotOnCurve
	}
	return p, nil
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
