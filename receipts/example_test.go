package receipts_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/receipts"
	"github.com/theblock/tbops/rpc"
)

// A node or an explorer checks receipts as it ingests them.
func ExampleValidator() {
	v, err := receipts.NewValidator(receipts.ValidatorConfig{WindowBlocks: 10})
	if err != nil {
		panic(err)
	}
	stream := []receipts.Receipt{
		{ReceiptID: "r-1", Market: receipts.Storage, BlockHeight: 100, Provider: "p-1", Payment: 2500, Nonce: 1, Signature: "c2ln"},
		{ReceiptID: "r-1", Market: receipts.Storage, BlockHeight: 101, Provider: "p-1", Payment: 2500, Nonce: 2, Signature: "c2ln"},
		{ReceiptID: "r-2", Market: receipts.Ad, BlockHeight: 101, Provider: "p-2", Payment: 999, Nonce: 1, Signature: "c2ln"},
		{ReceiptID: "r-3", Market: "gas", BlockHeight: 101, Provider: "p-3", Payment: 5000, Nonce: 1, Signature: "c2ln"},
		{ReceiptID: "r-4", Market: receipts.Compute, BlockHeight: 5, Provider: "p-4", Payment: 5000, Nonce: 1, Signature: "c2ln"},
	}
	for _, r := range stream {
		err := v.Validate(&r)
		switch {
		case err == nil:
			fmt.Printf("%s accepted\n", r.ReceiptID)
		case errors.Is(err, receipts.ErrStale):
			fmt.Printf("%s %s (stale)\n", r.ReceiptID, receipts.ReasonOf(err))
		default:
			fmt.Printf("%s %s\n", r.ReceiptID, receipts.ReasonOf(err))
		}
	}
	c := v.Counts()
	fmt.Println("accepted", c.Accepted, "duplicates", c.Rejected[receipts.ReasonDuplicate])
	// Output:
	// r-1 accepted
	// r-1 duplicate_detection
	// r-2 min_payment
	// r-3 schema_mismatch
	// r-4 duplicate_detection (stale)
	// accepted 1 duplicates 2
}

// The runbook in tbops's loop, against a simulated node whose compute market
// stopped emitting. receipts.stats decides the stall in blocks at once; the
// ReceiptsMarketNotEmitting alert needs two minutes of metrics to decide its
// 1m window and 5s for, and is unknown until then (never a page from a guess).
func ExampleRunbook() {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(time.Unix(1_765_000_000, 0))
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("receipts-market-stalled"))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	src, err := nodetest.NewSource(ctx, node, clk, 0) // scrapes every 15 s of fake time
	if err != nil {
		panic(err)
	}
	defer src.Close()
	c, err := receipts.NewClient(node.URL(), rpc.WithClock(clk.Now)) // the runbook reads the client's clock
	if err != nil {
		panic(err)
	}
	rb := receipts.NewRunbook(c, src, receipts.Options{})

	var r tbops.Report
	for _, wait := range []time.Duration{15 * time.Second, 3 * time.Minute} {
		_ = src.Advance(ctx, wait)
		r = tbops.Diagnose(ctx, clk.Now, rb)[0]
		a, _ := r.Alert(receipts.AlertMarketNotEmitting)
		s, _ := r.Symptom(receipts.SymptomMarketNotEmitting)
		fmt.Printf("%s: %s %s, alert %s\n", r.Status, s.ID, s.Detail, a.Status)
	}
	for _, p := range r.Matched() {
		fmt.Printf("path %s: %s\n", p.ID, p.Title)
		fmt.Println("  $", p.Actions[0].Command)
	}
	// Output:
	// critical: market-not-emitting ["compute"], alert unknown
	// critical: market-not-emitting ["compute"], alert critical
	// path A: Stalled markets
	//   $ sudo systemctl restart receipt-emitter
}
