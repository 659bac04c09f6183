package receipts_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/theblock/tbops/receipts"
)

const benchPerBlock = 1000

// benchPool is 262 144 distinct receipts: 262 blocks of 1000, more than twice the
// default 120-block window, so reusing the pool with ever higher heights never
// meets a receipt still in the window.
func benchPool() []receipts.Receipt {
	pool := make([]receipts.Receipt, 1<<18)
	for i := range pool {
		pool[i] = receipts.Receipt{ReceiptID: "rcpt-" + strconv.Itoa(i), Market: receipts.Markets()[i%4],
			Provider: "provider-" + strconv.Itoa(i%512), Payment: 5000, Nonce: uint64(i), Signature: "c2lnbmF0dXJl"}
	}
	return pool
}

// BenchmarkValidatorDuplicateDetection is the DESIGN.md target: ≥ 1 000 000
// receipts/s through schema, floor and duplicate checks (no signature check).
func BenchmarkValidatorDuplicateDetection(b *testing.B) {
	pool := benchPool()
	v, err := receipts.NewValidator(receipts.ValidatorConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := pool[i&(len(pool)-1)]
		r.BlockHeight = int64(i / benchPerBlock)
		if err := v.Validate(&r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkValidatorReplays sends every receipt twice: half the stream is
// rejected as duplicates (the replay path allocates its error).
func BenchmarkValidatorReplays(b *testing.B) {
	pool := benchPool()
	v, err := receipts.NewValidator(receipts.ValidatorConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i / 2
		r := pool[j&(len(pool)-1)]
		r.BlockHeight = int64(j / benchPerBlock)
		err := v.Validate(&r)
		if (i%2 == 1) != (err != nil) {
			b.Fatalf("receipt %d: %v", i, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkValidatorHeap feeds streams of two lengths through the Validator and
// reports the heap it holds afterwards: the same for both, because memory is
// bounded by the window (120 blocks × 1000 receipts), not by the stream. Run
// with -benchtime=1x.
func BenchmarkValidatorHeap(b *testing.B) {
	for _, n := range []int{1_000_000, 8_000_000} {
		b.Run(fmt.Sprintf("stream=%dM", n/1_000_000), func(b *testing.B) {
			pool := benchPool()
			for it := 0; it < b.N; it++ {
				before := heapInUse()
				v, err := receipts.NewValidator(receipts.ValidatorConfig{})
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < n; i++ {
					r := pool[i&(len(pool)-1)]
					r.BlockHeight = int64(i / benchPerBlock)
					if err := v.Validate(&r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(heapInUse()-before)/(1<<20), "heap-MiB")
				b.ReportMetric(float64(v.Len()), "window-receipts")
				runtime.KeepAlive(v)
			}
		})
	}
}

// BenchmarkNaiveMapHeap is the baseline a Validator replaces: a map of every
// receipt id ever seen, whose memory grows with the stream.
func BenchmarkNaiveMapHeap(b *testing.B) {
	for _, n := range []int{1_000_000, 8_000_000} {
		b.Run(fmt.Sprintf("stream=%dM", n/1_000_000), func(b *testing.B) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = "rcpt-" + strconv.Itoa(i)
			}
			for it := 0; it < b.N; it++ {
				before := heapInUse()
				seen := map[string]struct{}{}
				for _, id := range ids {
					if _, dup := seen[id]; dup {
						b.Fatal("dup")
					}
					seen[id] = struct{}{}
				}
				b.ReportMetric(float64(heapInUse()-before)/(1<<20), "heap-MiB")
				runtime.KeepAlive(seen)
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// BenchmarkDiagnose is one receipts diagnosis of a healthy simulated node over
// loopback HTTP on the scrape source after doctor's one-second observation:
// the cost per node of a doctor or serve run (six RPC calls, every rule and
// evaluation).
func BenchmarkDiagnose(b *testing.B) {
	f := short(b, "healthy")
	rb := receipts.NewRunbook(f.c, f.src, receipts.Options{Now: f.clk.Now, SLO: true, ExplorerURL: f.node.ExplorerURL()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rb.Diagnose(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
