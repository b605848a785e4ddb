//go:build !go1.16
// +build !go1.16

package telemetry

// Before Go 1.16 there is no runtime/metrics: MemStats is all there is.
type runtimeReader struct{ names []string }

func newRuntimeReader() *runtimeReader { return &runtimeReader{} }

func (rr *runtimeReader) read(vals []float64) {}

// ReadAllocCounters: see readMemStatsCounters for what MemStats can and cannot tell apart.
func ReadAllocCounters() AllocCounters { return readMemStatsCounters() }
