package receipts

import (
	"fmt"
	"math"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// The symptoms read promq evaluations three-valued: a series' value is
// decided only where its bounds decide it (exactly, on a covered window; or an
// uncovered counter's observed rise, a lower bound), never from a guess.

// atMost decides v <= t for one series.
func atMost(s promq.Series, t float64) tri {
	switch {
	case !s.Known:
		return tri{}
	case s.Max <= t:
		return yes()
	case s.Min > t:
		return no()
	}
	return tri{}
}

// below decides v < t for one series.
func below(s promq.Series, t float64) tri {
	switch {
	case !s.Known:
		return tri{}
	case s.Max < t:
		return yes()
	case s.Min >= t:
		return no()
	}
	return tri{}
}

// above decides v > t for one series.
func above(s promq.Series, t float64) tri {
	switch {
	case !s.Known:
		return tri{}
	case s.Min > t:
		return yes()
	case s.Max <= t:
		return no()
	}
	return tri{}
}

// anySeries is true when the condition is known true for some series, false
// when known false for all of them, and unknown otherwise (no series at all
// is no data: unknown).
func anySeries(ss []promq.Series, cond func(promq.Series) tri) tri {
	if len(ss) == 0 {
		return tri{}
	}
	out := no()
	for _, s := range ss {
		switch v := cond(s); {
		case isYes(v):
			return yes()
		case !v.known:
			out = tri{}
		}
	}
	return out
}

// exactValue is a series' full-window value: nil when the window was not
// covered, the series is missing or its value is not a number.
func exactValue(s *promq.Series) *float64 {
	if s == nil || !s.Exact || s.Value == nil {
		return nil
	}
	return tbops.Num(*s.Value)
}

// showSeries prints a series' value for a finding: exact, a lower bound
// ("at least …", from an uncovered window), or "undecided"/"no data".
func showSeries(s *promq.Series, unit string) string {
	switch {
	case s == nil:
		return "no data"
	case exactValue(s) != nil:
		return fmt.Sprintf("%.4g%s", *s.Value, unit)
	case s.Min > 0 && !math.IsInf(s.Min, 1):
		return fmt.Sprintf("at least %.4g%s (window not covered)", s.Min, unit)
	}
	return "undecided (window not covered)"
}

// showPercent prints a ratio series' exact value as a percentage.
func showPercent(s *promq.Series) string {
	if v := exactValue(s); v != nil {
		return percent(*v)
	}
	return "unknown"
}

// byLabel indexes series by the value of one label.
func byLabel(ss []promq.Series, name string) map[string]*promq.Series {
	out := make(map[string]*promq.Series, len(ss))
	for i := range ss {
		out[string(ss[i].Metric[model.LabelName(name)])] = &ss[i]
	}
	return out
}

// first is the first series, nil for none.
func first(ss []promq.Series) *promq.Series {
	if len(ss) == 0 {
		return nil
	}
	return &ss[0]
}

// lowest is the series with the lowest upper bound (the worst for a "below"
// check), nil for none.
func lowest(ss []promq.Series) *promq.Series {
	var w *promq.Series
	for i := range ss {
		if w == nil || ss[i].Max < w.Max {
			w = &ss[i]
		}
	}
	return w
}
