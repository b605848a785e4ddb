// Command cache-growth serves a steady request stream through a cache: unbounded (a plain
// map, the article's leaking cache), LRU-bounded, or TTL-bounded; every miss allocates a value.
// With --drain every entry is then deleted: a Go map keeps its buckets after deletes
// (golang/go#20135), so the heap stays above what the (now empty) cache holds.
package main

import (
	"container/list"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const tick = 10 * time.Millisecond

type cache interface {
	get(key uint64, now time.Time) bool
	put(key uint64, value []byte, now time.Time)
	sweep(now time.Time) // drop what the policy says has expired
	len() int
	drain() int // delete every entry one by one; returns how many
}

type unbounded map[uint64][]byte

func (c unbounded) get(key uint64, _ time.Time) bool          { _, ok := c[key]; return ok }
func (c unbounded) put(key uint64, value []byte, _ time.Time) { c[key] = value }
func (c unbounded) sweep(time.Time)                           {}
func (c unbounded) len() int                                  { return len(c) }

func (c unbounded) drain() int {
	n := len(c)
	for key := range c {
		delete(c, key) // deleting during range is allowed; the buckets stay allocated
	}
	return n
}

type entry struct {
	key     uint64
	value   []byte
	expires time.Time
}

// lru keeps the capacity most recently used entries; the list front is the most recent.
type lru struct {
	capacity int
	index    map[uint64]*list.Element
	order    *list.List
}

func (c *lru) get(key uint64, _ time.Time) bool {
	e, ok := c.index[key]
	if ok {
		c.order.MoveToFront(e)
	}
	return ok
}

func (c *lru) put(key uint64, value []byte, _ time.Time) {
	c.index[key] = c.order.PushFront(&entry{key: key, value: value})
	for c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.index, oldest.Value.(*entry).key)
	}
}

func (c *lru) sweep(time.Time) {}
func (c *lru) len() int        { return c.order.Len() }
func (c *lru) drain() int      { return drainList(c.index, c.order) }

// drainList deletes every entry of a map + list cache, as an eviction loop would.
func drainList(index map[uint64]*list.Element, order *list.List) int {
	n := order.Len()
	for e := order.Front(); e != nil; e = order.Front() {
		order.Remove(e)
		delete(index, e.Value.(*entry).key)
	}
	return n
}

// ttl drops entries ttl after insertion; insertion order is expiry order, so the sweep
// only looks at the list front.
type ttl struct {
	ttl   time.Duration
	index map[uint64]*list.Element
	order *list.List
}

func (c *ttl) get(key uint64, now time.Time) bool {
	e, ok := c.index[key]
	if ok && !now.Before(e.Value.(*entry).expires) {
		c.remove(e)
		return false
	}
	return ok
}

func (c *ttl) put(key uint64, value []byte, now time.Time) {
	if e, ok := c.index[key]; ok {
		c.remove(e)
	}
	c.index[key] = c.order.PushBack(&entry{key: key, value: value, expires: now.Add(c.ttl)})
}

func (c *ttl) sweep(now time.Time) {
	for e := c.order.Front(); e != nil && !now.Before(e.Value.(*entry).expires); e = c.order.Front() {
		c.remove(e)
	}
}

func (c *ttl) remove(e *list.Element) {
	c.order.Remove(e)
	delete(c.index, e.Value.(*entry).key)
}

func (c *ttl) len() int   { return c.order.Len() }
func (c *ttl) drain() int { return drainList(c.index, c.order) }

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("cache-growth")
	policy := units.NewChoice("unbounded", "unbounded", "lru", "ttl")
	fs.Var(policy, "policy", "cache policy (unbounded, lru, ttl)")
	rate := fs.Int("rate", 20000, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "length of the serve phase")
	valueSize := units.NewSize("1KiB")
	fs.Var(valueSize, "value-size", "size of each cached value")
	capacity := fs.Int("capacity", 20000, "entries kept by the lru policy")
	ttlFlag := fs.Duration("ttl", time.Second, "lifetime of an entry under the ttl policy")
	keyspace := fs.Int64("keyspace", 0, "distinct keys (0: every request a new key)")
	drain := fs.Bool("drain", false, "after serve, delete every entry, run runtime.GC() twice, then idle")
	idle := fs.Duration("idle", 5*time.Second, "idle time after the drain (with --drain)")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case *rate <= 0:
		return fmt.Errorf("--rate must be positive, got %d", *rate)
	case valueSize.Bytes < 1:
		return fmt.Errorf("--value-size must be at least 1 byte, got %s", valueSize)
	case policy.Value == "lru" && *capacity < 1:
		return fmt.Errorf("--capacity must be at least 1 with --policy=lru, got %d", *capacity)
	case policy.Value == "ttl" && *ttlFlag <= 0:
		return fmt.Errorf("--ttl must be positive with --policy=ttl, got %v", *ttlFlag)
	case *keyspace < 0:
		return fmt.Errorf("--keyspace must be 0 (every key new) or more, got %d", *keyspace)
	}

	var c cache
	switch policy.Value {
	case "unbounded":
		c = unbounded{}
	case "lru":
		c = &lru{capacity: *capacity, index: map[uint64]*list.Element{}, order: list.New()}
	case "ttl":
		c = &ttl{ttl: *ttlFlag, index: map[uint64]*list.Element{}, order: list.New()}
	}

	r := telemetry.New(out, "cache-growth")
	var entries int64
	r.AddMetric("cache_entries", func() float64 { return float64(atomic.LoadInt64(&entries)) })
	// Value bytes held by the cache; the map, list and entry overhead is the rest of the heap.
	r.AddMetric("live_bytes", func() float64 { return float64(atomic.LoadInt64(&entries) * valueSize.Bytes) })
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	r.Phase("serve")
	var served, reported, misses, next uint64
	start := time.Now()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for now := start; ; now = <-ticker.C {
		elapsed := now.Sub(start)
		if elapsed > *duration {
			elapsed = *duration
		}
		// Serve what is due since the start, so late ticks catch up and the rate holds. The
		// cache's clock is when each request was due, not when a late tick got to it: what the
		// cache holds depends on the rate and the TTL, not on how busy the machine was.
		due := uint64(elapsed.Seconds() * float64(*rate))
		for ; served < due; served++ {
			key := next
			next++
			if *keyspace > 0 {
				key %= uint64(*keyspace)
			}
			at := start.Add(time.Duration(float64(served) * float64(time.Second) / float64(*rate)))
			if !c.get(key, at) {
				value := make([]byte, valueSize.Bytes)
				value[0], value[len(value)-1] = byte(key), byte(key)
				c.put(key, value, at)
				misses++
			}
		}
		c.sweep(start.Add(elapsed))
		r.AddOps(served - reported)
		reported = served
		atomic.StoreInt64(&entries, int64(c.len()))
		if elapsed >= *duration {
			break
		}
	}
	ticker.Stop()

	drained := 0
	if *drain {
		r.Phase("drain")
		drained = c.drain()
		atomic.StoreInt64(&entries, int64(c.len()))
		runtime.GC()
		runtime.GC()

		r.Phase("idle")
		time.Sleep(*idle)
	}
	runtime.KeepAlive(c)
	return r.End(
		telemetry.Field{Key: "misses", Value: misses},
		telemetry.Field{Key: "cache_entries", Value: c.len()},
		telemetry.Field{Key: "drained", Value: drained},
	)
}
