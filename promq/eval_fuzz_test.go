package promq

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// FuzzEvalCoverage: over random sample sets, evaluation never panics, and
// whatever it calls known holds over every fuller history: the same samples
// with more before each series' first one (spaced at least as widely as the
// series' own samples, so a window the evaluator calls covered stays the same).
// Counters stay non-negative, as the lower bounds assume.
func FuzzEvalCoverage(f *testing.F) {
	f.Add([]byte("seed"))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{200, 3, 17, 1, 1, 1, 1, 90, 4, 4, 4, 4, 0, 0, 0, 255, 255, 7, 7, 7, 7, 7, 7, 30, 1})
	f.Fuzz(fullHistoryProperty)
}

// TestFullHistoryProperty runs the fuzz property over seeded random inputs,
// so every test run checks it widely, not only the fuzzer.
func TestFullHistoryProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	n := 4000
	if testing.Short() {
		n = 500
	}
	for i := 0; i < n; i++ {
		data := make([]byte, 200+r.IntN(800))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		fullHistoryProperty(t, data)
	}
}

func fullHistoryProperty(t *testing.T, data []byte) {
	in := &fuzzInput{data: data}
	e := fuzzExprs()[in.intn(len(fuzzExprs()))]
	at := at0(time.Duration(in.intn(50)) * time.Minute / 2)
	forSteps := in.intn(4)
	observed, full := fuzzHistories(in)
	observed, full = seenBy(at, observed, full)
	ctx := context.Background()

	got, err := Eval(ctx, &memSource{now: at, series: observed}, e, at)
	if err != nil {
		return // what Prometheus refuses (duplicate matches) is refused on both
	}
	want, err := Eval(ctx, &memSource{now: at, series: full}, e, at)
	if err != nil {
		return
	}
	checkAgainstFull(t, got, want)

	r := Rule{Alert: "Fuzz", Expr: e, For: time.Duration(forSteps) * step / 2, Severity: tbops.StatusWarning}
	st, err := EvalRule(ctx, &memSource{now: at, series: observed}, r, at)
	if err != nil {
		return
	}
	_, g, err := ruleGrid(ctx, &memSource{now: at, series: full}, r, at, DefaultEvalInterval)
	if err != nil {
		return
	}
	fired := g.observedFiring()
	if st.Known && st.Firing != (len(fired) > 0) {
		t.Fatalf("%s for %s: known firing=%v, the full history fires %v", e, r.For, st.Firing, fired)
	}
}

// checkAgainstFull holds an evaluation's known parts to the concrete values
// over the full history.
func checkAgainstFull(t *testing.T, got, want Evaluation) {
	t.Helper()
	full := map[model.Fingerprint]float64{}
	for _, s := range want.Series {
		if s.Value != nil {
			full[s.Metric.Fingerprint()] = *s.Value
		}
	}
	listed := map[model.Fingerprint]bool{}
	for _, s := range got.Series {
		listed[s.Metric.Fingerprint()] = true
		v, ok := full[s.Metric.Fingerprint()]
		switch {
		case s.Known && !ok:
			t.Fatalf("%s: %s known returned, the full history does not return it", got.Expr, s.Metric)
		case !ok:
		case s.Exact && !(v == s.Min || math.IsNaN(v) && math.IsNaN(s.Min)):
			t.Fatalf("%s: %s exact %g, the full history gives %g", got.Expr, s.Metric, s.Min, v)
		case !math.IsNaN(v) && !math.IsNaN(s.Min) && (v < s.Min || v > s.Max):
			t.Fatalf("%s: %s: the full history gives %g, outside [%g, %g]", got.Expr, s.Metric, v, s.Min, s.Max)
		}
	}
	for fp := range full {
		if !listed[fp] {
			t.Fatalf("%s: the full history returns %v, which the evaluation ruled out", got.Expr, fp)
		}
	}
	if got.Known && got.Returned != (len(full) > 0) {
		t.Fatalf("%s: known returned=%v, the full history returns %d series", got.Expr, got.Returned, len(full))
	}
}

