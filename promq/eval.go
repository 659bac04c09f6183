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

// DefaultEvalInterval is the grid EvalRule evaluates a rule's `for` on:
// Prometheus' default evaluation_interval.
const DefaultEvalInterval = time.Minute

// HistoryHint is what the warnings of an undecided windowed condition suggest by
// default: the tbops command line's ways to get more history. A library caller
// with other means replaces it with WithHistoryHint.
const HistoryHint = "pass --prom URL, or run tbops serve to accumulate history"

// maxGridPoints bounds the evaluations one rule's `for` may ask for.
const maxGridPoints = 10_000

// EvalOption configures Eval and EvalRule.
type EvalOption struct{ apply func(*evalConfig) }

type evalConfig struct {
	interval time.Duration
	hint     string
}

// WithEvalInterval sets the evaluation grid of EvalRule (default
// DefaultEvalInterval): set it to the evaluation_interval of the Prometheus
// whose alerts the answers should match.
func WithEvalInterval(d time.Duration) EvalOption {
	return EvalOption{func(c *evalConfig) {
		if d > 0 {
			c.interval = d
		}
	}}
}

// WithHistoryHint replaces HistoryHint in the warnings ("" leaves the hint out).
func WithHistoryHint(h string) EvalOption { return EvalOption{func(c *evalConfig) { c.hint = h }} }

func newEvalConfig(opts []EvalOption) evalConfig {
	c := evalConfig{interval: DefaultEvalInterval, hint: HistoryHint}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	return c
}

// Series is one series an evaluated expression returns, or may return, at the
// evaluation time. Series it certainly does not return are not listed.
type Series struct {
	// Metric is the series' labels (with the metric name where PromQL keeps it).
	Metric model.Metric
	// Value is what Prometheus computes from the samples the source returned;
	// nil when those samples do not give the series at all (it may exist over
	// the full window).
	Value *float64
	// Known says the series is certainly returned over the full data; false
	// means it may or may not be.
	Known bool
	// Exact says Value is the full-window value: every window it rests on was
	// covered.
	Exact bool
	// Min and Max bound the full-window value (inclusive, possibly infinite):
	// an uncovered increase is at least the counter's observed rise. NaN when
	// the value can only be NaN.
	Min, Max float64
}

// Evaluation is an expression evaluated at one instant from raw samples, with
// what the samples could and could not decide.
type Evaluation struct {
	// Expr is the expression's PromQL.
	Expr string
	At   time.Time
	// Series are the series returned, sorted by labels.
	Series []Series
	// Returned says the expression returns at least one series over the full
	// data. It is meaningful only when Known.
	Returned bool
	// Known is false when the samples do not decide whether anything is
	// returned: a window not covered, or no data at all (NoData).
	Known bool
	// Observed and Needed are the history the least-covered selector had and
	// needed (its longest range).
	Observed, Needed time.Duration
	// NoData lists the selectors whose missing series leave the result empty
	// and unknown.
	NoData   []string
	Evidence tbops.Evidence
	Warnings []string
}

// Eval evaluates e at `at` as Prometheus 2.x would from the raw samples the
// source returns, and says which parts the samples decide (see the package
// documentation, "Evaluating expressions"). It fetches every selector once with
// src.Samples over the longest window it needs (its range plus the 5m lookback),
// so `at` should be the source's current time; samples after `at` are ignored.
// Errors are a misused expression (ErrBadQuery), the source's errors, and what
// Prometheus itself refuses from the same samples (ErrExecution: a duplicate
// match group, a many-to-one match, two series with one label set).
func Eval(ctx context.Context, src Source, e Expr, at time.Time, opts ...EvalOption) (Evaluation, error) {
	cfg := newEvalConfig(opts)
	if err := checkVector(e); err != nil {
		return Evaluation{}, err
	}
	d, err := fetch(ctx, src, e, at, 0)
	if err != nil {
		return Evaluation{}, err
	}
	o, err := d.evaluate(e, at.UnixMilli())
	if err != nil {
		return Evaluation{}, err
	}
	ev := Evaluation{Expr: e.String(), At: at, Series: o.series(), NoData: o.noData()}
	ev.Returned, ev.Known = o.returned()
	ev.Observed, ev.Needed = d.history()
	ev.Evidence = d.evidence(ev.Expr, o.con, at)
	ev.Warnings = d.warnings(ev.Expr, ev.Known, ev.NoData, cfg.hint)
	return ev, nil
}

