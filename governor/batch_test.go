package governor

import (
	"crypto/ed25519"
	"fmt"
	"testing"

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

func BenchmarkSignatures(b *testing.B) {
	checks := makeChecks(64, testKey("a"))
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			for _, c := range checks {
				if !c.verify() {
					b.Fatal()
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/sig")
	})
	b.Run("batch64", func(b *testing.B) {
		for b.Loop() {
			if !batchVerify(checks) {
				b.Fatal()
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/sig")
	})
}
