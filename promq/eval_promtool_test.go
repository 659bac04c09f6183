package promq

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/theblock/tbops"
)

// The differential test: scenarios of generated series are evaluated here, the
// values and firing alerts are written as a promtool test file (input_series in
// promtool's expanding notation), and `promtool test rules` must agree on every
// one. promtool runs Prometheus' own engine and rule manager (2.42 in CI), so
// this holds the concrete evaluation, the rule `for` grid and every Expr's
// String (which promtool parses) to Prometheus. Alongside, every answer the
// evaluator calls known is checked against that concrete answer, which promtool
// vouches for.

const step = time.Minute // promtool's input interval and evaluation_interval here

// scenario is a set of series sampled every step from time 0.
type scenario struct {
	name   string
	series []genSeries
}

type genSeries struct {
	metric model.Metric
	vals   []*float64 // nil: no sample
}

func (s scenario) source(now time.Time) *memSource {
	m := &memSource{now: now}
	for _, g := range s.series {
		m.series = append(m.series, stepSeries(g.metric, step, g.vals))
	}
	return m
}

func num(v float64) *float64 { return &v }

func metric(name string, pairs ...string) model.Metric {
	m := model.Metric{model.MetricNameLabel: model.LabelValue(name)}
	for i := 0; i < len(pairs); i += 2 {
		m[model.LabelName(pairs[i])] = model.LabelValue(pairs[i+1])
	}
	return m
}

// generated is a random scenario: counters with steps, resets, gaps and a late
// start; gauges with a gap longer than the lookback; histograms whose buckets
// grow together and reset together; a flat counter that moves now and then.
func generated(seed uint64, n int) scenario {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	sc := scenario{name: fmt.Sprintf("generated-%d", seed)}
	counter := func(m model.Metric, flat bool) {
		v := float64(r.IntN(20))
		start := 0
		if r.IntN(3) == 0 {
			start = r.IntN(15) // a series that appears later
		}
		g := genSeries{metric: m, vals: make([]*float64, n)}
		for i := 0; i < n; i++ {
			switch p := r.IntN(100); {
			case flat && p < 85:
			case flat:
				v += float64(1 + r.IntN(3))
			case p < 15:
			case p < 20:
				v = float64(r.IntN(3)) // reset
			default:
				v += float64(1 + r.IntN(5))
			}
			if i >= start && r.IntN(100) >= 5 {
				g.vals[i] = num(v)
			}
		}
		sc.series = append(sc.series, g)
	}
	counter(metric("c_total", "instance", "a", "reason", "x"), false)
	counter(metric("c_total", "instance", "a", "reason", "y"), false)
	counter(metric("c_total", "instance", "b", "reason", "x"), false)
	counter(metric("f_total", "instance", "a"), true)
	counter(metric("f_total", "instance", "b"), true)
	for _, inst := range []string{"a", "b"} {
		g := genSeries{metric: metric("g", "instance", inst), vals: make([]*float64, n)}
		v := float64(r.IntN(200))
		gap := r.IntN(n)
		for i := 0; i < n; i++ {
			v = math.Max(0, math.Min(200, v+float64(r.IntN(61)-30)))
			if (i < gap || i >= gap+7) && r.IntN(100) >= 10 {
				g.vals[i] = num(v)
			}
		}
		sc.series = append(sc.series, g)
	}
	p := genSeries{metric: metric("p", "instance", "a"), vals: make([]*float64, n)}
	for i := range p.vals {
		if r.IntN(100) >= 10 {
			p.vals[i] = num(float64(r.IntN(4)))
		}
	}
	sc.series = append(sc.series, p)
	bounds := []string{"0.1", "1", "10", "+Inf"}
	for _, inst := range []string{"a", "b"} {
		counts := make([]float64, len(bounds))
		hs := make([]genSeries, len(bounds))
		for j, le := range bounds {
			hs[j] = genSeries{metric: metric("h_bucket", "instance", inst, "le", le), vals: make([]*float64, n)}
		}
		for i := 0; i < n; i++ {
			if r.IntN(100) < 4 {
				clear(counts)
			}
			for k := r.IntN(7); k > 0; k-- {
				for j := r.IntN(len(bounds)); j < len(bounds); j++ {
					counts[j]++ // an observation counts in its bucket and every larger one
				}
			}
			if r.IntN(100) >= 5 {
				for j := range bounds {
					hs[j].vals[i] = num(counts[j])
				}
			}
		}
		sc.series = append(sc.series, hs...)
	}
	return sc
}

