package telemetry

import (
	"syscall"
	"unsafe"
)

const clockMonotonic = 1 // CLOCK_MONOTONIC in <linux/time.h>

// Now returns CLOCK_MONOTONIC in nanoseconds, the clock the harness reads with
// time.monotonic_ns(). Go's own monotonic reading is relative to process start, so
// it cannot be compared across processes; the raw clock can (containers share it).
func Now() int64 {
	var ts syscall.Timespec
	// clock_gettime neither blocks nor fails for a valid clock id: no need to enter
	// the scheduler's syscall path.
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		panic("clock_gettime(CLOCK_MONOTONIC): " + errno.Error())
	}
	return ts.Nano()
}
