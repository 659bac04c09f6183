package promq

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// Prometheus is the Source that asks a Prometheus-compatible server: it builds
// the PromQL for each question and runs it as an instant query.
type Prometheus struct {
	c *Client
}

// NewPrometheus returns the Prometheus source for baseURL ("" means
// PROMETHEUS_URL, else DefaultURL). It makes no request.
func NewPrometheus(baseURL string, opts ...PromOption) (*Prometheus, error) {
	c, err := NewClient(baseURL, opts...)
	if err != nil {
		return nil, err
	}
	return &Prometheus{c: c}, nil
}

// Client is the underlying API client.
func (p *Prometheus) Client() *Client { return p.c }

// Name is "prometheus " and the base URL.
func (p *Prometheus) Name() string { return "prometheus " + p.c.URL() }

// at is the evaluation time: the injected clock's, or the server's now.
func (p *Prometheus) at() time.Time {
	if p.c.clockSet {
		return p.c.now()
	}
	return time.Time{}
}

// vector runs expr and returns its vector with evidence and warnings. NaN
// samples (a histogram_quantile without observations) are dropped with a
// warning; an empty vector gets the "no data" warning noData.
func (p *Prometheus) vector(ctx context.Context, expr, noData string) (Result, error) {
	res, err := p.c.Query(ctx, expr, p.at())
	if err != nil {
		return Result{}, err
	}
	var vec model.Vector
	switch v := res.Value.(type) {
	case model.Vector:
		vec = v
	case *model.Scalar:
		vec = model.Vector{{Metric: model.Metric{}, Value: v.Value, Timestamp: v.Timestamp}}
	default:
		return Result{}, &APIError{URL: p.c.endpoint("/api/v1/query"), Query: expr, Kind: ErrUnsupported,
			Message: fmt.Sprintf("want a vector, got a %s", res.Type)}
	}
	if res.HasHistograms() {
		return Result{}, &APIError{URL: p.c.endpoint("/api/v1/query"), Query: expr, Kind: ErrNativeHistogram,
			Message: "the series are native histograms: ask for a float expression such as histogram_quantile or histogram_count"}
	}
	warn := annotationWarnings(res.Annotations)
	kept := vec[:0]
	nan := 0
	for _, s := range vec {
		if math.IsNaN(float64(s.Value)) {
			nan++
			continue
		}
		kept = append(kept, s)
	}
	vec = kept
	if nan > 0 {
		warn = append(warn, fmt.Sprintf("%s: %d NaN result(s) dropped (no observations in the window, or no +Inf bucket)", expr, nan))
	}
	if len(vec) == 0 {
		warn = append(warn, noData)
	}
	sortVector(vec)
	at := p.at()
	if at.IsZero() {
		at = time.Now()
		if len(vec) > 0 {
			at = vec[0].Timestamp.Time()
		}
	}
	return Result{Vector: vec, Warnings: warn,
		Evidence: tbops.Evidence{Source: tbops.SourcePrometheus, Query: expr, Value: evidenceValue(vec), At: at.UTC()}}, nil
}

func annotationWarnings(a Annotations) []string {
	w := append([]string(nil), a.Warnings...)
	for _, i := range a.Infos {
		w = append(w, "info: "+i)
	}
	return w
}

// Instant runs the selector.
func (p *Prometheus) Instant(ctx context.Context, sel Selector) (Result, error) {
	return p.vector(ctx, sel.String(), fmt.Sprintf("no data for %s", sel))
}

// Rate runs rate(sel[window]).
func (p *Prometheus) Rate(ctx context.Context, sel Selector, window time.Duration) (Result, error) {
	if window <= 0 {
		return Result{}, fmt.Errorf("%s: %w: window must be positive", rateExpr(sel, window), ErrBadQuery)
	}
	return p.vector(ctx, rateExpr(sel, window), fmt.Sprintf("no data for %s", sel))
}

// Increase runs increase(sel[window]).
func (p *Prometheus) Increase(ctx context.Context, sel Selector, window time.Duration) (Result, error) {
	if window <= 0 {
		return Result{}, fmt.Errorf("%s: %w: window must be positive", increaseExpr(sel, window), ErrBadQuery)
	}
	return p.vector(ctx, increaseExpr(sel, window), fmt.Sprintf("no data for %s", sel))
}

// Quantile runs histogram_quantile(q, sum by (le) (rate(<metric>_bucket{…}[window])))
// or, for a zero window, over the cumulative buckets.
func (p *Prometheus) Quantile(ctx context.Context, q float64, sel Selector, window time.Duration) (Result, error) {
	expr := quantileExpr(q, sel, window)
	if window < 0 {
		return Result{}, fmt.Errorf("%s: %w: window must not be negative", expr, ErrBadQuery)
	}
	return p.vector(ctx, expr, fmt.Sprintf("no data for %s", bucketSelector(sel)))
}

// Samples runs sel[window] as an instant query and returns the matrix.
func (p *Prometheus) Samples(ctx context.Context, sel Selector, window time.Duration) (RangeResult, error) {
	expr := samplesExpr(sel, window)
	if window <= 0 {
		return RangeResult{}, fmt.Errorf("%s: %w: window must be positive", expr, ErrBadQuery)
	}
	res, err := p.c.Query(ctx, expr, p.at())
	if err != nil {
		return RangeResult{}, err
	}
	mat, ok := res.Value.(model.Matrix)
	if !ok {
		return RangeResult{}, &APIError{URL: p.c.endpoint("/api/v1/query"), Query: expr, Kind: ErrUnsupported,
			Message: fmt.Sprintf("want a matrix, got a %s", res.Type)}
	}
	if res.HasHistograms() {
		return RangeResult{}, &APIError{URL: p.c.endpoint("/api/v1/query"), Query: expr, Kind: ErrNativeHistogram,
			Message: "the series are native histograms"}
	}
	warn := annotationWarnings(res.Annotations)
	if len(mat) == 0 {
		warn = append(warn, fmt.Sprintf("no data for %s", sel))
	}
	at := p.at()
	if at.IsZero() {
		at = time.Now()
	}
	return RangeResult{Matrix: mat, Warnings: warn,
		Evidence: tbops.Evidence{Source: tbops.SourcePrometheus, Query: expr, Value: matrixEvidence(mat), At: at.UTC()}}, nil
}

var (
	_ Source = (*Prometheus)(nil)
	_ Source = (*Scrape)(nil)
)
