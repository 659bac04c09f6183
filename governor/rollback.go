package governor

import (
	"context"
	"fmt"
	"strings"

	"github.com/theblock/tbops"
)

// DefaultRollbackReason is the exit intent's reason when none is given.
const DefaultRollbackReason = "rollback play (tbops)"

// RollbackInput is what the rollback play is planned from.
type RollbackInput struct {
	// Status is the node's governor.status now.
	Status Status
	// Env is the governor mode read from this host's environment, when known.
	Env *Mode
	// Gate to exit (default economics) and the exit intent's reason.
	Gate   string
	Reason string
	// KnownGood names the last sample the audit verified ("epoch 42, hash …"),
	// the one step 4 re-enters from; "" when unknown.
	KnownGood string
}

// RollbackStep is one step of the play, with the current values filled in.
type RollbackStep struct {
	// Runbook is the runbook's step number ("1", "2", "3", "3b", "4").
	Runbook string `json:"runbook"`
	Title   string `json:"title"`
	// Current says what the values are now.
	Current string `json:"current"`
	// Command is what a person runs (or what tbops runs with --apply).
	Command string `json:"command"`
	// Needed is false when the node is already where the step would take it.
	Needed bool `json:"needed"`
	// CallsNode says tbops can do this step itself (only with --apply).
	CallsNode bool   `json:"calls_node"`
	Done      bool   `json:"done"`
	Result    string `json:"result,omitempty"`
}

// RollbackPlan is the runbook's rollback play for one gate.
type RollbackPlan struct {
	Gate   string         `json:"gate"`
	Reason string         `json:"reason"`
	Steps  []RollbackStep `json:"steps"`
	// Submitted is the exit intent the node returned, once applied.
	Submitted *Intent `json:"submitted,omitempty"`
}

// PlanRollback builds the rollback play: (1) pause the governor
// (TB_GOVERNOR_ENABLED=0 or stop its process), (2) back to shadow
// (TB_GOVERNOR_SHADOW_ONLY=1) if it was applying, (3) submit the exit intent
// through governor.submit_intent, (3b) confirm economics_autopilot=false (or the
// gate inactive), (4) re-enable from the known-good sample and turn apply back
// on when ready. Nothing is executed: see [ExecuteRollback].
func PlanRollback(in RollbackInput) RollbackPlan {
	gate := NormalizeGate(in.Gate)
	if gate == "" {
		gate = GateEconomics
	}
	reason := in.Reason
	if strings.TrimSpace(reason) == "" {
		reason = DefaultRollbackReason
	}
	st := in.Status
	envNote := ""
	if in.Env != nil && len(in.Env.Set) > 0 {
		envNote = fmt.Sprintf("; this host's environment says %s (%s)", in.Env, strings.Join(in.Env.Set, ", "))
	}
	p := RollbackPlan{Gate: gate, Reason: reason}
	p.Steps = append(p.Steps, RollbackStep{Runbook: "1", Title: "Pause the governor",
		Current: fmt.Sprintf("node reports enabled=%t%s", st.Enabled, envNote),
		Command: EnvEnabled + "=0 (restart the governor process with it) or stop the governor process",
		Needed:  st.Enabled})
	p.Steps = append(p.Steps, RollbackStep{Runbook: "2", Title: "Back to shadow mode",
		Current: fmt.Sprintf("node reports shadow_only=%t (mode %s)", st.ShadowOnly, Mode{Enabled: st.Enabled, ShadowOnly: st.ShadowOnly}),
		Command: EnvShadowOnly + "=1",
		Needed:  !st.ShadowOnly})
	g, known := st.Gate(gate)
	cur := "gate " + gate + " is not in governor.status"
	if known {
		cur = "gate " + g.String()
		if g.LastReason != "" {
			cur += ", last reason: " + g.LastReason
		}
	}
	for _, in := range st.Pending {
		if in.Gate == gate && in.Action == ActionExit {
			cur += fmt.Sprintf("; exit intent %s already pending (applies at epoch %d)", in.ID, in.EpochApply)
		}
	}
	p.Steps = append(p.Steps, RollbackStep{Runbook: "3", Title: "Submit the exit intent (governor.submit_intent)",
		Current:   cur,
		Command:   fmt.Sprintf("tbops governor rollback --gate %s --reason %s --apply", gate, shellQuote(reason)),
		Needed:    !known || g.Active(),
		CallsNode: true})
	confirm := fmt.Sprintf("economics_autopilot=%t", st.EconomicsAutopilot)
	needConfirm := st.EconomicsAutopilot
	if gate != GateEconomics {
		confirm, needConfirm = "gate "+gate+" state "+g.State, g.Active()
	}
	p.Steps = append(p.Steps, RollbackStep{Runbook: "3b", Title: "Confirm the gate exited",
		Current: confirm,
		Command: "tbops governor status  # expect " + expectExited(gate),
		Needed:  needConfirm})
	good := in.KnownGood
	if good == "" {
		good = "the last sample the audit verified (tbops governor audit)"
		if st.LastEconomicsSnapshotHash != "" {
			good = "last economics snapshot " + st.LastEconomicsSnapshotHash + " once tbops governor audit verifies it"
		}
	}
	p.Steps = append(p.Steps, RollbackStep{Runbook: "4", Title: "Re-enable from the known-good sample",
		Current: "known-good sample: " + good,
		Command: EnvEnabled + "=1, replay the same metrics so the gate re-enters; " + EnvShadowOnly + "=0 only when ready to let the gate mutate runtime params",
		Needed:  true})
	return p
}

