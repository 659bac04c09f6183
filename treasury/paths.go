package treasury

import (
	"fmt"
	"strings"

	"github.com/theblock/tbops"
)

// Path ids are the runbook's letters.
const (
	PathDependency    = "A"
	PathFunds         = "B"
	PathExecutor      = "C"
	PathCorruption    = "D"
	corruptionMinimum = 2 // "multiple disbursements … with inconsistent states"
)

// Inconsistency is a record whose state contradicts itself or the others
// (Path D's indicator).
type Inconsistency struct {
	ID     uint64 `json:"id"`
	Reason string `json:"reason"`
}

// Inconsistencies finds records with self-contradicting states: duplicate ids,
// executed or finalized without a tx_hash, rolled back without a reason, times
// that run backwards, states outside the protocol, and non-positive amounts.
func Inconsistencies(ds []Disbursement, dups []uint64) []Inconsistency {
	var out []Inconsistency
	for _, id := range dups {
		out = append(out, Inconsistency{ID: id, Reason: "listed more than once"})
	}
	for _, x := range ds {
		st := x.Status
		switch {
		case !st.State.Valid():
			out = append(out, Inconsistency{x.ID, fmt.Sprintf("state %q is not a protocol state", st.State)})
		case st.State.Done() && st.TxHash == "":
			out = append(out, Inconsistency{x.ID, fmt.Sprintf("%s without a tx_hash", st.State)})
		case st.State == StateRolledBack && st.Reason == "":
			out = append(out, Inconsistency{x.ID, "rolled_back without a reason"})
		case st.State.Pending() && st.TxHash != "":
			out = append(out, Inconsistency{x.ID, fmt.Sprintf("%s but carries tx_hash %s", st.State, st.TxHash)})
		}
		if x.UpdatedAt != 0 && x.CreatedAt != 0 && x.UpdatedAt < x.CreatedAt {
			out = append(out, Inconsistency{x.ID, "updated_at before created_at"})
		}
		if at := st.changed(); at != 0 && x.CreatedAt != 0 && at < x.CreatedAt {
			out = append(out, Inconsistency{x.ID, "status changed_at before created_at"})
		}
		if x.Amount <= 0 {
			out = append(out, Inconsistency{x.ID, fmt.Sprintf("amount %s is not positive", x.Amount)})
		}
	}
	return out
}

func (d *diagnosis) paths() {
	d.r.Paths = append(d.r.Paths, d.pathA(), d.pathB(), d.pathC(), d.pathD())
}

// pathA: dependencies in the wrong state. Each pending disbursement whose
// dependency was rolled back gets a rollback plan; cycles and missing
// dependencies get checks (nothing to roll back automatically).
func (d *diagnosis) pathA() tbops.Path {
	a := d.g.analysis
	p := tbops.Path{ID: PathDependency, Title: "Dependency issue"}
	if !d.g.listOK() {
		p.Why = "disbursements could not be listed: dependencies unknown"
		return p
	}
	p.Matched = a.Failed()
	if !p.Matched {
		p.Why = "every dependency of the pending disbursements is satisfied or pending normally"
		return p
	}
	var why []string
	if n := len(a.RolledBack); n > 0 {
		why = append(why, fmt.Sprintf("%d pending disbursements depend on rolled-back disbursements", n))
	}
	if n := len(a.Cycles); n > 0 {
		why = append(why, fmt.Sprintf("%d dependency cycles (dependency_cycle_detected)", n))
	}
	if n := len(a.Missing); n > 0 {
		why = append(why, fmt.Sprintf("%d dependencies do not exist", n))
	}
	if n := len(a.Blocked); n > 0 {
		why = append(why, fmt.Sprintf("%d more blocked behind them", n))
	}
	p.Why = strings.Join(why, "; ")
	done := map[uint64]bool{}
	for _, x := range a.RolledBack {
		if done[x.ID] {
			continue
		}
		done[x.ID] = true
		reason := RollbackReason(x.Dep)
		p.Actions = append(p.Actions, tbops.Action{Kind: "rollback", Target: fmt.Sprint(x.ID), Command: RollbackCommand(x.ID, reason),
			Note: reason, DryRun: true})
	}
	for _, c := range a.Cycles {
		p.Actions = append(p.Actions, tbops.Action{Kind: "check", Target: cycleString(c),
			Command: fmt.Sprintf("tbops treasury show --id %d", c[0]),
			Note:    "circular dependency: review these submissions and roll back the one that should not wait", DryRun: true})
	}
	seen := map[uint64]bool{}
	for _, x := range a.Missing {
		if seen[x.Dep] {
			continue
		}
		seen[x.Dep] = true
		p.Actions = append(p.Actions, tbops.Action{Kind: "check", Target: fmt.Sprint(x.ID),
			Command: fmt.Sprintf("tbops treasury show --id %d", x.Dep),
			Note:    fmt.Sprintf("dependency %d of %d does not exist: correct the proposal or roll %d back", x.Dep, x.ID, x.ID), DryRun: true})
	}
	return p
}

