// Package telemetry writes the workload side of the telemetry protocol of
// docs/ARCHITECTURE.md: JSON lines on stdout, each one object with "t" (CLOCK_MONOTONIC ns)
// and "ev", each written with a single Write so lines never interleave.
package telemetry

import (
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Field is one key of an event line, kept in the order given.
type Field struct {
	Key   string
	Value interface{}
}

// AllocCounters are cumulative allocation counts by the runtime's size categories.
type AllocCounters struct {
	Tiny    int64  // tiny-allocator allocations (< 16 B, pointer-free); -1 where unknown
	Small   int64  // objects from size classes (up to 32 KiB); tiny blocks count here too
	Large   int64  // objects above 32 KiB, allocated straight from the heap
	Mallocs int64  // MemStats.Mallocs, for reference
	Source  string // which counters these come from
}

// readMemStatsCounters is what MemStats alone can tell: BySize stops at 19072 B, and
// Mallocs also counts tiny allocations, so Large = Mallocs - Small mixes large objects,
// 19073-32768 B objects and tiny allocations.
func readMemStatsCounters() AllocCounters {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c := AllocCounters{Tiny: -1, Mallocs: int64(ms.Mallocs), Source: "memstats"}
	for _, b := range ms.BySize {
		c.Small += int64(b.Mallocs)
	}
	c.Large = c.Mallocs - c.Small
	return c
}

// memStatsNames are always present in a metrics line, in this order; then the runtime
// metrics the running Go supports, then "ops", then the workload's own.
var memStatsNames = []string{
	"heap_alloc", "heap_inuse", "heap_idle", "heap_released", "heap_sys", "sys", "next_gc",
	"num_gc", "pause_total_ns", "gc_cpu_fraction", "total_alloc", "mallocs", "frees",
}

// Run is one workload run's telemetry: the start line, phases, periodic metrics and the end.
type Run struct {
	ops uint64 // atomic; first in the struct for 64-bit alignment on 32-bit platforms

	workload string
	out      io.Writer

	mu       sync.Mutex // guards everything below and serialises writes
	buf      []byte
	ms       runtime.MemStats
	rt       *runtimeReader
	names    []string
	vals     []float64
	extras   []func() float64
	startT   int64
	writeErr error

	stop chan struct{}
	done chan struct{}
}

// New returns a Run writing to out (the workload's stdout).
func New(out io.Writer, workload string) *Run {
	return &Run{workload: workload, out: out, buf: make([]byte, 0, 4096)}
}

// AddMetric registers a workload-specific metric (e.g. live_bytes); call before Start.
// read is called from the metrics goroutine, so it must be safe for concurrent use.
func (r *Run) AddMetric(name string, read func() float64) {
	r.names = append(r.names, name)
	r.extras = append(r.extras, read)
}

// AddOps counts units of work done (the `ops` metric and total).
func (r *Run) AddOps(n uint64) { atomic.AddUint64(&r.ops, n) }

// Ops returns the work done so far.
func (r *Run) Ops() uint64 { return atomic.LoadUint64(&r.ops) }

// Start writes the start line and starts writing metrics every interval.
func (r *Run) Start(fs *flag.FlagSet, interval time.Duration) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	r.rt = newRuntimeReader()
	extraNames := r.names
	r.names = append(append(append([]string{}, memStatsNames...), r.rt.names...), "ops")
	r.names = append(r.names, extraNames...)
	r.vals = make([]float64, len(r.names))

	args := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { args[f.Name] = f.Value.String() })
	gogc := debug.SetGCPercent(-1) // reading the effective value means setting it back
	debug.SetGCPercent(gogc)
	var traced []Field
	if readyFile := os.Getenv(WaitForTracerEnv); readyFile != "" {
		waited, ok := waitForTracer(readyFile)
		traced = []Field{{"tracer_wait_ns", int64(waited)}, {"traced", ok}}
	}
	r.startT = Now()
	r.Emit("start", append([]Field{
		Field{"workload", r.workload},
		Field{"go_version", runtime.Version()},
		Field{"env", map[string]string{
			"GOGC": os.Getenv("GOGC"), "GODEBUG": os.Getenv("GODEBUG"), "GOMEMLIMIT": os.Getenv("GOMEMLIMIT"),
		}},
		Field{"gogc_percent", gogc},
		Field{"memlimit_bytes", effectiveMemLimit()},
		Field{"gomaxprocs", runtime.GOMAXPROCS(0)},
		Field{"pid", os.Getpid()},
		Field{"args", args},
	}, traced...)...)

	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				r.WriteMetrics()
			case <-r.stop:
				return
			}
		}
	}()
}

