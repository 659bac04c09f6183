package promq

import (
	"context"
	"time"
)

// Scoped returns a Source that adds the label matchers to every selector it is
// asked about: one node's series out of a Prometheus that scrapes a fleet
// (instance="node-a:3030"), or one job's. A matcher the question already has for
// the same label is kept: the caller asked for it.
func Scoped(src Source, labels map[string]string) Source {
	if len(labels) == 0 {
		return src
	}
	return scoped{src: src, labels: labels}
}

type scoped struct {
	src    Source
	labels map[string]string
}

func (s scoped) sel(sel Selector) Selector {
	for k, v := range s.labels {
		if _, ok := sel.Labels[k]; !ok {
			sel = sel.With(k, v)
		}
	}
	return sel
}

func (s scoped) Name() string { return s.src.Name() + " " + Selector{Labels: s.labels}.String() }

func (s scoped) Instant(ctx context.Context, sel Selector) (Result, error) {
	return s.src.Instant(ctx, s.sel(sel))
}

func (s scoped) Rate(ctx context.Context, sel Selector, w time.Duration) (Result, error) {
	return s.src.Rate(ctx, s.sel(sel), w)
}

func (s scoped) Increase(ctx context.Context, sel Selector, w time.Duration) (Result, error) {
	return s.src.Increase(ctx, s.sel(sel), w)
}

func (s scoped) Quantile(ctx context.Context, q float64, sel Selector, w time.Duration) (Result, error) {
	return s.src.Quantile(ctx, q, s.sel(sel), w)
}

func (s scoped) Samples(ctx context.Context, sel Selector, w time.Duration) (RangeResult, error) {
	return s.src.Samples(ctx, s.sel(sel), w)
}

func (s scoped) samples(ctx context.Context, sel Selector, w time.Duration) (RangeResult, error) {
	return samplesOf(ctx, s.src, s.sel(sel), w)
}
