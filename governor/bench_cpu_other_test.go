//go:build !unix

package governor

// processCPU is unavailable here; cpu metrics then read 0.
func processCPU() int64 { return 0 }
