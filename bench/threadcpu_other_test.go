//go:build !linux

package bench

// threadCPU is not measured on this system.
func threadCPU() (int64, bool) { return 0, false }

// processCPU is not measured on this system.
func processCPU() (int64, bool) { return 0, false }

// pidCPU is not measured on this system.
func pidCPU(int) (int64, bool) { return 0, false }

// pinPID cannot pin processes on this system.
func pinPID(int, int) bool { return false }

// onCPU runs f where the system puts it.
func onCPU(_ int, f func()) bool { f(); return false }

// offCPU runs f where the system puts it.
func offCPU(_ int, f func()) bool { f(); return false }
