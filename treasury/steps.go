package treasury

import (
	"fmt"
	"strings"

	"github.com/theblock/tbops"
)

// steps runs the runbook's five diagnosis steps.
func (d *diagnosis) steps() {
	r, g := d.r, d.g

	// Step 1: executor health.
	st := tbops.Step{ID: StepExecutor, Title: "Step 1: executor health"}
	switch {
	case g.balanceErr != nil:
		st.Findings = append(st.Findings, fmt.Sprintf("could not read the executor: %v", g.balanceErr))
		st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance, g.balanceErr.Error()))
	case g.balance.Executor == nil:
		st.Findings = append(st.Findings, "the node sent no executor snapshot")
		st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance, g.balance))
	default:
		e := g.balance.Executor
		st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance+" | .executor", e))
		if e.LastError == nil {
			st.Findings = append(st.Findings, "last_error: null (good)")
		} else {
			st.Findings = append(st.Findings, fmt.Sprintf("last_error: %q (%s), %s", *e.LastError, ClassifyError(*e.LastError), ago(d.now, orZero(e.LastErrorAt))))
		}
		success := fmt.Sprintf("last_success_at: %s (%s)", unixUTC(orZero(e.LastSuccessAt)), ago(d.now, orZero(e.LastSuccessAt)))
		if !d.recent(e.LastSuccessAt) {
			success += " — not recent"
		}
		st.Findings = append(st.Findings, success,
			fmt.Sprintf("last_tick_at: %s (%s)", unixUTC(orZero(e.LastTickAt)), ago(d.now, orZero(e.LastTickAt))),
			fmt.Sprintf("pending_matured: %s ready to execute, staged_intents: %s", orNull(e.PendingMatured), orNull(e.StagedIntents)))
		lease := fmt.Sprintf("lease_holder: %s, lease_expires_at: %s (%s)", orNull(e.LeaseHolder), unixUTC(orZero(e.LeaseExpiresAt)), ago(d.now, orZero(e.LeaseExpiresAt)))
		if p := d.leaseProblem(); p != "" {
			lease += " — " + p
		}
		st.Findings = append(st.Findings, lease)
	}
	r.Steps = append(r.Steps, st)

	// Step 2: disbursements stuck for more than an hour.
	st = tbops.Step{ID: StepStuck, Title: "Step 2: disbursements queued for more than 1 hour"}
	if g.listOK() {
		cut := d.now.Add(-StuckAfter).Unix()
		var items []string
		var ids []uint64
		for _, x := range d.queued {
			if x.CreatedAt < cut {
				ids = append(ids, x.ID)
				items = append(items, fmt.Sprintf("id %d: created %s (%s), updated %s", x.ID, unixUTC(x.CreatedAt), ago(d.now, x.CreatedAt), unixUTC(x.UpdatedAt)))
			}
		}
		st.Findings = append(st.Findings, fmt.Sprintf("%d queued disbursements, %d of them created more than 1 hour ago", len(d.queued), len(ids)))
		st.Findings = d.capped(st.Findings, items)
		st.Evidence = append(st.Evidence, d.rpcEv(fmt.Sprintf(`%s {"status":"queued"} | created_at < %d`, MethodDisbursements, cut), d.firstIDs(ids)))
	} else {
		st.Findings = append(st.Findings, fmt.Sprintf("could not list disbursements: %v", g.listErr))
	}
	r.Steps = append(r.Steps, st)

	// Step 3: dependency failures.
	r.Steps = append(r.Steps, d.dependencyStep())

	// Step 4: logs, tick duration, error rate.
	st = tbops.Step{ID: StepErrors, Title: "Step 4: executor errors (logs, tick duration p99, error rate)"}
	st.Findings = append(st.Findings, d.logs.Problems...)
	if len(d.logs.Files) > 0 {
		st.Findings = append(st.Findings, fmt.Sprintf("%d matching ERROR/WARN lines in %d files (showing the last %d)", d.logs.Matched, len(d.logs.Files), len(d.logs.Lines)))
		for i, l := range d.logs.Lines {
			if i >= len(d.logs.Lines)-5 {
				st.Findings = append(st.Findings, "log: "+l.Line)
			}
		}
	}
	if len(d.opts.LogGlobs) > 0 {
		st.Evidence = append(st.Evidence, tbops.Evidence{Source: tbops.SourceLog, Query: fmt.Sprintf(`grep "treasury_executor\|DisbursementError" %s | grep -E "ERROR|WARN" | tail -%d`,
			strings.Join(d.opts.LogGlobs, " "), d.opts.LogTail), Value: tbops.RawOf(d.logs.Lines), At: d.now.UTC()})
	}
	if d.m.src {
		st.Findings = append(st.Findings, d.tickFinding(), d.errorRateFinding())
		st.Evidence = append(st.Evidence, evidenceOf(d.m.tick)...)
		st.Evidence = append(st.Evidence, evidenceOf(d.m.errs)...)
	}
	r.Steps = append(r.Steps, st)

	// Step 5: balance against what is waiting.
	st = tbops.Step{ID: StepBalance, Title: "Step 5: treasury balance against pending disbursements"}
	if g.balanceErr == nil && g.listOK() {
		st.Findings = append(st.Findings, fmt.Sprintf("balance %s, pending (queued) %s in %d disbursements", g.balance.Balance, d.pendingSum, len(d.queued)))
		if g.balance.Balance < d.pendingSum {
			st.Findings = append(st.Findings, fmt.Sprintf("INSUFFICIENT FUNDS: short by %s", d.pendingSum-g.balance.Balance))
		}
	} else {
		st.Findings = append(st.Findings, "balance or pending disbursements unavailable")
	}
	st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance+" | .balance", g.balance.Balance),
		d.rpcEv(MethodDisbursements+` {"status":"queued"} | map(.amount) | add`, d.pendingSum))
	r.Steps = append(r.Steps, st)
}

