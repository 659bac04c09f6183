package governor

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchDir writes n signed, canonical economics decision files (about 600 bytes
// each, like the reference node's) into a temporary directory.
func benchDir(b *testing.B, n int) string { return benchDirKey(b, n, testKey("bench")) }

// benchDirKey is benchDir with sidecars signed by key (none when key is nil).
func benchDirKey(b *testing.B, n int, key ed25519.PrivateKey) string {
	b.Helper()
	dir := b.TempDir()
	for e := 0; e < n; e++ {
		writeDecision(b, dir, decisionObj(uint64(e), "economics"), key)
	}
	return dir
}

// BenchmarkVerifyDir10k hashes and verifies 10 000 decision files with their
// Ed25519 sidecars (target: < 1 s per op on a 2-core machine); NoBatch checks
// each signature with crypto/ed25519 alone, for comparison. cpu-s/op is the
// process's CPU time (both cores' workers), steadier than wall time when the
// machine is shared.
func BenchmarkVerifyDir10k(b *testing.B) {
	const n = 10_000
	dir := benchDir(b, n)
	for _, mode := range []struct {
		name    string
		noBatch bool
	}{{"batch", false}, {"NoBatch", true}} {
		b.Run(mode.name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				sum, err := VerifyDir(context.Background(), dir, VerifyOptions{RequireSignatures: true, NoBatch: mode.noBatch}, nil)
				if err != nil || sum.OK != n {
					b.Fatalf("%+v %v", sum, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/file")
			b.ReportMetric(float64(processCPU()-cpu)/1e9/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkVerifyDirConcurrency compares worker counts on 2 000 signed files.
func BenchmarkVerifyDirConcurrency(b *testing.B) {
	const n = 2_000
	dir := benchDir(b, n)
	for _, c := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("workers=%d", c), func(b *testing.B) {
			for b.Loop() {
				sum, err := VerifyDir(context.Background(), dir, VerifyOptions{Concurrency: c}, nil)
				if err != nil || sum.OK != n {
					b.Fatalf("%+v %v", sum, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/file")
		})
	}
}

// BenchmarkVerifyDir10kUnsigned is the same without sidecars: reading,
// strict parsing, canonical re-encoding and BLAKE3 only.
func BenchmarkVerifyDir10kUnsigned(b *testing.B) {
	const n = 10_000
	dir := benchDirKey(b, n, nil)
	b.ResetTimer()
	for b.Loop() {
		sum, err := VerifyDir(context.Background(), dir, VerifyOptions{}, nil)
		if err != nil || sum.OK != n {
			b.Fatalf("%+v %v", sum, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/file")
}

// BenchmarkHashFile is one file's parse, canonical re-encoding and BLAKE3.
func BenchmarkHashFile(b *testing.B) {
	dir := benchDir(b, 1)
	data, err := os.ReadFile(filepath.Join(dir, FileName(0)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonical encodes a decision from Go values.
func BenchmarkCanonical(b *testing.B) {
	obj := decisionObj(7, "economics")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(obj); err != nil {
			b.Fatal(err)
		}
	}
}
