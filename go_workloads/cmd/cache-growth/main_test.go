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
	return serveWith(t, []string{"baseline", "serve"}, extra...)
}

func serveWith(t *testing.T, phases []string, extra ...string) (*wltest.Result, float64, float64) {
	args := append([]string{"--rate=20000", "--duration=500ms", "--value-size=1KiB", "--baseline=20ms",
		"--metrics-interval=50ms"}, extra...)
	res := wltest.Run(t, args, nil)
	wltest.CheckProtocol(t, res, "cache-growth", phases, "cache_entries", "live_bytes")
	end := res.Lines[len(res.Lines)-1]
	ops := end.Num(t, "totals", "ops")
	if ops != 10000 {
		t.Errorf("%v requests served; want rate x duration = 10000", ops)
	}
	// Paced: never faster than the rate (how much slower is the machine's business).
	if wall := end.Num(t, "totals", "wall_s"); wall < 0.5 {
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
		if got := metrics[len(metrics)-1].Num(t, "m", "live_bytes"); got != 10000*1024 {
			t.Errorf("live_bytes metric = %v; want 10000 values of 1 KiB", got)
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
	// Requests are stamped when they were due, so this holds however late the ticks came.
	if math.Abs(entries-2000) > 1 {
		t.Errorf("ttl cache holds %v entries; want rate x ttl = 2000", entries)
	}
}

func TestKeyspaceMakesHits(t *testing.T) {
	_, entries, misses := serve(t, "--policy=unbounded", "--keyspace=100")
	if entries != 100 || misses != 100 {
		t.Errorf("keyspace 100: %v entries, %v misses; want 100 and 100", entries, misses)
	}
}

// After every entry is deleted and two GCs ran, the values are gone but the map keeps its
// buckets (golang/go#20135): the heap stays above its size before serving.
func TestDrainEmptiesTheCacheButNotTheMap(t *testing.T) {
	for _, policy := range []string{"unbounded", "lru"} {
		res, entries, _ := serveWith(t, []string{"baseline", "serve", "drain", "idle"},
			"--policy="+policy, "--capacity=100000", "--drain=true", "--idle=100ms")
		end := res.Lines[len(res.Lines)-1]
		if entries != 0 || end.Num(t, "totals", "drained") != 10000 {
			t.Errorf("%s: %v entries left, %v drained; want 0 and 10000", policy, entries, end.Num(t, "totals", "drained"))
		}
		if live := res.MetricBefore(t, "idle", "live_bytes"); live != 0 {
			t.Errorf("%s: live_bytes after the drain = %v", policy, live)
		}
		before := res.MetricBefore(t, "serve", "heap_alloc")
		served := res.MetricBefore(t, "drain", "heap_alloc")
		drained := res.MetricBefore(t, "idle", "heap_alloc")
		t.Logf("%s: heap_alloc before serve %.0f KiB, after serve %.0f KiB, after drain %.0f KiB",
			policy, before/1024, served/1024, drained/1024)
		if drained > served-9000*1024 {
			t.Errorf("%s: heap_alloc fell by only %.0f KiB when 10000 values of 1 KiB were freed", policy, (served-drained)/1024)
		}
		// 10000 uint64 keys with 8-byte or more values: at least 160 KiB of buckets.
		if drained-before < 160*1024 {
			t.Errorf("%s: heap_alloc after the drain is only %.0f KiB above the baseline; the map's buckets should stay",
				policy, (drained-before)/1024)
		}
	}
}
