package promq

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
)

// coverageScenario is 40 one-minute samples from time 0 of series chosen for
// the coverage cases.
func coverageScenario() scenario {
	const n = 40
	vals := func(f func(i int) *float64) []*float64 {
		out := make([]*float64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	return scenario{name: "coverage", series: []genSeries{
		{metric("moved_total", "instance", "a"), vals(func(i int) *float64 { return num(float64(i)) })},
		{metric("flat_total", "instance", "a"), vals(func(int) *float64 { return num(5) })},
		{metric("pending", "instance", "a"), vals(func(int) *float64 { return num(3) })},
		{metric("g", "instance", "a"), vals(func(i int) *float64 {
			if i <= 4 {
				return num(50)
			}
			return num(150)
		})},
		{metric("late_total", "instance", "a"), vals(func(i int) *float64 {
			if i < 12 {
				return nil
			}
			return num(float64(2 * i))
		})},
		// Distinct constants for the precedence cases.
		{metric("k2"), vals(func(int) *float64 { return num(2) })},
		{metric("k3"), vals(func(int) *float64 { return num(3) })},
		{metric("k7"), vals(func(int) *float64 { return num(7) })},
	}}
}

type verdict struct {
	returned, known bool
	noData          []string
}

func (v verdict) String() string {
	switch {
	case len(v.noData) > 0:
		return "no data for " + strings.Join(v.noData, ", ")
	case !v.known:
		return "unknown"
	case v.returned:
		return "returned"
	}
	return "empty"
}

var (
	returned = verdict{returned: true, known: true}
	empty    = verdict{known: true}
	unknown  = verdict{}
)

func noDataFor(sels ...string) verdict { return verdict{noData: sels} }

// TestCoverageCases: a windowed condition is decided only by evidence that
// covers it, or by a counter that moved; no data is unknown; set operators
// stay sound under unknowns. Every case also goes to promtool.
func TestCoverageCases(t *testing.T) {
	promtool(t)
	moved, flat, late := Select("moved_total"), Select("flat_total"), Select("late_total")
	pending, g := Metric("pending"), Metric("g")
	noIncrease := EQc(Increase(flat, 10*time.Minute), 0)
	movedNone := EQc(Increase(moved, 10*time.Minute), 0)
	cases := []struct {
		name string
		e    Expr
		at   time.Duration
		want verdict
	}{
		{"counter moved: no increase is known false", movedNone, 3 * time.Minute, empty},
		{"flat counter, window not covered", noIncrease, 3 * time.Minute, unknown},
		{"flat counter, one interval short of covered", noIncrease, 9 * time.Minute, unknown},
		{"flat counter, window covered", noIncrease, 10 * time.Minute, returned},
		{"no data", EQc(Increase(Select("missing_total"), 10*time.Minute), 0), 20 * time.Minute, noDataFor("missing_total")},
		{"lower bound decides >", GTc(Increase(moved, 10*time.Minute), 2), 3 * time.Minute, returned},
		{"lower bound does not decide >", GTc(Increase(moved, 10*time.Minute), 3), 3 * time.Minute, unknown},
		{"lower bound through sum and × 60", GTc(Mul(SumWithout(Rate(moved, 10*time.Minute), "instance"), Num(60)), 0.1), 3 * time.Minute, returned},
		{"instant selectors need no history", GTc(g, 100), 2 * time.Minute, empty},
		{"or with an unknown side", Or(noIncrease, GTc(pending, 100)), 3 * time.Minute, unknown},
		{"unless an unknown", Unless(pending, noIncrease, On("instance")), 3 * time.Minute, unknown},
		{"unless a certain match", Unless(pending, noIncrease, On("instance")), 15 * time.Minute, empty},
		{"unless a known-empty side", Unless(pending, movedNone, On("instance")), 3 * time.Minute, returned},
		{"and on a known-false side", And(movedNone, GTc(pending, 0), On("instance")), 3 * time.Minute, empty},
		{"and on an unknown side", And(noIncrease, GTc(pending, 0), On("instance")), 3 * time.Minute, unknown},
		{"and on a covered side", And(noIncrease, GTc(pending, 0), On("instance")), 12 * time.Minute, returned},
		{"and on a side with no data", And(noIncrease, GTc(Metric("missing"), 0), On("instance")), 12 * time.Minute, noDataFor("missing")},
		{"and: the known-empty side decides, not missing data", And(movedNone, GTc(Metric("missing"), 0), On("instance")), 3 * time.Minute, empty},
		{"or: one name missing is fine", EQc(Or(Increase(flat, 10*time.Minute), Increase(Select("missing_total"), 10*time.Minute)), 0), 12 * time.Minute, returned},
		{"unless: the right side missing is what fires", Unless(g, Metric("missing"), On("instance")), 3 * time.Minute, returned},
		{"a series that appeared late", GTc(Rate(late, 5*time.Minute), 1), 14 * time.Minute, unknown},
		{"a late series, first sample one interval into the window", GTc(Rate(late, 5*time.Minute), 1), 16 * time.Minute, unknown},
		{"a late series, first sample under one interval into the window", GTc(Rate(late, 5*time.Minute), 1), 16*time.Minute + 30*time.Second, empty},
		{"a late series once covered", GTc(Rate(late, 5*time.Minute), 1), 17 * time.Minute, empty},
		{"a late series with its lower bound", GTc(Rate(late, 5*time.Minute), 0.01), 14 * time.Minute, returned},
		{"precedence: a - (b - c)", EQc(Sub(Metric("k7"), Sub(Metric("k3"), Metric("k2"))), 6), 5 * time.Minute, returned},
		{"precedence: a - b - c", EQc(Sub(Sub(Metric("k7"), Metric("k3")), Metric("k2")), 2), 5 * time.Minute, returned},
		{"precedence: (a + b) * c", EQc(Mul(Add(Metric("k2"), Metric("k3")), Metric("k7")), 35), 5 * time.Minute, returned},
		{"precedence: a / (b * c)", EQc(Div(Metric("k7"), Mul(Metric("k2"), Metric("k7"))), 0.5), 5 * time.Minute, returned},
		{"precedence: (a or b) and c", And(Or(Metric("k2"), Metric("nothing")), Metric("k3"), On()), 5 * time.Minute, returned},
		{"precedence: a or (b and c)", Or(Metric("nothing"), And(Metric("k2"), Metric("nothing"), On())), 5 * time.Minute, noDataFor("nothing")},
	}
	d := newDifferential(t, coverageScenario())
	for _, c := range cases {
		ev := d.expr(c.e, c.at)
		got := verdict{returned: ev.Returned, known: ev.Known, noData: ev.NoData}
		assert.Equal(t, c.want.String(), got.String(), "%s: %s at %s", c.name, ev.Expr, c.at)
	}
	runPromtool(t, nil, d.group)
}

// TestCoverageWarnings: an undecided window says how much was observed and
// what would decide it; no data says which selector.
func TestCoverageWarnings(t *testing.T) {
	sc := coverageScenario()
	ctx := context.Background()
	ev, err := Eval(ctx, sc.source(at0(3*time.Minute)), EQc(Increase(Select("flat_total"), 10*time.Minute), 0), at0(3*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []string{"flat_total: only 3m of the 10m window observed: " + HistoryHint}, ev.Warnings)
	assert.Equal(t, 3*time.Minute, ev.Observed)
	assert.Equal(t, 10*time.Minute, ev.Needed)
	require.Len(t, ev.Series, 1)
	s := ev.Series[0]
	assert.False(t, s.Known)
	assert.False(t, s.Exact)
	require.NotNil(t, s.Value)
	assert.Equal(t, 0.0, *s.Value, "Prometheus' value from the samples returned")
	assert.Equal(t, 0.0, s.Min)
	assert.True(t, math.IsInf(s.Max, 1))

	ev, err = Eval(ctx, sc.source(at0(3*time.Minute)), GTc(Metric("missing"), 1), at0(3*time.Minute), WithHistoryHint(""))
	require.NoError(t, err)
	assert.Equal(t, []string{"no data for missing"}, ev.Warnings)
	assert.Nil(t, ev.Series)
	assert.Nil(t, ev.Evidence.Value, "no data is null, never 0")

	// Known answers carry no coverage warning.
	ev, err = Eval(ctx, sc.source(at0(3*time.Minute)), EQc(Increase(Select("moved_total"), 10*time.Minute), 0), at0(3*time.Minute))
	require.NoError(t, err)
	assert.Empty(t, ev.Warnings)
	assert.Equal(t, tbops.Evidence{Source: tbops.SourcePrometheus, Query: "increase(moved_total[10m]) == 0", At: at0(3 * time.Minute)}, ev.Evidence)
}

// TestRuleFor: `for` on the grid as the rule manager does it, at its
// boundaries, early unknowns, and the receipts-style for shorter than the
// interval. Every case also goes to promtool.
func TestRuleFor(t *testing.T) {
	promtool(t)
	g, pending, flat := Metric("g"), Metric("pending"), Select("flat_total")
	high := Rule{Alert: "High", Expr: GTc(g, 100), For: 3 * time.Minute, Severity: tbops.StatusWarning}
	brief := Rule{Alert: "HighBriefly", Expr: GTc(g, 100), For: 90 * time.Second, Severity: tbops.StatusWarning}
	now := Rule{Alert: "HighNow", Expr: GTc(g, 100), Severity: tbops.StatusCritical}
	pend := Rule{Alert: "Pending", Expr: GTc(pending, 0), For: 5 * time.Minute, Severity: tbops.StatusWarning}
	stalled := Rule{Alert: "Stalled", Expr: EQc(Increase(flat, 10*time.Minute), 0), For: 2 * time.Minute, Severity: tbops.StatusCritical}
	emitting := Rule{Alert: "NotEmitting", Expr: EQc(Increase(Select("moved_total"), time.Minute), 0), For: 5 * time.Second, Severity: tbops.StatusCritical}
	type want struct {
		firing, known bool
	}
	fires, quiet, undecided := want{true, true}, want{false, true}, want{false, false}
	cases := []struct {
		r    Rule
		at   time.Duration
		want want
	}{
		{high, 4 * time.Minute, quiet},
		{high, 7 * time.Minute, quiet}, // returned at 5, 6, 7: 2m < 3m
		{high, 8 * time.Minute, fires}, // 5, 6, 7, 8
		{brief, 6 * time.Minute, quiet},
		{brief, 7 * time.Minute, fires}, // 90s rounds up to two steps: 5, 6, 7
		{now, 4 * time.Minute, quiet},
		{now, 5 * time.Minute, fires},
		{pend, 3 * time.Minute, undecided}, // before time 0 nothing was observed
		{pend, 5 * time.Minute, fires},
		{stalled, 5 * time.Minute, undecided},
		{stalled, 11 * time.Minute, undecided}, // the window at 9m is not covered
		{stalled, 12 * time.Minute, fires},
		{emitting, 3 * time.Minute, quiet},
	}
	d := newDifferential(t, coverageScenario())
	var rules []Rule
	seen := map[string]bool{}
	for _, c := range cases {
		st := d.rule(c.r, c.at)
		assert.Equal(t, c.want, want{st.Firing, st.Known}, "%s at %s", c.r.Alert, c.at)
		if !seen[c.r.Alert] {
			seen[c.r.Alert] = true
			rules = append(rules, c.r)
		}
	}
	runPromtool(t, rules, d.group)
}

// TestRuleState: what a rule reports besides firing: its values, the worst
// series, history, evidence, warnings and its line in a report.
func TestRuleState(t *testing.T) {
	sc := coverageScenario()
	ctx := context.Background()
	r := Rule{Alert: "Stalled", Expr: And(EQc(Increase(Select("flat_total"), 10*time.Minute), 0), GTc(Metric("pending"), 0), On("instance")),
		For: 2 * time.Minute, Severity: tbops.StatusCritical, Labels: map[string]string{"team": "ops"}}
	at := at0(5 * time.Minute)
	st, err := EvalRule(ctx, sc.source(at), r, at)
	require.NoError(t, err)
	assert.False(t, st.Known)
	assert.Equal(t, tbops.StatusUnknown, st.Status())
	assert.Equal(t, 5*time.Minute, st.Observed)
	assert.Equal(t, 12*time.Minute, st.Needed, "10m range and two 1m steps of for")
	assert.Equal(t, []string{"flat_total: only 5m of the 12m window observed: " + HistoryHint}, st.Warnings,
		"pending has the 2m it needs")
	require.Len(t, st.Alerts, 1)
	assert.Equal(t, model.LabelSet{"instance": "a", "team": "ops"}, st.Alerts[0].Labels)
	assert.False(t, st.Alerts[0].Known)
	require.Len(t, st.Values, 1, "the left-hand side: increase(flat_total[10m])")
	require.NotNil(t, st.Worst)
	assert.Equal(t, 0.0, *st.Worst.Value)
	require.Len(t, st.Evidence, 2)
	assert.Equal(t, r.PromQL(), st.Evidence[0].Query)
	assert.Equal(t, "increase(flat_total[10m])", st.Evidence[1].Query)
	assert.Equal(t, tbops.Alert{Name: "Stalled", Severity: tbops.StatusCritical, Expr: r.PromQL(), ForSeconds: 120, Status: tbops.StatusUnknown,
		Value: tbops.Num(0), Threshold: tbops.Num(0), Evidence: st.Evidence,
		Detail: tbops.RawOf(map[string]float64{"needed_seconds": 720, "observed_seconds": 300})}, st.ReportAlert())

	at = at0(12 * time.Minute)
	st, err = EvalRule(ctx, sc.source(at), r, at)
	require.NoError(t, err)
	assert.True(t, st.Known && st.Firing)
	assert.Equal(t, tbops.StatusCritical, st.Status())
	assert.Equal(t, st.Needed, st.Observed)
	assert.Empty(t, st.Warnings)
	assert.True(t, st.ReportAlert().Firing)
	assert.JSONEq(t, `{"firing":[{"instance":"a","team":"ops"}]}`, string(st.ReportAlert().Detail),
		"the report names each firing alert's labels, as Alertmanager would get them")

	// The condition: left-hand side, direction and threshold.
	x, y := Metric("x"), Metric("y")
	for _, c := range []struct {
		e         Expr
		lhs       string
		op        Cmp
		threshold *float64
	}{
		{GTc(x, 3), "x", GT, num(3)},
		{Compare(Num(3), LT, x), "x", GT, num(3)},
		{And(LEc(x, 1), y), "x", LE, num(1)},
		{Unless(Or(EQc(x, 0), y), y), "x", EQ, num(0)},
		{Compare(x, GT, Mul(Num(3), y)), "x", GT, nil},
		{Unless(x, y), "x unless y", "", nil},
	} {
		lhs, op, threshold := condition(c.e)
		assert.Equal(t, c.lhs, lhs.String(), c.e.String())
		assert.Equal(t, c.op, op, c.e.String())
		assert.Equal(t, c.threshold, threshold, c.e.String())
	}

	// The worst series follows the comparison's direction.
	vals := []Series{{Value: num(3)}, {Value: num(9)}, {}, {Value: num(1)}}
	assert.Equal(t, 9.0, *worst(vals, GT).Value)
	assert.Equal(t, 1.0, *worst(vals, LE).Value)
	assert.Equal(t, 3.0, *worst(vals, EQ).Value)
	assert.Nil(t, worst([]Series{{}, {Value: num(math.NaN())}}, GT), "no value is no worst, never 0")
}

// TestEvalErrors: misuse and what Prometheus refuses are errors naming the
// expression; nothing panics.
func TestEvalErrors(t *testing.T) {
	src := &memSource{now: at0(0), series: []memSeries{
		stepSeries(metric("x", "i", "1"), step, []*float64{num(1)}),
		stepSeries(metric("x", "i", "2"), step, []*float64{num(2)}),
		stepSeries(metric("y", "i", "1"), step, []*float64{num(3)}),
	}}
	ctx := context.Background()
	bad := []struct {
		e    Expr
		want string
	}{
		{nil, "missing expression"},
		{Num(1), "is a number"},
		{Compare(Num(1), GT, Num(2)), "bool modifier"},
		{And(Metric("x"), Num(1)), "needs series on both sides"},
		{Add(Metric("x"), Num(1), On("i")), "on/ignoring need series on both sides"},
		{Add(Metric("x"), Metric("y"), On("i"), Ignoring("j")), "at most one"},
		{Sum(Num(3)), "needs series, not a number"},
		{Metric("no-dash"), "not a metric name"},
		{Metric("x", "bad label", "v"), "not a label name"},
		{SumBy(Metric("x"), "1x"), "not a label name"},
		{Rate(Select("x"), 0), "positive"},
		{Rate(Select("x"), time.Microsecond), "milliseconds"},
		{Compare(Metric("x"), Cmp("=~"), Num(1)), "not an operator"},
	}
	for _, c := range bad {
		_, err := Eval(ctx, src, c.e, src.now)
		require.Error(t, err, "%v", c.e)
		assert.ErrorIs(t, err, ErrBadQuery)
		assert.Contains(t, err.Error(), c.want)
	}
	assert.Empty(t, src.asked, "nothing is fetched for a bad expression")

	refused := []struct {
		e    Expr
		want string
	}{
		{Add(Metric("y"), Metric("x"), On()), "found duplicate series for the match group"},
		{Add(Metric("x"), Metric("y"), On()), "multiple matches for labels"},
	}
	for _, c := range refused {
		_, err := Eval(ctx, src, c.e, src.now)
		require.Error(t, err, "%v", c.e)
		assert.ErrorIs(t, err, ErrExecution)
		assert.Contains(t, err.Error(), c.want)
	}

	_, err := EvalRule(ctx, src, Rule{Alert: "Collide", Severity: tbops.StatusWarning, Expr: Metric("x"), Labels: map[string]string{"i": "same"}}, src.now)
	assert.ErrorIs(t, err, ErrExecution)
	assert.Contains(t, err.Error(), "same labelset after applying alert labels")

	failing := errors.New("boom")
	_, err = Eval(ctx, &memSource{err: failing}, Metric("x"), src.now)
	assert.ErrorIs(t, err, failing)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Eval(cancelled, src, Metric("x"), src.now)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestFetchOnce: every selector is asked for once, over its longest range plus
// the lookback and the rule's for; scoping applies because only Samples is used.
func TestFetchOnce(t *testing.T) {
	sc := coverageScenario()
	src := sc.source(at0(30 * time.Minute))
	r := Rule{Alert: "X", Severity: tbops.StatusWarning, Expr: And(GTc(Rate(Select("moved_total"), 5*time.Minute), 0), Compare(Rate(Select("moved_total"), 5*time.Minute), GT, Rate(Select("moved_total"), time.Hour)), On("instance")),
		For: 150 * time.Second}
	_, err := EvalRule(context.Background(), src, r, src.now)
	require.NoError(t, err)
	assert.Equal(t, []string{"moved_total[1h8m]"}, src.asked, "1h range + 5m lookback + 3 steps of 1m")

	scoped := sc.source(at0(30 * time.Minute))
	ev, err := Eval(context.Background(), Scoped(scoped, map[string]string{"instance": "b"}), Metric("g"), scoped.now)
	require.NoError(t, err)
	assert.Equal(t, []string{`g{instance="b"}[5m]`}, scoped.asked)
	assert.Equal(t, noDataFor("g").String(), verdict{ev.Returned, ev.Known, ev.NoData}.String())
}

// TestRuleValidate names the field at fault.
func TestRuleValidate(t *testing.T) {
	ok := Rule{Alert: "Fine", Severity: tbops.StatusCritical, Expr: GTc(Metric("x"), 1), For: time.Minute, Labels: map[string]string{"team": "ops"}}
	require.NoError(t, ok.Validate())
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{Rule{Alert: "bad name", Severity: ok.Severity, Expr: ok.Expr}, "Alert"},
		{Rule{Alert: "X", Expr: ok.Expr}, "Severity"},
		{Rule{Alert: "X", Severity: tbops.StatusOK, Expr: ok.Expr}, "Severity"},
		{Rule{Alert: "X", Severity: ok.Severity}, "Expr"},
		{Rule{Alert: "X", Severity: ok.Severity, Expr: ok.Expr, For: -time.Second}, "For"},
		{Rule{Alert: "X", Severity: ok.Severity, Expr: ok.Expr, Labels: map[string]string{"alertname": "y"}}, "Labels"},
	} {
		err := c.r.Validate()
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrBadQuery)
		assert.Contains(t, err.Error(), c.want)
	}
	_, err := EvalRule(context.Background(), &memSource{}, Rule{Alert: "Long", Severity: ok.Severity, Expr: ok.Expr, For: 24 * time.Hour}, at0(0), WithEvalInterval(time.Second))
	assert.ErrorIs(t, err, ErrBadQuery)
}
