// Command outside is a program outside the tbops module that uses only its
// public packages, the way node software, an explorer or a third-party doctor
// would: it serves a tiny JSON-RPC node with package rpc's server helpers,
// calls it with rpc's client and inspects a typed error, then runs tbops's
// runbooks as one list against the simulated node (nodetest) with history a
// Prometheus would have had, and prints each verdict. CI builds and tests it,
// so a public API that needs an internal type breaks the build here first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/node"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/receipts"
	"github.com/theblock/tbops/rpc"
	"github.com/theblock/tbops/runtime"
	"github.com/theblock/tbops/treasury"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "outside:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	if err := ownNode(ctx, w); err != nil {
		return err
	}
	return doctor(ctx, w)
}

// ownNode is node software's side: a JSON-RPC server with the wire contract's
// envelope and error codes, and a client that tells a missing method apart.
func ownNode(ctx context.Context, w io.Writer) error {
	mux := rpc.NewMux()
	mux.Handle("node.status", func(ctx context.Context, params json.RawMessage) (any, error) {
		return map[string]any{"current_block_height": 42, "epoch": 0, "syncing": false, "peers": 3, "version": "outside/1"}, nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := rpc.NewClient(srv.URL, rpc.WithTimeout(2*time.Second), rpc.WithRetries(1))
	if err != nil {
		return err
	}
	var st struct {
		Height int64 `json:"current_block_height"`
	}
	if err := c.Read(ctx, "node.status", nil, &st); err != nil {
		return err
	}
	fmt.Fprintf(w, "own node: height %d\n", st.Height)
	err = c.Read(ctx, "gov.treasury.balance", nil, nil)
	var ce *rpc.CallError
	var re *rpc.Error
	if errors.As(err, &ce) && errors.As(err, &re) && errors.Is(err, rpc.ErrMethodNotFound) {
		fmt.Fprintf(w, "own node: %s answers %d (%s) after %d attempt(s)\n", ce.Method, re.Code, "method not found", ce.Attempts)
	} else {
		return fmt.Errorf("want a typed method-not-found error, got %v", err)
	}
	return nil
}

// doctor is a third-party doctor: every runbook bound to one node, run as one
// list, against the simulated node with 20 minutes of its history scraped.
func doctor(ctx context.Context, w io.Writer) error {
	clock := nodetest.NewFakeClock(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	sim, err := nodetest.New(nodetest.WithClock(clock.Now))
	if err != nil {
		return err
	}
	defer sim.Close()
	src, err := nodetest.NewSource(ctx, sim, clock, 15*time.Second)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.Advance(ctx, 20*time.Minute); err != nil {
		return err
	}

	nc, err := node.NewClient(sim.URL())
	if err != nil {
		return err
	}
	tc, err := treasury.NewClient(sim.URL())
	if err != nil {
		return err
	}
	rc, err := receipts.NewClient(sim.URL())
	if err != nil {
		return err
	}
	gc, err := governor.NewClient(sim.URL())
	if err != nil {
		return err
	}
	ec, err := energy.NewClient(sim.URL())
	if err != nil {
		return err
	}
	runbooks := []tbops.Runbook{
		node.NewRunbook(nc, src, node.Options{Now: clock.Now}),
		treasury.NewRunbook(tc, src, treasury.Options{Now: clock.Now}),
		receipts.NewRunbook(rc, src, receipts.Options{Now: clock.Now, ExplorerURL: sim.ExplorerURL()}),
		governor.NewRunbook(gc, src, governor.Options{Now: clock.Now}),
		energy.NewRunbook(ec, src, energy.Options{Now: clock.Now}),
		runtime.NewRunbook(src, runtime.DefaultKnobs(), runtime.ReactorOptions{Now: clock.Now, Target: sim.URL()}),
	}
	reports := tbops.Diagnose(ctx, clock.Now, runbooks...)
	for _, r := range reports {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		var back tbops.Report
		if err := json.Unmarshal(raw, &back); err != nil {
			return err
		}
		fmt.Fprintf(w, "%-20s %-8s %d symptoms, %d alerts\n", back.Runbook, back.Status, len(back.Symptoms), len(back.Alerts))
	}
	fmt.Fprintf(w, "exit code %d\n", tbops.ExitCode(reports...))
	return nil
}
