package promq

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// point is one float sample: milliseconds since the epoch and a value.
type point struct {
	t int64
	v float64
}

// counterDelta is the increase between the first and last samples corrected
// for counter resets (a drop means the counter restarted from zero), without
// extrapolation: what the samples themselves show.
func counterDelta(pts []point) float64 {
	delta := pts[len(pts)-1].v - pts[0].v
	prev := pts[0].v
	for _, p := range pts[1:] {
		if p.v < prev {
			delta += prev
		}
		prev = p.v
	}
	return delta
}

// extrapolatedDelta is Prometheus' extrapolatedRate (promql/functions.go, 3.x):
// the counter increase between the first and last samples, corrected for counter
// resets, extrapolated towards the range boundaries — all the way when the
// samples come within 1.1 average intervals of a boundary, else half an average
// interval — and never below a counter value of zero. It needs two samples.
// rangeStart and rangeEnd are in milliseconds.
func extrapolatedDelta(pts []point, rangeStart, rangeEnd int64) (float64, bool) {
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[len(pts)-1]
	delta := counterDelta(pts)
	sampled := float64(last.t-first.t) / 1000
	if sampled <= 0 {
		return 0, false
	}
	toStart := float64(first.t-rangeStart) / 1000
	toEnd := float64(rangeEnd-last.t) / 1000
	avg := sampled / float64(len(pts)-1)
	threshold := avg * 1.1
	if toStart >= threshold {
		toStart = avg / 2
	}
	if delta > 0 && first.v >= 0 {
		// Counters cannot be negative: do not extrapolate before the zero point.
		if toZero := sampled * (first.v / delta); toZero < toStart {
			toStart = toZero
		}
	}
	if toEnd >= threshold {
		toEnd = avg / 2
	}
	return delta * (sampled + toStart + toEnd) / sampled, true
}

// extrapolatedRate2 is extrapolatedRate as Prometheus 2.42 computes it, to the
// last bit, for the evaluator (whose reference is the Prometheus CI and Debian
// run). It differs from extrapolatedDelta in two details: the zero point of the
// counter is applied before the 1.1-interval test rather than after it, and the
// value is multiplied by one factor, (interval / sampled) / range for rate.
func extrapolatedRate2(pts []point, rangeStart, rangeEnd int64, isRate bool, rangeSeconds float64) (float64, bool) {
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[len(pts)-1]
	sampled := float64(last.t-first.t) / 1000
	if sampled <= 0 {
		return 0, false // two samples at one instant: storage never holds them
	}
	result := counterDelta(pts)
	toStart := float64(first.t-rangeStart) / 1000
	toEnd := float64(rangeEnd-last.t) / 1000
	avg := sampled / float64(len(pts)-1)
	if result > 0 && first.v >= 0 {
		if toZero := sampled * (first.v / result); toZero < toStart {
			toStart = toZero
		}
	}
	threshold := avg * 1.1
	interval := sampled
	if toStart < threshold {
		interval += toStart
	} else {
		interval += avg / 2
	}
	if toEnd < threshold {
		interval += toEnd
	} else {
		interval += avg / 2
	}
	factor := interval / sampled
	if isRate {
		factor /= rangeSeconds
	}
	return result * factor, true
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	upper float64
	count float64
}

// smallDeltaTolerance is Prometheus' tolerance for float noise between buckets.
const smallDeltaTolerance = 1e-12

// bucketQuantile is Prometheus' histogram_quantile for classic buckets
// (promql/quantile.go BucketQuantile, 3.x): buckets sorted by upper bound, the
// highest must be +Inf (else NaN), buckets with the same bound merged, counts
// forced monotonic (forced reports that it had to), linear interpolation inside
// the bucket the rank falls in, the lower bound of the first bucket taken as 0
// unless it is ≤ 0, and the highest finite bound returned when the rank falls in
// +Inf.
func bucketQuantile(q float64, bs []bucket) (v float64, forced bool) {
	return bucketQuantileWith(q, bs, monotonic3)
}

// bucketQuantile2 is bucketQuantile as Prometheus 2.42 computes it: counts are
// forced monotonic without 3.x's tolerance for float noise.
func bucketQuantile2(q float64, bs []bucket) float64 {
	v, _ := bucketQuantileWith(q, bs, monotonic2)
	return v
}

