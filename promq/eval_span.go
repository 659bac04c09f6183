package promq

import "math"

// span is the set of values an element may have over the full data: the numbers
// in [lo, hi] (none when lo > hi) and, when nan is set, NaN. A value computed
// from samples that cover its window is a single number; an uncovered rate is
// [observed lower bound, +Inf]. Bounds are inclusive and may be infinite.
type span struct {
	lo, hi float64
	nan    bool
}

var (
	inf      = math.Inf(1)
	anything = span{lo: -inf, hi: inf, nan: true}
	onlyNaN  = span{lo: inf, hi: -inf, nan: true}
)

// exactly is the span of one known value.
func exactly(v float64) span {
	if math.IsNaN(v) {
		return onlyNaN
	}
	return span{lo: v, hi: v}
}

// atLeast is the span of a finite value no smaller than lo.
func atLeast(lo float64) span { return span{lo: lo, hi: inf} }

// numbers says whether the span holds any number (not only NaN).
func (s span) numbers() bool { return s.lo <= s.hi }

// exact returns the one value of a span that has one.
func (s span) exact() (float64, bool) {
	switch {
	case s.lo == s.hi && !s.nan:
		return s.lo, true
	case !s.numbers() && s.nan:
		return math.NaN(), true
	}
	return 0, false
}

// hull is the smallest span holding both.
func hull(a, b span) span {
	return span{lo: math.Min(a.lo, b.lo), hi: math.Max(a.hi, b.hi), nan: a.nan || b.nan}
}

// arith applies an arithmetic operator. Exact operands give exactly
// Prometheus' float result; otherwise the result spans every value the
// operator can give for operands in the spans. Rounding is monotone, so the
// bounds computed from the operands' bounds hold for the rounded results too.
func arith(op string, a, b span) span {
	if x, ok := a.exact(); ok {
		if y, ok := b.exact(); ok {
			return exactly(applyArith(op, x, y))
		}
	}
	if !a.numbers() || !b.numbers() {
		return onlyNaN // NaN in, NaN out
	}
	var c []float64
	switch op {
	case "+", "-":
		if op == "-" { // x - y is exactly x + (-y)
			b = span{lo: -b.hi, hi: -b.lo, nan: b.nan}
		}
		if (a.lo == -inf && b.hi == inf) || (a.hi == inf && b.lo == -inf) {
			return anything // Inf - Inf is NaN
		}
		c = []float64{a.lo + b.lo, a.hi + b.hi}
	case "*":
		c = []float64{a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi}
	case "/":
		if b.lo <= 0 && b.hi >= 0 {
			return anything // x/0 is ±Inf or NaN
		}
		c = []float64{a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi}
	}
	out := span{lo: inf, hi: -inf, nan: a.nan || b.nan}
	for _, v := range c {
		if math.IsNaN(v) {
			return anything // 0 × Inf, Inf / Inf
		}
		out.lo, out.hi = math.Min(out.lo, v), math.Max(out.hi, v)
	}
	return out
}

// applyArith is one float operation, exactly as Prometheus does it.
func applyArith(op string, x, y float64) float64 {
	switch op {
	case "+":
		return x + y
	case "-":
		return x - y
	case "*":
		return x * y
	}
	return x / y
}

// decide says whether `a op b` can be true and whether it can be false for
// values in the spans. Any comparison with NaN is false, except != which is
// true.
func decide(op Cmp, a, b span) (canTrue, canFalse bool) {
	if a.numbers() && b.numbers() {
		overlap := a.lo <= b.hi && b.lo <= a.hi
		same := a.lo == a.hi && b.lo == b.hi && a.lo == b.lo
		switch op {
		case GT:
			canTrue, canFalse = a.hi > b.lo, a.lo <= b.hi
		case GE:
			canTrue, canFalse = a.hi >= b.lo, a.lo < b.hi
		case LT:
			canTrue, canFalse = a.lo < b.hi, a.hi >= b.lo
		case LE:
			canTrue, canFalse = a.lo <= b.hi, a.hi > b.lo
		case EQ:
			canTrue, canFalse = overlap, !same
		case NE:
			canTrue, canFalse = !same, overlap
		}
	}
	if a.nan || b.nan {
		if op == NE {
			canTrue = true
		} else {
			canFalse = true
		}
	}
	return canTrue, canFalse
}