// WriteMetrics writes one metrics line now. It allocates nothing once warmed up, so the
// reporter does not itself trigger garbage collections during idle phases.
func (r *Run) WriteMetrics() {
	r.mu.Lock()
	defer r.mu.Unlock()
	runtime.ReadMemStats(&r.ms)
	ms := &r.ms
	v := r.vals
	v[0], v[1], v[2], v[3] = float64(ms.HeapAlloc), float64(ms.HeapInuse), float64(ms.HeapIdle), float64(ms.HeapReleased)
	v[4], v[5], v[6], v[7] = float64(ms.HeapSys), float64(ms.Sys), float64(ms.NextGC), float64(ms.NumGC)
	v[8], v[9], v[10] = float64(ms.PauseTotalNs), ms.GCCPUFraction, float64(ms.TotalAlloc)
	v[11], v[12] = float64(ms.Mallocs), float64(ms.Frees)
	i := len(memStatsNames)
	r.rt.read(v[i : i+len(r.rt.names)])
	i += len(r.rt.names)
	v[i] = float64(r.Ops())
	i++
	for _, read := range r.extras {
		v[i] = read()
		i++
	}

	b := r.head("metrics")
	b = append(b, `,"m":{`...)
	for k, name := range r.names {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = appendNumber(b, v[k])
	}
	b = append(b, "}}\n"...)
	r.write(b)
}

// Phase writes a metrics line (the state at the end of the previous phase), then the
// phase line of the phase that starts now.
func (r *Run) Phase(name string) {
	r.WriteMetrics()
	r.Emit("phase", Field{"name", name})
}

// FreeOSMemory calls debug.FreeOSMemory and writes a freeos line with the call's duration.
func (r *Run) FreeOSMemory() time.Duration {
	t0 := Now()
	debug.FreeOSMemory()
	dur := Now() - t0
	r.Emit("freeos", Field{"dur_ns", dur})
	return time.Duration(dur)
}

// Emit writes one event line with the given fields after "t" and "ev".
func (r *Run) Emit(ev string, fields ...Field) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.head(ev)
	for _, f := range fields {
		b = append(b, ',')
		b = strconv.AppendQuote(b, f.Key)
		b = append(b, ':')
		b = appendValue(b, f.Value)
	}
	b = append(b, "}\n"...)
	r.write(b)
}

// End stops the metrics goroutine, writes a final metrics line and the end line with
// the totals every workload reports plus the workload's own, and returns the first
// write error (stdout gone), if any.
func (r *Run) End(extra ...Field) error {
	if r.stop != nil {
		close(r.stop)
		<-r.done
	}
	r.WriteMetrics()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	totals := []Field{
		{"num_gc", ms.NumGC},
		{"pause_total_ns", ms.PauseTotalNs},
		{"utime_s", timevalSeconds(ru.Utime)},
		{"stime_s", timevalSeconds(ru.Stime)},
		{"minflt", ru.Minflt},
		{"majflt", ru.Majflt},
		{"ops", r.Ops()},
		{"wall_s", float64(Now()-r.startT) / 1e9},
	}
	totals = append(totals, extra...)
	r.Emit("end", Field{"totals", orderedObject(totals)})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writeErr
}

func timevalSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// head starts a line in the reused buffer; callers hold r.mu.
func (r *Run) head(ev string) []byte {
	b := append(r.buf[:0], `{"t":`...)
	b = strconv.AppendInt(b, Now(), 10)
	b = append(b, `,"ev":`...)
	b = strconv.AppendQuote(b, ev)
	return b
}

// write sends one whole line in one Write; callers hold r.mu.
func (r *Run) write(b []byte) {
	r.buf = b[:0]
	if r.writeErr != nil {
		return
	}
	if _, err := r.out.Write(b); err != nil {
		r.writeErr = err
	}
}

// orderedObject is a JSON object whose keys keep their order.
type orderedObject []Field

func appendValue(b []byte, v interface{}) []byte {
	switch x := v.(type) {
	case orderedObject:
		b = append(b, '{')
		for i, f := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, f.Key)
			b = append(b, ':')
			b = appendValue(b, f.Value)
		}
		return append(b, '}')
	case float64:
		return appendNumber(b, x)
	case string:
		// encoding/json escapes exactly as JSON requires; strconv.Quote may emit \x.. escapes.
	}
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(err.Error())
	}
	return append(b, enc...)
}

// appendNumber writes integers without an exponent and non-finite values as null
// (JSON has no NaN or Inf).
func appendNumber(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return append(b, "null"...)
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.AppendInt(b, int64(v), 10)
	default:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
}
