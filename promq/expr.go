package promq

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Expr is a PromQL expression from the closed set promq can both print and
// evaluate: selectors, numbers, rate and increase, histogram_quantile, sum and
// group, arithmetic, comparisons and the set operators. String gives canonical
// PromQL that Prometheus parses back to the same expression (parentheses only
// where precedence needs them). Build one with the constructors (Metric, Num,
// Rate, SumWithout, Compare, And, …); a misuse such as comparing two numbers is
// reported by Eval, EvalRule and Rule.Validate, never by a panic.
type Expr interface {
	String() string
	// promqlNode seals the set: only this package's node types are expressions.
	promqlNode()
}

// instant is an instant vector selector.
type instant struct{ sel Selector }

// number is a scalar literal.
type number struct{ v float64 }

// rangeCall is rate or increase over a range selector.
type rangeCall struct {
	fn  string // "rate" or "increase"
	sel Selector
	w   time.Duration
}

// quantile is histogram_quantile(q, e).
type quantile struct {
	q float64
	e Expr
}

// aggregate is sum or group, by or without labels.
type aggregate struct {
	op      string // "sum" or "group"
	without bool
	labels  []string
	e       Expr
}

// binary is an arithmetic, comparison or set operator with its vector matching.
type binary struct {
	op       string
	lhs, rhs Expr
	match    []Match // at most one is valid
}

// Nodes are pointers, so expressions compare with == (by identity) without
// panicking.
func (*instant) promqlNode()   {}
func (*number) promqlNode()    {}
func (*rangeCall) promqlNode() {}
func (*quantile) promqlNode()  {}
func (*aggregate) promqlNode() {}
func (*binary) promqlNode()    {}

// Match is the vector-matching modifier of a binary operator: On("instance",
// "job") or Ignoring("reason"). Without one, vectors match on all their labels
// but the metric name.
type Match struct {
	on     bool
	labels []string
}

// On matches the two sides on these labels only (PromQL `on (…)`). For
// arithmetic and comparisons the result then carries only these labels, as in
// Prometheus.
func On(labels ...string) Match { return Match{on: true, labels: slices.Clone(labels)} }

// Ignoring matches the two sides on all labels but these and the metric name
// (PromQL `ignoring (…)`).
func Ignoring(labels ...string) Match { return Match{labels: slices.Clone(labels)} }

// Metric is the instant vector selector `name{label="value",…}` from a metric
// name and label name/value pairs (equality matchers, as Select): each series'
// newest sample within the 5m lookback.
func Metric(name string, pairs ...string) Expr { return &instant{Select(name, pairs...)} }

// Num is a number: a scalar in PromQL.
func Num(v float64) Expr { return &number{v} }

// Rate is rate(sel[w]): the per-second increase of a counter over w.
func Rate(sel Selector, w time.Duration) Expr { return &rangeCall{"rate", sel.clone(), w} }

// Increase is increase(sel[w]): the increase of a counter over w.
func Increase(sel Selector, w time.Duration) Expr { return &rangeCall{"increase", sel.clone(), w} }

// HistogramQuantile is histogram_quantile(q, e) over classic buckets: e's series
// grouped by every label but le.
func HistogramQuantile(q float64, e Expr) Expr { return &quantile{q, e} }

// Sum is sum(e), over all series.
func Sum(e Expr) Expr { return &aggregate{op: "sum", e: e} }

// SumBy is sum by (labels) (e).
func SumBy(e Expr, labels ...string) Expr {
	return &aggregate{op: "sum", labels: slices.Clone(labels), e: e}
}

// SumWithout is sum without (labels) (e): the sum over those labels, keeping
// every other (the metric name is dropped).
func SumWithout(e Expr, labels ...string) Expr {
	return &aggregate{op: "sum", without: true, labels: slices.Clone(labels), e: e}
}

// GroupBy is group by (labels) (e): 1 for each group that has a series.
func GroupBy(e Expr, labels ...string) Expr {
	return &aggregate{op: "group", labels: slices.Clone(labels), e: e}
}

