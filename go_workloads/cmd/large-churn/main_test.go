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

const mib = 1 << 20

func TestChurnKeepsLiveHeapNearTargetThenReleases(t *testing.T) {
	res := wltest.Run(t, []string{"--live=64MiB", "--min-size=33KiB", "--max-size=1MiB", "--long-frac=0.25",
		"--long-life=100ms", "--duration=600ms", "--idle=100ms", "--baseline=20ms", "--metrics-interval=50ms"}, nil)
	wltest.CheckProtocol(t, res, "large-churn", []string{"baseline", "churn", "release", "idle"}, "live_bytes")

	liveAtEnd := res.MetricBefore(t, "release", "live_bytes")
	if liveAtEnd < 40*mib || liveAtEnd > 90*mib {
		t.Errorf("live_bytes at the end of churn = %.0f MiB; want near the 64 MiB target", liveAtEnd/mib)
	}
	if inuse := res.MetricBefore(t, "release", "heap_inuse"); inuse < liveAtEnd {
		t.Errorf("heap_inuse %.0f MiB below live_bytes %.0f MiB", inuse/mib, liveAtEnd/mib)
	}
	if after := res.MetricBefore(t, "idle", "live_bytes"); after != 0 {
		t.Errorf("live_bytes after release = %v", after)
	}
	if inuse := res.MetricBefore(t, "idle", "heap_inuse"); inuse > 8*mib {
		t.Errorf("heap_inuse after release and GC = %.0f MiB", inuse/mib)
	}
	// Churn replaced objects well beyond the initial fill (64 MiB / ~0.5 MiB mean = ~128 objects),
	// including expired long-lived ones.
	if ops := res.Lines[len(res.Lines)-1].Num(t, "totals", "ops"); ops < 300 {
		t.Errorf("only %v objects allocated", ops)
	}
}

func TestKeepLongHoldsTheLongLivedObjects(t *testing.T) {
	res := wltest.Run(t, []string{"--live=64MiB", "--min-size=33KiB", "--max-size=1MiB", "--long-frac=0.25",
		"--long-life=10s", "--duration=300ms", "--idle=100ms", "--baseline=20ms", "--metrics-interval=50ms",
		"--keep-long=true", "--release-gcs=3"}, nil)
	wltest.CheckProtocol(t, res, "large-churn", []string{"baseline", "churn", "release", "idle"}, "live_bytes")
	kept := res.MetricBefore(t, "idle", "live_bytes")
	if kept < 12*mib || kept > 24*mib {
		t.Errorf("live_bytes after release = %.1f MiB; want the long-lived quarter of 64 MiB", kept/mib)
	}
	if alloc := res.MetricBefore(t, "idle", "heap_alloc"); alloc < kept {
		t.Errorf("heap_alloc %.1f MiB below the %.1f MiB kept", alloc/mib, kept/mib)
	}
	if gcs := res.MetricBefore(t, "idle", "num_gc") - res.MetricBefore(t, "release", "num_gc"); gcs < 3 {
		t.Errorf("num_gc rose by %v during release; want at least 3", gcs)
	}
}

func TestInvalidSizesAreRejected(t *testing.T) {
	if err := run([]string{"--min-size=1MiB", "--max-size=64KiB"}, os.Stdout); err == nil {
		t.Error("max-size below min-size accepted")
	}
	if err := run([]string{"--long-frac=1.5"}, os.Stdout); err == nil {
		t.Error("long-frac 1.5 accepted")
	}
	if err := run([]string{"--release-gcs=-1"}, os.Stdout); err == nil {
		t.Error("release-gcs -1 accepted")
	}
}
