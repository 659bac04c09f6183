package promq

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// memSource is a Source over fixed samples, answering Samples as Prometheus
// 2.x does (the closed range [now−w, now]); the evaluator uses nothing else.
type memSource struct {
	now    time.Time
	series []memSeries
	asked  []string // the selectors and windows Samples was asked for
	err    error    // what Samples fails with, if set
}

type memSeries struct {
	metric model.Metric
	pts    []model.SamplePair
}

func (m *memSource) Name() string { return "memory" }

func (m *memSource) Samples(ctx context.Context, sel Selector, w time.Duration) (RangeResult, error) {
	if err := ctx.Err(); err != nil {
		return RangeResult{}, err
	}
	if m.err != nil {
		return RangeResult{}, m.err
	}
	m.asked = append(m.asked, samplesExpr(sel, w))
	from, to := model.TimeFromUnixNano(m.now.Add(-w).UnixNano()), model.TimeFromUnixNano(m.now.UnixNano())
	var mat model.Matrix
	for _, s := range m.series {
		if !sel.Matches(s.metric) {
			continue
		}
		ss := &model.SampleStream{Metric: s.metric}
		for _, p := range s.pts {
			if p.Timestamp >= from && p.Timestamp <= to {
				ss.Values = append(ss.Values, p)
			}
		}
		if len(ss.Values) > 0 {
			mat = append(mat, ss)
		}
	}
	return RangeResult{Matrix: mat, Evidence: tbops.Evidence{Source: tbops.SourcePrometheus, Query: samplesExpr(sel, w)}}, nil
}

var errNotUsed = errors.New("memSource answers only Samples")

func (m *memSource) Instant(context.Context, Selector) (Result, error) { return Result{}, errNotUsed }
func (m *memSource) Rate(context.Context, Selector, time.Duration) (Result, error) {
	return Result{}, errNotUsed
}
func (m *memSource) Increase(context.Context, Selector, time.Duration) (Result, error) {
	return Result{}, errNotUsed
}
func (m *memSource) Quantile(context.Context, float64, Selector, time.Duration) (Result, error) {
	return Result{}, errNotUsed
}

// at0 is a time offset from the Unix epoch, where promtool's samples start.
func at0(d time.Duration) time.Time { return time.Unix(0, 0).UTC().Add(d) }

// stepSeries builds a memSeries from values one step apart from time 0; nil is a
// missing sample.
func stepSeries(metric model.Metric, step time.Duration, vals []*float64) memSeries {
	s := memSeries{metric: metric}
	for i, v := range vals {
		if v != nil {
			s.pts = append(s.pts, model.SamplePair{Timestamp: model.TimeFromUnixNano(at0(time.Duration(i) * step).UnixNano()), Value: model.SampleValue(*v)})
		}
	}
	return s
}

// promtool returns the promtool binary, skipping the test when there is none,
// except under CI=true, where it must be installed.
func promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is not installed (CI=true requires it): %v", err)
		}
		t.Skipf("promtool is not installed: %v", err)
	}
	return p
}