var (
	cTotal = Select("c_total")
	fTotal = Select("f_total")
	gauge  = Metric("g")
	pend   = Metric("p")
	hist   = Select("h_bucket")
)

// differentialExprs cover every node type, every operator, both matching
// modifiers and the shapes of the rules tbops ships.
func differentialExprs() []Expr {
	errs := SumWithout(Rate(cTotal, 5*time.Minute), "reason")
	return []Expr{
		gauge,
		Metric("c_total", "reason", "x"),
		Rate(cTotal, 5*time.Minute),
		Increase(cTotal, 10*time.Minute),
		Rate(cTotal, 90*time.Second),
		errs,
		SumBy(Increase(cTotal, 5*time.Minute), "instance"),
		Sum(gauge),
		GroupWithout(Metric("c_total"), "reason"),
		GroupBy(Metric("h_bucket"), "instance"),
		HistogramQuantile(0.9, Rate(hist, 5*time.Minute)),
		HistogramQuantile(0.5, SumBy(Rate(hist, 5*time.Minute), "le")),
		HistogramQuantile(0.95, Metric("h_bucket")),
		Mul(errs, Num(60)),
		Sub(Num(1), Div(gauge, Num(200))),
		Add(gauge, pend),
		Div(errs, SumWithout(Rate(cTotal, 10*time.Minute), "reason")),
		Mul(gauge, pend, On("instance")),
		Sub(Rate(Select("c_total", "reason", "x"), 5*time.Minute), Rate(Select("c_total", "reason", "y"), 5*time.Minute), Ignoring("reason")),
		Sub(gauge, Add(Num(1), Mul(Num(2), Num(3)))),
		GTc(gauge, 100),
		GEc(gauge, 100),
		LTc(gauge, 50),
		LEc(gauge, 20),
		EQc(Increase(fTotal, 10*time.Minute), 0),
		NEc(pend, 0),
		Compare(Num(100), LT, gauge),
		Compare(Rate(cTotal, 5*time.Minute), GT, Mul(Num(3), Rate(cTotal, 30*time.Minute))),
		Compare(gauge, GE, pend, On("instance")),
		And(EQc(Increase(fTotal, 10*time.Minute), 0), GTc(pend, 0), On("instance")),
		Or(Increase(fTotal, 10*time.Minute), Increase(Select("missing_total"), 10*time.Minute)),
		Or(pend, gauge),
		Unless(gauge, pend, On("instance")),
		Unless(GroupWithout(Metric("c_total"), "reason"), Metric("c_total", "reason", "y"), Ignoring("reason")),
		Mul(Or(errs, SumWithout(Rate(Select("missing_total"), 5*time.Minute), "reason")), Num(60)),
		// The receipts validation-success and treasury availability shapes.
		LTc(Sub(Num(1), Div(errs, Add(Or(SumWithout(Rate(fTotal, 5*time.Minute)), Mul(Num(0), errs)), errs))), 0.99),
		GTc(Div(errs, Add(errs, Or(Rate(fTotal, 5*time.Minute), Mul(Num(0), errs)))), 0.001),
	}
}

