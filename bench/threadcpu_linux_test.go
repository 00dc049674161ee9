package bench

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID), and true. A benchmark that locks its goroutine to its
// thread measures with it the work it did, without the time it waited for a CPU that
// other processes held.
func threadCPU() (int64, bool) { return clockCPU(3) } // CLOCK_THREAD_CPUTIME_ID

// processCPU returns the CPU time the process has used (CLOCK_PROCESS_CPUTIME_ID), all
// its threads together, and true: for work spread over goroutines.
func processCPU() (int64, bool) { return clockCPU(2) }

// pidCPU returns the CPU time another process has used, all its threads together,
// and true: the clock_gettime clock of process pid (the kernel's
// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), what clock_getcpuclockid gives, in
// nanoseconds), or where the system refuses that clock, utime+stime from
// /proc/<pid>/stat in clock ticks of sysconf(_SC_CLK_TCK) (AT_CLKTCK of the auxiliary
// vector; 100 on Linux if it cannot be read), so to 10 ms.
func pidCPU(pid int) (int64, bool) {
	if ns, ok := clockCPU(uintptr(uint32(int32(^pid)<<3 | 2))); ok {
		return ns, true
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// After the command's name (in parentheses, and it may hold any), f[0] is field 3
	// (state): utime is field 14, stime 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) * (1e9 / clockTicks()), true
}

// clockTicks is sysconf(_SC_CLK_TCK), the unit of /proc's CPU times: AT_CLKTCK (17)
// of this process's auxiliary vector, or 100 (Linux's USER_HZ) if it is not there.
func clockTicks() int64 {
	word := func(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }
	if unsafe.Sizeof(uintptr(0)) == 4 {
		word = func(b []byte) uint64 { return uint64(binary.NativeEndian.Uint32(b)) }
	}
	w := 2 * int(unsafe.Sizeof(uintptr(0))) // an entry: key and value, a word each
	if aux, err := os.ReadFile("/proc/self/auxv"); err == nil {
		for ; len(aux) >= w; aux = aux[w:] {
			if k, v := word(aux), word(aux[w/2:]); k == 17 && v > 0 {
				return int64(v)
			}
		}
	}
	return 100
}

func clockCPU(clock uintptr) (int64, bool) {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, false
	}
	return ts.Nano(), true
}

// pinPID keeps every thread of process pid (and so the threads they start) on CPU
// cpu, and reports whether it could. Two measurements compare best on one CPU: the
// CPUs of a shared machine differ in what their neighbours take from them, by 10% and
// more, and that moves from one to the other over seconds.
func pinPID(pid, cpu int) bool {
	var set unix.CPUSet
	set.Set(cpu)
	return setAffinity(pid, &set)
}

// setAffinity puts every thread of process pid on the CPUs of set.
func setAffinity(pid int, set *unix.CPUSet) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return false
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil || unix.SchedSetaffinity(tid, set) != nil {
			return false
		}
	}
	return true
}

// onCPU runs f with every thread of this process on CPU cpu, then lets them run where
// they could before, and reports whether it could pin them.
func onCPU(cpu int, f func()) bool {
	return withAffinity(func(set *unix.CPUSet) { set.Zero(); set.Set(cpu) }, f)
}

// offCPU runs f with every thread of this process on the CPUs it may use other than
// cpu, then lets them run where they could before, and reports whether it could (not
// with cpu its only one). A load generator kept off the CPU of the process it loads
// leaves that process's caches to it alone, as its own machine would.
func offCPU(cpu int, f func()) bool {
	return withAffinity(func(set *unix.CPUSet) { set.Clear(cpu) }, f)
}

// withAffinity runs f with every thread of this process on the CPUs that edit leaves
// of those it may use now (none left: it runs f where it is), then puts them back, and
// reports whether it could move them.
func withAffinity(edit func(*unix.CPUSet), f func()) bool {
	var old unix.CPUSet
	if unix.SchedGetaffinity(0, &old) != nil {
		f()
		return false
	}
	set := old
	edit(&set)
	if set.Count() == 0 {
		f()
		return false
	}
	defer setAffinity(os.Getpid(), &old)
	moved := setAffinity(os.Getpid(), &set)
	f()
	return moved
}
