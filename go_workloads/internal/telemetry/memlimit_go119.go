//go:build go1.19
// +build go1.19

package telemetry

import "runtime/debug"

// effectiveMemLimit returns the soft memory limit in force; a negative argument only reads it.
func effectiveMemLimit() int64 { return debug.SetMemoryLimit(-1) }
