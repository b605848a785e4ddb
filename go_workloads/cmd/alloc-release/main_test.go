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

// rssAt runs alloc-release and records the child's VmRSS when each phase starts.
func rssAt(t *testing.T, args []string) (*wltest.Result, map[string]int64) {
	rss := map[string]int64{}
	res := wltest.Run(t, args, func(pid int, l wltest.Line) {
		if l.Ev != "phase" {
			return
		}
		kib, err := wltest.ProcStatusKiB(pid, "VmRSS")
		if err != nil {
			t.Errorf("reading the child's VmRSS: %v", err)
		}
		rss[l.Fields["name"].(string)] = kib * 1024
	})
	return res, rss
}

func TestTouchedSpikeIsResidentAndInHeap(t *testing.T) {
	res, rss := rssAt(t, []string{"--size=256MiB", "--touch=true", "--baseline=100ms", "--hold=300ms",
		"--idle=200ms", "--freeos=true", "--metrics-interval=50ms"})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "allocate", "hold", "release", "freeos", "idle"})
	inuse := res.MetricBefore(t, "release", "heap_inuse")
	if inuse < 250*mib || inuse > 270*mib {
		t.Errorf("heap_inuse during hold = %.0f MiB; want about 256", inuse/mib)
	}
	if grown := rss["hold"] - rss["allocate"]; grown < 240*mib {
		t.Errorf("VmRSS grew by %d MiB while touching 256 MiB", grown/mib)
	}
	if after := res.MetricBefore(t, "idle", "heap_inuse"); after > 32*mib {
		t.Errorf("heap_inuse after release and FreeOSMemory = %.0f MiB", after/mib)
	}
	if len(res.Of("freeos")) != 1 {
		t.Errorf("want one freeos line, got %d", len(res.Of("freeos")))
	}
}

func TestArticleSnippetNeverBecomesResident(t *testing.T) {
	res, rss := rssAt(t, []string{"--size=256MiB", "--touch=false", "--baseline=50ms", "--hold=200ms",
		"--idle=100ms", "--gcs=0", "--metrics-interval=50ms"})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "allocate", "hold", "release", "idle"})
	if inuse := res.MetricBefore(t, "release", "heap_inuse"); inuse < 250*mib {
		t.Errorf("heap_inuse during hold = %.0f MiB; the untouched slice still counts as in use", inuse/mib)
	}
	if rss["release"] > 64*mib {
		t.Errorf("VmRSS during hold = %d MiB; an untouched 256 MiB slice should not be resident", rss["release"]/mib)
	}
}

func TestLivePhaseAndSpacedGCs(t *testing.T) {
	res, _ := rssAt(t, []string{"--size=16MiB", "--live=8MiB", "--baseline=20ms", "--hold=20ms",
		"--idle=50ms", "--gcs=3", "--gc-interval=30ms", "--metrics-interval=1s"})
	wltest.CheckProtocol(t, res, "alloc-release", []string{"baseline", "live", "allocate", "hold", "release", "idle"})
	before := res.MetricBefore(t, "release", "num_gc")
	after := res.MetricBefore(t, "idle", "num_gc")
	if after-before < 3 {
		t.Errorf("num_gc rose by %.0f during release; want at least 3", after-before)
	}
	if live := res.MetricBefore(t, "idle", "heap_inuse"); live < 8*mib {
		t.Errorf("heap_inuse after release = %.0f MiB; the 8 MiB live set must survive", live/mib)
	}
}

func TestBadFlagIsRejected(t *testing.T) {
	if err := run([]string{"--size=12XB"}, os.Stdout); err == nil {
		t.Fatal("--size=12XB accepted")
	}
}
