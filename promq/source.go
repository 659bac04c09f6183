package promq

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// Selector picks series by metric name and label equality matchers: the PromQL
// `metric{label="value",…}`.
type Selector struct {
	Metric string
	Labels map[string]string
}

// Select builds a Selector from a metric name and label name/value pairs.
// It panics on an odd number of pairs, which is a programming error.
func Select(metric string, pairs ...string) Selector {
	if len(pairs)%2 != 0 {
		panic("promq.Select: odd number of label name/value arguments")
	}
	s := Selector{Metric: metric}
	if len(pairs) > 0 {
		s.Labels = make(map[string]string, len(pairs)/2)
		for i := 0; i < len(pairs); i += 2 {
			s.Labels[pairs[i]] = pairs[i+1]
		}
	}
	return s
}

// With returns a copy of s with one more label matcher.
func (s Selector) With(name, value string) Selector {
	l := make(map[string]string, len(s.Labels)+1)
	for k, v := range s.Labels {
		l[k] = v
	}
	l[name] = value
	return Selector{Metric: s.Metric, Labels: l}
}

// String renders the selector as PromQL, labels sorted.
func (s Selector) String() string {
	if len(s.Labels) == 0 {
		return s.Metric
	}
	names := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s.Metric)
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, s.Labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Matches says whether a series with this name and these labels is selected.
func (s Selector) Matches(metric model.Metric) bool {
	if string(metric[model.MetricNameLabel]) != s.Metric {
		return false
	}
	for k, v := range s.Labels {
		if string(metric[model.LabelName(k)]) != v {
			return false
		}
	}
	return true
}

// Result is the answer to one question: one sample per series, the evidence
// (the exact query and what came back) and any warnings. A selector that matches
// nothing gives an empty Vector and a warning, never a zero.
type Result struct {
	Vector   model.Vector
	Evidence tbops.Evidence
	Warnings []string
}

// Value returns the first sample's value; ok is false when there is no data.
func (r Result) Value() (v float64, ok bool) {
	if len(r.Vector) == 0 {
		return 0, false
	}
	return float64(r.Vector[0].Value), true
}

// Sum returns the sum over all series; ok is false when there is no data.
func (r Result) Sum() (sum float64, ok bool) {
	for _, s := range r.Vector {
		sum += float64(s.Value)
	}
	return sum, len(r.Vector) > 0
}

// ByLabel returns each series' value keyed by the value of one label.
func (r Result) ByLabel(name string) map[string]float64 {
	out := make(map[string]float64, len(r.Vector))
	for _, s := range r.Vector {
		out[string(s.Metric[model.LabelName(name)])] += float64(s.Value)
	}
	return out
}

// RangeResult holds raw samples per series over a window.
type RangeResult struct {
	Matrix   model.Matrix
	Evidence tbops.Evidence
	Warnings []string
}

// Source answers the questions the runbooks ask of metrics. Implementations:
// the Prometheus-API source and the scrape source.
type Source interface {
	// Name describes the source for people: "prometheus http://…", "scrape http://…/metrics".
	Name() string
	// Instant returns the current value of each series matching sel.
	Instant(ctx context.Context, sel Selector) (Result, error)
	// Rate is PromQL rate(sel[window]): per-second increase of counters.
	Rate(ctx context.Context, sel Selector, window time.Duration) (Result, error)
	// Increase is PromQL increase(sel[window]).
	Increase(ctx context.Context, sel Selector, window time.Duration) (Result, error)
	// Quantile is histogram_quantile(q, sum by (le) (rate(<sel.Metric>_bucket{…}[window])))
	// for a histogram named by sel.Metric without the _bucket suffix. A zero window
	// uses the cumulative buckets, as the runbook's own queries do:
	// histogram_quantile(q, sum by (le) (<metric>_bucket{…})).
	Quantile(ctx context.Context, q float64, sel Selector, window time.Duration) (Result, error)
	// Samples returns the raw samples of each matching series over the last window
	// (PromQL sel[window]).
	Samples(ctx context.Context, sel Selector, window time.Duration) (RangeResult, error)
}

// Cmp is a PromQL comparison operator.
type Cmp string

// Comparison operators.
const (
	GT Cmp = ">"
	GE Cmp = ">="
	LT Cmp = "<"
	LE Cmp = "<="
	EQ Cmp = "=="
	NE Cmp = "!="
)

// Holds applies the comparison.
func (c Cmp) Holds(v, threshold float64) bool {
	switch c {
	case GT:
		return v > threshold
	case GE:
		return v >= threshold
	case LT:
		return v < threshold
	case LE:
		return v <= threshold
	case EQ:
		return v == threshold
	case NE:
		return v != threshold
	}
	return false
}

// Held is the answer to "has `sel cmp threshold` held for dur?".
type Held struct {
	// Held is true when some series satisfied the condition at every sample over
	// the whole duration.
	Held bool
	// Known is false when the source has not observed the whole duration (a
	// scrape source that started recently, a gap in Prometheus' data).
	Known bool
	// Observed is how much of the duration the samples cover.
	Observed time.Duration
	// Now is the newest value (of the first series when there are several).
	Now      float64
	HasNow   bool
	Evidence tbops.Evidence
	Warnings []string
}

// HeldFor answers "has `sel cmp threshold` held for dur?" — the runbook's
// "backlog > 50 for 2+ epochs" — from the raw samples over dur. The samples must
// reach back to within one sample interval of the window's start for the answer
// to be Known.
func HeldFor(ctx context.Context, src Source, sel Selector, cmp Cmp, threshold float64, dur time.Duration) (Held, error) {
	rr, err := src.Samples(ctx, sel, dur)
	if err != nil {
		return Held{}, err
	}
	h := Held{Evidence: rr.Evidence, Warnings: rr.Warnings}
	h.Evidence.Query = fmt.Sprintf("%s %s %g for %s", sel, cmp, threshold, model.Duration(dur))
	for i, series := range rr.Matrix {
		n := len(series.Values)
		if n == 0 {
			continue
		}
		if i == 0 {
			h.Now, h.HasNow = float64(series.Values[n-1].Value), true
		}
		all := true
		for _, p := range series.Values {
			if !cmp.Holds(float64(p.Value), threshold) {
				all = false
				break
			}
		}
		first, last := series.Values[0].Timestamp.Time(), series.Values[n-1].Timestamp.Time()
		covered := last.Sub(first)
		step := time.Duration(0)
		if n > 1 {
			step = covered / time.Duration(n-1)
		}
		if covered+step >= dur {
			h.Known = true
			if covered > dur {
				covered = dur
			}
			if all {
				h.Held = true
			}
		} else if !all {
			h.Known = true // it failed within what was observed: known not to have held
		}
		if covered > h.Observed {
			h.Observed = covered
		}
	}
	if len(rr.Matrix) == 0 {
		h.Warnings = append(h.Warnings, fmt.Sprintf("no data for %s", sel))
	} else if !h.Known {
		h.Warnings = append(h.Warnings, fmt.Sprintf("%s: only %s of the %s window observed", sel,
			model.Duration(h.Observed.Round(time.Second)), model.Duration(dur)))
	}
	h.Evidence.Value = tbops.RawOf(map[string]any{"held": h.Held, "known": h.Known, "observed_seconds": h.Observed.Seconds()})
	return h, nil
}
