package energy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// Batch verifies many readings at once (opt-in). It is not safe for concurrent
// use; use one Batch per goroutine.
//
// Rules. Each signature (R, s) on message M under key A is accepted by single
// verification (Verify, crypto/ed25519) iff s < ℓ (canonical), R is the canonical
// encoding of [s]B − [k]A with k = SHA-512(R‖A‖M) mod ℓ — the cofactorless
// equation. The batch checks, with fresh random 128-bit zᵢ,
//
//	[8]( [Σ zᵢsᵢ]B − Σ [zᵢ]Rᵢ − Σ [zᵢkᵢ]Aᵢ ) = 0
//
// — the cofactored equation, the only sound one for a random linear combination.
// Before that it requires what single verification requires of the encodings:
// s canonical, R a valid point whose encoding is canonical (re-encodes to the
// same bytes), A a valid point that is not of small order (DecodePublicKey).
// Consequences, both directions:
//   - Everything single verification accepts, the batch accepts: a valid
//     signature makes its term exactly zero.
//   - The batch may accept a signature single verification rejects only when
//     [s]B − [k]A − R is a non-zero point of small order, which needs R or A to
//     carry a torsion component chosen by the key's owner (an honest signer never
//     produces one; nobody else can, without the private key). For any other
//     invalid signature the batch fails except with probability ≤ 2⁻¹²⁸.
//   - When the batch equation fails, every reading is verified singly, so the
//     failures reported are exactly single verification's verdicts.
//
// Terms of readings signed by the same key are merged (Σ zᵢkᵢ on one Aᵢ), so a
// batch from few providers costs little more than one point per reading.
type Batch struct {
	rand    io.Reader
	entries []batchEntry
}

type batchEntry struct {
	r   Reading
	key Key
	err error // decided before the batch equation (format, key, scheme)
}

// NewBatch returns an empty batch drawing its coefficients from rnd
// (crypto/rand when nil).
func NewBatch(rnd io.Reader) *Batch {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Batch{rand: rnd}
}

// Add queues r for verification with keys' entry for its provider. Lookup,
// scheme and format failures are recorded for r and reported by Verify.
func (b *Batch) Add(keys *KeyRegistry, r Reading) {
	key, err := keyFor(keys, r)
	b.entries = append(b.entries, batchEntry{r: r, key: key, err: err})
}

// AddKey queues r for verification with an explicit key.
func (b *Batch) AddKey(r Reading, pub []byte) {
	e := batchEntry{r: r}
	if err := r.Validate(); err != nil {
		e.err = err
	} else if p, err := parsePoint(pub); err != nil || len(pub) != 32 {
		e.err = &VerifyError{Reason: ReasonInvalidFormat, ProviderID: r.ProviderID, Detail: "public key is not a valid 32-byte point"}
	} else {
		e.key = Key{ProviderID: r.ProviderID, PublicKey: append([]byte(nil), pub...), point: p}
	}
	b.entries = append(b.entries, e)
}

// Len is the number of queued readings.
func (b *Batch) Len() int { return len(b.entries) }

// Reset empties the batch for reuse.
func (b *Batch) Reset() { b.entries = b.entries[:0] }

// Verify checks every queued reading and returns one error per reading, in
// order (nil for a valid one), and whether all were valid.
func (b *Batch) Verify() ([]error, bool) {
	errs := make([]error, len(b.entries))
	n := len(b.entries)
	scalars := make([]*edwards25519.Scalar, 0, 2*n+1)
	points := make([]*edwards25519.Point, 0, 2*n+1)
	bCoef := edwards25519.NewScalar()
	// Merged A terms by key bytes.
	aIndex := make(map[[32]byte]int, 8)
	var zbuf [32]byte
	rnd := make([]byte, 16*n)
	if _, err := io.ReadFull(b.rand, rnd); err != nil {
		out := b.single(errs) // no randomness: fall back to single verification
		return out, allNil(out)
	}
	h := sha512.New()
	var digest [64]byte
	live := 0
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil {
			errs[i] = e.err
			continue
		}
		sig, _ := DecodeSignature(e.r.Signature)
		msg, _ := SignedBytes(e.r.Scheme, e.r.Message())
		s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
		if err != nil {
			errs[i] = failed(e.r, "s is not canonical")
			continue
		}
		R, err := new(edwards25519.Point).SetBytes(sig[:32])
		if err != nil || !bytes.Equal(R.Bytes(), sig[:32]) {
			errs[i] = failed(e.r, "R is not a canonical point encoding")
			continue
		}
		A := e.key.point
		if A == nil {
			if A, err = parsePoint(e.key.PublicKey); err != nil {
				errs[i] = &VerifyError{Reason: ReasonInvalidFormat, ProviderID: e.r.ProviderID, Detail: "public key: " + err.Error()}
				continue
			}
		}
		h.Reset()
		h.Write(sig[:32])
		h.Write(e.key.PublicKey)
		h.Write(msg)
		k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
		copy(zbuf[:16], rnd[16*i:16*i+16])
		z, _ := edwards25519.NewScalar().SetCanonicalBytes(zbuf[:]) // < 2^128 < ℓ
		bCoef.MultiplyAdd(z, s, bCoef)
		scalars = append(scalars, z)
		points = append(points, R.Negate(R))
		zk := edwards25519.NewScalar().Multiply(z, k)
		var ak [32]byte
		copy(ak[:], e.key.PublicKey)
		if j, ok := aIndex[ak]; ok {
			scalars[j].Add(scalars[j], zk)
		} else {
			aIndex[ak] = len(scalars)
			scalars = append(scalars, zk)
			points = append(points, new(edwards25519.Point).Negate(A))
		}
		live++
	}
	if live == 0 {
		return errs, allNil(errs)
	}
	scalars = append(scalars, bCoef)
	points = append(points, edwards25519.NewGeneratorPoint())
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	if sum.MultByCofactor(sum).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errs, allNil(errs)
	}
	// Some signature is bad: single verification names which.
	out := b.single(errs)
	return out, allNil(out)
}

// single verifies each entry not already failed with Verify.
func (b *Batch) single(errs []error) []error {
	for i, e := range b.entries {
		if errs[i] != nil || e.err != nil {
			if errs[i] == nil {
				errs[i] = e.err
			}
			continue
		}
		errs[i] = Verify(e.r, e.key.PublicKey)
	}
	return errs
}

func failed(r Reading, why string) error {
	return &VerifyError{Reason: ReasonVerificationFailed, ProviderID: r.ProviderID, Detail: fmt.Sprintf("signature rejected: %s", why)}
}

func allNil(errs []error) bool {
	for _, e := range errs {
		if e != nil {
			return false
		}
	}
	return true
}

// VerifyBatch verifies readings against keys with a Batch and returns one error
// per reading (nil when valid).
func VerifyBatch(keys *KeyRegistry, readings []Reading) []error {
	b := NewBatch(nil)
	for _, r := range readings {
		b.Add(keys, r)
	}
	errs, _ := b.Verify()
	return errs
}
