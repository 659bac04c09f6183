package promq

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// The three-valued logic against brute force: leaves are given as abstract
// vectors (certain or possible elements, each with a span of values); every
// concrete world they allow (each possible element present or not, each value
// one of the interesting numbers its span holds) is evaluated concretely, and
// whatever the abstract evaluation calls known must hold in all of them.

// worldLeaves serves abstract leaves to the abstract pass and one concrete
// world to the concrete pass.
type worldLeaves struct {
	abs, con map[string][]elem
}

func (w worldLeaves) instant(sel Selector, _ int64, concrete bool) []elem {
	if concrete {
		return w.con[sel.String()]
	}
	return w.abs[sel.String()]
}

func (w worldLeaves) ranged(r *rangeCall, _ int64, concrete bool) []elem {
	return w.instant(r.sel, 0, concrete)
}

// bruteSpans are the spans leaves draw from: exact values, counter-like lower
// bounds, ranges, NaN, and anything.
var bruteSpans = []span{
	exactly(0), exactly(1), exactly(3), exactly(5), exactly(math.NaN()), exactly(math.Inf(1)),
	atLeast(0), atLeast(2), {lo: 0, hi: 3}, {lo: -1, hi: 1}, anything,
}

// interesting are the values a world assigns, besides a span's bounds: the
// constants the expressions compare with, and around them.
var interesting = []float64{math.Inf(-1), -1, 0, 0.5, 0.99, 1, 2, 3, 4, 5, 10, 100, math.Inf(1)}

func candidates(s span) []float64 {
	var out []float64
	add := func(v float64) {
		for _, x := range out {
			if x == v || (math.IsNaN(x) && math.IsNaN(v)) {
				return
			}
		}
		out = append(out, v)
	}
	if s.numbers() {
		add(s.lo)
		add(s.hi)
		for _, v := range interesting {
			if v >= s.lo && v <= s.hi {
				add(v)
			}
		}
	}
	if s.nan {
		add(math.NaN())
	}
	return out
}

// randomLeaves builds abstract vectors for the selectors a, b, c and h_bucket.
func randomLeaves(r *rand.Rand) map[string][]elem {
	out := map[string][]elem{}
	for _, name := range []string{"a", "b", "c"} {
		for _, i := range []string{"1", "2"} {
			if r.IntN(3) == 0 {
				continue
			}
			out[name] = append(out[name], elem{metric: metric(name, "i", i), must: r.IntN(2) == 0, val: bruteSpans[r.IntN(len(bruteSpans))]})
		}
	}
	for _, le := range []string{"1", "10", "+Inf"} {
		if r.IntN(4) == 0 {
			continue
		}
		out["h_bucket"] = append(out["h_bucket"], elem{metric: metric("h_bucket", "le", le), must: r.IntN(2) == 0, val: bruteSpans[r.IntN(len(bruteSpans))]})
	}
	return out
}

// worlds enumerates (or, past limit, samples) the concrete worlds the leaves
// allow.
func worlds(r *rand.Rand, abs map[string][]elem, limit int) []map[string][]elem {
	type slot struct {
		name string
		x    elem
		opts []*float64 // nil: absent
	}
	var slots []slot
	total := 1
	for _, name := range []string{"a", "b", "c", "h_bucket"} {
		for _, x := range abs[name] {
			s := slot{name: name, x: x}
			if !x.must {
				s.opts = append(s.opts, nil)
			}
			for _, v := range candidates(x.val) {
				s.opts = append(s.opts, num(v))
			}
			slots = append(slots, s)
			total *= len(s.opts)
		}
	}
	build := func(choice func(i int, s slot) *float64) map[string][]elem {
		w := map[string][]elem{}
		for i, s := range slots {
			if v := choice(i, s); v != nil {
				w[s.name] = append(w[s.name], elem{metric: s.x.metric, must: true, val: exactly(*v)})
			}
		}
		return w
	}
	var out []map[string][]elem
	if total <= limit {
		for n := 0; n < total; n++ {
			k := n
			out = append(out, build(func(_ int, s slot) *float64 {
				v := s.opts[k%len(s.opts)]
				k /= len(s.opts)
				return v
			}))
		}
		return out
	}
	for n := 0; n < limit; n++ {
		out = append(out, build(func(_ int, s slot) *float64 { return s.opts[r.IntN(len(s.opts))] }))
	}
	return out
}

