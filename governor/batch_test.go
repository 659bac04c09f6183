package governor

import (
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"testing"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/assert"
	"lukechampine.com/blake3"
)

func makeChecks(n int, keys ...ed25519.PrivateKey) []sigCheck {
	out := make([]sigCheck, n)
	for i := range out {
		k := keys[i%len(keys)]
		d := blake3.Sum256([]byte(fmt.Sprint(i)))
		out[i] = sigCheck{pub: k.Public().(ed25519.PublicKey), digest: d[:], sig: ed25519.Sign(k, d[:])}
	}
	return out
}

func TestBatchVerify(t *testing.T) {
	a, b := testKey("a"), testKey("b")
	for _, n := range []int{1, 2, 7, 64} {
		checks := makeChecks(n, a, b)
		assert.True(t, batchVerify(checks), "n=%d", n)
		for _, c := range checks {
			assert.True(t, c.verify())
		}
		// Any one bad signature fails the batch (and the standard check).
		for _, corrupt := range []func(c *sigCheck){
			func(c *sigCheck) { c.sig = append([]byte(nil), c.sig...); c.sig[5] ^= 1 },  // R
			func(c *sigCheck) { c.sig = append([]byte(nil), c.sig...); c.sig[40] ^= 1 }, // s
			func(c *sigCheck) { c.digest = make([]byte, 32) },                           // other message
			func(c *sigCheck) { c.pub = b.Public().(ed25519.PublicKey) },
			func(c *sigCheck) { c.sig = c.sig[:63] },
			func(c *sigCheck) { // non-canonical s (s + l)
				c.sig = append([]byte(nil), c.sig...)
				c.sig[63] |= 0xF0
			},
		} {
			bad := append([]sigCheck(nil), makeChecks(n, a)...)
			corrupt(&bad[n/2])
			assert.False(t, batchVerify(bad), "n=%d", n)
			assert.False(t, bad[n/2].verify())
		}
	}
	assert.True(t, batchVerify(nil))
}

// BenchmarkSignatures is 64 sidecar signatures under one key, checked one by
// one with crypto/ed25519 and as one batch (interleaved per count); ns/sig is
// wall time, cpu-ns/sig the process's CPU time.
func BenchmarkSignatures(b *testing.B) {
	checks := makeChecks(64, testKey("a"))
	run := func(name string, verify func() bool) {
		b.Run(name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if !verify() {
					b.Fatal("valid signatures refused")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/sig")
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/64, "cpu-ns/sig")
		})
	}
	run("stdlib", func() bool {
		for _, c := range checks {
			if !c.verify() {
				return false
			}
		}
		return true
	})
	run("batch64", func() bool { return batchVerify(checks) })
}

// A small-order key with s = 0 satisfies the cofactored equation for any
// message; the batch must refuse it and leave it to crypto/ed25519.
func TestBatchVerifyRefusesSmallOrder(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	sig := append(append([]byte(nil), identity...), make([]byte, 32)...)
	c := sigCheck{pub: identity, digest: make([]byte, 32), sig: sig}
	assert.False(t, batchVerify([]sigCheck{c}))
	good := makeChecks(3, testKey("a"))
	assert.False(t, batchVerify(append(good, c)))
}

// FuzzBatchVerify: the batch never accepts what crypto/ed25519 rejects.
func FuzzBatchVerify(f *testing.F) {
	good := makeChecks(1, testKey("a"))[0]
	f.Add(good.pub, good.digest, good.sig)
	bad := append([]byte(nil), good.sig...)
	bad[0] ^= 1
	f.Add(good.pub, good.digest, bad)
	f.Fuzz(func(t *testing.T, pub, digest, sig []byte) {
		c := sigCheck{pub: pub, digest: digest, sig: sig}
		if batchVerify([]sigCheck{good, c}) && !c.verify() {
			t.Fatalf("batch accepted what crypto/ed25519 rejects: pub %x sig %x", pub, sig)
		}
	})
}

// A small-order R with s = k·a is valid for crypto/ed25519 but refused by the
// batch, so VerifyDir's per-signature fallback decides it.
func TestBatchVerifySmallOrderRFallsBack(t *testing.T) {
	k := testKey("crafted")
	h := sha512.Sum512(k.Seed())
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	assert.NoError(t, err)
	pub := k.Public().(ed25519.PublicKey)
	digest := blake3.Sum256([]byte("decision"))
	R := edwards25519.NewIdentityPoint().Bytes()
	kh := sha512.New()
	kh.Write(R)
	kh.Write(pub)
	kh.Write(digest[:])
	kk, err := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	assert.NoError(t, err)
	c := sigCheck{pub: pub, digest: digest[:], sig: append(R, edwards25519.NewScalar().Multiply(kk, a).Bytes()...)}
	assert.True(t, c.verify())
	assert.False(t, batchVerify(append(makeChecks(3, testKey("a")), c)))
}