// pathB: insufficient funds — balance below the queued sum, or
// insufficient_funds execution errors increasing, or the executor says so.
func (d *diagnosis) pathB() tbops.Path {
	g := d.g
	p := tbops.Path{ID: PathFunds, Title: "Insufficient funds"}
	var why []string
	known := g.balanceErr == nil && g.listOK()
	if known && g.balance.Balance < d.pendingSum {
		why = append(why, fmt.Sprintf("balance %s < pending %s: short by %s", g.balance.Balance, d.pendingSum, d.pendingSum-g.balance.Balance))
	}
	if rate, ok := d.insufficientRising(); ok {
		why = append(why, fmt.Sprintf(`%s{reason="insufficient_funds"} increasing at %s`, MetricErrors, rate))
	}
	if g.balance.Executor != nil && ClassifyError(g.balance.Executor.Error()) == ErrorInsufficientFunds {
		why = append(why, fmt.Sprintf("executor last_error %q", g.balance.Executor.Error()))
	}
	if len(why) == 0 {
		switch {
		case known:
			p.Why = fmt.Sprintf("balance %s covers pending %s", g.balance.Balance, d.pendingSum)
		default:
			p.Why = "balance or pending disbursements unavailable"
		}
		return p
	}
	p.Matched = true
	p.Why = strings.Join(why, "; ")
	if known {
		p.Why = fmt.Sprintf("current balance %s, pending %s, shortfall %s; ", g.balance.Balance, d.pendingSum, max(d.pendingSum-g.balance.Balance, 0)) + p.Why
	}
	p.Actions = []tbops.Action{
		{Kind: "wait", Command: "watch -n 30 'tbops treasury balance'", Note: "wait for accruals to cover the pending disbursements", DryRun: true},
		{Kind: "escalate", Note: fmt.Sprintf("OR request governance approval for a fund allocation of at least %s", max(d.pendingSum-g.balance.Balance, 0)), DryRun: true},
	}
	return p
}

// pathC: the executor reports an error (or no live lease while work is ready).
func (d *diagnosis) pathC() tbops.Path {
	g := d.g
	p := tbops.Path{ID: PathExecutor, Title: "Executor error"}
	if g.balanceErr != nil || g.balance.Executor == nil {
		p.Why = "executor snapshot unavailable"
		return p
	}
	e := g.balance.Executor
	lease := d.leaseProblem()
	ready := orZero(e.PendingMatured)
	if e.LastError == nil && (lease == "" || ready == 0) {
		p.Why = "last_error is null and the executor holds a live lease"
		return p
	}
	p.Matched = true
	if e.LastError == nil {
		p.Why = lease + fmt.Sprintf(" while %d disbursements are ready", ready)
		p.Actions = append(p.Actions, tbops.Action{Kind: "check", Command: "tbops treasury balance -o json | jq .executor", Note: "see which node should run the executor", DryRun: true})
	} else {
		kind := ClassifyError(*e.LastError)
		meaning, cmd := NextCheck(kind)
		p.Why = fmt.Sprintf("executor last_error %q: %s (%s)", *e.LastError, kind, meaning)
		note := meaning
		if kind == ErrorDependencyCycle && len(g.analysis.Cycles) > 0 {
			note += ": " + cycleString(g.analysis.Cycles[0])
		}
		if lease != "" {
			p.Why += "; " + lease
		}
		p.Actions = append(p.Actions, tbops.Action{Kind: "check", Target: string(kind), Command: cmd, Note: note, DryRun: true})
	}
	p.Actions = append(p.Actions,
		tbops.Action{Kind: "restart", Target: "the-block", Command: "sudo systemctl restart the-block", Note: "restart the executor once the cause is fixed", DryRun: true},
		tbops.Action{Kind: "check", Command: "watch -n 5 'tbops treasury balance -o json | jq .executor.last_error'", Note: "monitor recovery: last_error back to null, backlog falling", DryRun: true})
	return p
}

// pathD: several disbursements stuck with inconsistent states, or records the
// node sent that cannot be decoded.
func (d *diagnosis) pathD() tbops.Path {
	g := d.g
	p := tbops.Path{ID: PathCorruption, Title: "Data corruption"}
	if !g.listOK() {
		p.Why = "disbursements could not be listed"
		return p
	}
	inc := Inconsistencies(g.ds, g.analysis.Duplicates)
	var why []string
	if len(inc) > 0 {
		var items []string
		for i, x := range inc {
			if i == 5 {
				items = append(items, fmt.Sprintf("… %d more", len(inc)-5))
				break
			}
			items = append(items, fmt.Sprintf("%d %s", x.ID, x.Reason))
		}
		why = append(why, fmt.Sprintf("%d inconsistent records (%s)", len(inc), strings.Join(items, "; ")))
	}
	if len(g.invalid) > 0 {
		why = append(why, fmt.Sprintf("%d records the node sent could not be decoded", len(g.invalid)))
	}
	if gauge, ok := d.backlogGauge(); ok && !g.truncated {
		if diff := gauge - float64(len(d.queued)); diff > 5 || diff < -5 {
			why = append(why, fmt.Sprintf("%s says %g but the node lists %d queued", MetricBacklog, gauge, len(d.queued)))
		}
	}
	p.Matched = len(inc) >= corruptionMinimum || len(g.invalid) > 0
	if len(why) == 0 {
		p.Why = "the records are consistent"
		return p
	}
	p.Why = strings.Join(why, "; ")
	if !p.Matched {
		p.Why += " (one record alone is not corruption; watch it)"
		return p
	}
	p.Actions = []tbops.Action{
		{Kind: "bundle", Command: "tbops treasury diagnose --bundle /tmp/treasury_incident_$(date +%s).tar.gz",
			Note: "snapshot the disbursements, executor logs, a Prometheus dump and a summary of when it started", DryRun: true},
		{Kind: "escalate", Note: "send the bundle to the operations team and describe when the issue started", DryRun: true},
	}
	return p
}
