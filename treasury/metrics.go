package treasury

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// metrics is what Diagnose evaluated on the metrics source, every answer
// three-valued (promq's "Time windows"): each rule of the report by alert name,
// the lag symptom, step 4's two queries and, with Options.SLO, the SLO
// measures. Without a source every rule is unknown and the rest is empty.
type metrics struct {
	src   bool
	rules map[string]promq.RuleState
	lag   promq.RuleState
	tick  promq.Evaluation
	errs  promq.Evaluation
	slo   map[string]promq.Evaluation
}

// reportRules are the rules the report's Alerts block evaluates: the runbook's
// Alert Thresholds, and the SLO table's with Options.SLO.
func (d *diagnosis) reportRules() []promq.Rule {
	var out []promq.Rule
	for _, r := range Rules() {
		if r.SLO == "" || d.opts.SLO {
			out = append(out, r)
		}
	}
	return out
}

// readMetrics evaluates everything Diagnose asks of src. A query that fails
// leaves its answer unknown, with a warning; only a cancelled context is an
// error.
func (d *diagnosis) readMetrics(ctx context.Context, src promq.Source) error {
	m := &d.m
	m.rules = map[string]promq.RuleState{}
	m.lag = promq.RuleState{Rule: lagSymptom()}
	if src == nil {
		d.warn("no metrics source: the backlog, lag, error-rate and progress checks are unknown")
		for _, rule := range d.reportRules() {
			m.rules[rule.Alert] = promq.RuleState{Rule: rule}
		}
		return nil
	}
	m.src = true
	d.r.Scope = src.Name()
	evalRule := func(rule promq.Rule) (promq.RuleState, error) {
		st, err := promq.EvalRule(ctx, src, rule, d.now, d.opts.Eval...)
		if err != nil {
			d.warn(fmt.Sprintf("%s: %v", rule.Alert, err))
			return promq.RuleState{Rule: rule}, ctx.Err()
		}
		d.warnMetrics(st.Warnings)
		return st, nil
	}
	eval := func(what string, e promq.Expr) (promq.Evaluation, error) {
		ev, err := promq.Eval(ctx, src, e, d.now, d.opts.Eval...)
		if err != nil {
			d.warn(fmt.Sprintf("%s: %v", what, err))
			return promq.Evaluation{}, ctx.Err()
		}
		d.warnMetrics(ev.Warnings)
		return ev, nil
	}
	var err error
	for _, rule := range d.reportRules() {
		if m.rules[rule.Alert], err = evalRule(rule); err != nil {
			return err
		}
	}
	if m.lag, err = evalRule(lagSymptom()); err != nil {
		return err
	}
	if m.tick, err = eval("executor tick duration p99", tickP99()); err != nil {
		return err
	}
	if m.errs, err = eval("execution error rate", errorRates()); err != nil {
		return err
	}
	if d.opts.SLO {
		m.slo = map[string]promq.Evaluation{}
		for _, row := range SLOs() {
			if m.slo[row.Name], err = eval("SLO "+row.Name, row.Measure); err != nil {
				return err
			}
		}
	}
	return nil
}

// warnMetrics adds an evaluation's warnings, but not that the optional p95
// gauge is missing (with or without the source's scope matchers): most nodes
// export only the histogram, and the lag's detail says which one was used.
func (d *diagnosis) warnMetrics(ws []string) {
	for _, w := range ws {
		if !strings.HasPrefix(w, "no data for "+MetricLagP95) {
			d.warn(w)
		}
	}
}

// tickP99 is step 4's query: the runbook's p99 over the cumulative buckets.
func tickP99() promq.Expr {
	return promq.HistogramQuantile(0.99, promq.Metric(MetricTickDuration+"_bucket"))
}

// errorRates is step 4's query: rate(treasury_execution_errors_total[5m]), per reason.
func errorRates() promq.Expr { return promq.Rate(promq.Select(MetricErrors), ErrorRateWindow) }

// ruleSymptom decides s from a rule evaluated on the metrics: firing, not
// firing, or unknown when the samples do not decide; its value is the rule's
// left-hand side when the samples give it exactly (never a partial window's).
func ruleSymptom(s *tbops.Symptom, st promq.RuleState, severity tbops.Status) {
	s.Evidence = append(s.Evidence, st.Evidence...)
	if v, ok := exact(st.Worst); ok {
		s.Value = tbops.Num(v)
	}
	switch {
	case !st.Known:
		s.Status = tbops.StatusUnknown
	case st.Firing:
		s.Firing, s.Status = true, severity
	default:
		s.Status = tbops.StatusOK
	}
}

// exact is a series' value when it is the full window's (not NaN).
func exact(s *promq.Series) (float64, bool) {
	if s == nil || s.Value == nil || !s.Exact || math.IsNaN(*s.Value) {
		return 0, false
	}
	return *s.Value, true
}

// backlogGauge is the backlog gauge now, when the metrics give it.
func (d *diagnosis) backlogGauge() (float64, bool) {
	return exact(d.m.rules[AlertBacklogWarning].Worst)
}

