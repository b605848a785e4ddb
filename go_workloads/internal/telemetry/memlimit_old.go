//go:build !go1.19
// +build !go1.19

package telemetry

// GOMEMLIMIT does not exist before Go 1.19; the protocol reports -1.
func effectiveMemLimit() int64 { return -1 }
