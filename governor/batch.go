package governor

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"

	"filippo.io/edwards25519"
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

// batchVerify checks many signatures at once with a random linear combination
// of the cofactored verification equations,
//
//	[8]( Σ z_i·R_i + Σ (z_i·k_i)·A_i − (Σ z_i·s_i)·B ) = 0,
//
// with 128-bit random z_i and the terms of one key summed into one scalar, so a
// directory signed by one governor key costs little more than one point
// decompression per signature. It returns true only when every signature is
// well formed (canonical s, canonical R and A encodings, neither R nor A of
// small order: those go to the per-signature check) and the combination
// holds; on false the caller verifies each signature with crypto/ed25519, so a
// failure is always reported per signature by the standard check. It can differ
// from crypto/ed25519 (which is cofactorless) only for signatures whose key or
// R has a small-order component, which needs the key's owner to build.
func batchVerify(checks []sigCheck) bool {
	if len(checks) == 0 {
		return true
	}
	type keyTerm struct {
		point  *edwards25519.Point
		scalar *edwards25519.Scalar
	}
	keys := map[string]*keyTerm{}
	scalars := make([]*edwards25519.Scalar, 0, len(checks)+2)
	points := make([]*edwards25519.Point, 0, len(checks)+2)
	sSum := edwards25519.NewScalar()
	var zb [32]byte
	h := sha512.New()
	var kDigest [64]byte
	for _, c := range checks {
		if len(c.pub) != ed25519.PublicKeySize || len(c.sig) != ed25519.SignatureSize {
			return false
		}
		kt, ok := keys[string(c.pub)]
		if !ok {
			A, err := new(edwards25519.Point).SetBytes(c.pub)
			if err != nil || !bytes.Equal(A.Bytes(), c.pub) || smallOrder(A) {
				return false
			}
			kt = &keyTerm{point: A, scalar: edwards25519.NewScalar()}
			keys[string(c.pub)] = kt
		}
		R, err := new(edwards25519.Point).SetBytes(c.sig[:32])
		if err != nil || !bytes.Equal(R.Bytes(), c.sig[:32]) || smallOrder(R) {
			return false
		}
		s, err := new(edwards25519.Scalar).SetCanonicalBytes(c.sig[32:])
		if err != nil {
			return false
		}
		h.Reset()
		h.Write(c.sig[:32])
		h.Write(c.pub)
		h.Write(c.digest)
		k, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(kDigest[:0]))
		if err != nil {
			return false
		}
		if _, err := rand.Read(zb[:16]); err != nil {
			return false
		}
		z, err := new(edwards25519.Scalar).SetCanonicalBytes(zb[:])
		if err != nil {
			return false
		}
		kt.scalar.MultiplyAdd(z, k, kt.scalar)
		sSum.MultiplyAdd(z, s, sSum)
		scalars = append(scalars, z)
		points = append(points, R)
	}
	for _, kt := range keys {
		scalars = append(scalars, kt.scalar)
		points = append(points, kt.point)
	}
	scalars = append(scalars, edwards25519.NewScalar().Negate(sSum))
	points = append(points, edwards25519.NewGeneratorPoint())
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	sum.MultByCofactor(sum)
	return sum.Equal(edwards25519.NewIdentityPoint()) == 1
}

// smallOrder says whether [8]P is the identity (P is in the torsion subgroup).
func smallOrder(p *edwards25519.Point) bool {
	return new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}
