package promq

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
)

// Evaluating. Each expression is evaluated twice at each instant: concretely,
// exactly as Prometheus would from the samples the source returned, and
// abstractly, over every full data set those samples could be part of (the
// same samples plus any history before each series' first one). The concrete
// pass gives the values; the abstract one gives what is known. Both run the
// same operator code: a concrete element is an abstract one that is certainly
// present with a single value.

// elem is one element of an evaluated vector: its labels, whether it is
// certainly present (else it may be), and the values it may have.
type elem struct {
	metric model.Metric
	must   bool
	val    span
}

// value is an evaluated expression: a number or a vector, and for an empty
// vector the selectors whose missing data emptied it.
type value struct {
	scalar bool
	num    float64
	vec    []elem
	noData []string
}

// leaves computes the selectors' elements; the dataset is the real one, tests
// supply others.
type leaves interface {
	instant(sel Selector, t int64, concrete bool) []elem
	ranged(r *rangeCall, t int64, concrete bool) []elem
}

type evaluator struct {
	leaves   leaves
	concrete bool
}

// outcome is one expression at one instant, both ways.
type outcome struct {
	con, abs value
}

func (d *dataset) evaluate(e Expr, t int64) (outcome, error) {
	return evaluateWith(d, e, t)
}

func evaluateWith(l leaves, e Expr, t int64) (outcome, error) {
	con, err := evaluator{leaves: l, concrete: true}.eval(e, t)
	if err != nil {
		return outcome{}, err
	}
	abs, err := evaluator{leaves: l}.eval(e, t)
	return outcome{con: con, abs: abs}, err
}

func (ev evaluator) eval(e Expr, t int64) (value, error) {
	var v value
	var err error
	switch n := e.(type) {
	case *number:
		return value{scalar: true, num: n.v}, nil
	case *instant:
		return leafValue(ev.leaves.instant(n.sel, t, ev.concrete), n.sel.String()), nil
	case *rangeCall:
		return leafValue(ev.leaves.ranged(n, t, ev.concrete), n.sel.String()), nil
	case *quantile:
		v, err = ev.quantile(n, t)
	case *aggregate:
		v, err = ev.aggregate(n, t)
	case *binary:
		v, err = ev.binary(n, t)
	default:
		return value{}, fmt.Errorf("%w: unknown expression %T", ErrBadQuery, e)
	}
	if err == nil && ev.concrete {
		err = duplicateLabelsets(v.vec, e)
	}
	return v, err
}

func leafValue(vec []elem, sel string) value {
	v := value{vec: vec}
	if len(vec) == 0 {
		v.noData = []string{sel}
	}
	return v
}

// duplicateLabelsets is Prometheus' "vector cannot contain metrics with the
// same labelset".
func duplicateLabelsets(vec []elem, e Expr) error {
	seen := make(map[model.Fingerprint]bool, len(vec))
	for _, x := range vec {
		fp := x.metric.Fingerprint()
		if seen[fp] {
			return fmt.Errorf("%s: %w: vector cannot contain metrics with the same labelset %s, as Prometheus refuses", e, ErrExecution, x.metric)
		}
		seen[fp] = true
	}
	return nil
}

// The selectors, from the dataset.

// series is a selector's stored series (none for a selector never fetched).
func (d *dataset) series(sel Selector) []stored {
	if sd := d.sels[sel.String()]; sd != nil {
		return sd.series
	}
	return nil
}

func (d *dataset) instant(sel Selector, t int64, concrete bool) []elem {
	var out []elem
	lookback := Lookback.Milliseconds()
	for _, s := range d.series(sel) {
		if p, ok := s.newest(t); ok && p.t >= t-lookback {
			out = append(out, elem{metric: s.metric, must: true, val: exactly(p.v)})
		} else if !concrete && s.pts[0].t > t {
			// Not observed at t: it may have had a sample there.
			out = append(out, elem{metric: s.metric, val: anything})
		}
	}
	return out
}

func (d *dataset) ranged(r *rangeCall, t int64, concrete bool) []elem {
	var out []elem
	from := t - r.w.Milliseconds()
	for _, s := range d.series(r.sel) {
		in := s.between(from, t)
		v, ok := extrapolatedRate2(in, from, t, r.fn == "rate", r.w.Seconds())
		m := s.bare
		start := s.startCovered(from)
		switch {
		case concrete:
			if ok {
				out = append(out, elem{metric: m, must: true, val: exactly(v)})
			}
		case ok && start && s.endCovered(t):
			out = append(out, elem{metric: m, must: true, val: exactly(v)})
		case ok || !start:
			// Two samples in the window make the series certain; fewer, where the
			// window starts before what was observed, leave it possible.
			out = append(out, elem{metric: m, must: ok, val: lowerBound(in, r)})
		}
	}
	return out
}