func differentialRules() []Rule {
	errs := SumWithout(Rate(cTotal, 5*time.Minute), "reason")
	return []Rule{
		{Alert: "GaugeHigh", Severity: tbops.StatusWarning, Expr: GTc(gauge, 100), For: 3 * time.Minute},
		{Alert: "GaugeHighBriefly", Severity: tbops.StatusWarning, Expr: GTc(gauge, 100), For: 90 * time.Second},
		{Alert: "FlatWhilePending", Severity: tbops.StatusWarning, Expr: And(EQc(Increase(fTotal, 10*time.Minute), 0), GTc(pend, 0), On("instance"))},
		{Alert: "ErrorsHigh", Severity: tbops.StatusWarning, Expr: GTc(errs, 0.05), For: 2 * time.Minute},
		{Alert: "LatencyHigh", Severity: tbops.StatusWarning, Expr: GTc(HistogramQuantile(0.9, Rate(hist, 5*time.Minute)), 5), For: time.Minute},
		{Alert: "NothingPending", Severity: tbops.StatusWarning, Expr: Unless(gauge, pend, On("instance")), For: 5 * time.Minute},
		{Alert: "ReasonMissing", Severity: tbops.StatusWarning, Expr: Unless(GroupWithout(Metric("c_total"), "reason"), Metric("c_total", "reason", "y"), Ignoring("reason")),
			For: 2 * time.Minute, Labels: map[string]string{"reason": "y"}},
		{Alert: "Spike", Severity: tbops.StatusWarning, Expr: And(GTc(Rate(cTotal, 5*time.Minute), 0.01), Compare(Rate(cTotal, 5*time.Minute), GT, Mul(Num(3), Rate(cTotal, 30*time.Minute))))},
	}
}

// The promtool files.

type ptFile struct {
	RuleFiles          []string  `yaml:"rule_files"`
	EvaluationInterval string    `yaml:"evaluation_interval"`
	Tests              []ptGroup `yaml:"tests"`
}

type ptGroup struct {
	Name        string        `yaml:"name"`
	Interval    string        `yaml:"interval"`
	InputSeries []ptSeries    `yaml:"input_series"`
	AlertTests  []ptAlertTest `yaml:"alert_rule_test,omitempty"`
	ExprTests   []ptExprTest  `yaml:"promql_expr_test,omitempty"`
}

type ptSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type ptAlertTest struct {
	EvalTime  string    `yaml:"eval_time"`
	Alertname string    `yaml:"alertname"`
	ExpAlerts []ptAlert `yaml:"exp_alerts"`
}

type ptAlert struct {
	ExpLabels map[string]string `yaml:"exp_labels"`
}

type ptExprTest struct {
	Expr       string     `yaml:"expr"`
	EvalTime   string     `yaml:"eval_time"`
	ExpSamples []ptSample `yaml:"exp_samples"`
}

type ptSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

type rulesFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name  string     `yaml:"name"`
	Rules []ruleLine `yaml:"rules"`
}

