// Package lathist is a fixed-size log-bucket latency histogram: constant memory and no
// allocation per observation, so it can sit on a workload's hot path for any run length.
package lathist

import "math/bits"

// subBits sub-buckets per power of two: each bucket spans at most 1/16 (6.25 %) of its
// lower bound, which bounds the error of a reported quantile.
const (
	subBits = 4
	sub     = 1 << subBits
	buckets = sub + (64-subBits)*sub
)

// Hist counts durations in nanoseconds. Values below 16 ns have a bucket each; above, every
// power of two is split into 16 equal buckets. Not safe for concurrent use.
type Hist struct {
	counts [buckets]uint64
	n      uint64
	max    uint64
}

func index(v uint64) int {
	if v < sub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v is in [2^e, 2^(e+1))
	return sub + (e-subBits)*sub + int((v>>uint(e-subBits))&(sub-1))
}

// upper is the largest value that falls in bucket i.
func upper(i int) uint64 {
	if i < sub {
		return uint64(i)
	}
	e := uint((i-sub)/sub + subBits)
	s := uint64((i - sub) % sub)
	return (sub+s+1)<<(e-subBits) - 1
}

// Record adds one duration in nanoseconds; negative values (a clock step) count as 0.
func (h *Hist) Record(ns int64) {
	v := uint64(0)
	if ns > 0 {
		v = uint64(ns)
	}
	h.counts[index(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

// Count is the number of recorded values.
func (h *Hist) Count() uint64 { return h.n }

// Max is the exact largest recorded value.
func (h *Hist) Max() uint64 { return h.max }

// Quantile returns the upper bound of the bucket holding the q-quantile (nearest rank),
// capped at the exact maximum: never below the true value, at most 6.25 % above it.
// 0 when nothing was recorded.
func (h *Hist) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++ // ceil
	}
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			if u := upper(i); u < h.max {
				return u
			}
			return h.max
		}
	}
	return h.max
}
