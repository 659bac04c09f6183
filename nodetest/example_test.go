package nodetest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

// A simulated node on loopback with a fake clock: the chain advances one block
// for every second the clock moves.
func Example() {
	clk := nodetest.NewFakeClock(time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
	n, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("chain-stalled"))
	if err != nil {
		panic(err)
	}
	defer n.Close()

	c, _ := rpc.NewClient(n.URL())
	var cs struct {
		Status string `json:"status"`
		Online int    `json:"validators_online"`
		Total  int    `json:"validators_total"`
	}
	_ = c.Read(context.Background(), "node.consensus_status", nil, &cs)
	fmt.Printf("consensus %s, %d/%d validators online\n", cs.Status, cs.Online, cs.Total)
	// Output: consensus stalled, 9/21 validators online
}
