package bench

import (
	"syscall"
	"unsafe"
)

// threadCPU returns the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID), and true. A benchmark that locks its goroutine to its
// thread measures with it the work it did, without the time it waited for a CPU that
// other processes held.
func threadCPU() (int64, bool) { return clockCPU(3) } // CLOCK_THREAD_CPUTIME_ID

// processCPU returns the CPU time the process has used (CLOCK_PROCESS_CPUTIME_ID), all
// its threads together, and true: for work spread over goroutines.
func processCPU() (int64, bool) { return clockCPU(2) }

func clockCPU(clock uintptr) (int64, bool) {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return ts.Nano(), true
}
