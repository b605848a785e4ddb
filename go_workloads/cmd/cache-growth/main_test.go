package main

import (
	"math"
	"os"
	"testing"

	"goreclaim/workloads/internal/wltest"
)

func TestMain(m *testing.M) {
	wltest.MaybeChild(run)
	os.Exit(m.Run())
}

func serve(t *testing.T, extra ...string) (*wltest.Result, float64, float64) {
	args := append([]string{"--rate=20000", "--duration=500ms", "--value-size=1KiB", "--baseline=20ms",
		"--metrics-interval=50ms"}, extra...)
	res := wltest.Run(t, args, nil)
	wltest.CheckProtocol(t, res, "cache-growth", []string{"baseline", "serve"}, "cache_entries")
	end := res.Lines[len(res.Lines)-1]
	ops := end.Num(t, "totals", "ops")
	if ops != 10000 {
		t.Errorf("%v requests served; want rate x duration = 10000", ops)
	}
	wall := end.Num(t, "totals", "wall_s")
	if wall < 0.5 || wall > 1.5 {
		t.Errorf("wall_s = %v for a 500ms serve phase", wall)
	}
	return res, end.Num(t, "totals", "cache_entries"), end.Num(t, "totals", "misses")
}

func TestUnboundedKeepsEveryEntry(t *testing.T) {
	res, entries, _ := serve(t, "--policy=unbounded")
	if entries != 10000 {
		t.Errorf("unbounded cache holds %v entries; want all 10000", entries)
	}
	if grown := res.MetricBefore(t, "serve", "heap_inuse"); grown > 0 {
		metrics := res.Of("metrics")
		last := metrics[len(metrics)-1].Num(t, "m", "heap_inuse")
		if last-grown < 10000*1024 {
			t.Errorf("heap_inuse grew by %.0f KiB; 10000 values of 1 KiB are live", (last-grown)/1024)
		}
		if got := metrics[len(metrics)-1].Num(t, "m", "cache_entries"); got != 10000 {
			t.Errorf("cache_entries metric = %v", got)
		}
	}
}

func TestLRUStaysAtCapacity(t *testing.T) {
	_, entries, _ := serve(t, "--policy=lru", "--capacity=2000")
	if entries != 2000 {
		t.Errorf("lru cache holds %v entries; want its capacity 2000", entries)
	}
}

func TestTTLHoldsAboutRateTimesTTL(t *testing.T) {
	_, entries, _ := serve(t, "--policy=ttl", "--ttl=100ms")
	if math.Abs(entries-2000) > 600 {
		t.Errorf("ttl cache holds %v entries; want about rate x ttl = 2000", entries)
	}
}

func TestKeyspaceMakesHits(t *testing.T) {
	_, entries, misses := serve(t, "--policy=unbounded", "--keyspace=100")
	if entries != 100 || misses != 100 {
		t.Errorf("keyspace 100: %v entries, %v misses; want 100 and 100", entries, misses)
	}
}
