// Command small-frag is the case where Go really keeps memory resident: small objects fill
// whole spans, a random share of them is dropped, and the survivors stay scattered. The GC
// does not move objects, so a span with one live object stays in use: with 10 % of 64 B
// objects kept at random, nearly every 8 KiB span keeps one (0.9^128 of them do not), the
// heap in use and RSS stay near the peak while the live bytes are a tenth of it.
package main

import (
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const (
	pageSize     = 4096
	maxSmallSize = 32 << 10 // the largest size-class object; above it every object has its own span
	batch        = 1024     // objects between updates of the ops and live_bytes counters
)

// index holds one pointer per object (to its first byte, which keeps the whole object
// alive). Package-level so the compiler can neither keep it on the stack nor drop it early.
var index []*byte

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("small-frag")
	total := units.NewSize("512MiB")
	fs.Var(total, "total", "bytes of small objects allocated")
	objSize := units.NewSize("64B")
	fs.Var(objSize, "obj-size", "size of each pointer-free object (1B to 32KiB: a size-class object)")
	freeFrac := fs.Float64("free-frac", 0.9, "share of the objects dropped, each chosen at random")
	gcs := fs.Int("gcs", 2, "runtime.GC() calls after the drop")
	freeos := fs.Bool("freeos", false, "call debug.FreeOSMemory() after the GCs, before the idle phase")
	idle := fs.Duration("idle", 10*time.Second, "idle time at the end (scavenger, forced GC every 2 min)")
	seed := fs.Int64("seed", 1, "random seed")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case objSize.Bytes < 1 || objSize.Bytes > maxSmallSize:
		return fmt.Errorf("--obj-size must be within [1B, 32KiB] (a small, size-class object), got %s", objSize)
	case total.Bytes < objSize.Bytes:
		return fmt.Errorf("--total (%s) must hold at least one object of --obj-size (%s)", total, objSize)
	case *freeFrac < 0 || *freeFrac > 1:
		return fmt.Errorf("--free-frac must be within [0, 1], got %v", *freeFrac)
	case *gcs < 0:
		return fmt.Errorf("--gcs must be 0 or more, got %d", *gcs)
	}
	size := objSize.Bytes
	n := total.Bytes / size

	r := telemetry.New(out, "small-frag")
	var liveBytes int64 // atomic: read by the metrics goroutine
	r.AddMetric("live_bytes", func() float64 { return float64(atomic.LoadInt64(&liveBytes)) })
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	r.Phase("allocate")
	index = make([]*byte, n)
	indexBytes := n * int64(unsafe.Sizeof(index[0])) // the peak bookkeeping, freed in release
	for i := range index {
		obj := make([]byte, size)
		// Fresh spans are not zeroed by the runtime (the OS gave zero pages), so without a
		// write the pages would never become resident.
		for j := int64(0); j < size; j += pageSize {
			obj[j] = 1
		}
		obj[size-1] = 1
		index[i] = &obj[0]
		if (i+1)%batch == 0 {
			atomic.AddInt64(&liveBytes, batch*size)
			r.AddOps(batch)
		}
	}
	if rest := n % batch; rest > 0 {
		atomic.AddInt64(&liveBytes, rest*size)
		r.AddOps(uint64(rest))
	}

	r.Phase("free")
	rng := rand.New(rand.NewSource(*seed))
	var kept int64
	for i := range index {
		if rng.Float64() < *freeFrac {
			index[i] = nil
		} else {
			kept++
		}
	}
	// The survivors move to a new, small index and the big one is dropped with the freed
	// objects: what stays in use afterwards is the objects' spans, not the bookkeeping.
	survivors := make([]*byte, 0, kept)
	for _, p := range index {
		if p != nil {
			survivors = append(survivors, p)
		}
	}
	index = survivors
	atomic.StoreInt64(&liveBytes, kept*size)

	r.Phase("release")
	for i := 0; i < *gcs; i++ {
		runtime.GC()
	}

	if *freeos {
		r.Phase("freeos")
		r.FreeOSMemory()
	}

	r.Phase("idle")
	time.Sleep(*idle)
	runtime.KeepAlive(index)
	return r.End(
		telemetry.Field{Key: "objects", Value: n},
		telemetry.Field{Key: "kept_objects", Value: kept},
		telemetry.Field{Key: "index_bytes", Value: indexBytes},
		telemetry.Field{Key: "seed", Value: *seed},
	)
}
