// Command pressure releases memory and then needs new memory: under a cgroup limit, new
// memory plus the lazily freed (MADV_FREE) pages of the first allocation can exceed the
// limit, unless the kernel reclaims the lazily freed pages first.
package main

import (
	"fmt"
	"io"
	"runtime"
	"syscall"
	"time"

	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const pageSize = 4096

// Package-level so the compiler keeps them on the heap and reachable while held.
var first, second []byte

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("pressure")
	releaseSize := units.NewSize("512MiB")
	fs.Var(releaseSize, "release-size", "memory allocated, touched and released first")
	freeos := fs.Bool("freeos", true, "call debug.FreeOSMemory() after the release")
	settle := fs.Duration("settle", 2*time.Second, "pause after the release")
	secondSize := units.NewSize("512MiB")
	fs.Var(secondSize, "second-size", "new memory allocated and touched after the release")
	secondVia := units.NewChoice("mmap", "mmap", "heap")
	fs.Var(secondVia, "second-via", "where the new memory comes from (mmap, heap)")
	hold := fs.Duration("hold", 2*time.Second, "how long the new memory is held")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}

	r := telemetry.New(out, "pressure")
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	r.Phase("allocate")
	first = make([]byte, releaseSize.Bytes)
	touchPages(first)

	r.Phase("release")
	first = nil
	runtime.GC()
	if *freeos {
		// MADV_FREE or MADV_DONTNEED, as GODEBUG=madvdontneed and the Go version decide.
		r.FreeOSMemory()
	}

	r.Phase("settle")
	time.Sleep(*settle)

	r.Phase("second")
	if secondVia.Value == "mmap" {
		// Fresh anonymous memory the Go heap cannot hand out again: like another
		// process's (or cgo's) memory in the same container.
		mem, err := syscall.Mmap(-1, 0, int(secondSize.Bytes), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			return fmt.Errorf("mmap of --second-size=%s: %v", secondSize, err)
		}
		second = mem
	} else {
		second = make([]byte, secondSize.Bytes)
	}
	touchPages(second)
	r.AddOps(1)

	r.Phase("hold")
	time.Sleep(*hold)
	runtime.KeepAlive(second)
	return r.End(telemetry.Field{Key: "second_via", Value: secondVia.Value})
}

func touchPages(b []byte) {
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
}