// The data an evaluation reads: every selector's samples, fetched once.

// dataset holds the samples of every selector an expression needs.
type dataset struct {
	at            int64 // ms; samples after it are ignored
	sels          map[string]*selData
	order         []string // selectors in the order first met
	source        string   // tbops.Source* of the evidence
	fetchWarnings []string
}

// selData is one selector's series.
type selData struct {
	sel    Selector
	need   time.Duration // the history a decision needs: longest range + the rule's `for` grid
	series []stored      // sorted by labels
}

// stored is one series' samples, oldest first.
type stored struct {
	metric model.Metric
	bare   model.Metric // metric without its name, what a range function returns, shared by every grid point
	pts    []point
	est    float64 // average sample interval in ms, 0 with one sample
}

// fetch asks the source for every selector in e over the longest window it
// needs, plus extra history for a rule's `for`.
func fetch(ctx context.Context, src Source, e Expr, at time.Time, extra time.Duration) (*dataset, error) {
	d := &dataset{at: at.UnixMilli(), sels: map[string]*selData{}}
	walk(e, func(n Expr) {
		var sel Selector
		var w time.Duration
		switch n := n.(type) {
		case *instant:
			sel = n.sel
		case *rangeCall:
			sel, w = n.sel, n.w
		default:
			return
		}
		k := sel.String()
		sd, ok := d.sels[k]
		if !ok {
			sd = &selData{sel: sel}
			d.sels[k] = sd
			d.order = append(d.order, k)
		}
		sd.need = max(sd.need, w+extra)
	})
	for _, k := range d.order {
		sd := d.sels[k]
		rr, err := samplesOf(ctx, src, sd.sel, sd.need+Lookback)
		if err != nil {
			return nil, err
		}
		if d.source == "" {
			d.source = rr.Evidence.Source
		}
		d.fetchWarnings = appendNew(d.fetchWarnings, rr.Warnings...)
		sd.series = d.load(rr.Matrix)
	}
	return d, nil
}

// sampler is a Source that can answer Samples without summarising the matrix
// in the evidence, which fetch does not keep (it keeps the evidence's source).
// On a scrape source that summary was a third of what a rule's fetch cost.
type sampler interface {
	samples(ctx context.Context, sel Selector, window time.Duration) (RangeResult, error)
}

// samplesOf is src.Samples, without the evidence's value where src can skip it.
func samplesOf(ctx context.Context, src Source, sel Selector, window time.Duration) (RangeResult, error) {
	if s, ok := src.(sampler); ok {
		return s.samples(ctx, sel, window)
	}
	return src.Samples(ctx, sel, window)
}

// load turns a matrix into stored series: sorted by labels as Prometheus'
// storage returns them, samples in time order without duplicates, none after at.
func (d *dataset) load(m model.Matrix) []stored {
	out := make([]stored, 0, len(m))
	for _, ss := range m {
		pts := make([]point, 0, len(ss.Values))
		for _, p := range ss.Values {
			if int64(p.Timestamp) <= d.at {
				pts = append(pts, point{t: int64(p.Timestamp), v: float64(p.Value)})
			}
		}
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].t < pts[j].t })
		pts = dedupe(pts)
		if len(pts) == 0 {
			continue
		}
		m := cleanMetric(ss.Metric)
		s := stored{metric: m, bare: withoutName(m), pts: pts}
		if n := len(pts); n > 1 {
			s.est = float64(pts[n-1].t-pts[0].t) / float64(n-1)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return compareMetrics(out[i].metric, out[j].metric) < 0 })
	return out
}

// dedupe keeps the first sample of each timestamp, as Prometheus' storage does.
func dedupe(pts []point) []point {
	out := pts[:0]
	for i, p := range pts {
		if i == 0 || p.t != out[len(out)-1].t {
			out = append(out, p)
		}
	}
	return out
}

