package main

import (
	"os"
	"testing"

	"goreclaim/workloads/internal/wltest"
)

func TestMain(m *testing.M) {
	wltest.MaybeChild(run)
	os.Exit(m.Run())
}

func TestPeriodicFreeOSUnderLoad(t *testing.T) {
	res := wltest.Run(t, []string{"--every=50ms", "--duration=500ms", "--obj-size=64KiB", "--live=16MiB",
		"--baseline=50ms", "--metrics-interval=50ms"}, nil)
	wltest.CheckProtocol(t, res, "freeos-periodic", []string{"baseline", "load"})
	// A ticker: never more calls than periods in the load phase; fewer on a busy machine,
	// where a call (a full GC) can outlast its period, but more than one.
	calls := res.Of("freeos")
	if len(calls) < 2 || len(calls) > 11 {
		t.Errorf("%d freeos calls in 500ms at every=50ms", len(calls))
	}
	for _, c := range calls {
		if d := c.Num(t, "dur_ns"); d <= 0 {
			t.Errorf("freeos dur_ns = %v", d)
		}
	}
	end := res.Lines[len(res.Lines)-1]
	if got := end.Num(t, "totals", "freeos_calls"); int(got) != len(calls) {
		t.Errorf("totals.freeos_calls = %v; %d freeos lines", got, len(calls))
	}
	// How many is the machine's speed; that the load ran is the test's business.
	ops := end.Num(t, "totals", "ops")
	if ops < 1 {
		t.Errorf("no objects allocated in 500ms")
	}
	units := end.Num(t, "totals", "units")
	p50, p99, maxLat := end.Num(t, "totals", "lat_p50_ns"), end.Num(t, "totals", "lat_p99_ns"), end.Num(t, "totals", "lat_max_ns")
	t.Logf("%v units: p50 %v ns, p99 %v ns, max %v ns", units, p50, p99, maxLat)
	if units != ops {
		t.Errorf("totals.units = %v; want one per object, ops = %v", units, ops)
	}
	if !(p50 > 0 && p50 <= p99 && p99 <= maxLat) {
		t.Errorf("latencies not ordered: p50 %v, p99 %v, max %v", p50, p99, maxLat)
	}
	// The units share the 500 ms load: at most half of them can take over twice the mean.
	if p50 > 0.5e9/units*2 {
		t.Errorf("median unit %v ns; %v units in 500 ms", p50, units)
	}
	// ops grows during the load and the total matches the last metrics line.
	metrics := res.Of("metrics")
	if last := metrics[len(metrics)-1].Num(t, "m", "ops"); last != ops {
		t.Errorf("last metrics ops = %v, totals.ops = %v", last, ops)
	}
}

func TestNoCallsWhenEveryIsZero(t *testing.T) {
	res := wltest.Run(t, []string{"--duration=200ms", "--obj-size=4KiB", "--live=1MiB", "--baseline=10ms"}, nil)
	wltest.CheckProtocol(t, res, "freeos-periodic", []string{"baseline", "load"})
	if n := len(res.Of("freeos")); n != 0 {
		t.Errorf("%d freeos calls with every=0", n)
	}
}
