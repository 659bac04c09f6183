package nodetest

import (
	"context"
	"fmt"
	"time"

	"github.com/theblock/tbops/promq"
)

// DefaultScrapeInterval is how often a Source scrapes while Advance moves the
// clock: Prometheus' default scrape interval.
const DefaultScrapeInterval = 15 * time.Second

// Source is a metrics source over one simulated node whose clock is a
// FakeClock: Advance moves the clock and scrapes the node along the way, so the
// source holds the history a real Prometheus would have after that long, and
// windowed conditions ("for 10m", increase(…[10m])) become decidable. It is a
// promq.Source (the embedded scrape source answers the questions).
type Source struct {
	*promq.Scrape
	clock    *FakeClock
	interval time.Duration
}

// NewSource returns a source that scrapes n's /metrics at the clock's time,
// once every interval of fake time (DefaultScrapeInterval when 0). n must run
// on clock (WithClock(clock.Now)). It takes one sample now; call Close when
// done.
func NewSource(ctx context.Context, n *Node, clock *FakeClock, interval time.Duration, opts ...promq.ScrapeOption) (*Source, error) {
	if interval <= 0 {
		interval = DefaultScrapeInterval
	}
	ring := max(promq.DefaultRingSize, int(time.Hour/interval)+2)
	opts = append([]promq.ScrapeOption{promq.WithScrapeClock(clock.Now), promq.WithRingSize(ring)}, opts...)
	s := &Source{Scrape: promq.NewScrape([]string{n.MetricsURL()}, opts...), clock: clock, interval: interval}
	if err := s.Scrape.Scrape(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("nodetest: first scrape of %s: %w", n.MetricsURL(), err)
	}
	return s, nil
}

// Advance moves the clock forward by d, one scrape interval at a time,
// scraping after each step (a last, shorter step ends exactly at +d). A failed
// scrape is kept by the source as Prometheus keeps a failed target (the series
// go stale, up is 0); Advance returns the first such error after finishing.
func (s *Source) Advance(ctx context.Context, d time.Duration) error {
	var first error
	for d > 0 {
		step := min(s.interval, d)
		s.clock.Advance(step)
		d -= step
		if err := s.Scrape.Scrape(ctx); err != nil && first == nil {
			first = err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return first
}
