// Command freeos-periodic runs a steady allocation load and calls debug.FreeOSMemory()
// every --every, to measure what the calls cost (duration, page faults, CPU, throughput).
package main

import (
	"fmt"
	"io"
	"sync"
	"time"

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

	deadline := time.Now().Add(*duration)
	var next int64
	for time.Now().Before(deadline) {
		// Batches keep the clock reads and the atomic counter off the per-object path.
		for k := 0; k < 16; k++ {
			obj := make([]byte, objSize.Bytes)
			for i := 0; i < len(obj); i += pageSize {
				obj[i] = byte(next)
			}
			obj[len(obj)-1] = byte(next)
			ring[next%ringLen] = obj
			next++
		}
		r.AddOps(16)
	}
	close(stop)
	caller.Wait()
	return r.End(telemetry.Field{Key: "freeos_calls", Value: calls})
}
