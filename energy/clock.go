package energy

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// ClockSync is the clock-synchronisation state of the machine running tbops:
// a finding of diagnosis step 4 about that machine (Options.HostClock), never
// a symptom of the node.
type ClockSync struct {
	// Known is false when no method could read the state.
	Known bool `json:"known"`
	// Synchronized is whether a time daemon disciplines the clock (meaningful
	// when Known).
	Synchronized bool `json:"synchronized"`
	// Source is how the state was read (timedatectl, adjtimex).
	Source string `json:"source"`
	// Detail is what the source said, or why the state is unknown.
	Detail string `json:"detail,omitempty"`
}

// describe is the state for a finding.
func (c ClockSync) describe() string {
	switch {
	case !c.Known:
		return "sync state unknown (" + c.Detail + ")"
	case c.Synchronized:
		return "synchronized (" + c.Source + ": " + c.Detail + ")"
	}
	return "NOT synchronized (" + c.Source + ": " + c.Detail + "); sync it before comparing timestamps from here"
}

// HostClockSync reads the clock state of the machine it runs on (pass it as
// Options.HostClock): `timedatectl show -p
// NTPSynchronized --value` when timedatectl answers, else the kernel's adjtimex
// status (Linux), else unknown.
func HostClockSync(ctx context.Context) ClockSync {
	if path, err := exec.LookPath("timedatectl"); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, path, "show", "-p", "NTPSynchronized", "--value").Output()
		if err == nil {
			v := strings.TrimSpace(string(out))
			if v == "yes" || v == "no" {
				return ClockSync{Known: true, Synchronized: v == "yes", Source: "timedatectl show -p NTPSynchronized", Detail: "NTPSynchronized=" + v}
			}
		}
	}
	return kernelClockSync()
}
