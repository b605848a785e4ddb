package main

import (
	"os"
	"path/filepath"
	"runtime/pprof"

	"goreclaim/workloads/internal/telemetry"
)

// writeHeapProfile writes pprof's heap profile (gzipped profile.proto) to $TMPDIR (else /tmp) as
// heap-<phase>.pb.gz and a heapprofile line naming it, for the harness to read while the file is
// there. The profile is as of the last completed GC (runtime/pprof writeHeap, runtime.MemProfile):
// called right after runtime.GC(), it shows what that GC left live.
func writeHeapProfile(r *telemetry.Run, phase string) error {
	name := "heap-" + phase + ".pb.gz"
	f, err := os.Create(filepath.Join(os.TempDir(), name))
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	r.Emit("heapprofile", telemetry.Field{Key: "phase", Value: phase}, telemetry.Field{Key: "file", Value: name},
		telemetry.Field{Key: "bytes", Value: info.Size()})
	return nil
}
