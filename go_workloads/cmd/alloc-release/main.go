// Command alloc-release is the article's experiment: allocate one []byte, drop it, GC,
// optionally debug.FreeOSMemory, then idle while the runtime's scavenger may return memory.
// With --page-cache a file's pages sit in the page cache for the whole run beside it.
package main

import (
	"io"
	"runtime"
	"time"

	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const pageSize = 4096

// Package-level so the compiler can neither keep them on the stack nor drop them early.
var (
	spike   []byte
	liveSet []byte
)

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("alloc-release")
	size := units.NewSize("1GiB")
	fs.Var(size, "size", "size of the one []byte")
	touch := fs.Bool("touch", true, "write every page; false reproduces the article's snippet")
	live := units.NewSize("0")
	fs.Var(live, "live", "a live heap kept for the whole run, allocated before the spike")
	hold := fs.Duration("hold", time.Second, "how long the spike is held")
	gcs := fs.Int("gcs", 1, "runtime.GC() calls after the reference is dropped")
	gcInterval := fs.Duration("gc-interval", 0, "pause between those GC calls")
	freeos := fs.Bool("freeos", false, "call debug.FreeOSMemory() after the GCs")
	idle := fs.Duration("idle", 10*time.Second, "idle time at the end (scavenger, forced GC every 2 min)")
	pageCacheSize := units.NewSize("0")
	fs.Var(pageCacheSize, "page-cache", "bytes written to a file, fsynced and read back after the baseline, kept in the page cache until the end")
	cacheDir := fs.String("cache-dir", "", "directory of the page-cache file; empty: $TMPDIR, else /tmp")
	heapProfile := fs.Bool("heap-profile", false, "at the end of release, after its GCs, write a heap profile (runtime/pprof) to $TMPDIR/heap-release.pb.gz")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}
	var cache *pageCache
	fsName := ""
	if pageCacheSize.Bytes > 0 {
		var err error
		if cache, err = newPageCache(*cacheDir); err != nil {
			return err
		}
		defer cache.close()
		fsName = cache.fs
	}

	r := telemetry.New(out, "alloc-release")
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	var cached int64
	if cache != nil {
		r.Phase("pagecache")
		err := cache.fill(pageCacheSize.Bytes)
		cached = cache.bytes
		if err != nil {
			return err
		}
	}

	if live.Bytes > 0 {
		r.Phase("live")
		liveSet = make([]byte, live.Bytes)
		touchPages(liveSet)
	}

	r.Phase("allocate")
	spike = make([]byte, size.Bytes)
	if *touch {
		touchPages(spike)
	}
	r.AddOps(1)

	r.Phase("hold")
	time.Sleep(*hold)
	runtime.KeepAlive(spike)

	r.Phase("release")
	spike = nil
	for i := 0; i < *gcs; i++ {
		if i > 0 && *gcInterval > 0 {
			time.Sleep(*gcInterval)
		}
		runtime.GC()
	}
	if *heapProfile {
		if err := writeHeapProfile(r, "release"); err != nil {
			return err
		}
	}

	if *freeos {
		r.Phase("freeos")
		r.FreeOSMemory()
	}

	r.Phase("idle")
	time.Sleep(*idle)
	runtime.KeepAlive(liveSet)
	return r.End(
		telemetry.Field{Key: "page_cache_bytes", Value: cached},
		telemetry.Field{Key: "page_cache_fs", Value: fsName},
	)
}

// touchPages writes one byte per page so every page becomes resident.
func touchPages(b []byte) {
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
}
