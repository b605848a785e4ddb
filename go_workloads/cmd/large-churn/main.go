// Command large-churn allocates objects above 32 KiB (the runtime's large objects) with
// mixed sizes and lifetimes: a short-lived pool replaced continuously and a long-lived
// pool whose objects live an exponentially distributed time. Then it drops everything, or
// with --keep-long only the short-lived pool, so the long-lived objects stay scattered among
// the freed ones.
package main

import (
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"sync/atomic"
	"time"

	"goreclaim/workloads/internal/telemetry"
	"goreclaim/workloads/internal/units"
)

const pageSize = 4096

type object struct {
	buf     []byte
	expires time.Time // long-lived objects only
}

type churn struct {
	rng       *rand.Rand
	min, max  int64
	longLife  time.Duration
	liveBytes int64 // atomic: read by the metrics goroutine
	allocated uint64
	run       *telemetry.Run
}

// newObject allocates an object of a random size in [min, max] and makes it resident.
func (c *churn) newObject() object {
	size := c.min + c.rng.Int63n(c.max-c.min+1)
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += pageSize {
		buf[i] = 1
	}
	atomic.AddInt64(&c.liveBytes, size)
	c.run.AddOps(1)
	return object{buf: buf}
}

func (c *churn) newLongLived(now time.Time) object {
	o := c.newObject()
	o.expires = now.Add(time.Duration(c.rng.ExpFloat64() * float64(c.longLife)))
	return o
}

func (c *churn) drop(o object) { atomic.AddInt64(&c.liveBytes, -int64(len(o.buf))) }

func main() { telemetry.Main(run) }

func run(args []string, out io.Writer) error {
	fs, common := telemetry.NewFlagSet("large-churn")
	minSize := units.NewSize("33KiB")
	fs.Var(minSize, "min-size", "smallest object")
	maxSize := units.NewSize("4MiB")
	fs.Var(maxSize, "max-size", "largest object")
	live := units.NewSize("256MiB")
	fs.Var(live, "live", "target live heap (short- and long-lived together)")
	longFrac := fs.Float64("long-frac", 0.2, "share of the live heap held by long-lived objects")
	longLife := fs.Duration("long-life", 3*time.Second, "mean lifetime of a long-lived object")
	duration := fs.Duration("duration", 10*time.Second, "length of the churn phase")
	idle := fs.Duration("idle", 5*time.Second, "idle time after everything is dropped")
	seed := fs.Int64("seed", 1, "random seed")
	keepLong := fs.Bool("keep-long", false, "at the end of churn keep the long-lived objects (scattered among the freed ones) instead of dropping everything")
	releaseGCs := fs.Int("release-gcs", 1, "runtime.GC() calls after the drop")
	if err := telemetry.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case minSize.Bytes < 1:
		return fmt.Errorf("--min-size must be at least 1 byte, got %s", minSize)
	case maxSize.Bytes < minSize.Bytes:
		return fmt.Errorf("--max-size (%s) must not be below --min-size (%s)", maxSize, minSize)
	case *longFrac < 0 || *longFrac > 1:
		return fmt.Errorf("--long-frac must be within [0, 1], got %v", *longFrac)
	case *longLife <= 0:
		return fmt.Errorf("--long-life must be positive, got %v", *longLife)
	case *releaseGCs < 0:
		return fmt.Errorf("--release-gcs must be 0 or more, got %d", *releaseGCs)
	}

	r := telemetry.New(out, "large-churn")
	c := &churn{rng: rand.New(rand.NewSource(*seed)), min: minSize.Bytes, max: maxSize.Bytes, longLife: *longLife, run: r}
	r.AddMetric("live_bytes", func() float64 { return float64(atomic.LoadInt64(&c.liveBytes)) })
	r.Start(fs, common.MetricsInterval)
	r.Phase("baseline")
	time.Sleep(common.Baseline)

	r.Phase("churn")
	start := time.Now()
	longTarget := int64(float64(live.Bytes) * *longFrac)
	shortTarget := live.Bytes - longTarget
	var short, long []object
	var longBytes int64
	for longBytes < longTarget {
		o := c.newLongLived(start)
		longBytes += int64(len(o.buf))
		long = append(long, o)
	}
	var shortBytes int64
	for shortBytes < shortTarget {
		o := c.newObject()
		shortBytes += int64(len(o.buf))
		short = append(short, o)
	}
	// Replacing objects one for one keeps each pool's count fixed, so its bytes wander
	// around the target (count x mean size) without drifting.
	deadline := start.Add(*duration)
	for now := time.Now(); now.Before(deadline); now = time.Now() {
		for i, o := range long {
			if now.After(o.expires) {
				c.drop(o)
				long[i] = object{}
				long[i] = c.newLongLived(now)
			}
		}
		if len(short) == 0 {
			time.Sleep(time.Millisecond) // only long-lived objects: wait for expiries
			continue
		}
		i := c.rng.Intn(len(short))
		c.drop(short[i])
		short[i] = object{} // unreachable before its replacement is allocated
		short[i] = c.newObject()
	}

	r.Phase("release")
	short = nil
	var kept int64
	if *keepLong {
		// The long-lived objects stay where they were allocated, between the freed ones:
		// a non-moving GC can return only the pages no kept object overlaps.
		for _, o := range long {
			kept += int64(len(o.buf))
		}
	} else {
		long = nil
	}
	atomic.StoreInt64(&c.liveBytes, kept)
	for i := 0; i < *releaseGCs; i++ {
		runtime.GC()
	}

	r.Phase("idle")
	time.Sleep(*idle)
	runtime.KeepAlive(long)
	return r.End(telemetry.Field{Key: "seed", Value: *seed})
}
