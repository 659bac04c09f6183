package main

import (
	"context"
	"fmt"
	"time"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// simHistory is how much of the simulated node's past doctor replays by
// default: the longest window a runbook asks about (rate(…[1h])) and its for.
const simHistory = 70 * time.Minute

// simScrapeInterval is how often the replay scrapes: Prometheus' default.
const simScrapeInterval = 15 * time.Second

// simReplayScrapeTimeout bounds each scrape of the replay.
const simReplayScrapeTimeout = 30 * time.Second

// sim is doctor's simulated node. With history, it runs on a clock started
// that long ago and its metrics source holds the whole replay, so doctor
// judges it as one would judge a node with Prometheus.
type sim struct {
	node  *nodetest.Node
	clock *nodetest.FakeClock // nil without history: the node runs on real time
	src   *nodetest.Source
}

// startSim starts the simulated node running scenario, replays history of its
// past and records it in a.sim for doctor's sources.
func (a *app) startSim(ctx context.Context, scenario string, history time.Duration) (*sim, error) {
	if history < 0 {
		return nil, fmt.Errorf("--history %s: want 0 or a positive duration", history)
	}
	s := &sim{}
	opts := []nodetest.Option{nodetest.WithScenarioName(scenario)}
	if history > 0 {
		s.clock = nodetest.NewFakeClock(time.Now().Add(-history))
		opts = append(opts, nodetest.WithClock(s.clock.Now))
	}
	n, err := nodetest.New(opts...)
	if err != nil {
		return nil, err
	}
	s.node = n
	if history > 0 {
		// The node is in-process and the replay is hundreds of scrapes back to
		// back: a loaded machine, not the node, is what a scrape may wait for.
		if s.src, err = nodetest.NewSource(ctx, n, s.clock, simScrapeInterval, promq.WithScrapeTimeout(simReplayScrapeTimeout)); err == nil {
			err = s.src.Advance(ctx, history)
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("replaying the simulated node's history: %w", err)
		}
	}
	what := "a one-second look, as a real node without --prom"
	if history > 0 {
		what = fmt.Sprintf("%s of its history replayed, scraped every %s", history, simScrapeInterval)
	}
	fmt.Fprintf(a.stderr, "tbops: no --rpc given: diagnosing the simulated node (scenario %q) at %s, %s\n", scenario, n.URL(), what)
	a.sim = s
	return s, nil
}

func (s *sim) close() {
	if s.src != nil {
		s.src.Close()
	}
	s.node.Close()
}