type ruleLine struct {
	Alert  string            `yaml:"alert"`
	Expr   string            `yaml:"expr"`
	For    string            `yaml:"for,omitempty"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

// expand writes values in promtool's expanding notation: `_` for a missing
// sample, `a+bxn` for n+1 values in steps of b.
func expand(vals []*float64) string {
	var parts []string
	for i := 0; i < len(vals); {
		if vals[i] == nil {
			parts = append(parts, "_")
			i++
			continue
		}
		j := i + 1
		if j < len(vals) && vals[j] != nil {
			d := *vals[j] - *vals[i]
			for j+1 < len(vals) && vals[j+1] != nil && *vals[j+1]-*vals[j] == d {
				j++
			}
			if j > i+1 {
				parts = append(parts, fmt.Sprintf("%s%+gx%d", formatNumber(*vals[i]), d, j-i))
				i = j + 1
				continue
			}
		}
		parts = append(parts, formatNumber(*vals[i]))
		i++
	}
	return strings.Join(parts, " ")
}

func seriesString(m model.Metric) string {
	name := string(m[model.MetricNameLabel])
	var pairs []string
	for _, k := range sortedNames(m) {
		if k != string(model.MetricNameLabel) {
			pairs = append(pairs, fmt.Sprintf("%s=%q", k, m[model.LabelName(k)]))
		}
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}

func durationString(d time.Duration) string { return model.Duration(d).String() }

// differential builds one promtool test group for a scenario from this
// package's evaluation, and checks every known answer against it.
type differential struct {
	t     *testing.T
	sc    scenario
	group ptGroup
}

func newDifferential(t *testing.T, sc scenario) *differential {
	d := &differential{t: t, sc: sc, group: ptGroup{Name: sc.name, Interval: durationString(step)}}
	for _, g := range sc.series {
		d.group.InputSeries = append(d.group.InputSeries, ptSeries{Series: seriesString(g.metric), Values: expand(g.vals)})
	}
	return d
}

// expr adds an expression test at `at` and returns this package's evaluation.
// A result with NaN values is tested as `e == e`, which drops them: promtool
// compares values with ==, where NaN never matches.
func (d *differential) expr(e Expr, at time.Duration) Evaluation {
	d.t.Helper()
	ev, err := Eval(context.Background(), d.sc.source(at0(at)), e, at0(at))
	require.NoError(d.t, err, "%s at %s", e, at)
	d.checkKnown(ev)
	tested := ev
	for _, s := range ev.Series {
		if s.Value != nil && math.IsNaN(*s.Value) {
			tested, err = Eval(context.Background(), d.sc.source(at0(at)), Compare(e, EQ, e), at0(at))
			require.NoError(d.t, err)
			break
		}
	}
	test := ptExprTest{Expr: tested.Expr, EvalTime: durationString(at)}
	for _, s := range tested.Series {
		if s.Value != nil {
			test.ExpSamples = append(test.ExpSamples, ptSample{Labels: seriesString(s.Metric), Value: *s.Value})
		}
	}
	d.group.ExprTests = append(d.group.ExprTests, test)
	return ev
}

// checkKnown: whatever the evaluation calls known must be what Prometheus
// returns from the same samples (the concrete values, which promtool checks).
func (d *differential) checkKnown(ev Evaluation) {
	d.t.Helper()
	observed := 0
	for _, s := range ev.Series {
		if s.Value != nil {
			observed++
		}
		if s.Known {
			require.NotNil(d.t, s.Value, "%s at %s: %s known returned but Prometheus does not return it", ev.Expr, ev.At, s.Metric)
		}
		if s.Exact {
			v := *s.Value
			require.True(d.t, v == s.Min || (math.IsNaN(v) && math.IsNaN(s.Min)), "%s at %s: %s exact %g but Prometheus says %g", ev.Expr, ev.At, s.Metric, s.Min, v)
		}
		if s.Value != nil && !math.IsNaN(*s.Value) && !math.IsNaN(s.Min) {
			require.True(d.t, s.Min <= *s.Value && *s.Value <= s.Max, "%s at %s: %s: %g outside [%g, %g]", ev.Expr, ev.At, s.Metric, *s.Value, s.Min, s.Max)
		}
	}
	if ev.Known {
		require.Equal(d.t, ev.Returned, observed > 0, "%s at %s: known returned=%v, Prometheus returns %d series", ev.Expr, ev.At, ev.Returned, observed)
	}
}

// rule adds an alert test at `at` and returns this package's state.
func (d *differential) rule(r Rule, at time.Duration) RuleState {
	d.t.Helper()
	src := d.sc.source(at0(at))
	st, err := EvalRule(context.Background(), src, r, at0(at), WithEvalInterval(step))
	require.NoError(d.t, err, "%s at %s", r.Alert, at)
	fired := d.observedFiring(r, at)
	test := ptAlertTest{EvalTime: durationString(at), Alertname: r.Alert}
	for _, ls := range fired {
		labels := map[string]string{}
		for k, v := range ls {
			labels[string(k)] = string(v)
		}
		test.ExpAlerts = append(test.ExpAlerts, ptAlert{ExpLabels: labels})
	}
	d.group.AlertTests = append(d.group.AlertTests, test)
	// Known answers agree with what fires from these samples.
	if st.Known {
		require.Equal(d.t, st.Firing, len(fired) > 0, "%s at %s: known firing=%v, Prometheus fires %v", r.Alert, at, st.Firing, fired)
	}
	firing := map[model.Fingerprint]bool{}
	for _, ls := range fired {
		firing[ls.Fingerprint()] = true
	}
	for _, a := range st.Alerts {
		if a.Known {
			require.Equal(d.t, a.Firing, firing[a.Labels.Fingerprint()], "%s at %s: %s", r.Alert, at, a.Labels)
		}
	}
	return st
}

// observedFiring is the concrete evaluation's firing alerts.
func (d *differential) observedFiring(r Rule, at time.Duration) []model.LabelSet {
	d.t.Helper()
	_, g, err := ruleGrid(context.Background(), d.sc.source(at0(at)), r, at0(at), step)
	require.NoError(d.t, err)
	return g.observedFiring()
}

// runPromtool writes the rules and tests and runs `promtool test rules`.
func runPromtool(t *testing.T, rules []Rule, groups ...ptGroup) {
	t.Helper()
	bin := promtool(t)
	dir := t.TempDir()
	rf := rulesFile{Groups: []ruleGroup{{Name: "differential"}}}
	for _, r := range rules {
		line := ruleLine{Alert: r.Alert, Expr: r.PromQL(), Labels: r.Labels}
		if r.For > 0 {
			line.For = durationString(r.For)
		}
		rf.Groups[0].Rules = append(rf.Groups[0].Rules, line)
	}
	writeYAML(t, filepath.Join(dir, "rules.yml"), rf)
	writeYAML(t, filepath.Join(dir, "test.yml"), ptFile{RuleFiles: []string{"rules.yml"},
		EvaluationInterval: durationString(step), Tests: groups})
	out, err := runBounded(dir, bin, "test", "rules", "test.yml")
	if err != nil {
		if keep := os.Getenv("PROMQ_KEEP_PROMTOOL"); keep != "" {
			_ = os.CopyFS(keep, os.DirFS(dir))
		}
		t.Fatalf("promtool test rules disagrees (set PROMQ_KEEP_PROMTOOL=dir to keep the files): %v\n%s", err, truncate(string(out), 6000))
	}
}

// runBounded runs promtool with a hang guard (a bound, not a timing).
func runBounded(dir, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "\n…"
	}
	return s
}

// TestDifferentialPromtool runs every expression and rule over generated
// scenarios at many instants, and promtool over the same.
func TestDifferentialPromtool(t *testing.T) {
	promtool(t)
	const n = 46
	rules := differentialRules()
	var groups []ptGroup
	unknown, total := 0, 0
	for _, seed := range []uint64{1, 2, 3, 4} {
		d := newDifferential(t, generated(seed, n))
		for at := time.Duration(0); at < n*step; at += 3 * step {
			for _, e := range differentialExprs() {
				ev := d.expr(e, at+step/2*time.Duration(seed%2)) // also between samples
				total++
				if !ev.Known {
					unknown++
				}
			}
		}
		for at := time.Duration(0); at < n*step; at += step {
			for _, r := range rules {
				d.rule(r, at)
			}
		}
		groups = append(groups, d.group)
	}
	runPromtool(t, rules, groups...)
	// The scenarios start at time 0, so early windows are unknown; later ones
	// must mostly be decided, or the test would prove little.
	require.Less(t, unknown, total/2, "%d of %d evaluations unknown", unknown, total)
}

// TestExpandNotation pins the encoding the differential test relies on.
func TestExpandNotation(t *testing.T) {
	vals := []*float64{num(1), nil, nil, num(5), num(6), num(7), nil, num(3), num(3), num(3), num(9), num(2)}
	require.Equal(t, "1 _ _ 5+1x2 _ 3+0x2 9 2", expand(vals))
}