// orNull prints *p, "null" for nil.
func orNull[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (d *diagnosis) dependencyStep() tbops.Step {
	g, a := d.g, d.g.analysis
	st := tbops.Step{ID: StepDependencies, Title: "Step 3: dependency failures"}
	if !g.listOK() {
		st.Findings = append(st.Findings, fmt.Sprintf("could not list disbursements: %v", g.listErr))
		return st
	}
	withDeps := 0
	for _, x := range d.queued {
		if len(x.Proposal.Deps) > 0 {
			withDeps++
		}
	}
	st.Findings = append(st.Findings, fmt.Sprintf("%d of %d queued disbursements have dependencies; %d pending in all, %d dependency edges",
		withDeps, len(d.queued), a.Pending, a.Edges))
	var items []string
	for _, x := range a.RolledBack {
		items = append(items, fmt.Sprintf("id %d depends on %d: rolled_back", x.ID, x.Dep))
	}
	for _, x := range a.Missing {
		items = append(items, fmt.Sprintf("id %d depends on %d: missing (no such disbursement)", x.ID, x.Dep))
	}
	for _, c := range a.Cycles {
		items = append(items, "dependency cycle: "+cycleString(c))
	}
	for _, b := range a.Blocked {
		items = append(items, fmt.Sprintf("id %d blocked behind %d (chain from %d)", b.ID, b.Via, b.Root))
	}
	if len(items) == 0 {
		st.Findings = append(st.Findings, "every dependency is satisfied or still pending normally")
	}
	st.Findings = d.capped(st.Findings, items)
	if len(a.Duplicates) > 0 {
		st.Findings = append(st.Findings, fmt.Sprintf("duplicate ids in the listing: %v", a.Duplicates))
	}
	st.Evidence = append(st.Evidence, d.rpcEv(MethodDisbursements+" | dependency graph", map[string]any{
		"rolled_back": len(a.RolledBack), "missing": len(a.Missing), "cycles": len(a.Cycles), "blocked": len(a.Blocked), "waiting": a.Waiting}))
	st.Evidence = append(st.Evidence, g.lookups...)
	return st
}

func cycleString(c []uint64) string {
	parts := make([]string, 0, len(c)+1)
	for _, id := range c {
		parts = append(parts, fmt.Sprint(id))
	}
	if len(c) > 0 {
		parts = append(parts, fmt.Sprint(c[0]))
	}
	return strings.Join(parts, " → ")
}

// RollbackReason is the runbook's rollback reason for Path A.
func RollbackReason(dep uint64) string { return fmt.Sprintf("Dependency %d was rolled back", dep) }

// RollbackCommand is the command that rolls a disbursement back by hand: it
// prints the plan, and does it with --apply.
func RollbackCommand(id uint64, reason string) string {
	return fmt.Sprintf("tbops treasury rollback --id %d --reason '%s'", id, strings.ReplaceAll(reason, "'", `'\''`))
}