func expectExited(gate string) string {
	if gate == GateEconomics {
		return "economics_autopilot=false"
	}
	return "gate " + gate + " inactive"
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ExecuteRollback does the plan's node step: it submits the exit intent once
// (never retried) and re-reads governor.status for the confirmation step. The
// environment steps stay plans: they are changed on the governor's host.
func ExecuteRollback(ctx context.Context, c *Client, p RollbackPlan) (RollbackPlan, error) {
	p.Steps = append([]RollbackStep(nil), p.Steps...)
	in, err := c.SubmitIntent(ctx, p.Gate, p.Reason)
	for i := range p.Steps {
		if p.Steps[i].Runbook != "3" {
			continue
		}
		if err != nil {
			p.Steps[i].Result = "submit failed: " + err.Error()
			return p, err
		}
		p.Steps[i].Done = true
		p.Steps[i].Result = fmt.Sprintf("exit intent %s submitted (state %s, applies at epoch %d, snapshot %s)", in.ID, in.State, in.EpochApply, in.SnapshotHash)
	}
	p.Submitted = &in
	st, serr := c.Status(ctx)
	for i := range p.Steps {
		if p.Steps[i].Runbook != "3b" {
			continue
		}
		switch {
		case serr != nil:
			p.Steps[i].Result = "could not re-read governor.status: " + serr.Error()
		case p.Gate == GateEconomics:
			p.Steps[i].Current = fmt.Sprintf("economics_autopilot=%t", st.EconomicsAutopilot)
			p.Steps[i].Needed = st.EconomicsAutopilot
			if st.EconomicsAutopilot {
				p.Steps[i].Result = fmt.Sprintf("economics_autopilot is still true: the exit applies at epoch %d; re-run tbops governor status then", in.EpochApply)
			} else {
				p.Steps[i].Result = "confirmed: economics_autopilot=false"
			}
		default:
			g, _ := st.Gate(p.Gate)
			p.Steps[i].Current = "gate " + p.Gate + " state " + g.State
			p.Steps[i].Needed = g.Active()
			p.Steps[i].Result = "gate " + g.String()
		}
	}
	return p, nil
}

// Actions returns the plan as report actions (plans unless done).
func (p RollbackPlan) Actions() []tbops.Action {
	out := make([]tbops.Action, 0, len(p.Steps))
	for _, s := range p.Steps {
		kind := "config"
		if s.CallsNode {
			kind = "submit"
		} else if s.Runbook == "3b" {
			kind = "check"
		}
		note := fmt.Sprintf("step %s: %s (now: %s)", s.Runbook, s.Title, s.Current)
		if !s.Needed {
			note += "; not needed now"
		}
		out = append(out, tbops.Action{Kind: kind, Target: p.Gate, Command: s.Command, Note: note, DryRun: !s.Done, Result: s.Result})
	}
	return out
}
