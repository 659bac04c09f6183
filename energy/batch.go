package energy

import (
	"io"

	"github.com/theblock/tbops/internal/ed25519batch"
)

// Batch verifies many readings at once (opt-in). It is not safe for concurrent
// use; use one Batch per goroutine.
//
// Rules. Each signature (R, s) on message M under key A is accepted by single
// verification (Verify, crypto/ed25519) iff s < ℓ (canonical) and R is the
// canonical encoding of [s]B − [k]A with k = SHA-512(R‖A‖M) mod ℓ — the
// cofactorless equation. The batch checks, with fresh
// random 128-bit zᵢ, the cofactored equation
//
//	[8]( Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ − [Σ zᵢsᵢ]B ) = 0,
//
// the only sound one for a random linear combination, and only when every
// reading's s is canonical, R and A are canonical encodings and neither is of
// small order; otherwise, or when the equation fails, every reading is
// verified singly. Consequences, both directions:
//   - Everything single verification accepts, the batch accepts (a valid
//     signature makes its term exactly zero; unusual encodings go to Verify).
//   - The batch may accept a signature single verification rejects only when
//     [s]B − [k]A − R is a non-zero point of small order, which needs R or A to
//     carry a torsion component chosen by the key's owner (an honest signer never
//     produces one; nobody else can, without the private key). For any other
//     invalid signature the batch fails except with probability ≤ 2⁻¹²⁸.
//   - When the batch fails, the failures reported are exactly single
//     verification's verdicts.
//
// Terms of readings signed by the same key are merged (Σ zᵢkᵢ on one Aᵢ), and
// the registry's decompressed key points are reused, so a batch from few
// providers costs little more than one point decompression per reading.
type Batch struct {
	v       *ed25519batch.Verifier
	entries []batchEntry
	es      []ed25519batch.Entry
}

type batchEntry struct {
	r   Reading
	key Key
	err error // decided before the batch equation (format, key, scheme)
}

// NewBatch returns an empty batch drawing its coefficients from rnd
// (crypto/rand when nil).
func NewBatch(rnd io.Reader) *Batch {
	return &Batch{v: ed25519batch.NewVerifier(rnd)}
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
	} else if _, err := parsePoint(pub); err != nil || len(pub) != 32 {
		e.err = &VerifyError{Reason: ReasonInvalidFormat, ProviderID: r.ProviderID, Detail: "public key is not a valid 32-byte point"}
	} else {
		pub = append([]byte(nil), pub...)
		bk, _ := ed25519batch.ParseKey(pub)
		e.key = Key{ProviderID: r.ProviderID, PublicKey: pub, batch: bk}
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
	b.es = b.es[:0]
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil {
			errs[i] = e.err
			continue
		}
		sig, _ := DecodeSignature(e.r.Signature)
		msg, _ := SignedBytes(e.r.Scheme, e.r.Message())
		b.es = append(b.es, ed25519batch.Entry{PublicKey: e.key.PublicKey, Key: e.key.batch, Message: msg, Signature: sig})
	}
	if b.v.Verify(b.es) {
		return errs, allNil(errs)
	}
	// Some signature is bad or unusual: single verification names which.
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
