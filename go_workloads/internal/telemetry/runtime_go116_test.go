//go:build go1.16
// +build go1.16

package telemetry

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// Each runtime metric is read exactly when the running Go has it, and a name it lacks is
// left out rather than reported as an error or a placeholder.
func TestRuntimeMetricsFollowTheRunningGo(t *testing.T) {
	supported := map[string]bool{}
	for _, d := range metrics.All() {
		supported[d.Name] = true
	}
	rr := newRuntimeReader()
	got := map[string]bool{}
	for _, n := range rr.names {
		got[n] = true
	}
	for _, m := range runtimeMetricNames {
		if got[m.name] != supported[m.key] {
			t.Errorf("%s (%s): read %v, supported by %s %v", m.name, m.key, got[m.name], runtime.Version(), supported[m.key])
		}
	}
	t.Logf("%s reads %v", runtime.Version(), rr.names)
}

func TestForcedGCsAreCounted(t *testing.T) {
	rr := newRuntimeReader()
	idx := -1
	for i, n := range rr.names {
		if n == "gc_forced" {
			idx = i
		}
	}
	if idx < 0 {
		t.Skipf("%s has no /gc/cycles/forced", runtime.Version())
	}
	vals := make([]float64, len(rr.names))
	rr.read(vals)
	before := vals[idx]
	runtime.GC()
	runtime.GC()
	rr.read(vals)
	if vals[idx]-before < 2 {
		t.Errorf("gc_forced rose by %v after two runtime.GC() calls", vals[idx]-before)
	}
}
