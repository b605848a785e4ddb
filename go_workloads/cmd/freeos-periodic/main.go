// Command freeos-periodic runs a steady allocation load and calls debug.FreeOSMemory()
// every --every, to measure what the calls cost (duration, page faults, CPU, throughput, and
// the latency of each unit of work: one object allocated, written and stored).
package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"goreclaim/workloads/internal/lathist"
	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const pageSize = 4096

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("freeos-periodic")
	every := fs.Duration("every", 0, "period of debug.FreeOSMemory() calls; 0 means never")
	duration := fs.Duration("duration", 10*time.Second, "length of the load phase")
	objSize := units.NewSize("64KiB")
	fs.Var(objSize, "obj-size", "size of each allocated object")
	live := units.NewSize("128MiB")
	fs.Var(live, "live", "live set kept by a ring of objects")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}
	if objSize.Bytes <= 0 {
		return fmt.Errorf("--obj-size must be at least 1 byte, got %s", objSize)
	}

	r := telemetry.New(out, "freeos-periodic")
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	r.Phase("load")
	ringLen := live.Bytes / objSize.Bytes
	if ringLen < 1 {
		ringLen = 1
	}
	ring := make([][]byte, ringLen)

	stop := make(chan struct{})
	var calls int
	var caller sync.WaitGroup
	if *every > 0 {
		caller.Add(1)
		go func() {
			defer caller.Done()
			ticker := time.NewTicker(*every)
			defer ticker.Stop()
			for {
				select {
				case <-ticker.C:
					r.FreeOSMemory()
					calls++
				case <-stop:
					return
				}
			}
		}()
	}

	// A unit of work is one object: allocated, every page written, stored in the ring. One
	// clock read per unit both ends it and starts the next, so a unit's latency includes any
	// GC assist, stop-the-world pause or page fault it ran into. The histogram has a fixed
	// size, so the measurement itself neither grows the heap nor allocates.
	var lat lathist.Hist
	deadline := time.Now().Add(*duration)
	var next int64
	for prev := time.Now(); prev.Before(deadline); {
		// Batches keep the atomic counter and the deadline check off the per-object path.
		for k := 0; k < 16; k++ {
			obj := make([]byte, objSize.Bytes)
			for i := 0; i < len(obj); i += pageSize {
				obj[i] = byte(next)
			}
			obj[len(obj)-1] = byte(next)
			ring[next%ringLen] = obj
			next++
			now := time.Now()
			lat.Record(int64(now.Sub(prev)))
			prev = now
		}
		r.AddOps(16)
	}
	close(stop)
	caller.Wait()
	return r.End(
		telemetry.Field{Key: "freeos_calls", Value: calls},
		telemetry.Field{Key: "units", Value: lat.Count()},
		telemetry.Field{Key: "lat_p50_ns", Value: lat.Quantile(0.5)},
		telemetry.Field{Key: "lat_p99_ns", Value: lat.Quantile(0.99)},
		telemetry.Field{Key: "lat_max_ns", Value: lat.Max()},
	)
}
