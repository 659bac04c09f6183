//go:build !unix

package bench

// processCPU is unavailable here; cpu-ns metrics then read 0.
func processCPU() int64 { return 0 }
