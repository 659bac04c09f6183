package energy

import "golang.org/x/sys/unix"

// kernelClockSync reads adjtimex(2) without changing anything (modes 0): the
// kernel reports TIME_ERROR / STA_UNSYNC while no time daemon disciplines it.
func kernelClockSync() ClockSync {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ClockSync{Source: "adjtimex", Detail: err.Error()}
	}
	synced := state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	return ClockSync{Known: true, Synchronized: synced, Source: "adjtimex",
		Detail: "kernel clock state " + itoa(int64(state)) + ", estimated error " + itoa(tx.Esterror) + " µs"}
}