// GroupWithout is group without (labels) (e).
func GroupWithout(e Expr, labels ...string) Expr {
	return &aggregate{op: "group", without: true, labels: slices.Clone(labels), e: e}
}

// Add is a + b.
func Add(a, b Expr, m ...Match) Expr { return &binary{"+", a, b, m} }

// Sub is a - b.
func Sub(a, b Expr, m ...Match) Expr { return &binary{"-", a, b, m} }

// Mul is a * b.
func Mul(a, b Expr, m ...Match) Expr { return &binary{"*", a, b, m} }

// Div is a / b.
func Div(a, b Expr, m ...Match) Expr { return &binary{"/", a, b, m} }

// Compare is the filter `a op b`: the series of a (or of b when a is a number)
// for which the comparison holds, with their values. Between two vectors, the
// series match one-to-one on all labels, or as m says.
func Compare(a Expr, op Cmp, b Expr, m ...Match) Expr { return &binary{string(op), a, b, m} }

// GTc is `e > c`.
func GTc(e Expr, c float64) Expr { return Compare(e, GT, Num(c)) }

// GEc is `e >= c`.
func GEc(e Expr, c float64) Expr { return Compare(e, GE, Num(c)) }

// LTc is `e < c`.
func LTc(e Expr, c float64) Expr { return Compare(e, LT, Num(c)) }

// LEc is `e <= c`.
func LEc(e Expr, c float64) Expr { return Compare(e, LE, Num(c)) }

// EQc is `e == c`.
func EQc(e Expr, c float64) Expr { return Compare(e, EQ, Num(c)) }

// NEc is `e != c`.
func NEc(e Expr, c float64) Expr { return Compare(e, NE, Num(c)) }

// And is `a and b`: the series of a that have a match in b.
func And(a, b Expr, m ...Match) Expr { return &binary{"and", a, b, m} }

// Or is `a or b`: the series of a, and those of b that have no match in a.
func Or(a, b Expr, m ...Match) Expr { return &binary{"or", a, b, m} }

// Unless is `a unless b`: the series of a that have no match in b.
func Unless(a, b Expr, m ...Match) Expr { return &binary{"unless", a, b, m} }

// clone copies the selector's matchers, so that an expression does not change
// when its caller's map does.
func (s Selector) clone() Selector {
	return Selector{Metric: s.Metric, Labels: maps.Clone(s.Labels)}
}

// Printing. Prometheus keeps parentheses as nodes; this tree has none, so the
// printer adds exactly those that precedence and left associativity need.

func (n *instant) String() string { return n.sel.String() }

func (n *number) String() string { return formatNumber(n.v) }

func (r *rangeCall) String() string {
	return r.fn + "(" + r.sel.String() + "[" + formatDuration(r.w) + "])"
}

func (q *quantile) String() string {
	return "histogram_quantile(" + formatNumber(q.q) + ", " + str(q.e) + ")"
}

func (a *aggregate) String() string {
	s := a.op
	switch {
	case a.without:
		s += " without (" + strings.Join(a.labels, ", ") + ") "
	case len(a.labels) > 0:
		s += " by (" + strings.Join(a.labels, ", ") + ") "
	}
	return s + "(" + str(a.e) + ")"
}

func (b *binary) String() string {
	p := precedence(b.op)
	lhs, rhs := str(b.lhs), str(b.rhs)
	if l, ok := b.lhs.(*binary); ok && precedence(l.op) < p {
		lhs = "(" + lhs + ")"
	}
	if r, ok := b.rhs.(*binary); ok && precedence(r.op) <= p {
		rhs = "(" + rhs + ")"
	}
	op := b.op
	for _, m := range b.match {
		kw := "ignoring"
		if m.on {
			kw = "on"
		}
		op += " " + kw + " (" + strings.Join(m.labels, ", ") + ")"
	}
	return lhs + " " + op + " " + rhs
}

// str prints a possibly nil child without panicking (Eval reports it).
func str(e Expr) string {
	if e == nil {
		return "<nil>"
	}
	return e.String()
}

