package bench

// Side-by-side benchmarks of batch Ed25519 verification with one distinct key
// per signature (Ed25519Batch) and from 8 keys (Ed25519Batch8Keys):
// crypto/ed25519 one by one (the baseline), tbops's batch
// (internal/ed25519batch, behind energy.Batch and governor.VerifyDir), and
// curve25519-voi's batch verifier. Each count runs every contender once per
// batch size, so they are interleaved; cpu-ns/sig (process CPU time) is the
// figure to read on a shared machine. Run (BENCHMARKS.md, commands C and C8):
//
//	cd bench && go test -run '^$' -bench 'Ed25519Batch$' -count 16 -benchtime 20x . | tee ed.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl ed.txt

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
	voicurve "github.com/oasisprotocol/curve25519-voi/curve"
	voiscalar "github.com/oasisprotocol/curve25519-voi/curve/scalar"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/internal/ed25519batch"
)

func edKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.LittleEndian.PutUint64(seed, uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

// edEntries returns n signatures by nKeys keys.
func edEntries(n, nKeys int) []ed25519batch.Entry {
	out := make([]ed25519batch.Entry, n)
	for i := range out {
		k := edKey(i % nKeys)
		msg := fmt.Appendf(nil, "reading %d", i)
		out[i] = ed25519batch.Entry{PublicKey: k.Public().(ed25519.PublicKey), Message: msg, Signature: ed25519.Sign(k, msg)}
	}
	return out
}

// edReadings returns n signed meter readings by nKeys providers, and the
// registry holding the providers' keys.
func edReadings(b *testing.B, n, nKeys int) (*energy.KeyRegistry, []energy.Reading) {
	reg := energy.NewKeyRegistry()
	for i := range nKeys {
		if err := reg.Add(fmt.Sprintf("p%d", i), "", hex.EncodeToString(edKey(i).Public().(ed25519.PublicKey))); err != nil {
			b.Fatal(err)
		}
	}
	rs := make([]energy.Reading, n)
	for i := range rs {
		id := fmt.Sprintf("p%d", i%nKeys)
		r, err := energy.Sign(energy.Reading{ProviderID: id, Meter: "meter_001", TotalKWh: uint64(i), Timestamp: 1_700_000_000, Nonce: uint64(i)}, edKey(i%nKeys))
		if err != nil {
			b.Fatal(err)
		}
		rs[i] = r
	}
	return reg, rs
}

// reportPerSig reports wall and CPU time per signature (ns/sig, cpu-ns/sig).
func reportPerSig(b *testing.B, n int, cpu int64) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
	b.ReportMetric(float64(cpu)/float64(b.N*n), "cpu-ns/sig")
}

// BenchmarkEd25519Batch reports wall and CPU time per signature for each contender:
//   - stdlib: crypto/ed25519.Verify on each signature;
//   - tbops: ed25519batch.Verifier from key bytes (governor's case);
//   - tbops-cached: with keys decoded once by ParseKey (energy's registry);
//   - energy: energy.Batch on signed readings from a KeyRegistry (Add, then
//     Verify: lookups, base64 signatures, messages and the cached keys);
//   - voi: curve25519-voi's BatchVerifier, Add from key bytes then VerifyBatchOnly;
//   - voi-expanded: with keys expanded once (voi's NewExpandedPublicKey).
func BenchmarkEd25519Batch(b *testing.B) {
	for _, n := range []int{64, 256, 1024} {
		benchBatch(b, n, n)
	}
}

// BenchmarkEd25519Batch8Keys is the same with signatures by 8 keys (a batch
// from a few providers: terms merge per key).
func BenchmarkEd25519Batch8Keys(b *testing.B) {
	for _, n := range []int{64, 256, 1024} {
		benchBatch(b, n, 8)
	}
}

// benchBatch runs every contender on n signatures by nKeys keys.
func benchBatch(b *testing.B, n, nKeys int) {
	es := edEntries(n, nKeys)
	cached := make([]ed25519batch.Entry, n)
	expanded := make([]*voi.ExpandedPublicKey, n)
	for i, e := range es {
		k, err := ed25519batch.ParseKey(e.PublicKey)
		if err != nil {
			b.Fatal(err)
		}
		cached[i] = e
		cached[i].Key = k
		if expanded[i], err = voi.NewExpandedPublicKey(e.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string, verify func() bool) {
		b.Run(fmt.Sprintf("n=%d/impl=%s", n, name), func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if !verify() {
					b.Fatal("valid batch refused")
				}
			}
			reportPerSig(b, n, processCPU()-cpu)
		})
	}
	run("stdlib", func() bool {
		for _, e := range es {
			if !ed25519.Verify(e.PublicKey, e.Message, e.Signature) {
				return false
			}
		}
		return true
	})
	v := ed25519batch.NewVerifier(nil)
	run("tbops", func() bool { return v.Verify(es) })
	run("tbops-cached", func() bool { return v.Verify(cached) })
	reg, rs := edReadings(b, n, nKeys)
	batch := energy.NewBatch(nil)
	run("energy", func() bool {
		batch.Reset()
		for _, r := range rs {
			batch.Add(reg, r)
		}
		_, ok := batch.Verify()
		return ok
	})
	run("voi", func() bool {
		bv := voi.NewBatchVerifier()
		for _, e := range es {
			bv.Add(e.PublicKey, e.Message, e.Signature)
		}
		return bv.VerifyBatchOnly(nil)
	})
	run("voi-expanded", func() bool {
		bv := voi.NewBatchVerifier()
		for i, e := range es {
			bv.AddExpanded(expanded[i], e.Message, e.Signature)
		}
		return bv.VerifyBatchOnly(nil)
	})
}

