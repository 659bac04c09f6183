//go:build !linux

package energy

// kernelClockSync has no portable source outside Linux: unknown.
func kernelClockSync() ClockSync {
	return ClockSync{Source: "none", Detail: "no timedatectl and no adjtimex on this platform"}
}
