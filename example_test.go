package tbops_test

import (
	"fmt"
	"os"
	"time"

	"github.com/theblock/tbops"
)

// A diagnosis fills a Report; Finalize sets its status from what fires.
func ExampleReport() {
	r := tbops.NewReport("treasury-stuck", time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
	r.Symptoms = append(r.Symptoms, tbops.Symptom{
		ID: "executor-error", Summary: "executor reports last_error", Firing: true,
		Status: tbops.StatusCritical, Value: "ledger_unavailable",
		Evidence: []tbops.Evidence{{Source: tbops.SourceRPC, Query: "gov.treasury.balance", Value: "ledger_unavailable"}},
	})
	r.Paths = append(r.Paths, tbops.Path{ID: "C", Title: "Executor error", Matched: true,
		Why:     "last_error = ledger_unavailable",
		Actions: []tbops.Action{{Kind: "check", Command: "systemctl status ledger-node", DryRun: true}}})
	r.Finalize()
	_ = r.WriteText(os.Stdout)
	fmt.Println("exit code:", r.Status.ExitCode())
	// Output:
	// CRITICAL treasury-stuck (checked 2026-11-29T03:00:00Z)
	//
	// Firing:
	//   [critical] executor-error: executor reports last_error (value ledger_unavailable)
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
