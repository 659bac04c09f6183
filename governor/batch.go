package governor

import (
	"crypto/ed25519"

	"github.com/theblock/tbops/internal/ed25519batch"
)

// sigCheck is one Ed25519 signature over a 32-byte digest, waiting to be checked.
type sigCheck struct {
	pub    []byte
	digest []byte
	sig    []byte
}

func (c sigCheck) verify() bool {
	return len(c.pub) == ed25519.PublicKeySize && len(c.sig) == ed25519.SignatureSize &&
		ed25519.Verify(c.pub, c.digest, c.sig)
}

// batcher checks sidecar signatures in batches with internal/ed25519batch
// (cofactored random linear combination; canonical s, canonical R and A, and
// no small-order R or A required, else false). On false the caller checks each
// signature with crypto/ed25519, so failures are always the standard check's
// verdicts. One batcher per goroutine: it reuses its buffers.
type batcher struct {
	v  *ed25519batch.Verifier
	es []ed25519batch.Entry
}

func (b *batcher) verify(checks []sigCheck) bool {
	if b.v == nil {
		b.v = ed25519batch.NewVerifier(nil)
	}
	b.es = b.es[:0]
	for _, c := range checks {
		b.es = append(b.es, ed25519batch.Entry{PublicKey: c.pub, Message: c.digest, Signature: c.sig})
	}
	return b.v.Verify(b.es)
}

// batchVerify is a one-off [batcher.verify].
func batchVerify(checks []sigCheck) bool {
	var b batcher
	return b.verify(checks)
}
