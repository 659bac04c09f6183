package promq

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// Rule is one alerting rule, defined once: `tbops rules` prints its PromQL
// and EvalRule evaluates the same expression, so a report and Prometheus cannot
// disagree about it.
type Rule struct {
	// Alert is the alert name, CamelCase as Prometheus conventions have it.
	Alert string
	// Expr is the condition; the alert is active while it returns series.
	Expr Expr
	// For is how long Expr must keep returning a series before its alert fires
	// ("for N epochs" is N × 120 s).
	For time.Duration
	// Severity is tbops.StatusCritical (pages on-call) or tbops.StatusWarning
	// (creates a ticket).
	Severity tbops.Status
	// Summary is one line for the annotation.
	Summary string
	// Runbook is the runbook id (treasury-stuck, …) whose section the alert links to.
	Runbook string
	// SLO names the SLO table row the rule comes from, if any.
	SLO string
	// Labels are added to every alert, over the series' own labels, as in a
	// Prometheus rule.
	Labels map[string]string
}

// PromQL is the rule's expression as Prometheus reads it.
func (r Rule) PromQL() string { return str(r.Expr) }

// Validate reports what Prometheus would refuse in the rule, and a Severity
// other than warning or critical, naming the field.
func (r Rule) Validate() error {
	if !metricNameRE.MatchString(r.Alert) {
		return fmt.Errorf("rule %q: Alert: %w: not a valid alert name", r.Alert, ErrBadQuery)
	}
	if r.Severity != tbops.StatusWarning && r.Severity != tbops.StatusCritical {
		return fmt.Errorf("rule %s: Severity: %w: %q is neither warning nor critical", r.Alert, ErrBadQuery, r.Severity)
	}
	if err := checkVector(r.Expr); err != nil {
		return fmt.Errorf("rule %s: Expr: %w", r.Alert, err)
	}
	if r.For < 0 {
		return fmt.Errorf("rule %s: For: %w: negative", r.Alert, ErrBadQuery)
	}
	for k := range r.Labels {
		if !labelNameRE.MatchString(k) || k == model.MetricNameLabel || k == model.AlertNameLabel {
			return fmt.Errorf("rule %s: Labels: %w: %q is not a label a rule may set", r.Alert, ErrBadQuery, k)
		}
	}
	return nil
}

// AlertSeries is one alert of a rule: one series of its expression.
type AlertSeries struct {
	// Labels are the alert's labels as Prometheus makes them: the series'
	// labels without the metric name, then the rule's Labels (alertname is
	// not included).
	Labels model.LabelSet
	// Firing is whether the alert fires; meaningful only when Known.
	Firing bool
	Known  bool
	// Value is the expression's value for the series now ($value), as
	// Prometheus computes it from the samples returned; nil when they do not
	// give the series.
	Value *float64
}

// RuleState is a rule evaluated now, three-valued: firing, not firing, or
// unknown when the samples do not decide.
type RuleState struct {
	Rule Rule
	// Firing is true when an alert certainly fires; meaningful when Known.
	Firing bool
	// Known is false when the samples decide neither way: a window or the
	// `for` not covered by observed history, or no data at all.
	Known bool
	// Alerts are the series the expression returns, or may return, now.
	Alerts []AlertSeries
	// Values is the condition's left-hand side now, per series: the left
	// operand of the first comparison met going down the left operands of
	// and/or/unless (the whole expression when there is none).
	Values []Series
	// Worst is the series of Values deepest into (or nearest to) the alert: the
	// highest for > and >=, the lowest for < and <=, else the first; nil when
	// no series has a value (NaN is none). A missing value is never a zero.
	Worst *Series
	// Observed and Needed are the history the least-covered selector had and
	// needed (its range plus the `for` on the evaluation grid): "observed 7m of
	// 10m".
	Observed, Needed time.Duration
	// NoData lists the selectors whose missing data leave the rule unknown.
	NoData []string
	// Evidence is the rule's PromQL and what it returns, then the left-hand
	// side's PromQL and its values.
	Evidence []tbops.Evidence
	// Warnings say what was seen and what would decide an unknown rule.
	Warnings []string
}

// Status is the rule's verdict for a report: its Severity when firing, ok when
// known not to fire, unknown otherwise.
func (s RuleState) Status() tbops.Status {
	switch {
	case !s.Known:
		return tbops.StatusUnknown
	case s.Firing:
		return s.Rule.Severity
	}
	return tbops.StatusOK
}

