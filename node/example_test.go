package node_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/node"
	"github.com/theblock/tbops/nodetest"
)

// node-health over two nodes, one the reference node (no node.* methods),
// with six minutes of metrics history: the reference node is reachable, its
// height is read from its block_height gauge and seen moving, and what it does
// not serve is unknown.
func ExampleNewRunbook() {
	ctx := context.Background()
	var runbooks []tbops.Runbook
	for _, scenario := range []string{"healthy", "node-reference"} {
		clk := nodetest.NewFakeClock(time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
		n, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
		if err != nil {
			panic(err)
		}
		defer n.Close()
		src, err := nodetest.NewSource(ctx, n, clk, 0)
		if err != nil {
			panic(err)
		}
		defer src.Close()
		_ = src.Advance(ctx, 6*time.Minute)
		c, err := node.NewClient(n.URL())
		if err != nil {
			panic(err)
		}
		runbooks = append(runbooks, node.NewRunbook(c, src, node.Options{Now: clk.Now}))
	}
	for i, r := range tbops.Diagnose(ctx, nil, runbooks...) {
		fmt.Printf("node %d: %s\n", i+1, r.Status)
		for _, s := range r.Symptoms {
			fmt.Printf("  %-22s %s\n", s.ID, s.Status)
		}
	}
	// Output:
	// node 1: ok
	//   rpc-unreachable        ok
	//   syncing                ok
	//   no-peers               ok
	//   consensus-unhealthy    ok
	//   height-not-progressing ok
	// node 2: unknown
	//   rpc-unreachable        ok
	//   syncing                unknown
	//   no-peers               unknown
	//   consensus-unhealthy    unknown
	//   height-not-progressing ok
}

// The typed client: a reference node answers -32601 for node.status, which
// errors.Is tells apart from a node that does not answer at all.
func ExampleClient_Status() {
	n, err := nodetest.New(nodetest.WithScenarioName("node-reference"))
	if err != nil {
		panic(err)
	}
	defer n.Close()
	c, err := node.NewClient(n.URL())
	if err != nil {
		panic(err)
	}
	_, err = c.Status(context.Background())
	fmt.Println("not served:", errors.Is(err, node.ErrMethodNotFound))
	fmt.Println("unavailable:", errors.Is(err, node.ErrUnavailable))
	d, err := c.Difficulty(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("difficulty:", *d.Difficulty)
	// Output:
	// not served: true
	// unavailable: false
	// difficulty: 1048576
}
