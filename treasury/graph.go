package treasury

import "slices"

// DepIssue is one dependency of a pending disbursement that cannot be satisfied.
type DepIssue struct {
	// ID is the pending disbursement.
	ID uint64 `json:"id"`
	// Dep is the dependency.
	Dep uint64 `json:"dep"`
	// DepState is the dependency's state, "" when it is missing.
	DepState State `json:"dep_state,omitempty"`
}

// Blocked is a pending disbursement that waits, directly or through a chain of
// other pending disbursements, on one that cannot proceed.
type Blocked struct {
	ID uint64 `json:"id"`
	// Via is the dependency it waits on directly.
	Via uint64 `json:"via"`
	// Root is the disbursement at the head of the chain whose dependency failed
	// (or that sits in a cycle).
	Root uint64 `json:"root"`
}

// Analysis is the dependency graph of the pending disbursements.
type Analysis struct {
	// Disbursements and Pending count the records and the pending ones among them.
	Disbursements int `json:"disbursements"`
	Pending       int `json:"pending"`
	// Edges counts the dependencies of pending disbursements.
	Edges int `json:"edges"`
	// Duplicates lists ids that appear more than once (the first record wins).
	Duplicates []uint64 `json:"duplicates,omitempty"`
	// Missing: dependencies that are not among the disbursements.
	Missing []DepIssue `json:"missing,omitempty"`
	// RolledBack: dependencies that were rolled back (resolution Path A).
	RolledBack []DepIssue `json:"rolled_back,omitempty"`
	// Cycles: each a cycle of pending disbursements in dependency order
	// (a depends on b depends on … depends on a). This is what the executor
	// reports as dependency_cycle_detected.
	Cycles [][]uint64 `json:"cycles,omitempty"`
	// Blocked: pending disbursements stuck behind a failure above.
	Blocked []Blocked `json:"blocked,omitempty"`
	// Waiting counts pending disbursements waiting on pending dependencies that
	// can still proceed (normal).
	Waiting int `json:"waiting"`
}

// Failed says whether any dependency problem was found.
func (a Analysis) Failed() bool {
	return len(a.Missing) > 0 || len(a.RolledBack) > 0 || len(a.Cycles) > 0
}

// Analyze builds the dependency graph of ds and finds missing and rolled-back
// dependencies, cycles and the chains blocked behind them. It runs in time and
// memory linear in the number of disbursements and dependencies, without
// recursion (safe at millions of records). Only dependencies of pending
// disbursements (draft, voting, queued, timelocked) matter: an executed one no
// longer waits. Results are sorted by id.
func Analyze(ds []Disbursement) Analysis {
	a := Analysis{Disbursements: len(ds)}
	idx := newIDIndex(ds)
	for i := range ds {
		if !idx.add(ds[i].ID, int32(i)) {
			a.Duplicates = append(a.Duplicates, ds[i].ID)
		}
	}
	n := len(ds)
	// Compressed adjacency (CSR) over pending nodes: pending i → pending deps.
	start := make([]int32, n+1)
	var adj []int32
	failed := make([]bool, n) // a pending node with a direct dependency failure
	for i := range ds {
		start[i] = int32(len(adj))
		d := &ds[i]
		if self, _ := idx.get(d.ID); !d.Status.State.Pending() || self != int32(i) {
			continue
		}
		a.Pending++
		for _, dep := range d.Proposal.Deps {
			a.Edges++
			j, ok := idx.get(dep)
			if !ok {
				a.Missing = append(a.Missing, DepIssue{ID: d.ID, Dep: dep})
				failed[i] = true
				continue
			}
			switch st := ds[j].Status.State; {
			case st == StateRolledBack:
				a.RolledBack = append(a.RolledBack, DepIssue{ID: d.ID, Dep: dep, DepState: st})
				failed[i] = true
			case st.Pending():
				adj = append(adj, j)
			}
		}
	}
	start[n] = int32(len(adj))

	inCycle := a.findCycles(ds, start, adj)
	for i := range inCycle {
		if inCycle[i] {
			failed[i] = true
		}
	}

	// Propagate failures to dependents: BFS over reverse edges.
	rstart := make([]int32, n+1)
	for _, j := range adj {
		rstart[j+1]++
	}
	for i := 0; i < n; i++ {
		rstart[i+1] += rstart[i]
	}
	radj := make([]int32, len(adj))
	fill := slices.Clone(rstart[:n])
	for i := 0; i < n; i++ {
		for _, j := range adj[start[i]:start[i+1]] {
			radj[fill[j]] = int32(i)
			fill[j]++
		}
	}
	root := make([]int32, n)
	via := make([]int32, n)
	for i := range root {
		root[i] = -1
	}
	queue := make([]int32, 0, 64)
	for i := 0; i < n; i++ {
		if failed[i] {
			root[i] = int32(i)
			queue = append(queue, int32(i))
		}
	}
	for qi := 0; qi < len(queue); qi++ {
		j := queue[qi]
		for _, i := range radj[rstart[j]:rstart[j+1]] {
			if root[i] >= 0 {
				continue
			}
			root[i], via[i] = root[j], j
			queue = append(queue, i)
			a.Blocked = append(a.Blocked, Blocked{ID: ds[i].ID, Via: ds[j].ID, Root: ds[root[j]].ID})
		}
	}
	for i := 0; i < n; i++ {
		if root[i] < 0 && start[i+1] > start[i] {
			a.Waiting++
		}
	}
	sortIssues(a.Missing)
	sortIssues(a.RolledBack)
	slices.SortFunc(a.Blocked, func(x, y Blocked) int { return cmpU(x.ID, y.ID) })
	slices.Sort(a.Duplicates)
	return a
}

