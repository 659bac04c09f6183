package treasury

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/theblock/tbops"
)

// AuditOptions selects the epochs of a settlement audit (nil: unbounded).
type AuditOptions struct {
	FromEpoch, ToEpoch *int64
	// MaxLookups caps the per-finding RPC checks (ledger.inspect, gov.treasury.disbursement); default 20.
	MaxLookups int
}

// ChainBreak is a snapshot whose balance does not follow from the previous
// balance and its own delta.
type ChainBreak struct {
	SnapshotID uint64       `json:"snapshot_id"`
	Epoch      int64        `json:"epoch"`
	Expected   tbops.Amount `json:"expected"`
	Recorded   tbops.Amount `json:"recorded"`
}

// Finding kinds of the audit's investigation.
const (
	FindingNotCredited    = "executed_not_credited"
	FindingNoDisbursement = "event_without_disbursement"
	FindingAmountMismatch = "amount_mismatch"
)

// AuditFinding is one discrepancy the investigation found.
type AuditFinding struct {
	Kind           string       `json:"kind"`
	DisbursementID uint64       `json:"disbursement_id"`
	Amount         tbops.Amount `json:"amount"`
	// Status is the runbook's "Check status" line ("Executed but not credited").
	Status string `json:"status"`
	// ReceiptExists: the disbursement carries a tx_hash.
	ReceiptExists bool `json:"receipt_exists"`
	// Target is what ledger.inspect said of the destination: "Valid",
	// "Unknown account" or "not checked".
	Target    string `json:"target"`
	RootCause string `json:"root_cause"`
}

// AuditResult is the settlement audit: the conservation equation over the
// balance history, and the investigation of any discrepancy.
type AuditResult struct {
	FromEpoch *int64 `json:"from_epoch,omitempty"`
	ToEpoch   *int64 `json:"to_epoch,omitempty"`
	Snapshots int    `json:"snapshots"`

	Initial  tbops.Amount `json:"initial"`
	Accruals tbops.Amount `json:"accruals"`
	Executed tbops.Amount `json:"executed"`
	Refunds  tbops.Amount `json:"refunds"`
	// Reserved is the sum of queued-event deltas (0 on a node that does not
	// reserve funds when queueing).
	Reserved tbops.Amount `json:"reserved"`
	// Expected = Initial + Accruals − Executed + Refunds + Reserved.
	Expected tbops.Amount `json:"expected"`
	// Actual is the node's current balance when the range reaches the present,
	// else the last snapshot's balance.
	Actual      tbops.Amount `json:"actual"`
	Discrepancy tbops.Amount `json:"discrepancy"`
	// DiscrepancyPercent is |Discrepancy| / Expected in percent; nil when
	// Expected is 0 (no percentage of nothing).
	DiscrepancyPercent *float64 `json:"discrepancy_percent"`

	ChainBreaks []ChainBreak   `json:"chain_breaks,omitempty"`
	Findings    []AuditFinding `json:"findings,omitempty"`
	Warnings    []string       `json:"warnings,omitempty"`
	OK          bool           `json:"ok"`
}

// ErrNoHistory is returned when the balance history has no snapshot in the range.
var ErrNoHistory = errors.New("treasury: no balance-history snapshots in the range")

