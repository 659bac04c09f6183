// Command treasury-stuck diagnoses a node whose treasury executor is stuck
// behind a rolled-back dependency (runbook "Treasury Stuck"), prints what is
// firing and Path A's rollback plan, then applies the plan to the simulated
// node and diagnoses again.
//
//	go run ./examples/treasury-stuck
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/treasury"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "treasury-stuck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// A fake clock drives the node, the diagnosis and the metrics source, so rates
	// and "held for 2 epochs" are exact and the example takes no wall time.
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	if err != nil {
		return err
	}
	defer node.Close()

	// Without a Prometheus, scrape the node's /metrics ourselves. The runbook's
	// windows are up to 10 minutes (no progress) plus a rule's `for`: observe
	// 11 minutes, one scrape every 15 s, so that every window is decided.
	src, err := nodetest.NewSource(ctx, node, clk, 15*time.Second)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.Advance(ctx, 11*time.Minute); err != nil {
		return err
	}

	c, err := treasury.NewClient(node.URL())
	if err != nil {
		return err
	}
	// Ages are judged by the fake clock; the zero Options read no log file
	// (this machine is not the node).
	rb := treasury.NewRunbook(c, src, treasury.Options{Now: clk.Now})

	// Rolling back a disbursement can strand the ones that depend on it, so an
	// operator repeats diagnose → apply until Path A stops matching.
	for round := 1; round <= 5; round++ {
		r, err := rb.Diagnose(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "round %d: status %s\n", round, r.Status)
		for _, s := range r.Firing() {
			fmt.Fprintf(w, "  firing: %s (%s, value %v)\n", s.ID, s.Status, *s.Value)
		}
		pathA := false
		for _, p := range r.Matched() {
			fmt.Fprintf(w, "  path %s matched: %s\n", p.ID, p.Title)
			pathA = pathA || p.ID == treasury.PathDependency
			for _, a := range p.Actions {
				// Diagnose only plans: DryRun stays true until Apply runs the action.
				fmt.Fprintf(w, "    plan (dry_run=%t): %s\n", a.DryRun, a.Command)
			}
		}
		if !pathA {
			fmt.Fprintln(w, "  path A no longer matches: dependency chain cleared")
			return nil
		}

		// Apply executes only Path A's rollbacks, one call each, never retried.
		done, err := rb.Apply(ctx, r)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		for _, p := range done.Matched() {
			for _, a := range p.Actions {
				if a.Kind == "rollback" {
					fmt.Fprintf(w, "    %s %s (dry_run=%t): %s\n", a.Kind, a.Target, a.DryRun, a.Result)
				}
			}
		}
		for _, warning := range done.Warnings {
			fmt.Fprintf(w, "  note: %s\n", warning)
		}
	}
	return fmt.Errorf("path A still matches after 5 rounds")
}