// precedence is PromQL's binary operator precedence (all left-associative here).
func precedence(op string) int {
	switch op {
	case "or":
		return 1
	case "and", "unless":
		return 2
	case "==", "!=", "<", "<=", ">", ">=":
		return 3
	case "+", "-":
		return 4
	case "*", "/":
		return 5
	}
	return 0
}

// formatNumber prints a number as Prometheus does (Go's shortest %g form).
func formatNumber(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func isComparison(op string) bool { return precedence(op) == 3 }
func isSetOp(op string) bool      { return op == "and" || op == "or" || op == "unless" }

// Checking. The constructors cannot fail, so the misuses a type checker would
// catch are found here, once, before anything is fetched.

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// checkVector checks e and that it gives an instant vector.
func checkVector(e Expr) error {
	scalar, err := check(e)
	if err == nil && scalar {
		err = fmt.Errorf("%s is a number: an expression to evaluate must give series", e)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return nil
}

// check validates e and says whether it is a scalar.
func check(e Expr) (scalar bool, err error) {
	switch n := e.(type) {
	case nil:
		return false, fmt.Errorf("missing expression (nil)")
	case *number:
		return true, nil
	case *instant:
		return false, checkSelector(n.sel)
	case *rangeCall:
		if err := checkSelector(n.sel); err != nil {
			return false, err
		}
		if n.w <= 0 || n.w%time.Millisecond != 0 {
			return false, fmt.Errorf("%s: the range must be a positive whole number of milliseconds", n)
		}
		return false, nil
	case *quantile:
		return false, checkOperand(n.e, n)
	case *aggregate:
		if err := checkLabels(n.labels, n); err != nil {
			return false, err
		}
		return false, checkOperand(n.e, n)
	case *binary:
		return checkBinary(n)
	}
	return false, fmt.Errorf("unknown expression %T", e)
}

// checkOperand requires a vector operand.
func checkOperand(e Expr, parent Expr) error {
	scalar, err := check(e)
	if err == nil && scalar {
		err = fmt.Errorf("%s: %s needs series, not a number", parent, e)
	}
	return err
}

func checkBinary(b *binary) (scalar bool, err error) {
	ls, err := check(b.lhs)
	if err != nil {
		return false, err
	}
	rs, err := check(b.rhs)
	if err != nil {
		return false, err
	}
	switch {
	case precedence(b.op) == 0:
		return false, fmt.Errorf("%s: %q is not an operator", b, b.op)
	case len(b.match) > 1:
		return false, fmt.Errorf("%s: at most one on/ignoring modifier", b)
	case len(b.match) == 1 && (ls || rs):
		return false, fmt.Errorf("%s: on/ignoring need series on both sides", b)
	case isSetOp(b.op) && (ls || rs):
		return false, fmt.Errorf("%s: %s needs series on both sides", b, b.op)
	case isComparison(b.op) && ls && rs:
		return false, fmt.Errorf("%s: comparing two numbers needs the bool modifier, which promq does not offer", b)
	}
	if len(b.match) == 1 {
		if err := checkLabels(b.match[0].labels, b); err != nil {
			return false, err
		}
	}
	return ls && rs, nil
}

func checkSelector(s Selector) error {
	if !metricNameRE.MatchString(s.Metric) {
		return fmt.Errorf("selector %s: %q is not a metric name", s, s.Metric)
	}
	for k := range s.Labels {
		if !labelNameRE.MatchString(k) || k == "__name__" {
			return fmt.Errorf("selector %s: %q is not a label name", s, k)
		}
	}
	return nil
}

func checkLabels(names []string, in Expr) error {
	for _, k := range names {
		if !labelNameRE.MatchString(k) {
			return fmt.Errorf("%s: %q is not a label name", in, k)
		}
	}
	return nil
}

// walk calls f on e and every expression inside it.
func walk(e Expr, f func(Expr)) {
	f(e)
	switch n := e.(type) {
	case *quantile:
		walk(n.e, f)
	case *aggregate:
		walk(n.e, f)
	case *binary:
		walk(n.lhs, f)
		walk(n.rhs, f)
	}
}
