package tbops_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/theblock/tbops"
)

// A diagnosis fills a Report; Finalize sets its status from what fires.
func ExampleReport() {
	r := tbops.NewReport("treasury-stuck", "http://node-a:3030/", time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
	r.Symptoms = append(r.Symptoms, tbops.Symptom{
		ID: "executor-error", Summary: "executor reports last_error", Firing: true,
		Status: tbops.StatusCritical, Detail: tbops.RawOf("ledger_unavailable"),
		Evidence: []tbops.Evidence{{Source: tbops.SourceRPC, Query: "gov.treasury.balance", Value: tbops.RawOf("ledger_unavailable")}},
	})
	r.Paths = append(r.Paths, tbops.Path{ID: "C", Title: "Executor error", Matched: true,
		Why:     "last_error = ledger_unavailable",
		Actions: []tbops.Action{{Kind: "check", Command: "systemctl status ledger-node", DryRun: true}}})
	r.Finalize()
	_ = r.WriteText(os.Stdout)
	fmt.Println("exit code:", r.Status.ExitCode())
	// Output:
	// CRITICAL treasury-stuck @ http://node-a:3030/ (checked 2026-11-29T03:00:00Z)
	//
	// Firing:
	//   [critical] executor-error: executor reports last_error (ledger_unavailable)
	//
	// Path C: Executor error
	//   why: last_error = ledger_unavailable
	//   - [plan] check
	//       $ systemctl status ledger-node
	//
	// Evidence (re-run these):
	//   rpc        gov.treasury.balance => ledger_unavailable
	// exit code: 2
}

func ExampleAmount() {
	fmt.Println(tbops.Amount(9_500_000_000_000), tbops.Amount(1_000))
	// Output: 9,500,000 BLOCK 0.001 BLOCK
}

// A doctor iterates one list of runbooks: each domain package's NewRunbook, or
// tbops.Func for a check of your own. One failing runbook never hides the others.
func ExampleDiagnose() {
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	peers := tbops.Func("peer-count", func(ctx context.Context) (tbops.Report, error) {
		r := tbops.NewReport("peer-count", "http://node-a:3030/", clock())
		r.Symptoms = append(r.Symptoms, tbops.Symptom{ID: "few-peers", Summary: "fewer than 8 peers",
			Status: tbops.StatusOK, Value: tbops.Num(12), Threshold: tbops.Num(8)})
		r.Finalize()
		return r, nil
	})
	broken := tbops.Func("broken", func(ctx context.Context) (tbops.Report, error) {
		return tbops.Report{Target: "http://node-a:3030/"}, fmt.Errorf("node answered HTTP 503")
	})
	for _, r := range tbops.Diagnose(context.Background(), clock, peers, broken) {
		fmt.Println(r.Runbook, r.Status, r.Target, r.Warnings)
	}
	fmt.Println("exit code:", tbops.ExitCode(tbops.Diagnose(context.Background(), clock, peers)...))
	// Output:
	// peer-count ok http://node-a:3030/ []
	// broken unknown http://node-a:3030/ [diagnosis failed: node answered HTTP 503]
	// exit code: 0
}
