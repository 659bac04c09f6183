package ed25519batch

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

// BenchmarkVerifyStdlib is crypto/ed25519.Verify, one signature per op (the peer).
func BenchmarkVerifyStdlib(b *testing.B) {
	es := entries(64, 64)
	i := 0
	for b.Loop() {
		e := es[i%len(es)]
		if !ed25519.Verify(e.PublicKey, e.Message, e.Signature) {
			b.Fatal("invalid")
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sig")
}

// BenchmarkVerify reports ns per signature for batches of n signatures by
// `keys` keys; cached=true passes pre-decompressed key points (as a key
// registry does).
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{64, 256, 1024} {
		for _, nk := range []int{n, 8} {
			for _, cached := range []bool{false, true} {
				b.Run(fmt.Sprintf("n=%d/keys=%d/cached=%v", n, nk, cached), func(b *testing.B) {
					es := entries(n, nk)
					if cached {
						cacheKeys(b, es)
					}
					v := NewVerifier(nil)
					b.ReportAllocs()
					for b.Loop() {
						if !v.Verify(es) {
							b.Fatal("batch failed")
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
				})
			}
		}
	}
}
