package main

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"goreclaim/workloads/internal/wltest"
)

func TestMain(m *testing.M) {
	wltest.MaybeChild(run)
	os.Exit(m.Run())
}

// near allows the few hundred objects the runtime and the reporter allocate meanwhile.
func near(got, want float64) bool { return math.Abs(got-want) <= 0.02*want+2000 }

type sizeLine struct{ size, ops, tiny, small, large float64 }

func sizesOf(t *testing.T, res *wltest.Result) ([]sizeLine, string) {
	var out []sizeLine
	source := ""
	for _, l := range res.Of("sizes") {
		out = append(out, sizeLine{l.Num(t, "size"), l.Num(t, "ops"), l.Num(t, "tiny_allocs"),
			l.Num(t, "small_allocs"), l.Num(t, "large_allocs")})
		if l.Num(t, "ops_per_s") <= 0 {
			t.Errorf("ops_per_s <= 0: %s", l.Raw)
		}
		source, _ = l.Fields["counters"].(string)
	}
	return out, source
}

func TestCountersClassifyEachSize(t *testing.T) {
	res := wltest.Run(t, []string{"--sizes=8B,1KiB,24KiB,64KiB", "--per-size=250ms", "--live=4MiB",
		"--baseline=20ms", "--metrics-interval=50ms", "--goroutines=2"}, nil)
	wltest.CheckProtocol(t, res, "small-churn", []string{"baseline", "churn"})
	lines, source := sizesOf(t, res)
	if len(lines) != 4 {
		t.Fatalf("%d sizes lines; want 4", len(lines))
	}
	t.Logf("counters from %s", source)
	for _, s := range lines {
		t.Logf("size %6.0f: ops %9.0f tiny %9.0f small %9.0f large %9.0f", s.size, s.ops, s.tiny, s.small, s.large)
		if s.ops < 1000 {
			t.Errorf("size %.0f: only %.0f ops", s.size, s.ops)
		}
	}
	tiny, small, mid, large := lines[0], lines[1], lines[2], lines[3]
	switch source {
	case "runtime/metrics", "runtime/metrics+memstats":
		// 8 B pointer-free: two objects share one 16 B block. The object that opens a block
		// counts as a 16 B size-class allocation; the tiny counter counts only the ones
		// packed into an existing block.
		if !near(tiny.tiny, tiny.ops/2) || !near(tiny.small, tiny.ops/2) || !near(tiny.tiny+tiny.small, tiny.ops) || tiny.large > 100 {
			t.Errorf("8B: %+v; want tiny = small = ops/2, no large", tiny)
		}
		for _, s := range []sizeLine{small, mid} {
			if !near(s.small, s.ops) || s.tiny > 1000 || s.large > 100 {
				t.Errorf("%.0f B: %+v; want small = ops", s.size, s)
			}
		}
		if !near(large.large, large.ops) || large.tiny > 1000 {
			t.Errorf("64KiB: %+v; want large = ops", large)
		}
	case "memstats":
		// MemStats.BySize stops at 19072 B, and Mallocs counts tiny allocations too: what
		// is not in BySize (tiny, 19-32 KiB, large) lands in large_allocs.
		if tiny.tiny != -1 || !near(tiny.small, tiny.ops/2) || !near(tiny.large, tiny.ops/2) {
			t.Errorf("8B: %+v; want tiny -1, small = ops/2 (blocks), large = ops/2 (packed tiny allocations)", tiny)
		}
		if !near(small.small, small.ops) {
			t.Errorf("1KiB: %+v; want small = ops", small)
		}
		if !near(mid.large, mid.ops) || !near(large.large, large.ops) {
			t.Errorf("24KiB, 64KiB: %+v %+v; want large = ops (outside BySize)", mid, large)
		}
	default:
		t.Errorf("unknown counters source %q", source)
	}
}

func TestPointerObjectsAreNeverTiny(t *testing.T) {
	res := wltest.Run(t, []string{"--sizes=8B,15B", "--pointers=true", "--per-size=200ms", "--baseline=10ms",
		"--goroutines=1"}, nil)
	wltest.CheckProtocol(t, res, "small-churn", []string{"baseline", "churn"})
	lines, source := sizesOf(t, res)
	if len(lines) != 2 {
		t.Fatalf("%d sizes lines; want 2", len(lines))
	}
	if obj := res.Of("sizes")[1].Num(t, "obj_size"); obj != 16 {
		t.Errorf("15B with pointers allocated as %v B; want 16 (whole pointer words)", obj)
	}
	for _, s := range lines {
		if source != "memstats" && s.tiny > 1000 {
			t.Errorf("%.0f B with pointers: %.0f tiny allocations", s.size, s.tiny)
		}
		if !near(s.small, s.ops) {
			t.Errorf("%.0f B with pointers: %+v; want small = ops", s.size, s)
		}
	}
}

// The article's new(struct{ a int64; b bool }) is 16 bytes and pointer-free: a 16 B
// size-class object, never a tiny allocation.
func TestStruct16IsASizeClassObject(t *testing.T) {
	res := wltest.Run(t, []string{"--shape=struct16", "--per-size=200ms", "--baseline=10ms", "--goroutines=1"}, nil)
	wltest.CheckProtocol(t, res, "small-churn", []string{"baseline", "churn"})
	lines, source := sizesOf(t, res)
	if len(lines) != 1 {
		t.Fatalf("%d sizes lines; want 1", len(lines))
	}
	l := res.Of("sizes")[0]
	if l.Num(t, "obj_size") != 16 || l.Fields["shape"] != "struct16" || l.Fields["size_text"] != "16B" {
		t.Errorf("sizes line: %s", l.Raw)
	}
	s := lines[0]
	if s.ops < 1000 || !near(s.small, s.ops) || (source != "memstats" && s.tiny > 1000) {
		t.Errorf("struct16: %+v (%s); want small = ops, no tiny", s, source)
	}
}

func TestStruct16RejectsOtherSizesAndPointers(t *testing.T) {
	for _, args := range [][]string{
		{"--shape=struct16", "--sizes=8B"},
		{"--shape=struct16", "--sizes=16B,32B"},
		{"--shape=struct16", "--pointers=true"},
	} {
		if err := run(args, os.Stdout); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// --live-growth adds live bytes at its rate for as long as the churn runs, and says so in live_bytes.
func TestLiveGrowthGrowsTheLiveHeapAtItsRate(t *testing.T) {
	res := wltest.Run(t, []string{"--sizes=256B", "--pointers", "--live=8MiB", "--live-growth=32MiB",
		"--per-size=1s", "--baseline=10ms", "--metrics-interval=50ms"}, nil)
	var most float64
	for _, l := range res.Of("metrics") {
		if m, ok := l.Fields["m"].(map[string]interface{}); ok {
			if n, ok := m["live_bytes"].(json.Number); ok {
				if v, err := n.Float64(); err == nil && v > most {
					most = v
				}
			}
		}
	}
	// 8 MiB + 1 s × 32 MiB/s, in whole 64 KiB chunks every 10 ms; a slow host grows a little less.
	if most < 32<<20 || most > 44<<20 {
		t.Errorf("largest live_bytes = %.1f MiB; want about 40", most/(1<<20))
	}
	without := wltest.Run(t, []string{"--sizes=256B", "--per-size=100ms", "--baseline=10ms"}, nil)
	for _, l := range without.Of("metrics") {
		if m, ok := l.Fields["m"].(map[string]interface{}); ok && m["live_bytes"] != nil {
			t.Fatalf("live_bytes without --live-growth: %v", m["live_bytes"])
		}
	}
}
