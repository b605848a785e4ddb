package telemetry

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Common holds the flags every workload accepts (COMMON in harness/workloads.py).
type Common struct {
	MetricsInterval time.Duration
	Baseline        time.Duration
}

// NewFlagSet returns a flag set for workload name with the common flags defined. Usage
// goes to stderr, as the standard flag package prints it (the harness parses `-h`).
func NewFlagSet(name string) (*flag.FlagSet, *Common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	c := &Common{}
	fs.DurationVar(&c.MetricsInterval, "metrics-interval", 100*time.Millisecond, "how often a metrics line is written")
	fs.DurationVar(&c.Baseline, "baseline", 500*time.Millisecond, "idle time before the work starts, for a baseline reading")
	return fs, c
}

// Main runs a workload's run function with the process's arguments and stdout and exits:
// 0 on success or -h, 2 on bad flags or failure (the flag package has said why).
func Main(run func(args []string, out io.Writer) error) {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case err == nil, err == flag.ErrHelp:
		os.Exit(0)
	default:
		if _, isFlagErr := err.(flagError); !isFlagErr {
			os.Stderr.WriteString(os.Args[0] + ": " + err.Error() + "\n")
		}
		os.Exit(2)
	}
}

// flagError marks an error the flag package has already printed with the usage.
type flagError struct{ error }

// Parse parses args; a bad flag is reported by the flag package (naming the flag, the
// value and what is valid) and returned as an error Main does not print twice.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return flagError{err}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every input is a --flag=value (see -h)", fs.Args())
	}
	return nil
}
