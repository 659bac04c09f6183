package nodetest

import "time"

// RuntimeState is the runtime area's state. The runtime issue fills it in.
type RuntimeState struct{}

func (s *RuntimeState) shift(d int64) {}

func healthyRuntime(now time.Time) RuntimeState { return RuntimeState{} }

func runtimeScenarios() map[string]func(time.Time) Scenario { return nil }

func runtimeMetrics(sc *Scenario, now time.Time, el float64) []Metric { return nil }

func (n *Node) registerRuntime() {}
