package treasury

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Runbook is the Treasury Stuck runbook bound to one node: its client, its
// metrics source and the options. It is a tbops.Runbook and a tbops.Applier
// (Path A's rollbacks).
type Runbook struct {
	c    *Client
	src  promq.Source
	opts Options
}

var _ tbops.Applier = (*Runbook)(nil)

// NewRunbook binds the runbook to a client, a metrics source (nil: the metric
// symptoms and every alert are unknown) and options.
func NewRunbook(c *Client, src promq.Source, opts Options) *Runbook {
	return &Runbook{c: c, src: src, opts: opts}
}

// ID is RunbookID.
func (rb *Runbook) ID() string { return RunbookID }

// Diagnose is Diagnose with the runbook's client, source and options.
func (rb *Runbook) Diagnose(ctx context.Context) (tbops.Report, error) {
	return Diagnose(ctx, rb.c, rb.src, rb.opts)
}

// Apply carries out Path A's rollback plans in plan, a report this runbook's
// Diagnose returned: each rollback action still planned (DryRun true) of a
// matched Path A, one gov.treasury.rollback_disbursement call each, never
// retried. Each executed action has DryRun false and its Result; an action
// already done is not repeated, and the other paths hold only checks. It
// carries on past a failed rollback and returns every failure joined.
//
// Rollbacks do not cascade: the disbursements that depended on the ones just
// rolled back are Path A cases of their own, which deserve a look before they
// are applied. When a new diagnosis finds such a next level, the returned
// report says so in a warning.
func (rb *Runbook) Apply(ctx context.Context, plan tbops.Report) (tbops.Report, error) {
	if rb.c == nil {
		return plan, fmt.Errorf("%w: Apply needs a client", ErrInvalidArgument)
	}
	if plan.Runbook != RunbookID {
		return plan, fmt.Errorf("%w: the plan is a %q report, not %s", ErrInvalidArgument, plan.Runbook, RunbookID)
	}
	if want := tbops.RedactURL(rb.c.URL()); plan.Target != want {
		return plan, fmt.Errorf("%w: the plan is for %s, this runbook's node is %s", ErrInvalidArgument, plan.Target, want)
	}
	r := withOwnActions(plan)
	var errs []error
	done := 0
	for pi := range r.Paths {
		p := &r.Paths[pi]
		if p.ID != PathDependency || !p.Matched {
			continue
		}
		for ai := range p.Actions {
			a := &p.Actions[ai]
			if a.Kind != "rollback" || !a.DryRun {
				continue
			}
			if err := ctx.Err(); err != nil {
				return r, errors.Join(append(errs, err)...)
			}
			if err := rb.rollback(ctx, a); err != nil {
				errs = append(errs, err)
				continue
			}
			done++
		}
	}
	if done > 0 {
		rb.noteNextLevel(ctx, &r)
	}
	return r, errors.Join(errs...)
}

// rollback executes one planned rollback action and records its Result.
func (rb *Runbook) rollback(ctx context.Context, a *tbops.Action) error {
	id, err := strconv.ParseUint(a.Target, 10, 64)
	if err != nil {
		a.Result = fmt.Sprintf("not done: target %q is not a disbursement id", a.Target)
		return fmt.Errorf("%w: rollback target %q is not a disbursement id", ErrInvalidArgument, a.Target)
	}
	res, err := rb.c.Rollback(ctx, id, a.Note)
	a.DryRun = false
	if err != nil {
		a.Result = "failed: " + err.Error()
		return fmt.Errorf("treasury: rollback of %d: %w", id, err)
	}
	a.Result = "rolled back"
	if res.Message != "" {
		a.Result += ": " + res.Message
	}
	return nil
}

// noteNextLevel diagnoses again and warns when Path A plans new rollbacks.
func (rb *Runbook) noteNextLevel(ctx context.Context, r *tbops.Report) {
	again, err := rb.Diagnose(ctx)
	if err != nil {
		return
	}
	if p, ok := again.Path(PathDependency); ok && p.Matched && hasPlannedRollback(p) {
		r.Warnf("after these rollbacks Path A matches again (%s): the disbursements that depended on them are the next level; review a new diagnosis before applying it", p.Why)
	}
}

func hasPlannedRollback(p tbops.Path) bool {
	for _, a := range p.Actions {
		if a.Kind == "rollback" && a.DryRun {
			return true
		}
	}
	return false
}

// withOwnActions copies r deeply enough that Apply never writes into the
// caller's paths and actions.
func withOwnActions(r tbops.Report) tbops.Report {
	r.Paths = append([]tbops.Path(nil), r.Paths...)
	for i := range r.Paths {
		r.Paths[i].Actions = append([]tbops.Action(nil), r.Paths[i].Actions...)
	}
	r.Warnings = append([]string(nil), r.Warnings...)
	return r
}