// lagSource says where the lag p95 came from: the node's gauge, or the histogram.
func lagSource(st promq.RuleState) string {
	switch {
	case st.Worst == nil:
		return ""
	case st.Worst.Metric["__name__"] == MetricLagP95:
		return "from the node's " + MetricLagP95 + " gauge"
	}
	return "derived from the " + MetricLag + " histogram over 5m (the node exports no " + MetricLagP95 + " gauge)"
}

// errorRateFinding is step 4's error-rate line: the rate per reason when the
// 5m window is covered, else the lower bound the observed part gives.
func (d *diagnosis) errorRateFinding() string {
	ev := d.m.errs
	if len(ev.Series) == 0 {
		return "execution error rate: no data"
	}
	byReason := map[string]promq.Series{}
	allExact := true
	for _, s := range ev.Series {
		byReason[string(s.Metric["reason"])] = s
		allExact = allExact && s.Exact && s.Value != nil
	}
	reasons := make([]string, 0, len(byReason))
	for k := range byReason {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	total := 0.0
	var parts []string
	for _, k := range reasons {
		s := byReason[k]
		v := s.Min
		if allExact {
			v = *s.Value
		}
		total += v
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %.3g/s", orDash(k), v))
		}
	}
	f := fmt.Sprintf("execution error rate: %.3g/s", total)
	switch {
	case allExact:
	case total == 0:
		f = fmt.Sprintf("execution error rate: not decided: only %s of the 5m window observed, no error counted in it", ev.Observed)
	default:
		f = fmt.Sprintf("execution error rate: at least %.3g/s (only %s of the 5m window observed)", total, ev.Observed)
	}
	if len(parts) > 0 {
		f += " (" + strings.Join(parts, ", ") + ")"
	}
	return f
}

// tickFinding is step 4's tick-duration line.
func (d *diagnosis) tickFinding() string {
	for _, s := range d.m.tick.Series {
		if v, ok := exact(&s); ok {
			return fmt.Sprintf("executor tick duration p99: %s", seconds(v))
		}
	}
	return "executor tick duration p99: no data"
}

// insufficientRising says whether insufficient_funds execution errors are
// known to be increasing, and at what rate (a lower bound when the window is
// not covered).
func (d *diagnosis) insufficientRising() (string, bool) {
	for _, s := range d.m.errs.Series {
		if s.Metric["reason"] != model.LabelValue(ErrorInsufficientFunds) || !(s.Min > 0) {
			continue
		}
		if v, ok := exact(&s); ok {
			return fmt.Sprintf("%.3g/s", v), true
		}
		return fmt.Sprintf("at least %.3g/s", s.Min), true
	}
	return "", false
}

// alerts is the Alerts block: each rule's evaluation, as promq reports it,
// its value shown only when the samples give it exactly (a partial window's
// value is no value).
func (d *diagnosis) alerts() {
	for _, rule := range d.reportRules() {
		st := d.m.rules[rule.Alert]
		a := st.ReportAlert()
		if _, ok := exact(st.Worst); !ok {
			a.Value = nil
		}
		d.r.Alerts = append(d.r.Alerts, a)
	}
}

// slos evaluates the Treasury SLO table: each row's measure, when the samples
// give it exactly, against its target. An undecided row is unknown.
func (d *diagnosis) slos() {
	for _, row := range SLOs() {
		s := tbops.SLO{Name: row.Name, Target: row.Target, AlertThreshold: row.AlertThreshold, Status: tbops.StatusUnknown}
		ev := d.m.slo[row.Name]
		s.Evidence = evidenceOf(ev)
		if v, ok := worstMeasure(ev, row); ok {
			s.Value, s.Met = tbops.Num(v), row.Cmp.Holds(v, row.Goal)
			s.Status = sev(!s.Met, tbops.StatusWarning)
		} else if d.m.src {
			d.warn(fmt.Sprintf("SLO %s: not decided: its window is not covered or there was no traffic to measure", row.Name))
		}
		d.r.SLOs = append(d.r.SLOs, s)
	}
}

// worstMeasure is the exact value of the series furthest from meeting the
// row's target (one series per node; a scoped source gives one).
func worstMeasure(ev promq.Evaluation, row SLORow) (float64, bool) {
	var w float64
	found := false
	for _, s := range ev.Series {
		v, ok := exact(&s)
		if !ok {
			continue
		}
		worse := (row.Cmp == promq.GE || row.Cmp == promq.GT) && v < w || (row.Cmp == promq.LT || row.Cmp == promq.LE) && v > w
		if !found || worse {
			w, found = v, true
		}
	}
	return w, found
}

// evidenceOf is an evaluation's evidence, none when it was not made.
func evidenceOf(ev promq.Evaluation) []tbops.Evidence {
	if ev.Evidence.Source == "" {
		return nil
	}
	return []tbops.Evidence{ev.Evidence}
}
