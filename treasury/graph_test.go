package treasury

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rec(id uint64, st State, deps ...uint64) Disbursement {
	return Disbursement{ID: id, Amount: 1, Status: Status{State: st}, Proposal: Proposal{Deps: deps}}
}

func TestAnalyze(t *testing.T) {
	ds := []Disbursement{
		rec(1, StateFinalized),
		rec(2, StateRolledBack),
		rec(3, StateQueued, 1),     // satisfied
		rec(4, StateQueued, 2),     // rolled-back dep: Path A
		rec(5, StateQueued, 4),     // blocked behind 4
		rec(6, StateTimelocked, 5), // blocked behind 5 (root 4)
		rec(7, StateQueued, 99),    // missing
		rec(10, StateQueued, 11),   // cycle 10 → 11 → 12 → 10
		rec(11, StateQueued, 12),
		rec(12, StateQueued, 10),
		rec(13, StateQueued, 10),  // blocked behind the cycle
		rec(14, StateQueued, 14),  // self-loop
		rec(15, StateQueued, 3),   // waiting normally
		rec(16, StateExecuted, 2), // executed: its deps no longer matter
		rec(3, StateQueued),       // duplicate id
	}
	a := Analyze(ds)
	assert.Equal(t, []DepIssue{{ID: 4, Dep: 2, DepState: StateRolledBack}}, a.RolledBack)
	assert.Equal(t, []DepIssue{{ID: 7, Dep: 99}}, a.Missing)
	assert.Equal(t, [][]uint64{{10, 11, 12}, {14}}, a.Cycles)
	assert.Equal(t, []Blocked{{ID: 5, Via: 4, Root: 4}, {ID: 6, Via: 5, Root: 4}, {ID: 13, Via: 10, Root: 10}}, a.Blocked)
	assert.Equal(t, []uint64{3}, a.Duplicates)
	assert.Equal(t, 1, a.Waiting)
	assert.True(t, a.Failed())
	assert.False(t, Analyze(ds[:4:4][:1]).Failed())
}

func TestAnalyzeLongChainNoRecursion(t *testing.T) {
	// A 200,000-long chain closing into a cycle: recursion would overflow.
	const n = 200_000
	ds := make([]Disbursement, n)
	for i := range ds {
		ds[i] = rec(uint64(i+1), StateQueued, uint64((i+1)%n+1))
	}
	a := Analyze(ds)
	require.Len(t, a.Cycles, 1)
	assert.Len(t, a.Cycles[0], n)
	assert.Equal(t, uint64(1), a.Cycles[0][0])
	assert.Equal(t, uint64(2), a.Cycles[0][1])
}

// synthetic builds n disbursements: 80% finalized, the rest queued, each queued
// one depending on up to 3 earlier ids, with 1% rolled back and a few cycles.
func synthetic(n int) []Disbursement {
	ds := make([]Disbursement, n)
	for i := range ds {
		id := uint64(i + 1)
		st := StateFinalized
		switch {
		case i%100 == 0:
			st = StateRolledBack
		case i%5 == 0:
			st = StateQueued
		}
		d := rec(id, st)
		if st == StateQueued && i > 10 {
			d.Proposal.Deps = []uint64{id - 1, id - 5, id - 10}
		}
		if i%10_000 == 5 {
			d.Proposal.Deps = append(d.Proposal.Deps, id+5) // with id+5 → id: a cycle
		}
		ds[i] = d
	}
	return ds
}

func BenchmarkAnalyze(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		ds := synthetic(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a := Analyze(ds)
				if a.Pending == 0 {
					b.Fatal("no pending")
				}
			}
		})
	}
}
