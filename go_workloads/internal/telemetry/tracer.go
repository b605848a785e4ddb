package telemetry

import (
	"os"
	"time"
)

// WaitForTracerEnv is set by the harness when it attaches strace to the workload from the
// host (a cell with trace_syscalls). Its value is a file the harness creates once strace has
// attached to every thread; Start waits for it, so no call of a measured phase escapes the
// trace however late the attach comes on a busy machine. (The workload cannot see for itself:
// in a container's PID namespace TracerPid reads 0 for a tracer on the host.)
const WaitForTracerEnv = "GORECLAIM_WAIT_FOR_TRACER"

// tracerWaitLimit only bounds a tracer that never comes; the start line says so.
const tracerWaitLimit = 2 * time.Minute

// waitForTracer returns how long it waited and whether the harness said the tracer is there.
func waitForTracer(readyFile string) (time.Duration, bool) {
	start := time.Now()
	for {
		if _, err := os.Stat(readyFile); err == nil {
			return time.Since(start), true
		}
		if time.Since(start) > tracerWaitLimit {
			return time.Since(start), false
		}
		time.Sleep(time.Millisecond)
	}
}