func cmpU(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func sortIssues(s []DepIssue) {
	slices.SortFunc(s, func(x, y DepIssue) int {
		if c := cmpU(x.ID, y.ID); c != 0 {
			return c
		}
		return cmpU(x.Dep, y.Dep)
	})
}

// findCycles runs an iterative Tarjan SCC over the CSR graph, records one
// concrete cycle per strongly connected component (size > 1, or a self-loop)
// and returns which nodes sit in such a component.
func (a *Analysis) findCycles(ds []Disbursement, start, adj []int32) []bool {
	n := len(ds)
	const unvisited = -1
	idx := make([]int32, n)
	low := make([]int32, n)
	onStack := make([]bool, n)
	inCycle := make([]bool, n)
	comp := make([]int32, n) // component number + 1 of popped nodes
	ncomp := int32(0)
	for i := range idx {
		idx[i] = unvisited
	}
	var stack []int32
	type frame struct{ v, e int32 }
	var call []frame
	next := int32(0)
	for s := 0; s < n; s++ {
		if idx[s] != unvisited || start[s+1] == start[s] {
			continue
		}
		call = append(call, frame{int32(s), start[s]})
		idx[s], low[s] = next, next
		next++
		stack = append(stack, int32(s))
		onStack[s] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.e < start[v+1] {
				w := adj[f.e]
				f.e++
				if idx[w] == unvisited {
					idx[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, start[w]})
				} else if onStack[w] && idx[w] < low[v] {
					low[v] = idx[w]
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				if low[v] < low[p] {
					low[p] = low[v]
				}
			}
			if low[v] != idx[v] {
				continue
			}
			// v roots an SCC: pop it.
			k := len(stack) - 1
			for stack[k] != v {
				k--
			}
			members := stack[k:]
			stack = stack[:k]
			ncomp++
			for _, w := range members {
				onStack[w] = false
				comp[w] = ncomp
			}
			selfLoop := false
			if len(members) == 1 {
				for _, w := range adj[start[v]:start[v+1]] {
					if w == v {
						selfLoop = true
					}
				}
			}
			if len(members) > 1 || selfLoop {
				for _, w := range members {
					inCycle[w] = true
				}
				a.Cycles = append(a.Cycles, cycleIn(ds, start, adj, members, comp, ncomp))
			}
		}
	}
	slices.SortFunc(a.Cycles, func(x, y []uint64) int { return cmpU(x[0], y[0]) })
	return inCycle
}

// cycleIn walks from the component's smallest id along edges that stay in the
// component until a node repeats, and returns that cycle, starting at its
// smallest id. Every node of a cyclic component has an edge inside it, so the
// walk never stops early; it is linear in the component's edges.
func cycleIn(ds []Disbursement, start, adj []int32, members []int32, comp []int32, c int32) []uint64 {
	s := members[0]
	for _, w := range members {
		if ds[w].ID < ds[s].ID {
			s = w
		}
	}
	pos := make(map[int32]int, len(members))
	var path []int32
	v := s
	for {
		if p, seen := pos[v]; seen {
			path = path[p:]
			break
		}
		pos[v] = len(path)
		path = append(path, v)
		nextV := int32(-1)
		for _, w := range adj[start[v]:start[v+1]] {
			if comp[w] == c {
				nextV = w
				break
			}
		}
		if nextV < 0 { // cannot happen in a cyclic component; stop safely
			break
		}
		v = nextV
	}
	out := make([]uint64, len(path))
	m := 0
	for i, w := range path {
		out[i] = ds[w].ID
		if out[i] < out[m] {
			m = i
		}
	}
	return append(out[m:], out[:m]...)
}

// idIndex maps ids to positions: a flat slice when the ids are dense (the
// usual case: ids are sequential), else a map. The slice keeps the analysis
// linear at millions of records, where a map's cache misses dominate.
type idIndex struct {
	base  uint64
	dense []int32 // position+1, 0 = absent
	m     map[uint64]int32
}

func newIDIndex(ds []Disbursement) *idIndex {
	if len(ds) == 0 {
		return &idIndex{m: map[uint64]int32{}}
	}
	lo, hi := ds[0].ID, ds[0].ID
	for i := range ds {
		lo, hi = min(lo, ds[i].ID), max(hi, ds[i].ID)
	}
	if hi-lo < uint64(4*len(ds)+1024) {
		return &idIndex{base: lo, dense: make([]int32, hi-lo+1)}
	}
	return &idIndex{m: make(map[uint64]int32, len(ds))}
}

// add records id at position i; false when id is already there.
func (x *idIndex) add(id uint64, i int32) bool {
	if x.dense != nil {
		k := id - x.base
		if x.dense[k] != 0 {
			return false
		}
		x.dense[k] = i + 1
		return true
	}
	if _, dup := x.m[id]; dup {
		return false
	}
	x.m[id] = i
	return true
}

func (x *idIndex) get(id uint64) (int32, bool) {
	if x.dense != nil {
		if id < x.base || id-x.base >= uint64(len(x.dense)) {
			return -1, false
		}
		v := x.dense[id-x.base]
		return v - 1, v != 0
	}
	v, ok := x.m[id]
	return v, ok
}