// BenchmarkEd25519MSM is the multi-scalar multiplication of a batch of 256
// signatures by distinct keys (513 terms: 256 with 128-bit scalars, 257 with
// full-size ones), and point decompression, in the candidate libraries:
//   - filippo-straus: filippo.io/edwards25519's VarTimeMultiScalarMult (what
//     ed25519batch used before);
//   - filippo-buckets: a signed-digit Pippenger written here over filippo's
//     public API (Point.Add/Subtract), the route the batch did not take;
//   - voi: curve25519-voi's MultiscalarMulVartime (what ed25519batch uses).
//
// Run: cd bench && go test -run '^$' -bench Ed25519MSM -count 8 -benchtime 20x .
func BenchmarkEd25519MSM(b *testing.B) {
	const n = 256
	fs, fp, vs, vp := msmTerms(b, n)
	var want edwards25519.Point
	want.VarTimeMultiScalarMult(fs, fp)
	var vsum voicurve.EdwardsPoint
	var venc voicurve.CompressedEdwardsY
	if venc.SetEdwardsPoint(vsum.MultiscalarMulVartime(vs, vp)); !bytes.Equal(venc[:], want.Bytes()) {
		b.Fatal("voi and filippo disagree")
	}
	if got := bucketMSM(fs, fp, 7); got.Equal(&want) != 1 {
		b.Fatal("bucket MSM is wrong")
	}
	// run reports per signature (for decompression: per point of 2n+1).
	run := func(name string, n int, op func()) {
		b.Run(name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				op()
			}
			reportPerSig(b, n, processCPU()-cpu)
		})
	}
	run("msm/impl=filippo-straus", n, func() { want.VarTimeMultiScalarMult(fs, fp) })
	run("msm/impl=filippo-buckets", n, func() { bucketMSM(fs, fp, 7) })
	run("msm/impl=voi", n, func() { vsum.MultiscalarMulVartime(vs, vp) })
	var encs [][]byte
	for _, p := range fp {
		encs = append(encs, p.Bytes())
	}
	var fpt edwards25519.Point
	var vpt voicurve.EdwardsPoint
	run("decompress/impl=filippo", len(encs), func() {
		for _, enc := range encs {
			if _, err := fpt.SetBytes(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("decompress/impl=voi", len(encs), func() {
		for _, enc := range encs {
			if _, err := vpt.SetCompressedY((*voicurve.CompressedEdwardsY)(enc)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// msmTerms returns a batch's terms in both libraries' types: n points with
// 128-bit scalars, n with full-size ones, and the base point.
func msmTerms(b *testing.B, n int) ([]*edwards25519.Scalar, []*edwards25519.Point, []*voiscalar.Scalar, []*voicurve.EdwardsPoint) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	var fs []*edwards25519.Scalar
	var fp []*edwards25519.Point
	var vs []*voiscalar.Scalar
	var vp []*voicurve.EdwardsPoint
	for i := range 2*n + 1 {
		wide := make([]byte, 64)
		for j := range wide {
			wide[j] = byte(rng.Uint32())
		}
		if i < n {
			clear(wide[16:]) // zᵢ < 2¹²⁸
		}
		s, _ := edwards25519.NewScalar().SetUniformBytes(wide)
		p := new(edwards25519.Point).ScalarBaseMult(edwards25519.NewScalar().Add(s, s))
		v, err := voiscalar.NewFromCanonicalBytes(s.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		q := voicurve.NewEdwardsPoint()
		if err := q.UnmarshalBinary(p.Bytes()); err != nil {
			b.Fatal(err)
		}
		fs, fp, vs, vp = append(fs, s), append(fp, p), append(vs, v), append(vp, q)
	}
	return fs, fp, vs, vp
}

// bucketMSM is Σ [sᵢ]Pᵢ by Pippenger's method with signed c-bit digits
// (2^(c−1) buckets per window), using only filippo's public point API.
func bucketMSM(scalars []*edwards25519.Scalar, points []*edwards25519.Point, c int) *edwards25519.Point {
	windows := (253 + c) / c
	digits := make([][]int, len(scalars))
	for i, s := range scalars {
		digits[i] = signedDigits(s.Bytes(), c, windows)
	}
	half := 1 << (c - 1)
	buckets := make([]edwards25519.Point, half+1)
	sum := edwards25519.NewIdentityPoint()
	var run, acc edwards25519.Point
	for w := windows - 1; w >= 0; w-- {
		for range c {
			sum.Add(sum, sum)
		}
		for j := range buckets {
			buckets[j].Set(edwards25519.NewIdentityPoint())
		}
		for i, p := range points {
			switch d := digits[i][w]; {
			case d > 0:
				buckets[d].Add(&buckets[d], p)
			case d < 0:
				buckets[-d].Subtract(&buckets[-d], p)
			}
		}
		run.Set(edwards25519.NewIdentityPoint())
		acc.Set(edwards25519.NewIdentityPoint())
		for j := half; j >= 1; j-- {
			run.Add(&run, &buckets[j])
			acc.Add(&acc, &run)
		}
		sum.Add(sum, &acc)
	}
	return sum
}

// signedDigits writes the little-endian scalar s in base 2^c with digits in
// [−2^(c−1), 2^(c−1)].
func signedDigits(s []byte, c, windows int) []int {
	out := make([]int, windows)
	carry := 0
	for w := range out {
		d := carry
		for bit := range c {
			if i := w*c + bit; i < 256 && s[i/8]>>(i%8)&1 == 1 {
				d += 1 << bit
			}
		}
		carry = 0
		if d > 1<<(c-1) {
			d -= 1 << c
			carry = 1
		}
		out[w] = d
	}
	return out
}
