package telemetry

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/ioutil"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestNowIsClockMonotonic(t *testing.T) {
	var ts syscall.Timespec
	before := Now()
	if err := clockGettimeViaSyscall(&ts); err != nil {
		t.Fatal(err)
	}
	after := Now()
	if ref := ts.Nano(); ref < before || ref > after {
		t.Errorf("CLOCK_MONOTONIC read independently (%d) is not between two Now() calls (%d, %d)", ref, before, after)
	}
}

func clockGettimeViaSyscall(ts *syscall.Timespec) error {
	// Through the scheduler-aware Syscall, unlike Now's RawSyscall.
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(ts)), 0); e != 0 {
		return e
	}
	return nil
}

func TestAppendNumber(t *testing.T) {
	cases := map[float64]string{
		0: "0", 1 << 40: "1099511627776", -3: "-3", 0.25: "0.25", math.NaN(): "null",
		math.Inf(1): "null", 1e300: "1e+300", float64(math.MaxInt64): "9.223372036854776e+18",
	}
	for v, want := range cases {
		if got := string(appendNumber(nil, v)); got != want {
			t.Errorf("appendNumber(%v) = %s; want %s", v, got, want)
		}
	}
}

func TestLinesAreJSONWithOrderedKeys(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, "test")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("name", "a \"quoted\"\n\u00e9 value", "")
	var extra int64 = 7
	r.AddMetric("live_bytes", func() float64 { return float64(atomic.LoadInt64(&extra)) })
	r.Start(fs, time.Hour)
	r.Phase("one")
	r.Emit("sizes", Field{"size", int64(8)}, Field{"text", "8B\t<&>"}, Field{"ok", true})
	r.AddOps(5)
	if err := r.End(Field{"custom", 1.5}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{"start", "metrics", "phase", "sizes", "metrics", "end"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines; want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, `{"t":`) || !strings.Contains(line[:40], `,"ev":"`+want[i]+`"`) {
			t.Errorf("line %d does not start with t then ev=%s: %s", i, want[i], line)
		}
		var obj map[string]interface{}
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Errorf("line %d is not JSON: %v: %s", i, err, line)
		}
		if i == 0 && obj["args"].(map[string]interface{})["name"] != "a \"quoted\"\n\u00e9 value" {
			t.Errorf("args did not round-trip: %s", line)
		}
		if i == 4 {
			m := obj["m"].(map[string]interface{})
			if m["ops"] != 5.0 || m["live_bytes"] != 7.0 {
				t.Errorf("ops/live_bytes in the last metrics line: %s", line)
			}
		}
		if i == 5 {
			totals := obj["totals"].(map[string]interface{})
			if totals["custom"] != 1.5 || totals["ops"] != 5.0 {
				t.Errorf("end totals: %s", line)
			}
		}
	}
}

// The metrics goroutine runs through idle phases: if it allocated, it would itself
// trigger the garbage collections an idle phase is meant to be free of.
func TestWriteMetricsDoesNotAllocate(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, "test")
	r.AddMetric("live_bytes", func() float64 { return 1 })
	r.Start(flag.NewFlagSet("test", flag.ContinueOnError), time.Hour)
	defer r.End()
	r.WriteMetrics()
	out.Grow(1 << 20)
	if allocs := testing.AllocsPerRun(100, r.WriteMetrics); allocs > 0 {
		t.Errorf("WriteMetrics allocates %.1f objects per call", allocs)
	}
}

func TestAllocCountersAreCumulative(t *testing.T) {
	before := ReadAllocCounters()
	for i := 0; i < 1000; i++ {
		sink = make([]byte, 64<<10)
	}
	after := ReadAllocCounters()
	if after.Mallocs-before.Mallocs < 1000 {
		t.Errorf("Mallocs rose by %d after 1000 allocations", after.Mallocs-before.Mallocs)
	}
	if after.Large-before.Large < 1000 {
		t.Errorf("large allocations rose by %d after 1000 objects of 64 KiB (%s)", after.Large-before.Large, after.Source)
	}
}

var sink []byte

// Start waits for the harness's word only when told to, and then says so in its start line.
func TestTracerWaitOnlyWhenAsked(t *testing.T) {
	start := func() string {
		var buf bytes.Buffer
		r := New(&buf, "t")
		r.Start(flag.NewFlagSet("t", flag.ContinueOnError), time.Hour)
		_ = r.End()
		return strings.SplitN(buf.String(), "\n", 2)[0]
	}
	if line := start(); strings.Contains(line, "tracer_wait_ns") {
		t.Errorf("start line without %s mentions the tracer: %s", WaitForTracerEnv, line)
	}
	ready := t.TempDir() + "/traced"
	os.Setenv(WaitForTracerEnv, ready) // t.Setenv is not in Go 1.15
	defer os.Unsetenv(WaitForTracerEnv)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = ioutil.WriteFile(ready, nil, 0644)
	}()
	line := start()
	if !strings.Contains(line, `"traced":true`) || !strings.Contains(line, `"tracer_wait_ns":`) {
		t.Errorf("start line after waiting for %s: %s", ready, line)
	}
}
