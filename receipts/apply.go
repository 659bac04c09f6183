package receipts

import (
	"context"
	"fmt"
	"strings"

	"github.com/theblock/tbops"
)

// Apply carries out what a Diagnose report of this runbook planned and tbops
// can do on the node: path B's reset of the validation state, then the
// re-validation of the last RevalidateBlocks blocks, when path B matched. It
// returns the report with those actions done (DryRun false, Result set) and an
// "apply" step. Host-side actions (restarting the emitter, systemctl) stay
// plans: tbops cannot run them.
//
// An action already done (DryRun false) is never repeated, so applying the
// returned report again changes nothing. The reset is sent once, never
// retried; when it fails (now or in an earlier Apply), nothing after it runs
// and the error is returned with the report. plan is not modified.
func (rb *Runbook) Apply(ctx context.Context, plan tbops.Report) (tbops.Report, error) {
	opts, err := rb.options()
	if err != nil {
		return plan, err
	}
	if plan.Runbook != RunbookID {
		return plan, fmt.Errorf("receipts: Apply: report is for runbook %q, not %q", plan.Runbook, RunbookID)
	}
	if plan.Target != rb.c.URL() {
		return plan, fmt.Errorf("receipts: Apply: report is about %s, not this runbook's node %s", plan.Target, rb.c.URL())
	}
	r := copyPaths(plan)
	b := matchedPath(&r, PathValidationErrors)
	if b == nil {
		r.Steps = append(r.Steps, tbops.Step{ID: "apply", Title: "Apply", Findings: []string{"nothing to apply: path B (validation errors) did not match"}})
		return r, nil
	}
	a := &applier{ctx: ctx, c: rb.c, opts: opts, step: tbops.Step{ID: "apply", Title: "Apply: reset validation state and re-validate"}}
	for i := range b.Actions {
		act := &b.Actions[i]
		if act.Kind != actionReset && act.Kind != actionRevalidate {
			continue
		}
		if !act.DryRun {
			if strings.HasPrefix(act.Result, "failed") {
				err = fmt.Errorf("receipts: Apply: %s failed earlier (%s); not repeated, and nothing after it runs: diagnose again", act.Kind, act.Result)
				break
			}
			a.step.Findings = append(a.step.Findings, act.Kind+": already done ("+act.Result+"), not repeated")
			continue
		}
		if err = a.do(act); err != nil {
			break
		}
	}
	r.Steps = append(r.Steps, a.step)
	return r, err
}

// copyPaths copies the report's paths and actions, so Apply never changes the
// caller's report behind its back.
func copyPaths(r tbops.Report) tbops.Report {
	paths := make([]tbops.Path, len(r.Paths))
	for i, p := range r.Paths {
		p.Actions = append([]tbops.Action(nil), p.Actions...)
		paths[i] = p
	}
	r.Paths = paths
	r.Steps = append([]tbops.Step(nil), r.Steps...)
	return r
}

func matchedPath(r *tbops.Report, id string) *tbops.Path {
	for i := range r.Paths {
		if r.Paths[i].ID == id && r.Paths[i].Matched {
			return &r.Paths[i]
		}
	}
	return nil
}

// applier carries out one action at a time and records it in its step.
type applier struct {
	ctx  context.Context
	c    *Client
	opts Options
	step tbops.Step
}

func (a *applier) evidence(query string, v any) tbops.Evidence {
	return tbops.Evidence{Source: tbops.SourceRPC, Query: query, Value: tbops.RawOf(v), At: a.opts.Now().UTC()}
}

// do runs one action; on failure its Result says so and the error is returned.
func (a *applier) do(act *tbops.Action) error {
	act.DryRun = false
	var err error
	if act.Kind == actionReset {
		err = a.reset(act)
	} else {
		err = a.revalidate(act)
	}
	if err != nil {
		act.Result = "failed: " + err.Error()
		a.step.Findings = append(a.step.Findings, act.Kind+" failed; nothing after it was done")
	}
	return err
}

func (a *applier) reset(act *tbops.Action) error {
	const q = "receipts.reset_validation_state"
	if err := a.c.ResetValidationState(a.ctx); err != nil {
		a.step.Evidence = append(a.step.Evidence, a.evidence(q, err.Error()))
		return fmt.Errorf("receipts: reset validation state: %w", err)
	}
	act.Result = "validation state reset"
	a.step.Evidence = append(a.step.Evidence, a.evidence(q, map[string]bool{"ok": true}))
	a.step.Findings = append(a.step.Findings, act.Result)
	return nil
}

func (a *applier) revalidate(act *tbops.Action) error {
	st, err := a.c.NodeStatus(a.ctx)
	if err != nil {
		return fmt.Errorf("receipts: re-validate: %w", err)
	}
	to := st.CurrentBlockHeight
	from := max(to-a.opts.RevalidateBlocks, 0)
	act.Target = fmt.Sprintf("blocks %d..%d", from, to)
	act.Command = fmt.Sprintf("tbops receipts validate --from-block %d --to-block %d", from, to)
	q := fmt.Sprintf("receipts.validate {\"from_block\":%d,\"to_block\":%d}", from, to)
	res, err := a.c.Validate(a.ctx, from, to)
	if err != nil {
		a.step.Evidence = append(a.step.Evidence, a.evidence(q, err.Error()))
		return fmt.Errorf("receipts: re-validate: %w", err)
	}
	a.step.Evidence = append(a.step.Evidence, a.evidence(q, res))
	act.Result = fmt.Sprintf("%s receipts checked, %d invalid", show(res.Checked), len(res.Invalid))
	a.step.Findings = append(a.step.Findings, fmt.Sprintf("re-validated blocks %d..%d: %s", res.FromBlock, res.ToBlock, act.Result))
	for _, iv := range res.Invalid {
		a.step.Findings = append(a.step.Findings, fmt.Sprintf("invalid: %s (%s) at height %d: %s", iv.ReceiptID, iv.Market, iv.BlockHeight, iv.Reason))
	}
	return nil
}