// ReportAlert is the rule's line in a report's Alerts block: the worst
// series' value (nil when there is none), the number it is compared with when
// the condition compares with one, and the evidence.
func (s RuleState) ReportAlert() tbops.Alert {
	a := tbops.Alert{Name: s.Rule.Alert, Severity: s.Rule.Severity, Expr: s.Rule.PromQL(), ForSeconds: s.Rule.For.Seconds(),
		Firing: s.Known && s.Firing, Status: s.Status(), Evidence: s.Evidence}
	if s.Worst != nil && s.Worst.Value != nil {
		a.Value = tbops.Num(*s.Worst.Value)
	}
	if _, _, c := condition(s.Rule.Expr); c != nil {
		a.Threshold = tbops.Num(*c)
	}
	switch firing := s.firingLabels(); {
	case len(firing) > 0:
		a.Detail = tbops.RawOf(map[string]any{"firing": firing})
	case !s.Known:
		// What was seen and what would decide it, as numbers a script can read.
		d := map[string]any{"observed_seconds": s.Observed.Seconds(), "needed_seconds": s.Needed.Seconds()}
		if len(s.NoData) > 0 {
			d["no_data"] = s.NoData
		}
		a.Detail = tbops.RawOf(d)
	}
	return a
}

// firingLabels are the labels of each alert that certainly fires, as an
// Alertmanager would receive them (without alertname), sorted.
func (s RuleState) firingLabels() []model.LabelSet {
	var out []model.LabelSet
	for _, a := range s.Alerts {
		if a.Known && a.Firing {
			out = append(out, a.Labels)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// EvalRule evaluates the rule at now as Prometheus' rule manager would have on a
// grid of evaluations every interval (WithEvalInterval, default 1m) ending at
// now: an alert fires when its series was returned at every grid point from
// now − For (rounded up to the grid) to now. It is known to fire when every one
// of those evaluations is known to return it, and known not to fire as soon as
// one is known not to. Every selector is fetched once, over its range, the 5m
// lookback and the `for`. promtool aligns its grid on time 0, so with now on
// that grid (a multiple of the interval) the two agree.
func EvalRule(ctx context.Context, src Source, r Rule, now time.Time, opts ...EvalOption) (RuleState, error) {
	cfg := newEvalConfig(opts)
	if err := r.Validate(); err != nil {
		return RuleState{}, err
	}
	d, g, err := ruleGrid(ctx, src, r, now, cfg.interval)
	if err != nil {
		return RuleState{}, err
	}
	lhs, op, _ := condition(r.Expr)
	lo, err := d.evaluate(lhs, now.UnixMilli())
	if err != nil {
		return RuleState{}, err
	}
	st := RuleState{Rule: r, Firing: g.firing(), Known: g.known(), Alerts: g.alerts(), Values: lo.series(), NoData: g.noData}
	st.Worst = worst(st.Values, op)
	st.Observed, st.Needed = d.history()
	st.Evidence = []tbops.Evidence{d.evidence(r.PromQL(), g.now.con, now)}
	if lhs != r.Expr { // a left-hand side of its own
		st.Evidence = append(st.Evidence, d.evidence(lhs.String(), lo.con, now))
	}
	st.Warnings = d.warnings(r.PromQL(), st.Known, st.NoData, cfg.hint)
	return st, nil
}

// ruleGrid fetches what the rule needs and evaluates it on the grid: now and
// every interval back, as far as For rounded up to the grid.
func ruleGrid(ctx context.Context, src Source, r Rule, now time.Time, interval time.Duration) (*dataset, *grid, error) {
	steps := int64((r.For + interval - 1) / interval)
	if steps >= maxGridPoints {
		return nil, nil, fmt.Errorf("rule %s: %w: for %s on a %s grid is more than %d evaluations: use a longer interval",
			r.Alert, ErrBadQuery, formatDuration(r.For), formatDuration(interval), maxGridPoints)
	}
	d, err := fetch(ctx, src, r.Expr, now, time.Duration(steps)*interval)
	if err != nil {
		return nil, nil, err
	}
	g, err := d.evalGrid(r, now.UnixMilli(), steps, interval.Milliseconds())
	return d, g, err
}

// grid is a rule's expression evaluated at every grid point, per alert.
type grid struct {
	now    outcome
	series []*alertTrack // sorted by labels
	noData []string      // when nothing may be returned now for want of data
}

// alertTrack is one alert's presence over the grid, newest first.
type alertTrack struct {
	labels   model.LabelSet
	value    *float64
	must     bool // returned at every point, certainly
	mayAll   bool // possibly returned at every point
	observed bool // returned at every point by the concrete evaluation
}

func (d *dataset) evalGrid(r Rule, now, steps, interval int64) (*grid, error) {
	g := &grid{}
	byKey := map[model.Fingerprint]*alertTrack{}
	for k := int64(0); k <= steps; k++ {
		o, err := d.evaluate(r.Expr, now-k*interval)
		if err != nil {
			return nil, err
		}
		con, err := alertLabels(o.con.vec, r)
		if err != nil {
			return nil, err
		}
		abs, _ := alertLabels(o.abs.vec, r)
		if k == 0 {
			g.now = o
			g.noData = o.noData()
			for fp, a := range abs {
				t := &alertTrack{labels: a.labels, must: true, mayAll: true, observed: true}
				if c, ok := con[fp]; ok {
					t.value = c.value
				}
				byKey[fp] = t
				g.series = append(g.series, t)
			}
		}
		for fp, t := range byKey {
			a, may := abs[fp]
			_, seen := con[fp]
			t.must = t.must && may && a.must
			t.mayAll = t.mayAll && may
			t.observed = t.observed && seen
		}
	}
	sort.Slice(g.series, func(i, j int) bool { return g.series[i].labels.Before(g.series[j].labels) })
	return g, nil
}

// alertState is one alert label set at one evaluation.
type alertState struct {
	labels model.LabelSet
	must   bool
	value  *float64
}

// alertLabels maps a vector to its alerts' label sets; for the concrete pass
// it refuses, as Prometheus, two series that become one alert.
func alertLabels(vec []elem, r Rule) (map[model.Fingerprint]alertState, error) {
	out := make(map[model.Fingerprint]alertState, len(vec))
	for _, x := range vec {
		ls := make(model.LabelSet, len(x.metric)+len(r.Labels))
		for k, v := range x.metric {
			ls[k] = v
		}
		delete(ls, model.MetricNameLabel)
		for k, v := range r.Labels {
			if v == "" {
				delete(ls, model.LabelName(k))
			} else {
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
		}
		fp := ls.Fingerprint()
		prev, dup := out[fp]
		if dup && x.must && prev.must {
			return nil, fmt.Errorf("rule %s: %w: vector contains metrics with the same labelset after applying alert labels: %s", r.Alert, ErrExecution, ls)
		}
		a := alertState{labels: ls, must: x.must || prev.must}
		if v, ok := x.val.exact(); ok {
			a.value = &v
		}
		out[fp] = a
	}
	return out, nil
}

func (g *grid) firing() bool {
	for _, t := range g.series {
		if t.must {
			return true
		}
	}
	return false
}

// known: something fires for certain, or nothing can and no data was missing.
func (g *grid) known() bool {
	if g.firing() {
		return true
	}
	for _, t := range g.series {
		if t.mayAll {
			return false
		}
	}
	return len(g.noData) == 0
}

func (g *grid) alerts() []AlertSeries {
	out := make([]AlertSeries, 0, len(g.series))
	for _, t := range g.series {
		out = append(out, AlertSeries{Labels: t.labels, Firing: t.must, Known: t.must || !t.mayAll, Value: t.value})
	}
	return out
}

// observedFiring is what Prometheus' rule manager fires from the samples the
// source returned (the differential tests hold it equal to promtool's).
func (g *grid) observedFiring() []model.LabelSet {
	var out []model.LabelSet
	for _, t := range g.series {
		if t.observed {
			out = append(out, t.labels)
		}
	}
	return out
}

// condition finds the left-hand side whose values a rule reports, the
// comparison that judges it, and the number it is compared with, if it is one.
func condition(e Expr) (lhs Expr, op Cmp, threshold *float64) {
	for n := e; ; {
		b, ok := n.(*binary)
		switch {
		case !ok:
			return e, "", nil
		case isComparison(b.op):
			if c, scalar := b.lhs.(*number); scalar {
				return b.rhs, flip(Cmp(b.op)), &c.v
			}
			if c, scalar := b.rhs.(*number); scalar {
				return b.lhs, Cmp(b.op), &c.v
			}
			return b.lhs, Cmp(b.op), nil
		case isSetOp(b.op):
			n = b.lhs
		default:
			return e, "", nil
		}
	}
}

// flip turns `c op x` into `x flip(op) c`.
func flip(op Cmp) Cmp {
	switch op {
	case GT:
		return LT
	case GE:
		return LE
	case LT:
		return GT
	case LE:
		return GE
	}
	return op
}

// worst picks the series deepest into the alert by the comparison's direction.
func worst(vals []Series, op Cmp) *Series {
	var w *Series
	for i := range vals {
		s := &vals[i]
		if s.Value == nil || math.IsNaN(*s.Value) {
			continue // no value, never a zero; a NaN is none either
		}
		switch {
		case w == nil,
			(op == GT || op == GE) && *s.Value > *w.Value,
			(op == LT || op == LE) && *s.Value < *w.Value:
			w = s
		}
	}
	return w
}
