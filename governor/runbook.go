package governor

import (
	"context"
	"errors"
	"fmt"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Runbook is the governor audit bound to one node: a tbops.Runbook whose
// Diagnose is [Audit], and a tbops.Applier whose Apply carries out the
// rollback play an audit planned.
type Runbook struct {
	c    *Client
	src  promq.Source
	opts Options
}

var _ tbops.Applier = (*Runbook)(nil)

// NewRunbook binds the audit to a client, a metrics source (nil: none; the
// gauge, ad and alert checks are then unknown) and options.
func NewRunbook(c *Client, src promq.Source, opts Options) *Runbook {
	return &Runbook{c: c, src: src, opts: opts}
}

// ID is "governor-audit".
func (r *Runbook) ID() string { return RunbookID }

// Diagnose runs [Audit].
func (r *Runbook) Diagnose(ctx context.Context) (tbops.Report, error) {
	return Audit(ctx, r.c, r.src, r.opts)
}

// Apply carries out the rollback play of plan, a report this runbook's
// Diagnose returned, when its rollback path matched: the exit intent
// (governor.submit_intent with Options.Reason, the reason the plan shows),
// sent once and never retried, then the confirmation, which re-reads
// governor.status. The environment steps are done on the governor's host and
// stay plans. Nothing is sent again: not an action already done (DryRun
// false), and not when the node already has an exit intent of the gate
// pending or the gate is inactive; an exit that was sent and failed is marked
// done with its error, since it may have reached the node. The report
// returned is plan with each
// action's outcome; plan itself is not changed. A plan about another node or
// runbook is refused.
func (r *Runbook) Apply(ctx context.Context, plan tbops.Report) (tbops.Report, error) {
	if r.c == nil {
		return plan, errors.New("governor: Apply: nil client")
	}
	if plan.Runbook != RunbookID || plan.Target != r.c.URL() {
		return plan, fmt.Errorf("governor: Apply: the plan is a %s report about %s; this runbook is %s about %s",
			plan.Runbook, plan.Target, RunbookID, r.c.URL())
	}
	out := plan
	out.Paths = append([]tbops.Path(nil), plan.Paths...)
	var err error
	for i := range out.Paths {
		p := &out.Paths[i]
		if !p.Matched {
			continue
		}
		p.Actions = append([]tbops.Action(nil), p.Actions...)
		var exit *Intent
		for j := range p.Actions {
			a := &p.Actions[j]
			if !a.DryRun || err != nil {
				continue
			}
			switch a.Kind {
			case kindSubmit:
				x := submitExit(ctx, r.c, a.Target, rollbackReason(r.opts.Reason))
				a.DryRun, a.Result, err, exit = !x.sent, x.result, x.err, x.intent
			case kindCheck:
				_, _, a.Result = confirmExit(ctx, r.c, a.Target, exit)
				a.DryRun = false
			}
		}
	}
	return out, err
}