func bruteExprs() []Expr {
	a, b, c := Metric("a"), Metric("b"), Metric("c")
	return []Expr{
		a,
		GTc(a, 1), GEc(a, 5), LTc(a, 3), LEc(a, 0), EQc(a, 0), NEc(a, 1),
		Compare(Num(2), LT, a),
		Or(a, b), And(a, b), Unless(a, b),
		And(a, b, On()), Unless(a, b, On("i")), Or(a, b, Ignoring("i")),
		And(EQc(Or(a, b), 0), GTc(c, 0), On("i")),
		Unless(GTc(a, 1), EQc(b, 0)),
		Or(GTc(a, 2), LTc(b, 1)),
		GTc(Sum(a), 2), EQc(SumBy(Or(a, b), "i"), 0),
		GTc(Mul(SumWithout(a, "i"), Num(60)), 10),
		Compare(a, GT, Mul(Num(3), b)),
		Compare(a, GE, b), Compare(a, LT, b), Compare(a, LE, b, On("i")), Compare(a, EQ, b), Compare(a, NE, b),
		LTc(Sub(Num(1), Div(a, Add(a, b))), 0.99),
		Add(a, b), Sub(a, b), Mul(a, b), Div(a, b),
		Mul(a, Num(-2)), Div(Num(1), a), Sub(Num(5), a),
		Unless(GroupWithout(a, "i"), b, Ignoring("i")),
		GTc(GroupBy(Or(a, c)), 0),
		GTc(HistogramQuantile(0.5, Metric("h_bucket")), 4),
		LTc(HistogramQuantile(0.9, Metric("h_bucket")), 1),
	}
}

func TestThreeValuedBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	configs, limit := 80, 120
	if testing.Short() {
		configs = 30
	}
	decided := 0
	for n := 0; n < configs; n++ {
		abs := randomLeaves(r)
		ws := worlds(r, abs, limit)
		for _, e := range bruteExprs() {
			o, err := evaluateWith(worldLeaves{abs: abs}, e, 0)
			require.NoError(t, err)
			claim := claimOf(o)
			if claim.known {
				decided++
			}
			for _, w := range ws {
				concrete, err := evaluator{leaves: worldLeaves{con: w}, concrete: true}.eval(e, 0)
				if err != nil {
					continue // a world Prometheus refuses (duplicate matches)
				}
				if msg := claim.contradicts(concrete); msg != "" {
					t.Fatalf("%s\nleaves %s\nworld %s\n%s", e, describe(abs), describe(w), msg)
				}
			}
		}
	}
	// Sound is easy by saying unknown: require that many answers are known.
	require.Greater(t, decided, configs*len(bruteExprs())/3)
}

// claim is what the abstract evaluation asserts.
type claim struct {
	series          map[model.Fingerprint]Series
	returned, known bool
}

func claimOf(o outcome) claim {
	c := claim{series: map[model.Fingerprint]Series{}}
	for _, s := range o.series() {
		c.series[s.Metric.Fingerprint()] = s
	}
	c.returned, c.known = o.returned()
	return c
}

// contradicts says how the concrete world disagrees with the claim.
func (c claim) contradicts(con value) string {
	got := map[model.Fingerprint]float64{}
	for _, x := range con.vec {
		v, _ := x.val.exact()
		got[x.metric.Fingerprint()] = v
	}
	for fp, v := range got {
		s, ok := c.series[fp]
		switch {
		case !ok:
			return fmt.Sprintf("world returns %v = %g, abstract says certainly not", fp, v)
		case s.Exact && !(s.Min == v || math.IsNaN(v) && math.IsNaN(s.Min)):
			return fmt.Sprintf("%s: exact %g, world %g", s.Metric, s.Min, v)
		case !math.IsNaN(v) && !math.IsNaN(s.Min) && (v < s.Min || v > s.Max):
			return fmt.Sprintf("%s: world %g outside [%g, %g]", s.Metric, v, s.Min, s.Max)
		}
	}
	for fp, s := range c.series {
		if _, ok := got[fp]; s.Known && !ok {
			return fmt.Sprintf("%s: abstract says certainly returned, world does not return it", s.Metric)
		}
	}
	if c.known && c.returned != (len(con.vec) > 0) {
		return fmt.Sprintf("abstract: known returned=%v, world returns %d series", c.returned, len(con.vec))
	}
	return ""
}

func describe(leaves map[string][]elem) string {
	s := ""
	for _, name := range []string{"a", "b", "c", "h_bucket"} {
		for _, x := range leaves[name] {
			s += fmt.Sprintf("%s must=%v %+v; ", x.metric, x.must, x.val)
		}
	}
	return s
}
