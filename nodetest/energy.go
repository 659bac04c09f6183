package nodetest

import "time"

// EnergyState is the energy area's state. The energy issue fills it in.
type EnergyState struct{}

func (s *EnergyState) shift(d int64) {}

func healthyEnergy(now time.Time) EnergyState { return EnergyState{} }

func energyScenarios() map[string]func(time.Time) Scenario { return nil }

func energyMetrics(sc *Scenario, now time.Time, el float64) []Metric { return nil }

func (n *Node) registerEnergy() {}
