//go:build unix

package governor

import "syscall"

// processCPU is the CPU time the process has used (user + system, all
// threads), in nanoseconds: on a shared machine it is steadier than wall
// time, which adds the time spent waiting for a core.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