// bucketQuantileWith is the algorithm both versions share; monotonic is the
// step that differs.
func bucketQuantileWith(q float64, bs []bucket, monotonic func([]bucket) bool) (v float64, forced bool) {
	if math.IsNaN(q) {
		return math.NaN(), false
	}
	if q < 0 {
		return math.Inf(-1), false
	}
	if q > 1 {
		return math.Inf(1), false
	}
	if len(bs) == 0 {
		return math.NaN(), false
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].upper < bs[j].upper })
	if !math.IsInf(bs[len(bs)-1].upper, 1) {
		return math.NaN(), false
	}
	// Coalesce buckets with the same upper bound.
	out := bs[:1]
	for _, b := range bs[1:] {
		if b.upper == out[len(out)-1].upper {
			out[len(out)-1].count += b.count
		} else {
			out = append(out, b)
		}
	}
	bs = out
	forced = monotonic(bs)
	if len(bs) < 2 {
		return math.NaN(), forced
	}
	observations := bs[len(bs)-1].count
	if observations == 0 {
		return math.NaN(), forced
	}
	rank := q * observations
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].count >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].upper, forced
	}
	if b == 0 && bs[0].upper <= 0 {
		return bs[0].upper, forced
	}
	var start float64
	end, count := bs[b].upper, bs[b].count
	if b > 0 {
		start = bs[b-1].upper
		count -= bs[b-1].count
		rank -= bs[b-1].count
	}
	return start + (end-start)*(rank/count), forced
}

// monotonic3 forces the counts monotonic as Prometheus 3.x does, ignoring float
// noise in either direction; it reports whether a real decrease was fixed.
func monotonic3(bs []bucket) (forced bool) {
	prev := bs[0].count
	for i := 1; i < len(bs); i++ {
		cur := bs[i].count
		switch {
		case cur == prev:
		case math.Abs(cur-prev) <= smallDeltaTolerance*math.Max(math.Abs(cur), math.Abs(prev)):
			bs[i].count = prev // float noise, in either direction
		case cur < prev:
			bs[i].count = prev
			forced = true
		default:
			prev = cur
		}
	}
	return forced
}

// monotonic2 is Prometheus 2.42's ensureMonotonic: every count is raised to the
// largest before it.
func monotonic2(bs []bucket) (forced bool) {
	highest := bs[0].count
	for i := 1; i < len(bs); i++ {
		switch {
		case bs[i].count > highest:
			highest = bs[i].count
		case bs[i].count < highest:
			bs[i].count = highest
			forced = true
		}
	}
	return forced
}

// parseLE parses an "le" label value as Prometheus does.
func parseLE(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// formatDuration renders a window the way PromQL writes it: 5m, 1h, 90s.
func formatDuration(d time.Duration) string { return model.Duration(d).String() }

// Expressions the sources build, shared so the Prometheus and scrape sources
// show the same PromQL in their evidence.

func rateExpr(sel Selector, w time.Duration) string {
	return "rate(" + sel.String() + "[" + formatDuration(w) + "])"
}

func increaseExpr(sel Selector, w time.Duration) string {
	return "increase(" + sel.String() + "[" + formatDuration(w) + "])"
}

func bucketSelector(sel Selector) Selector {
	return Selector{Metric: sel.Metric + "_bucket", Labels: sel.Labels}
}

func quantileExpr(q float64, sel Selector, w time.Duration) string {
	inner := bucketSelector(sel).String()
	if w > 0 {
		inner = "rate(" + inner + "[" + formatDuration(w) + "])"
	}
	return "histogram_quantile(" + strconv.FormatFloat(q, 'g', -1, 64) + ", sum by (le) (" + inner + "))"
}

func samplesExpr(sel Selector, w time.Duration) string {
	return sel.String() + "[" + formatDuration(w) + "]"
}

// evidenceValue renders a vector for tbops.Evidence: nil when empty, the number
// when there is one series, else a map from the series' labels to numbers.
// Non-finite values become strings ("NaN", "+Inf") so the report stays valid JSON.
func evidenceValue(v model.Vector) tbops.Raw {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return tbops.RawOf(jsonNumber(float64(v[0].Value)))
	}
	m := make(map[string]any, len(v))
	for _, s := range v {
		m[s.Metric.String()] = jsonNumber(float64(s.Value))
	}
	return tbops.RawOf(m)
}

// jsonNumber keeps finite floats as numbers and renders the rest as strings.
func jsonNumber(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return model.SampleValue(f).String()
	}
	return f
}
