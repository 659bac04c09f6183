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
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/treasury"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "treasury-stuck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// A fake clock drives both the node and the scrape source, so rates and
	// "held for 2 epochs" are exact and the example takes no wall time.
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	if err != nil {
		return err
	}
	defer node.Close()

	// Without a Prometheus, scrape the node's /metrics ourselves. The backlog
	// symptom needs 240 s (2 epochs) of history: take a sample a minute for 10 minutes
	// (the no-transitions check looks at increase over 10m).
	src := promq.NewScrape([]string{node.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	defer src.Close()
	for i := 0; i <= 10; i++ {
		if err := src.Scrape(ctx); err != nil {
			return err
		}
		if i < 10 {
			clk.Advance(time.Minute)
		}
	}

	c, err := treasury.NewClient(node.URL())
	if err != nil {
		return err
	}
	// Point step 4 at no log files: this machine is not the node.
	opts := treasury.Options{Now: clk.Now, LogGlobs: []string{os.DevNull}}

	// Rolling back a disbursement can strand the ones that depend on it, so an
	// operator repeats diagnose → apply until Path A stops matching.
	for round := 1; round <= 5; round++ {
		r, err := treasury.Diagnose(ctx, c, src, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "round %d: status %s\n", round, r.Status)
		for _, s := range r.Firing() {
			fmt.Fprintf(w, "  firing: %s (%s, value %v)\n", s.ID, s.Status, s.Value)
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
		n, err := treasury.Apply(ctx, c, &r)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		fmt.Fprintf(w, "  applied %d rollbacks\n", n)
		for _, p := range r.Matched() {
			for _, a := range p.Actions {
				if a.Kind == "rollback" {
					fmt.Fprintf(w, "    %s %s (dry_run=%t): %s\n", a.Kind, a.Target, a.DryRun, a.Result)
				}
			}
		}
	}
	return fmt.Errorf("path A still matches after 5 rounds")
}
