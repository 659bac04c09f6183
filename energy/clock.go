package energy

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// ClockSync is this host's clock-synchronisation state (diagnosis step 4).
type ClockSync struct {
	// Known is false when no method could read the state.
	Known        bool   `json:"known"`
	Synchronized bool   `json:"synchronized"`
	Source       string `json:"source"`
	Detail       string `json:"detail,omitempty"`
}

// HostClockSync reads the host's clock state: `timedatectl show -p
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
