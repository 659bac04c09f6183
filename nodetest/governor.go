package nodetest

import "time"

// GovernorState is the governor area's state. The governor issue fills it in.
type GovernorState struct{}

func (s *GovernorState) shift(d int64) {}

func healthyGovernor(now time.Time) GovernorState { return GovernorState{} }

func governorScenarios() map[string]func(time.Time) Scenario { return nil }

func governorMetrics(sc *Scenario, now time.Time, el float64) []Metric { return nil }

func (n *Node) registerGovernor() {}
