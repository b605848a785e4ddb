//go:build go1.16
// +build go1.16

package telemetry

import (
	"runtime"
	"runtime/metrics"
)

// Runtime metrics reported next to MemStats, by the name the telemetry protocol uses.
// Only those the running Go knows (metrics.All) are read, so one source serves 1.16 to today;
// a name the running Go lacks is simply absent from the metrics lines.
var runtimeMetricNames = []struct{ name, key string }{
	{"gc_cpu_s", "/cpu/classes/gc/total:cpu-seconds"},
	{"scavenge_cpu_s", "/cpu/classes/scavenge/total:cpu-seconds"},
	{"heap_goal", "/gc/heap/goal:bytes"},
	{"memlimit", "/gc/gomemlimit:bytes"},
	{"tiny_allocs", "/gc/heap/tiny/allocs:objects"},
	// GC cycles by cause: forced ones are runtime.GC/FreeOSMemory; automatic ones are triggered
	// by the heap goal, the memory limit or the 2-minute periodic GC (runtime/proc.go forcegcperiod).
	{"gc_forced", "/gc/cycles/forced:gc-cycles"},
	{"gc_auto", "/gc/cycles/automatic:gc-cycles"},
	{"limiter_last_enabled", "/gc/limiter/last-enabled:gc-cycle"}, // GC CPU limiter, Go 1.19+; 0: never on
	// Heap memory by state: objects (live and not yet swept dead), stacks, free but still
	// mapped (idle, not released: may be resident), and released to the OS.
	{"heap_objects_bytes", "/memory/classes/heap/objects:bytes"},
	{"heap_stacks", "/memory/classes/heap/stacks:bytes"},
	{"heap_free", "/memory/classes/heap/free:bytes"},
	{"released_bytes", "/memory/classes/heap/released:bytes"},
}

func supportedMetrics() map[string]bool {
	supported := make(map[string]bool)
	for _, d := range metrics.All() {
		supported[d.Name] = true
	}
	return supported
}

// runtimeReader reads a fixed set of scalar runtime metrics into a reused slice, so a
// periodic read allocates nothing (allocation by the reporter would itself trigger GCs).
type runtimeReader struct {
	names   []string
	samples []metrics.Sample
}

func newRuntimeReader() *runtimeReader {
	supported := supportedMetrics()
	rr := &runtimeReader{}
	for _, m := range runtimeMetricNames {
		if supported[m.key] {
			rr.names = append(rr.names, m.name)
			rr.samples = append(rr.samples, metrics.Sample{Name: m.key})
		}
	}
	return rr
}

// read stores the values, in the order of rr.names, into vals.
func (rr *runtimeReader) read(vals []float64) {
	if len(rr.samples) == 0 {
		return
	}
	metrics.Read(rr.samples)
	for i, s := range rr.samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			vals[i] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			vals[i] = s.Value.Float64()
		default:
			vals[i] = -1
		}
	}
}

// ReadAllocCounters reads the runtime's cumulative allocation counts by size category.
// With runtime/metrics, /gc/heap/allocs-by-size covers every small size class (up to
// 32 KiB) with one bucket per class and puts large objects in its last (+Inf) bucket;
// MemStats.BySize stops at 19072 B and would misfile 19-32 KiB objects as large.
func ReadAllocCounters() AllocCounters {
	supported := supportedMetrics()
	const bySize, tiny = "/gc/heap/allocs-by-size:bytes", "/gc/heap/tiny/allocs:objects"
	if !supported[bySize] {
		return readMemStatsCounters()
	}
	samples := []metrics.Sample{{Name: bySize}}
	if supported[tiny] {
		samples = append(samples, metrics.Sample{Name: tiny})
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metrics.Read(samples)
	hist := samples[0].Value.Float64Histogram()
	c := AllocCounters{Mallocs: int64(ms.Mallocs), Source: "runtime/metrics"}
	for i, n := range hist.Counts {
		if i == len(hist.Counts)-1 {
			c.Large = int64(n)
		} else {
			c.Small += int64(n)
		}
	}
	if len(samples) > 1 {
		c.Tiny = int64(samples[1].Value.Uint64())
	} else {
		// Go 1.16 has the histogram but no tiny counter; MemStats.Mallocs counts every
		// tiny allocation on top of the blocks the histogram counts.
		c.Tiny = c.Mallocs - c.Small - c.Large
		c.Source = "runtime/metrics+memstats"
	}
	return c
}