// seenBy keeps the series the source had seen by at: a source holds no samples
// after its now, and the evaluator takes a series it has not seen as absent.
func seenBy(at time.Time, observed, full []memSeries) (o, f []memSeries) {
	for i, s := range observed {
		if s.pts[0].Timestamp.Time().After(at) {
			continue
		}
		o, f = append(o, s), append(f, full[i])
	}
	return o, f
}

// fuzzInput reads small numbers from the fuzzer's bytes (zeros once they run out).
type fuzzInput struct {
	data []byte
	i    int
}

func (in *fuzzInput) byte() byte {
	if in.i >= len(in.data) {
		return 0
	}
	in.i++
	return in.data[in.i-1]
}

func (in *fuzzInput) intn(n int) int { return int(in.byte()) % n }

// fuzzHistories builds the observed samples and a full history containing them:
// a counter, a gauge and a three-bucket histogram, each with its own irregular
// timestamps.
func fuzzHistories(in *fuzzInput) (observed, full []memSeries) {
	gen := func(m model.Metric, counter bool, values func(i int, v float64) float64) {
		n := 1 + in.intn(24)
		t := int64(in.intn(40)) * 30_000
		var pts []model.SamplePair
		v := 0.0
		maxGap := int64(1)
		for i := 0; i < n; i++ {
			v = values(i, v)
			pts = append(pts, model.SamplePair{Timestamp: model.Time(t), Value: model.SampleValue(v)})
			gap := int64(1+in.intn(12)) * 15_000
			maxGap = max(maxGap, gap)
			t += gap
		}
		observed = append(observed, memSeries{metric: m, pts: pts})
		// History before the first sample, spaced at least as widely.
		var before []model.SamplePair
		for k, t := 1+in.intn(20), int64(pts[0].Timestamp); k > 0; k-- {
			t -= maxGap + int64(in.intn(4))*15_000
			w := float64(in.intn(50))
			if !counter && in.intn(8) == 0 {
				w = math.NaN()
			}
			before = append([]model.SamplePair{{Timestamp: model.Time(t), Value: model.SampleValue(w)}}, before...)
		}
		full = append(full, memSeries{metric: m, pts: append(before, pts...)})
	}
	counterStep := func(_ int, v float64) float64 {
		switch in.intn(8) {
		case 0:
			return float64(in.intn(3)) // a reset
		case 1, 2:
			return v
		}
		return v + float64(in.intn(10))
	}
	gen(metric("c_total", "instance", "a"), true, counterStep)
	gen(metric("c_total", "instance", "b"), true, counterStep)
	gen(metric("g", "instance", "a"), false, func(int, float64) float64 { return float64(in.intn(200)) - 20 })
	for _, le := range []string{"1", "10", "+Inf"} {
		gen(metric("h_bucket", "le", le), true, counterStep)
	}
	return observed, full
}

func fuzzExprs() []Expr {
	c := Select("c_total")
	return []Expr{
		Metric("g"),
		Rate(c, 5*time.Minute),
		EQc(Increase(c, 10*time.Minute), 0),
		GTc(Increase(c, 3*time.Minute), 5),
		GTc(Mul(SumWithout(Rate(c, 5*time.Minute), "instance"), Num(60)), 10),
		And(EQc(Increase(c, 10*time.Minute), 0), GTc(Metric("g"), 0), On("instance")),
		Unless(Metric("g"), EQc(Increase(c, 5*time.Minute), 0), On("instance")),
		Or(LTc(Rate(c, 2*time.Minute), 0.1), GTc(Metric("g"), 100)),
		Compare(Rate(c, 5*time.Minute), GT, Mul(Num(3), Rate(c, 20*time.Minute))),
		GTc(HistogramQuantile(0.9, Rate(Select("h_bucket"), 5*time.Minute)), 5),
		LTc(HistogramQuantile(0.5, Metric("h_bucket")), 1),
		LTc(Sub(Num(1), Div(Rate(Select("c_total", "instance", "a"), 5*time.Minute), Add(Rate(c, 5*time.Minute), Num(1)), On("instance"))), 0.99),
	}
}
