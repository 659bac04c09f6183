package nodetest

import "time"

// TreasuryState is the treasury area's state. The treasury issue fills it in.
type TreasuryState struct{}

func (s *TreasuryState) shift(d int64) {}

func healthyTreasury(now time.Time) TreasuryState { return TreasuryState{} }

func treasuryScenarios() map[string]func(time.Time) Scenario { return nil }

func treasuryMetrics(sc *Scenario, now time.Time, el float64) []Metric { return nil }

func (n *Node) registerTreasury() {}