// Audit runs the settlement audit over gov.treasury.balance_history for the
// epoch range: conservation (initial + accruals − executed + refunds = final),
// the discrepancy, each snapshot's balance against the previous one, and the
// investigation: executed disbursements with no executed event ("executed but
// not credited") and executed events with no disbursement. A disbursement is in
// the range when its scheduled_epoch is (all when no range is given).
func Audit(ctx context.Context, c *Client, o AuditOptions) (AuditResult, error) {
	res := AuditResult{FromEpoch: o.FromEpoch, ToEpoch: o.ToEpoch}
	if o.FromEpoch != nil && o.ToEpoch != nil && *o.FromEpoch > *o.ToEpoch {
		return res, fmt.Errorf("treasury: audit range: from epoch %d is after to epoch %d", *o.FromEpoch, *o.ToEpoch)
	}
	if o.MaxLookups == 0 {
		o.MaxLookups = 20
	}
	h, err := c.AllHistory(ctx, HistoryOptions{FromEpoch: o.FromEpoch, ToEpoch: o.ToEpoch})
	if err != nil {
		return res, err
	}
	snaps := h.Snapshots
	if len(snaps) == 0 {
		return res, ErrNoHistory
	}
	sort.SliceStable(snaps, func(i, j int) bool {
		if snaps[i].RecordedAt != snaps[j].RecordedAt {
			return snaps[i].RecordedAt < snaps[j].RecordedAt
		}
		return snaps[i].ID < snaps[j].ID
	})
	res.Snapshots = len(snaps)
	res.Initial = snaps[0].Balance - snaps[0].Delta
	running := res.Initial
	credited := map[uint64]tbops.Amount{} // disbursement id → executed amount in the history
	var orphanEvents []Snapshot
	for _, s := range snaps {
		switch s.Event {
		case EventAccrual:
			res.Accruals += s.Delta
		case EventExecuted:
			res.Executed -= s.Delta
			if s.DisbursementID == nil {
				orphanEvents = append(orphanEvents, s)
			} else {
				credited[*s.DisbursementID] += -s.Delta
			}
		case EventCancelled:
			res.Refunds += s.Delta
		case EventQueued:
			res.Reserved += s.Delta
		default:
			res.Warnings = append(res.Warnings, fmt.Sprintf("snapshot %d: unknown event %q (delta %s counted as is)", s.ID, s.Event, s.Delta))
			res.Reserved += s.Delta
		}
		running += s.Delta
		if running != s.Balance {
			res.ChainBreaks = append(res.ChainBreaks, ChainBreak{SnapshotID: s.ID, Epoch: s.Epoch, Expected: running, Recorded: s.Balance})
			running = s.Balance
		}
	}
	res.Expected = res.Initial + res.Accruals - res.Executed + res.Refunds + res.Reserved
	res.Actual = snaps[len(snaps)-1].Balance
	if o.ToEpoch == nil && h.CurrentBalance != nil {
		res.Actual = tbops.Amount(*h.CurrentBalance)
	}
	res.Discrepancy = res.Expected - res.Actual
	if res.Expected != 0 {
		res.DiscrepancyPercent = tbops.Num(math.Abs(float64(res.Discrepancy)) / math.Abs(float64(res.Expected)) * 100)
	}

	// Investigation: executed disbursements against executed events.
	inRange := func(d Disbursement) bool {
		return (o.FromEpoch == nil || d.ScheduledEpoch >= *o.FromEpoch) && (o.ToEpoch == nil || d.ScheduledEpoch <= *o.ToEpoch)
	}
	executed := map[uint64]Disbursement{}
	for _, st := range []State{StateExecuted, StateFinalized} {
		for d, err := range c.All(ctx, ListOptions{Status: st}) {
			if err != nil {
				if errors.Is(err, ErrRecord) {
					res.Warnings = append(res.Warnings, err.Error())
					continue
				}
				return res, err
			}
			executed[d.ID] = d
		}
	}
	ids := make([]uint64, 0, len(executed))
	for id := range executed {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	lookups := 0
	for _, id := range ids {
		d := executed[id]
		amt, ok := credited[id]
		switch {
		case !ok && inRange(d):
			f := AuditFinding{Kind: FindingNotCredited, DisbursementID: id, Amount: d.Amount, Status: "Executed but not credited",
				ReceiptExists: d.Status.TxHash != "", Target: "not checked", RootCause: "Ledger index out of sync"}
			if d.Destination != "" && lookups < o.MaxLookups {
				lookups++
				_, err := c.LedgerInspect(ctx, d.Destination)
				switch {
				case err == nil:
					f.Target = "Valid"
				case errors.Is(err, ErrNotFound):
					f.Target = "Unknown account"
				default:
					f.Target = "not checked (" + err.Error() + ")"
				}
			}
			res.Findings = append(res.Findings, f)
		case ok && amt != d.Amount:
			res.Findings = append(res.Findings, AuditFinding{Kind: FindingAmountMismatch, DisbursementID: id, Amount: amt - d.Amount,
				Status: fmt.Sprintf("Executed for %s but the history debits %s", d.Amount, amt), ReceiptExists: d.Status.TxHash != "",
				Target: "not checked", RootCause: "Ledger and governance store disagree on the amount"})
		}
	}
	var eventIDs []uint64
	for id := range credited {
		if _, ok := executed[id]; !ok {
			eventIDs = append(eventIDs, id)
		}
	}
	sort.Slice(eventIDs, func(i, j int) bool { return eventIDs[i] < eventIDs[j] })
	for _, id := range eventIDs {
		f := AuditFinding{Kind: FindingNoDisbursement, DisbursementID: id, Amount: credited[id], Target: "not checked",
			Status: "Debited but no executed disbursement", RootCause: "Balance history references a disbursement the governance store has not executed"}
		if lookups < o.MaxLookups {
			lookups++
			d, err := c.Disbursement(ctx, id)
			switch {
			case err == nil:
				f.Status = fmt.Sprintf("Debited but the disbursement is %s", d.Status.State)
			case errors.Is(err, ErrNotFound):
				f.Status = "Debited but no such disbursement"
			}
		}
		res.Findings = append(res.Findings, f)
	}
	for _, s := range orphanEvents {
		res.Findings = append(res.Findings, AuditFinding{Kind: FindingNoDisbursement, Amount: -s.Delta, Target: "not checked",
			Status: fmt.Sprintf("Snapshot %d debits without a disbursement_id", s.ID), RootCause: "Balance history event without a disbursement"})
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.OK = res.Discrepancy == 0 && len(res.ChainBreaks) == 0 && len(res.Findings) == 0
	return res, nil
}

// WriteText prints the runbook's "Interpreting Results" blocks: "Ledger
// conservation verified" on success, else the assertion and the investigation.
func (a AuditResult) WriteText(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	rng := "all epochs"
	switch {
	case a.FromEpoch != nil && a.ToEpoch != nil:
		rng = fmt.Sprintf("epochs %d–%d", *a.FromEpoch, *a.ToEpoch)
	case a.FromEpoch != nil:
		rng = fmt.Sprintf("epochs %d–", *a.FromEpoch)
	case a.ToEpoch != nil:
		rng = fmt.Sprintf("epochs –%d", *a.ToEpoch)
	}
	if a.OK {
		p("settlement_audit (%s, %d snapshots) ... ok\n\n", rng, a.Snapshots)
		p("Ledger conservation verified:\n")
		p("  Initial balance: %s\n", a.Initial)
		p("  Accruals: %s\n", a.Accruals)
		p("  Executed disbursements: %s\n", a.Executed)
		if a.Refunds != 0 {
			p("  Refunds: %s\n", a.Refunds)
		}
		if a.Reserved != 0 {
			p("  Reserved: %s\n", a.Reserved)
		}
		p("  Final balance: %s\n", a.Actual)
	} else {
		p("settlement_audit (%s, %d snapshots) ... FAILED\n\n", rng, a.Snapshots)
		p("Assertion failed:\n")
		p("  Expected balance: %s\n", a.Expected)
		p("  Actual balance: %s\n", a.Actual)
		if a.DiscrepancyPercent != nil {
			p("  Discrepancy: %s (%.1f%%)\n", a.Discrepancy, *a.DiscrepancyPercent)
		} else {
			p("  Discrepancy: %s (of an expected 0)\n", a.Discrepancy)
		}
		p("\nInvestigation:\n")
		n := 0
		for _, f := range a.Findings {
			n++
			if f.DisbursementID != 0 {
				what := "Find missing disbursement"
				if f.Kind != FindingNotCredited {
					what = "Find disbursement"
				}
				p("  %d. %s: ID %d\n", n, what, f.DisbursementID)
			} else {
				p("  %d. Find the event\n", n)
			}
			p("  %d. Check status: %s\n", n+1, f.Status)
			p("  %d. Verify: Receipt exists? %s. Target account? %s.\n", n+2, yesNo(f.ReceiptExists), f.Target)
			p("  %d. Root cause: %s\n", n+3, f.RootCause)
			n += 3
		}
		for _, b := range a.ChainBreaks {
			n++
			p("  %d. Snapshot %d (epoch %d) records %s where the history implies %s\n", n, b.SnapshotID, b.Epoch, b.Recorded, b.Expected)
		}
		if len(a.Findings) == 0 && len(a.ChainBreaks) == 0 {
			p("  %d. No single record explains it: check contract-cli node ledger inspect --account treasury_account_id\n", n+1)
		}
	}
	for _, w := range a.Warnings {
		p("warning: %s\n", w)
	}
	return err
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}
