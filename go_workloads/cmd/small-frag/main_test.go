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

// fragRun runs small-frag and records the child's VmRSS when each phase starts.
func fragRun(t *testing.T, phases []string, extra ...string) (*wltest.Result, map[string]int64) {
	args := append([]string{"--total=64MiB", "--obj-size=64B", "--baseline=20ms", "--idle=50ms",
		"--metrics-interval=1s"}, extra...)
	rss := map[string]int64{}
	res := wltest.Run(t, args, func(pid int, l wltest.Line) {
		if l.Ev == "phase" {
			kib, err := wltest.ProcStatusKiB(pid, "VmRSS")
			if err != nil {
				t.Errorf("reading the child's VmRSS: %v", err)
			}
			rss[l.Fields["name"].(string)] = kib * 1024
		}
	})
	wltest.CheckProtocol(t, res, "small-frag", phases, "live_bytes")
	return res, rss
}

// 10 % of the objects kept at random keep almost every span in use: even after two GCs and
// FreeOSMemory the heap in use and RSS stay near the peak while the live bytes are a tenth.
func TestScatteredSurvivorsKeepTheSpans(t *testing.T) {
	res, rss := fragRun(t, []string{"baseline", "allocate", "free", "release", "freeos", "idle"},
		"--free-frac=0.9", "--gcs=2", "--freeos=true")
	end := res.Lines[len(res.Lines)-1]
	objects, kept := end.Num(t, "totals", "objects"), end.Num(t, "totals", "kept_objects")
	if objects != 64*mib/64 || kept < 0.09*objects || kept > 0.11*objects {
		t.Errorf("%v objects, %v kept; want 1 Mi objects and about 10 %% kept", objects, kept)
	}
	if end.Num(t, "totals", "index_bytes") != objects*8 || end.Num(t, "totals", "ops") != objects {
		t.Errorf("index_bytes or ops do not match %v objects: %s", objects, end.Raw)
	}
	if peak := res.MetricBefore(t, "free", "live_bytes"); peak != 64*mib {
		t.Errorf("live_bytes after allocate = %v; want 64 MiB", peak)
	}
	live := res.MetricBefore(t, "idle", "live_bytes")
	if live != kept*64 {
		t.Errorf("live_bytes after release = %v; want kept x 64 = %v", live, kept*64)
	}
	inuse := res.MetricBefore(t, "idle", "heap_inuse")
	t.Logf("live %.1f MiB, heap_inuse %.1f MiB, VmRSS %.1f MiB at idle (peak VmRSS %.1f MiB)",
		live/mib, inuse/mib, float64(rss["idle"])/mib, float64(rss["free"])/mib)
	if inuse < 60*mib {
		t.Errorf("heap_inuse after GCs and FreeOSMemory = %.1f MiB; scattered survivors should pin about 64", inuse/mib)
	}
	if rss["idle"] < 56*mib {
		t.Errorf("VmRSS at idle = %d MiB; the pinned spans should stay resident", rss["idle"]/mib)
	}
}

// Freeing everything leaves no span in use, so the memory can all go back.
func TestFreeingEverythingReleasesTheSpans(t *testing.T) {
	res, _ := fragRun(t, []string{"baseline", "allocate", "free", "release", "freeos", "idle"},
		"--free-frac=1", "--freeos=true")
	if live := res.MetricBefore(t, "idle", "live_bytes"); live != 0 {
		t.Errorf("live_bytes = %v after freeing everything", live)
	}
	if inuse := res.MetricBefore(t, "idle", "heap_inuse"); inuse > 8*mib {
		t.Errorf("heap_inuse after freeing everything = %.1f MiB", inuse/mib)
	}
	if released := res.MetricBefore(t, "idle", "heap_released"); released < 56*mib {
		t.Errorf("heap_released after FreeOSMemory = %.1f MiB; want most of the 64 MiB", released/mib)
	}
}

func TestNoFreeOSPhaseByDefaultAndSeedRepeats(t *testing.T) {
	kept := map[float64]bool{}
	for i := 0; i < 2; i++ {
		res, _ := fragRun(t, []string{"baseline", "allocate", "free", "release", "idle"},
			"--total=1MiB", "--obj-size=1KiB", "--free-frac=0.5", "--seed=7", "--gcs=0")
		kept[res.Lines[len(res.Lines)-1].Num(t, "totals", "kept_objects")] = true
	}
	if len(kept) != 1 {
		t.Errorf("the same seed kept different counts: %v", kept)
	}
}

func TestInvalidFlagsAreRejected(t *testing.T) {
	for _, args := range [][]string{
		{"--obj-size=33KiB"}, {"--obj-size=0"}, {"--total=32B", "--obj-size=64B"}, {"--free-frac=1.5"}, {"--gcs=-1"},
	} {
		if err := run(args, os.Stdout); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
