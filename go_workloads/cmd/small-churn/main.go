// Command small-churn allocates objects of one exact size at full speed from several
// goroutines, one size after another, and reports per size the throughput and how the
// runtime's own counters classified the allocations (tiny, small size class, large).
package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const (
	batch   = 256 // objects between checks of the stop flag and updates of the ops counter
	ptrSize = 8
)

var pointee byte

// struct16 is the article's example object, allocated with new(struct16): 16 bytes and
// pointer-free, so it is a 16 B size-class object, not a tiny one (tiny is < 16 B).
type struct16 struct {
	a int64
	b bool
}

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("small-churn")
	sizes := units.NewSizes("8B")
	fs.Var(sizes, "sizes", "object sizes to run, one after another")
	perSize := fs.Duration("per-size", 2*time.Second, "how long each size runs")
	live := units.NewSize("0")
	fs.Var(live, "live", "live set kept by a ring of objects of the current size")
	growth := units.NewSize("0")
	fs.Var(growth, "live-growth", "bytes added to the live heap per second while churning (touched 64 KiB chunks, kept to the end)")
	pointers := fs.Bool("pointers", false, "objects contain a pointer (not eligible for the tiny allocator)")
	goroutines := fs.Int("goroutines", 0, "allocating goroutines; 0 means GOMAXPROCS")
	shape := units.NewChoice("bytes", "bytes", "struct16")
	fs.Var(shape, "shape", "object shape: bytes (make([]byte, size)) or struct16 (new(struct{ a int64; b bool }), 16 B, pointer-free; --sizes must be 16B or left out)")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}
	if shape.Value == "struct16" {
		sizesGiven := false
		fs.Visit(func(f *flag.Flag) { sizesGiven = sizesGiven || f.Name == "sizes" })
		if sizesGiven && (len(sizes.Bytes) != 1 || sizes.Bytes[0] != int64(unsafe.Sizeof(struct16{}))) {
			return fmt.Errorf("--shape=struct16 allocates 16-byte structs: --sizes must be 16B or left out, got %s", sizes)
		}
		if *pointers {
			return fmt.Errorf("--shape=struct16 is pointer-free: --pointers=true does not apply")
		}
		_ = sizes.Set("16B") // the start line's args then show the size actually allocated
	}
	if *goroutines < 0 {
		return fmt.Errorf("--goroutines must be 0 (GOMAXPROCS) or more, got %d", *goroutines)
	}
	workers := *goroutines
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	r := telemetry.New(out, "small-churn")
	var grown int64 // bytes the live-growth goroutine holds; read by the metrics line
	if growth.Bytes > 0 {
		r.AddMetric("live_bytes", func() float64 { return float64(live.Bytes + atomic.LoadInt64(&grown)) })
	}
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	r.Phase("churn")
	var stopGrowth int32
	grew := make(chan struct{})
	if growth.Bytes > 0 {
		go func() {
			growLive(growth.Bytes, &grown, &stopGrowth)
			close(grew)
		}()
	} else {
		close(grew)
	}
	for i, size := range sizes.Bytes {
		objSize := size
		if *pointers {
			// A pointer-holding object is a whole number of pointer words.
			objSize = (size + ptrSize - 1) / ptrSize * ptrSize
		}
		ringLen := live.Bytes / (objSize * int64(workers))
		if ringLen < 1 {
			ringLen = 1 // the newest object stays reachable, so it must live on the heap
		}

		// A GC flushes every P's cached counts, so the deltas below count exactly this size.
		runtime.GC()
		before := telemetry.ReadAllocCounters()
		opsBefore := r.Ops()
		t0 := time.Now()
		var stop int32
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			if shape.Value == "struct16" {
				go func(ring []*struct16) {
					defer wg.Done()
					churnStruct16(ring, &stop, r)
				}(make([]*struct16, ringLen))
			} else if *pointers {
				go func(ring [][]*byte) {
					defer wg.Done()
					churnPointers(int(objSize/ptrSize), ring, &stop, r)
				}(make([][]*byte, ringLen))
			} else {
				go func(ring [][]byte) {
					defer wg.Done()
					churnBytes(int(objSize), ring, &stop, r)
				}(make([][]byte, ringLen))
			}
		}
		time.Sleep(*perSize)
		atomic.StoreInt32(&stop, 1)
		wg.Wait()
		elapsed := time.Since(t0).Seconds()
		ops := r.Ops() - opsBefore
		runtime.GC()
		after := telemetry.ReadAllocCounters()

		tiny := int64(-1)
		if before.Tiny >= 0 && after.Tiny >= 0 {
			tiny = after.Tiny - before.Tiny
		}
		r.Emit("sizes",
			telemetry.Field{Key: "size", Value: size},
			telemetry.Field{Key: "size_text", Value: sizes.Texts[i]},
			telemetry.Field{Key: "obj_size", Value: objSize},
			telemetry.Field{Key: "pointers", Value: *pointers},
			telemetry.Field{Key: "shape", Value: shape.Value},
			telemetry.Field{Key: "goroutines", Value: workers},
			telemetry.Field{Key: "ops", Value: ops},
			telemetry.Field{Key: "ops_per_s", Value: float64(ops) / elapsed},
			telemetry.Field{Key: "tiny_allocs", Value: tiny},
			telemetry.Field{Key: "small_allocs", Value: after.Small - before.Small},
			telemetry.Field{Key: "large_allocs", Value: after.Large - before.Large},
			telemetry.Field{Key: "counters", Value: after.Source},
		)
	}
	atomic.StoreInt32(&stopGrowth, 1) // the live heap grows while the churn runs, then stays
	<-grew
	return r.End()
}

