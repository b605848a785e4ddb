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

var phases = []string{"baseline", "allocate", "release", "settle", "second", "hold"}

func runPressure(t *testing.T, via string) (*wltest.Result, map[string]int64) {
	rss := map[string]int64{}
	res := wltest.Run(t, []string{"--release-size=64MiB", "--second-size=48MiB", "--second-via=" + via,
		"--freeos=true", "--settle=100ms", "--hold=100ms", "--baseline=100ms", "--metrics-interval=50ms"},
		func(pid int, l wltest.Line) {
			if l.Ev == "phase" {
				kib, err := wltest.ProcStatusKiB(pid, "VmRSS")
				if err != nil {
					t.Errorf("reading the child's VmRSS: %v", err)
				}
				rss[l.Fields["name"].(string)] = kib * 1024
			}
		})
	wltest.CheckProtocol(t, res, "pressure", phases)
	if n := len(res.Of("freeos")); n != 1 {
		t.Errorf("%d freeos lines; want 1", n)
	}
	if released := res.MetricBefore(t, "settle", "heap_released"); released < 60*mib {
		t.Errorf("heap_released after the release = %.0f MiB; want the 64 MiB back", released/mib)
	}
	// Against the baseline, not the start of "second": with MADV_FREE (Go 1.15's default)
	// heap pages released lazily are still resident, and a heap "second" reuses them. VmRSS is
	// read when the test sees a phase line, so only readings in sleeping phases (baseline,
	// settle, hold) are stable: by the time an "allocate" line is read the child is touching.
	if grown := rss["hold"] - rss["baseline"]; grown < 44*mib {
		t.Errorf("VmRSS is %d MiB above the baseline while 48 MiB of new memory is touched", grown/mib)
	}
	if via == "mmap" {
		// From "settle", a sleep: by the time the test reads VmRSS on the "second" line, the
		// child may already have touched part of the new memory.
		if grown := rss["hold"] - rss["settle"]; grown < 44*mib {
			t.Errorf("VmRSS grew by %d MiB while touching 48 MiB of fresh mmap memory", grown/mib)
		}
	}
	return res, rss
}

func TestSecondViaMmapStaysOutsideTheHeap(t *testing.T) {
	res, _ := runPressure(t, "mmap")
	if inuse := res.MetricBefore(t, "hold", "heap_inuse"); inuse > 16*mib {
		t.Errorf("heap_inuse = %.0f MiB with mmap'd second memory", inuse/mib)
	}
}

func TestSecondViaHeap(t *testing.T) {
	res, _ := runPressure(t, "heap")
	if inuse := res.MetricBefore(t, "hold", "heap_inuse"); inuse < 48*mib {
		t.Errorf("heap_inuse = %.0f MiB with 48 MiB allocated on the heap", inuse/mib)
	}
}
