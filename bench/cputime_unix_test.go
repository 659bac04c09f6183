//go:build unix

package bench

import "syscall"

// processCPU is the CPU time the process has used (user + system, all
// threads, so the garbage collector counts too), in nanoseconds. On a shared
// machine it is steadier than wall time, which adds the time spent waiting
// for a core.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
