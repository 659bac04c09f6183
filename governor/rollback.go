package governor

import (
	"context"
	"fmt"
	"strings"

	"github.com/theblock/tbops"
)

// DefaultRollbackReason is the exit intent's reason when none is given.
const DefaultRollbackReason = "rollback play (tbops)"

// Kinds of the rollback play's report actions: the exit intent is the only
// one tbops carries out; the check re-reads governor.status; config steps
// are done on the governor's host.
const (
	kindSubmit = "submit"
	kindCheck  = "check"
	kindConfig = "config"
)

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
	reason := rollbackReason(in.Reason)
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

// rollbackReason is the exit intent's reason: s, or DefaultRollbackReason when blank.
func rollbackReason(s string) string {
	if strings.TrimSpace(s) == "" {
		return DefaultRollbackReason
	}
	return s
}

func expectExited(gate string) string {
	if gate == GateEconomics {
		return "economics_autopilot=false"
	}
	return "gate " + gate + " inactive"
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ExecuteRollback does the plan's node step (see [Runbook.Apply] for the same
// step driven by an audit report): it re-reads governor.status and submits the
// exit intent once, never retried, unless an exit intent of the gate is
// already pending or the gate is already inactive, so an exit is never sent
// twice; then it re-reads governor.status for the confirmation step. The
// environment steps stay plans: they are changed on the governor's host. A
// step already done is not done again.
func ExecuteRollback(ctx context.Context, c *Client, p RollbackPlan) (RollbackPlan, error) {
	p.Steps = append([]RollbackStep(nil), p.Steps...)
	exit := p.Submitted // the exit intent step 3b waits for
	var err error
	for i := range p.Steps {
		s := &p.Steps[i]
		if s.Done {
			continue
		}
		switch s.Runbook {
		case "3":
			x := submitExit(ctx, c, p.Gate, p.Reason)
			s.Done, s.Result, err = x.sent, x.result, x.err
			if err != nil {
				return p, err
			}
			if x.intent != nil {
				exit = x.intent
			}
			if x.sent {
				p.Submitted = x.intent
			}
		case "3b":
			s.Current, s.Needed, s.Result = confirmExit(ctx, c, p.Gate, exit)
		}
	}
	return p, nil
}

// exitOutcome is what the play's node step did.
type exitOutcome struct {
	// sent says the write was attempted, so it may have reached the node
	// whatever came back: it is never sent again.
	sent   bool
	intent *Intent
	result string
	err    error
}

// submitExit is the rollback play's only write: governor.submit_intent for the
// gate, sent once. It reads governor.status first and sends nothing when an
// exit intent of the gate is pending (an earlier submit, by tbops or a person)
// or the gate is inactive.
func submitExit(ctx context.Context, c *Client, gate, reason string) exitOutcome {
	st, err := c.Status(ctx)
	if err != nil {
		return exitOutcome{result: "not submitted: could not read governor.status first: " + err.Error(), err: err}
	}
	for _, in := range st.Pending {
		if in.Gate == gate && in.Action == ActionExit {
			in := in
			return exitOutcome{intent: &in, result: fmt.Sprintf("not submitted again: exit intent %s is already pending (applies at epoch %d)", in.ID, in.EpochApply)}
		}
	}
	if g, ok := st.Gate(gate); ok && !g.Active() {
		return exitOutcome{result: "not submitted: gate " + gate + " is already inactive"}
	}
	in, err := c.SubmitIntent(ctx, gate, reason)
	if err != nil {
		return exitOutcome{sent: true, result: "submit failed (sent once, not retried; read governor.status before trying again): " + err.Error(), err: err}
	}
	return exitOutcome{sent: true, intent: &in,
		result: fmt.Sprintf("exit intent %s submitted (state %s, applies at epoch %d, snapshot %s)", in.ID, in.State, in.EpochApply, in.SnapshotHash)}
}

// confirmExit re-reads governor.status for step 3b: the gate's state now,
// whether the exit is still to come, and what that means.
func confirmExit(ctx context.Context, c *Client, gate string, exit *Intent) (current string, needed bool, result string) {
	st, err := c.Status(ctx)
	if err != nil {
		return "unknown", true, "could not re-read governor.status: " + err.Error()
	}
	if gate != GateEconomics {
		g, _ := st.Gate(gate)
		return "gate " + gate + " state " + g.State, g.Active(), "gate " + g.String()
	}
	current = fmt.Sprintf("economics_autopilot=%t", st.EconomicsAutopilot)
	if !st.EconomicsAutopilot {
		return current, false, "confirmed: economics_autopilot=false"
	}
	result = "economics_autopilot is still true"
	if exit != nil {
		result += fmt.Sprintf(": exit intent %s applies at epoch %d; read governor.status again then", exit.ID, exit.EpochApply)
	}
	return current, true, result
}

// Actions returns the plan as report actions (plans unless done).
func (p RollbackPlan) Actions() []tbops.Action {
	out := make([]tbops.Action, 0, len(p.Steps))
	for _, s := range p.Steps {
		kind := kindConfig
		if s.CallsNode {
			kind = kindSubmit
		} else if s.Runbook == "3b" {
			kind = kindCheck
		}
		note := fmt.Sprintf("step %s: %s (now: %s)", s.Runbook, s.Title, s.Current)
		if !s.Needed {
			note += "; not needed now"
		}
		out = append(out, tbops.Action{Kind: kind, Target: p.Gate, Command: s.Command, Note: note, DryRun: !s.Done, Result: s.Result})
	}
	return out
}
