package nodetest

import "time"

// ReceiptsState is the receipts area's state. The receipts issue fills it in.
type ReceiptsState struct{}

func (s *ReceiptsState) shift(d int64) {}

func healthyReceipts(now time.Time) ReceiptsState { return ReceiptsState{} }

func receiptsScenarios() map[string]func(time.Time) Scenario { return nil }

func receiptsMetrics(sc *Scenario, now time.Time, el float64) []Metric { return nil }

func (n *Node) registerReceipts() {}
