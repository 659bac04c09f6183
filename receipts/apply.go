package receipts

import (
	"context"
	"errors"
	"fmt"

	"github.com/theblock/tbops"
)

// Apply carries out the actions of a Diagnose report that change the node —
// path B's reset of the validation state, then the re-validation of the last
// RevalidateBlocks blocks — when path B matched, and returns the report with
// those actions marked done (DryRun false, Result set). Host-side actions
// (restarting the emitter, systemctl) stay plans: tbops cannot run them.
//
// The reset is sent once (never retried). If it fails, nothing else runs and
// the error is returned with the report.
func Apply(ctx context.Context, c *Client, r tbops.Report, opts Options) (tbops.Report, error) {
	if err := opts.defaults(); err != nil {
		return r, err
	}
	if c == nil {
		return r, errors.New("receipts: Apply needs a client")
	}
	if r.Runbook != RunbookID {
		return r, fmt.Errorf("receipts: Apply: report is for runbook %q, not %q", r.Runbook, RunbookID)
	}
	// Copy the paths so the caller's report is not changed behind its back.
	paths := make([]tbops.Path, len(r.Paths))
	for i, p := range r.Paths {
		p.Actions = append([]tbops.Action(nil), p.Actions...)
		paths[i] = p
	}
	r.Paths = paths
	var b *tbops.Path
	for i := range r.Paths {
		if r.Paths[i].ID == PathValidationErrors && r.Paths[i].Matched {
			b = &r.Paths[i]
		}
	}
	if b == nil {
		r.Steps = append(r.Steps, tbops.Step{ID: "apply", Title: "Apply", Findings: []string{"nothing to apply: path B (validation errors) did not match"}})
		return r, nil
	}
	step := tbops.Step{ID: "apply", Title: "Apply: reset validation state and re-validate"}
	at := func() tbops.Evidence { return tbops.Evidence{Source: tbops.SourceRPC, At: opts.Now().UTC()} }
	for i := range b.Actions {
		act := &b.Actions[i]
		switch act.Kind {
		case "reset":
			err := c.ResetValidationState(ctx)
			ev := at()
			ev.Query = "receipts.reset_validation_state"
			act.DryRun = false
			if err != nil {
				act.Result = "failed: " + err.Error()
				ev.Value = tbops.RawOf(err.Error())
				step.Evidence = append(step.Evidence, ev)
				step.Findings = append(step.Findings, "reset failed; nothing else was done")
				r.Steps = append(r.Steps, step)
				return r, fmt.Errorf("receipts: reset validation state: %w", err)
			}
			act.Result = "validation state reset"
			ev.Value = tbops.RawOf(map[string]bool{"ok": true})
			step.Evidence = append(step.Evidence, ev)
			step.Findings = append(step.Findings, "validation state reset")
		case "revalidate":
			st, err := c.NodeStatus(ctx)
			act.DryRun = false
			if err != nil {
				act.Result = "failed: node.status: " + err.Error()
				r.Steps = append(r.Steps, step)
				return r, fmt.Errorf("receipts: re-validate: %w", err)
			}
			from := max(st.CurrentBlockHeight-opts.RevalidateBlocks, 0)
			res, err := c.Validate(ctx, from, st.CurrentBlockHeight)
			ev := at()
			ev.Query = fmt.Sprintf("receipts.validate {\"from_block\":%d,\"to_block\":%d}", from, st.CurrentBlockHeight)
			act.Target = fmt.Sprintf("blocks %d..%d", from, st.CurrentBlockHeight)
			act.Command = fmt.Sprintf("tbops receipts validate --from-block %d --to-block %d", from, st.CurrentBlockHeight)
			if err != nil {
				act.Result = "failed: " + err.Error()
				ev.Value = tbops.RawOf(err.Error())
				step.Evidence = append(step.Evidence, ev)
				r.Steps = append(r.Steps, step)
				return r, fmt.Errorf("receipts: re-validate: %w", err)
			}
			ev.Value = tbops.RawOf(res)
			act.Result = fmt.Sprintf("%d receipts checked, %d invalid", res.Checked, len(res.Invalid))
			step.Evidence = append(step.Evidence, ev)
			step.Findings = append(step.Findings, fmt.Sprintf("re-validated blocks %d..%d: %s", res.FromBlock, res.ToBlock, act.Result))
			for _, iv := range res.Invalid {
				step.Findings = append(step.Findings, fmt.Sprintf("invalid: %s (%s) at height %d: %s", iv.ReceiptID, iv.Market, iv.BlockHeight, iv.Reason))
			}
		}
	}
	r.Steps = append(r.Steps, step)
	return r, nil
}