// cleanMetric copies a metric without empty labels, which PromQL treats as absent.
func cleanMetric(m model.Metric) model.Metric {
	out := make(model.Metric, len(m))
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// history returns the least-covered selector's observed and needed history.
func (d *dataset) history() (observed, needed time.Duration) {
	worst := 2.0
	for _, k := range d.order {
		sd := d.sels[k]
		if sd.need <= 0 {
			continue
		}
		obs := sd.observed(d.at)
		if r := float64(obs) / float64(sd.need); r < worst {
			worst, observed, needed = r, obs, sd.need
		}
	}
	return observed, needed
}

// observed is how far back the source's samples of every series reach, at most
// need: a series that appeared recently was observed only since then.
func (sd *selData) observed(at int64) time.Duration {
	if len(sd.series) == 0 {
		return 0
	}
	obs := sd.need
	for _, s := range sd.series {
		obs = min(obs, time.Duration(at-s.pts[0].t)*time.Millisecond)
	}
	return obs
}

// evidence is the expression's PromQL and the values Prometheus would return.
func (d *dataset) evidence(query string, v value, at time.Time) tbops.Evidence {
	src := d.source
	if src == "" {
		src = tbops.SourcePrometheus
	}
	vec := make(model.Vector, 0, len(v.vec))
	for _, e := range v.vec {
		x, _ := e.val.exact()
		vec = append(vec, &model.Sample{Metric: e.metric, Value: model.SampleValue(x)})
	}
	return tbops.Evidence{Source: src, Query: query, Value: evidenceValue(vec), At: at.UTC()}
}

// warnings are the source's, and when the answer is unknown, why and what
// would decide it.
func (d *dataset) warnings(expr string, known bool, noData []string, hint string) []string {
	w := append([]string(nil), d.fetchWarnings...)
	if known {
		return w
	}
	if len(noData) > 0 {
		for _, s := range noData {
			w = appendNew(w, "no data for "+s)
		}
		return w
	}
	short := false
	for _, k := range d.order {
		sd := d.sels[k]
		if obs := sd.observed(d.at); sd.need > 0 && obs < sd.need && len(sd.series) > 0 {
			short = true
			msg := fmt.Sprintf("%s: only %s of the %s window observed", k, roundedDuration(obs), roundedDuration(sd.need))
			if hint != "" {
				msg += ": " + hint
			}
			w = appendNew(w, msg)
		}
	}
	if !short {
		w = appendNew(w, expr+": undecided: a series starts, stops or has a gap inside a window it needs")
	}
	return w
}

func roundedDuration(d time.Duration) string { return formatDuration(d.Round(time.Second)) }

// appendNew appends the strings not already in list.
func appendNew(list []string, add ...string) []string {
	for _, s := range add {
		dup := false
		for _, have := range list {
			if have == s {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, s)
		}
	}
	return list
}

// Results.

// series joins the two passes: the abstract elements, merged per label set,
// with the concrete values.
func (o outcome) series() []Series {
	type joined struct {
		s    Series
		span span
		abs  bool
	}
	byKey := map[model.Fingerprint]*joined{}
	var order []*joined
	get := func(m model.Metric) *joined {
		fp := m.Fingerprint()
		j := byKey[fp]
		if j == nil {
			j = &joined{s: Series{Metric: m}, span: anything}
			byKey[fp] = j
			order = append(order, j)
		}
		return j
	}
	for _, x := range o.abs.vec {
		j := get(x.metric)
		j.s.Known = j.s.Known || x.must
		if j.abs {
			j.span = hull(j.span, x.val)
		} else {
			j.span, j.abs = x.val, true
		}
	}
	for _, x := range o.con.vec {
		v, _ := x.val.exact()
		get(x.metric).s.Value = &v
	}
	if len(order) == 0 {
		return nil
	}
	out := make([]Series, 0, len(order))
	for _, j := range order {
		_, exact := j.span.exact()
		j.s.Exact = exact && j.s.Known
		j.s.Min, j.s.Max = j.span.lo, j.span.hi
		if !j.span.numbers() {
			j.s.Min, j.s.Max = math.NaN(), math.NaN()
		}
		out = append(out, j.s)
	}
	sort.Slice(out, func(i, k int) bool { return compareMetrics(out[i].Metric, out[k].Metric) < 0 })
	return out
}

// returned says whether the expression returns a series over the full data,
// and whether that is known: certain when an element is certain, known false
// only when none is possible and no selector lacked data.
func (o outcome) returned() (returned, known bool) {
	if anyMust(o.abs.vec) {
		return true, true
	}
	return false, len(o.abs.vec) == 0 && len(o.abs.noData) == 0
}

// noData lists the selectors whose missing data leave the result empty.
func (o outcome) noData() []string {
	if len(o.abs.vec) > 0 {
		return nil
	}
	return appendNew(nil, o.abs.noData...)
}
