#!/usr/bin/env bash
# Measures lukechampine.com/blake3 Sum256 at two versions side by side. Two
# versions of one module cannot share a build (and a renamed copy is not a fair
# peer), so this builds one throwaway module per version, each with the same
# benchmark, and runs the two test binaries alternately, ROUNDS times each.
#
# Usage: bash bench/blake3-versions.sh [OLD [NEW [ROUNDS]]]   (default v1.3.0 v1.4.1 8; Linux)
# Output: benchstat of old vs new (1 KiB and 64 KiB), raw results in $OUT (a temp dir).
set -euo pipefail

old=${1:-v1.3.0}
new=${2:-v1.4.1}
rounds=${3:-8}
OUT=$(mktemp -d)
trap 'echo "raw results in $OUT"' EXIT

for v in "$old" "$new"; do
	dir="$OUT/mod-$v"
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<EOF
module blake3bench

go 1.26.0
EOF
	cat >"$dir/sum_test.go" <<'EOF'
package blake3bench

import (
	"fmt"
	"syscall"
	"testing"

	"lukechampine.com/blake3"
)

var sink [32]byte

// processCPU is the process's CPU time (all threads), steadier than wall time
// on a shared machine; v1.4.x hashes large inputs on several goroutines, so
// wall and CPU time differ there by design.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkSum256(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				sink = blake3.Sum256(data)
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
EOF
	(cd "$dir" && go get "lukechampine.com/blake3@$v" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1 && go test -c -o "$OUT/$v.test" .)
done

for ((i = 1; i <= rounds; i++)); do
	for v in "$old" "$new"; do
		"$OUT/$v.test" -test.run '^$' -test.bench Sum256 -test.benchtime 20000x -test.count 1 >>"$OUT/$v.txt"
	done
done

go run golang.org/x/perf/cmd/benchstat@latest "$OUT/$old.txt" "$OUT/$new.txt"
