package lathist

import (
	"math/rand"
	"sort"
	"testing"
)

func TestBucketsCoverEveryValueInOrder(t *testing.T) {
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 20, 1<<20 + 1, 1<<40 - 1, 1<<63 + 12345, 1<<64 - 1} {
		i := index(v)
		if i < 0 || i >= buckets {
			t.Fatalf("index(%d) = %d outside [0, %d)", v, i, buckets)
		}
		if upper(i) < v || (i > 0 && upper(i-1) >= v) {
			t.Errorf("value %d in bucket %d = (%d, %d]", v, i, upper(i-1), upper(i))
		}
	}
	for i := 1; i < buckets; i++ {
		if upper(i) <= upper(i-1) {
			t.Fatalf("bucket bounds not increasing at %d: %d, %d", i, upper(i-1), upper(i))
		}
	}
}

func TestQuantilesWithinBucketError(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var h Hist
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(rng.ExpFloat64() * 20000)
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(q*float64(len(vals))+0.999999) - 1
		exact := uint64(vals[rank])
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.0625+1 {
			t.Errorf("q%.3f = %d; exact %d", q, got, exact)
		}
	}
	if h.Max() != uint64(vals[len(vals)-1]) || h.Count() != uint64(len(vals)) {
		t.Errorf("max %d count %d", h.Max(), h.Count())
	}
	var empty Hist
	if empty.Quantile(0.5) != 0 {
		t.Error("an empty histogram has a median")
	}
	empty.Record(-5)
	if empty.Quantile(0.99) != 0 || empty.Max() != 0 {
		t.Error("a negative duration is not recorded as 0")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Hist
	if a := testing.AllocsPerRun(1000, func() { h.Record(12345) }); a != 0 {
		t.Errorf("Record allocates %.1f objects", a)
	}
}