// newest is the last sample at or before t.
func (s stored) newest(t int64) (point, bool) {
	i := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > t })
	if i == 0 {
		return point{}, false
	}
	return s.pts[i-1], true
}

// between is the samples in the closed range [from, to], as Prometheus 2.x
// selects them.
func (s stored) between(from, to int64) []point {
	i := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t >= from })
	j := sort.Search(len(s.pts), func(i int) bool { return s.pts[i].t > to })
	return s.pts[i:j]
}

// startCovered says the samples reach the window's start: one at or before it,
// or the first within one sample interval after it (any history before the
// first sample is then at least an interval earlier, outside the window).
func (s stored) startCovered(from int64) bool {
	first := s.pts[0].t
	return first <= from || (s.est > 0 && float64(first)-s.est < float64(from))
}

// endCovered says the series is still observed at t: its newest sample is
// within the lookback (or one interval, when longer) of t.
func (s stored) endCovered(t int64) bool {
	p, ok := s.newest(t)
	return ok && float64(t-p.t) <= math.Max(s.est, float64(Lookback.Milliseconds()))
}

// lowerBound is what an uncovered rate or increase is known to be at least:
// counters are non-negative and only rise between resets, so the increase
// over the full window is at least the rise the samples in it show (less a
// rounding margin), and rate at least that over the range.
func lowerBound(in []point, r *rangeCall) span {
	scale := 0.0
	for _, p := range in {
		if p.v < 0 || math.IsNaN(p.v) || math.IsInf(p.v, 0) {
			return anything // not a counter: nothing is known
		}
		scale += p.v
	}
	lb := 0.0
	if len(in) >= 2 {
		// Each of the sums behind a delta rounds by at most ε × scale.
		lb = math.Max(0, counterDelta(in)-float64(len(in)+2)*2.3e-16*scale)
	}
	if r.fn == "rate" {
		lb /= r.w.Seconds()
	}
	return atLeast(lb)
}

// The operators.

