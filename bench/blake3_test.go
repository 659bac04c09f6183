package bench

// Side-by-side BLAKE3 Sum256: lukechampine.com/blake3 at the version tbops pins
// (go.mod of the main module; governor hashes decision files with it) against
// github.com/zeebo/blake3. Each count runs both, interleaved. Run:
//
//	cd bench && go test -run '^$' -bench BLAKE3 -count 10 -benchtime 20000x . | tee b3.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl b3.txt
//
// Two versions of lukechampine.com/blake3 cannot share one build; blake3-versions.sh
// measures them in two throwaway modules, run alternately.

import (
	"fmt"
	"testing"

	zeebo "github.com/zeebo/blake3"
	luke "lukechampine.com/blake3"
)

var blake3Sink [32]byte

func BenchmarkBLAKE3(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if luke.Sum256(data) != zeebo.Sum256(data) {
			b.Fatal("the two libraries disagree")
		}
		for _, c := range []struct {
			name string
			sum  func([]byte) [32]byte
		}{{"lukechampine", luke.Sum256}, {"zeebo", zeebo.Sum256}} {
			b.Run(fmt.Sprintf("size=%dKiB/impl=%s", size>>10, c.name), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					blake3Sink = c.sum(data)
				}
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