// churnBytes allocates pointer-free objects: the kind the tiny allocator serves below 16 B.
// grownChunks holds growLive's chunks once it stops, so they stay live until the process ends.
var grownChunks [][]byte

// growLive adds bytesPerSecond of touched, pointer-free 64 KiB chunks, in steps every 10 ms, until
// stop is set, and keeps them (the GC can free none of them): the live heap grows steadily
// toward, and past, any limit.
func growLive(bytesPerSecond int64, grown *int64, stop *int32) {
	const chunk = 64 << 10
	var kept [][]byte
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for atomic.LoadInt32(stop) == 0 {
		<-tick.C
		due := int64(time.Since(start).Seconds() * float64(bytesPerSecond))
		for atomic.LoadInt64(grown)+chunk <= due {
			b := make([]byte, chunk)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			kept = append(kept, b)
			atomic.AddInt64(grown, chunk)
		}
	}
	grownChunks = kept
}

// Storing each into the ring makes it escape, so the compiler cannot stack-allocate it.
func churnBytes(size int, ring [][]byte, stop *int32, r *telemetry.Run) {
	idx := 0
	for atomic.LoadInt32(stop) == 0 {
		for k := 0; k < batch; k++ {
			obj := make([]byte, size)
			obj[0] = byte(k)
			ring[idx] = obj
			if idx++; idx == len(ring) {
				idx = 0
			}
		}
		r.AddOps(batch)
	}
}

// churnStruct16 allocates the article's 16-byte pointer-free struct with new.
func churnStruct16(ring []*struct16, stop *int32, r *telemetry.Run) {
	idx := 0
	for atomic.LoadInt32(stop) == 0 {
		for k := 0; k < batch; k++ {
			obj := new(struct16)
			obj.a = int64(k)
			ring[idx] = obj
			if idx++; idx == len(ring) {
				idx = 0
			}
		}
		r.AddOps(batch)
	}
}

// churnPointers allocates objects the GC must scan; they never use the tiny allocator.
func churnPointers(words int, ring [][]*byte, stop *int32, r *telemetry.Run) {
	idx := 0
	for atomic.LoadInt32(stop) == 0 {
		for k := 0; k < batch; k++ {
			obj := make([]*byte, words)
			obj[0] = &pointee // a real pointer, so the object is scanned like any other
			ring[idx] = obj
			if idx++; idx == len(ring) {
				idx = 0
			}
		}
		r.AddOps(batch)
	}
}