func (ev evaluator) quantile(n *quantile, t int64) (value, error) {
	in, err := ev.eval(n.e, t)
	if err != nil {
		return value{}, err
	}
	type group struct {
		metric  model.Metric
		members []elem
		bounds  []float64
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, x := range in.vec {
		le, ok := parseLE(string(x.metric[model.BucketLabel]))
		if !ok {
			continue // Prometheus skips a series without a valid le
		}
		k := signature(x.metric, Ignoring(model.BucketLabel), true)
		g := byKey[k]
		if g == nil {
			m := withoutName(x.metric)
			delete(m, model.BucketLabel)
			g = &group{metric: m}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, x)
		g.bounds = append(g.bounds, le)
	}
	out := value{noData: emptied(in)}
	for _, g := range groups {
		out.vec = append(out.vec, elem{metric: g.metric, must: anyMust(g.members), val: quantileSpan(n.q, g.members, g.bounds)})
	}
	return out, nil
}

// quantileSpan is histogram_quantile over one group: exact when every bucket
// is, else bounded by the buckets' bounds (the quantile lies between the lowest
// bound, or 0, and the highest finite bound).
func quantileSpan(q float64, members []elem, bounds []float64) span {
	bs := make([]bucket, len(members))
	exact := true
	for i, x := range members {
		c, ok := x.val.exact()
		exact = exact && ok && x.must
		bs[i] = bucket{upper: bounds[i], count: c}
	}
	if exact || math.IsNaN(q) || q < 0 || q > 1 {
		return exactly(bucketQuantile2(q, bs))
	}
	s := span{lo: 0, hi: -inf, nan: true}
	for _, b := range bounds {
		s.lo = math.Min(s.lo, b)
		if !math.IsInf(b, 1) {
			s.hi = math.Max(s.hi, b)
		}
	}
	if !math.IsInf(s.hi, 0) {
		s.hi += math.Abs(s.hi) * 1e-12 // interpolation may round up by an ulp
	}
	return s
}

func (ev evaluator) aggregate(n *aggregate, t int64) (value, error) {
	in, err := ev.eval(n.e, t)
	if err != nil {
		return value{}, err
	}
	var groups []*elem
	byKey := map[string]*elem{}
	for _, x := range in.vec {
		m := groupMetric(x.metric, n)
		k := signature(m, Ignoring(), true)
		// A possible member adds its value or nothing.
		contrib := x.val
		if !x.must {
			contrib = hull(contrib, exactly(0))
		}
		g := byKey[k]
		if g == nil {
			g = &elem{metric: m, must: x.must, val: contrib}
			byKey[k] = g
			groups = append(groups, g)
			continue
		}
		g.must = g.must || x.must
		g.val = arith("+", g.val, contrib)
	}
	out := value{noData: emptied(in)}
	for _, g := range groups {
		if n.op == "group" {
			g.val = exactly(1)
		}
		out.vec = append(out.vec, *g)
	}
	return out, nil
}

// groupMetric is the labels of x's group: by keeps the labels named, without
// drops them and the metric name.
func groupMetric(x model.Metric, n *aggregate) model.Metric {
	out := model.Metric{}
	if n.without {
		for k, v := range x {
			out[k] = v
		}
		delete(out, model.MetricNameLabel)
		for _, l := range n.labels {
			delete(out, model.LabelName(l))
		}
		return out
	}
	for _, l := range n.labels {
		if v, ok := x[model.LabelName(l)]; ok {
			out[model.LabelName(l)] = v
		}
	}
	return out
}

func (ev evaluator) binary(n *binary, t int64) (value, error) {
	l, err := ev.eval(n.lhs, t)
	if err != nil {
		return value{}, err
	}
	r, err := ev.eval(n.rhs, t)
	if err != nil {
		return value{}, err
	}
	var m *Match
	if len(n.match) == 1 {
		m = &n.match[0]
	}
	switch {
	case l.scalar && r.scalar:
		return value{scalar: true, num: applyArith(n.op, l.num, r.num)}, nil
	case isSetOp(n.op):
		return setOp(n.op, l, r, m), nil
	case l.scalar || r.scalar:
		return vectorScalar(n.op, l, r), nil
	}
	return ev.vectorVector(n, l, r, m)
}

// vectorScalar applies an operator between each element and a number: a
// comparison filters and keeps the element's value and labels; arithmetic
// drops the metric name.
func vectorScalar(op string, l, r value) value {
	vec, scalarLeft := l, false
	if l.scalar {
		vec, scalarLeft = r, true
	}
	out := value{noData: emptied(vec)}
	for _, x := range vec.vec {
		a, b := x.val, exactly(r.num)
		if scalarLeft {
			a, b = exactly(l.num), x.val
		}
		if isComparison(op) {
			canTrue, canFalse := decide(Cmp(op), a, b)
			if canTrue {
				out.vec = append(out.vec, elem{metric: x.metric, must: x.must && !canFalse, val: x.val})
			}
			continue
		}
		out.vec = append(out.vec, elem{metric: withoutName(x.metric), must: x.must, val: arith(op, a, b)})
	}
	return out
}

// vectorVector matches the sides one-to-one (on all labels but the name, or as
// m says) and applies arithmetic or a comparison to each pair. The concrete
// pass refuses what Prometheus refuses; the abstract one pairs an element with
// every possible partner, as only one of them can be present.
func (ev evaluator) vectorVector(n *binary, l, r value, m *Match) (value, error) {
	out := value{noData: emptied(l)}
	if len(l.vec) > 0 {
		out.noData = emptied(r)
	}
	if len(l.vec) == 0 || len(r.vec) == 0 {
		return out, nil // Prometheus short-circuits before any matching check
	}
	right := map[string][]int{}
	for i, x := range r.vec {
		k := signature(x.metric, matchOrNone(m), false)
		if ev.concrete && len(right[k]) > 0 {
			return value{}, fmt.Errorf("%s: %w: found duplicate series for the match group on the right hand-side of the operation: %s and %s; many-to-many matching is not allowed, as in Prometheus",
				n, ErrExecution, x.metric, r.vec[right[k][0]].metric)
		}
		right[k] = append(right[k], i)
	}
	matched := map[string]bool{}
	for _, x := range l.vec {
		k := signature(x.metric, matchOrNone(m), false)
		for _, i := range right[k] {
			y := r.vec[i]
			res := elem{metric: resultMetric(x.metric, n.op, m), must: x.must && y.must}
			if isComparison(n.op) {
				canTrue, canFalse := decide(Cmp(n.op), x.val, y.val)
				if !canTrue {
					continue
				}
				res.must, res.val = res.must && !canFalse, x.val
			} else {
				res.val = arith(n.op, x.val, y.val)
			}
			if ev.concrete && matched[k] {
				return value{}, fmt.Errorf("%s: %w: multiple matches for labels %s: many-to-one matching must be explicit (group_left/group_right), which promq does not offer", n, ErrExecution, x.metric)
			}
			matched[k] = true
			out.vec = append(out.vec, res)
		}
	}
	return out, nil
}

// setOp is and, or and unless. An element whose match on the other side is only
// possible becomes only possible itself; unless and or are anti-monotone in one
// side, which is why a certain match removes and a possible one only weakens.
func setOp(op string, l, r value, m *Match) value {
	other, mine := r, l
	if op == "or" {
		other = l
	}
	must, may := map[string]bool{}, map[string]bool{}
	for _, x := range other.vec {
		k := signature(x.metric, matchOrNone(m), false)
		may[k] = true
		must[k] = must[k] || x.must
	}
	var out value
	switch op {
	case "and":
		for _, x := range mine.vec {
			k := signature(x.metric, matchOrNone(m), false)
			if may[k] {
				out.vec = append(out.vec, elem{metric: x.metric, must: x.must && must[k], val: x.val})
			}
		}
		out.noData = emptied(l)
		if len(l.vec) > 0 {
			out.noData = emptied(r)
		}
	case "or":
		out.vec = append(out.vec, l.vec...)
		for _, x := range r.vec {
			k := signature(x.metric, matchOrNone(m), false)
			if !must[k] {
				out.vec = append(out.vec, elem{metric: x.metric, must: x.must && !may[k], val: x.val})
			}
		}
		out.noData = append(emptied(l), emptied(r)...)
	case "unless":
		for _, x := range mine.vec {
			k := signature(x.metric, matchOrNone(m), false)
			if !must[k] {
				out.vec = append(out.vec, elem{metric: x.metric, must: x.must && !may[k], val: x.val})
			}
		}
		out.noData = emptied(l)
	}
	if len(out.vec) > 0 {
		out.noData = nil
	}
	return out
}

// emptied is v's no-data list when v is empty for want of data.
func emptied(v value) []string {
	if len(v.vec) > 0 {
		return nil
	}
	return v.noData
}

func anyMust(xs []elem) bool {
	for _, x := range xs {
		if x.must {
			return true
		}
	}
	return false
}

// Labels.

func matchOrNone(m *Match) Match {
	if m == nil {
		return Ignoring()
	}
	return *m
}

// signature identifies a metric for matching: the labels m names with On, else
// every label but those it names and, unless keepName, the metric name.
func signature(x model.Metric, m Match, keepName bool) string {
	names := make([]string, 0, len(x))
	if m.on {
		for _, l := range m.labels {
			if _, ok := x[model.LabelName(l)]; ok {
				names = append(names, l)
			}
		}
	} else {
		for k := range x {
			if (k != model.MetricNameLabel || keepName) && !contains(m.labels, string(k)) {
				names = append(names, string(k))
			}
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0xff)
		b.WriteString(string(x[model.LabelName(k)]))
		b.WriteByte(0xff)
	}
	return b.String()
}

// resultMetric is the labels of a one-to-one result, as Prometheus'
// resultMetric: the left side's, without the name for arithmetic, reduced to
// the on labels or without the ignoring ones.
func resultMetric(x model.Metric, op string, m *Match) model.Metric {
	out := x.Clone()
	if !isComparison(op) {
		delete(out, model.MetricNameLabel)
	}
	if m == nil {
		return out
	}
	if m.on {
		for k := range out {
			if !contains(m.labels, string(k)) {
				delete(out, k)
			}
		}
		return out
	}
	for _, l := range m.labels {
		delete(out, model.LabelName(l))
	}
	return out
}

func withoutName(x model.Metric) model.Metric {
	out := x.Clone()
	delete(out, model.MetricNameLabel)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compareMetrics orders label sets as Prometheus' labels.Compare: pair by pair
// in name order, then the shorter first.
func compareMetrics(a, b model.Metric) int {
	an, bn := sortedNames(a), sortedNames(b)
	for i := 0; i < len(an) && i < len(bn); i++ {
		if c := strings.Compare(an[i], bn[i]); c != 0 {
			return c
		}
		if c := strings.Compare(string(a[model.LabelName(an[i])]), string(b[model.LabelName(bn[i])])); c != 0 {
			return c
		}
	}
	return len(an) - len(bn)
}

func sortedNames(m model.Metric) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, string(k))
	}
	sort.Strings(names)
	return names
}
