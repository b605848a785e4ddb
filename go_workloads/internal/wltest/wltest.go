// Package wltest runs a workload in a child process (the test binary re-executed) and
// checks its output against the telemetry protocol. A child process keeps each run's
// memory (RSS, heap, counters) apart from the test's and from other runs.
package wltest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const childEnv = "GORECLAIM_WLTEST_ARGS"

// stopEnv asks the child to stop itself (SIGSTOP) after each phase line, so that Run's
// onLine reads the child's state at the start of that phase however late the test reads
// the line; Run continues it (SIGCONT) after onLine.
const stopEnv = "GORECLAIM_WLTEST_STOP_AT_PHASE"

var phaseMark = []byte(`"ev":"phase"`)

// stopAtPhase stops the process after writing a phase line (telemetry writes each line in
// one Write).
type stopAtPhase struct{ w io.Writer }

func (s stopAtPhase) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if bytes.Contains(p, phaseMark) {
		// Sent to this very thread, the stop takes effect as the call returns: kill(getpid())
		// may hand it to another thread while this one goes on, even to exit.
		runtime.LockOSThread()
		_ = syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGSTOP)
		runtime.UnlockOSThread()
	}
	return n, err
}

// MaybeChild is called first in TestMain: in a child started by Run it runs the workload
// with the arguments passed down and exits; otherwise it returns.
func MaybeChild(run func(args []string, out io.Writer) error) {
	encoded, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(encoded), &args); err != nil {
		fmt.Fprintln(os.Stderr, "wltest: bad", childEnv, err)
		os.Exit(3)
	}
	var out io.Writer = os.Stdout
	if os.Getenv(stopEnv) != "" {
		out = stopAtPhase{os.Stdout}
	}
	if err := run(args, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// Line is one telemetry line.
type Line struct {
	Raw    string
	T      int64
	Ev     string
	Fields map[string]interface{}
}

// Num returns a numeric field (json.Number) as float64, failing the test if absent.
func (l Line) Num(t *testing.T, path ...string) float64 {
	t.Helper()
	var v interface{} = l.Fields
	for _, key := range path {
		obj, ok := v.(map[string]interface{})
		if !ok {
			t.Fatalf("line %s: %v is not an object", l.Raw, path)
		}
		if v, ok = obj[key]; !ok {
			t.Fatalf("line %s: no %v", l.Raw, path)
		}
	}
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("line %s: %v = %v is not a number", l.Raw, path, v)
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatalf("line %s: %v: %v", l.Raw, path, err)
	}
	return f
}

// Result is a finished child run.
type Result struct {
	Lines         []Line
	Stderr        string
	Before, After int64 // the test's CLOCK_MONOTONIC around the run
}

// Monotonic reads CLOCK_MONOTONIC independently of the telemetry package.
func Monotonic() int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return ts.Nano()
}

// Run runs the workload with args in a child process; onLine (may be nil) sees each
// line as it arrives. At a phase line the child is stopped until onLine returns, so what
// onLine reads of it is its state as that phase starts, at any machine load.
func Run(t *testing.T, args []string, onLine func(pid int, l Line)) *Result {
	t.Helper()
	encoded, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(encoded))
	if onLine != nil {
		cmd.Env = append(cmd.Env, stopEnv+"=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Before: Monotonic()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanner := bufio.NewScanner(stdout)
	scanner.Buffer(make([]byte, 1<<16), 1<<22)
	for scanner.Scan() {
		raw := scanner.Text()
		l := Line{Raw: raw}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&l.Fields); err != nil {
			t.Errorf("line is not a JSON object: %q: %v", raw, err)
			continue
		}
		if n, ok := l.Fields["t"].(json.Number); ok {
			l.T, err = strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				t.Errorf("t is not an integer: %q", raw)
			}
		} else {
			t.Errorf("line has no numeric t: %q", raw)
		}
		l.Ev, _ = l.Fields["ev"].(string)
		if onLine != nil {
			pid := cmd.Process.Pid
			if l.Ev == "phase" {
				if err := waitStopped(pid); err != nil {
					t.Errorf("child at phase %v: %v", l.Fields["name"], err)
				}
			}
			onLine(pid, l)
			if l.Ev == "phase" {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		res.Lines = append(res.Lines, l)
	}
	_, _ = io.Copy(ioutil.Discard, stdout)
	err = cmd.Wait()
	res.After = Monotonic()
	res.Stderr = stderr.String()
	if err != nil {
		t.Fatalf("workload %v failed: %v\nstderr:\n%s", args, err, res.Stderr)
	}
	return res
}

// Of returns the lines of one event kind.
func (r *Result) Of(ev string) []Line {
	var out []Line
	for _, l := range r.Lines {
		if l.Ev == ev {
			out = append(out, l)
		}
	}
	return out
}

// Phases returns the phase names in order.
func (r *Result) Phases() []string {
	var out []string
	for _, l := range r.Of("phase") {
		name, _ := l.Fields["name"].(string)
		out = append(out, name)
	}
	return out
}

// MemStatsMetrics are in every metrics line on every Go version.
var MemStatsMetrics = []string{
	"heap_alloc", "heap_inuse", "heap_idle", "heap_released", "heap_sys", "sys", "next_gc",
	"num_gc", "pause_total_ns", "gc_cpu_fraction", "total_alloc", "mallocs", "frees", "ops",
}

// runtimeMetrics may appear depending on the Go version.
var runtimeMetrics = []string{"gc_cpu_s", "scavenge_cpu_s", "heap_goal", "memlimit", "tiny_allocs",
	"gc_forced", "gc_auto", "limiter_last_enabled", "heap_objects_bytes", "heap_stacks", "heap_free",
	"released_bytes"}

// CheckProtocol checks what every run must satisfy: start first, end last, t monotonic and
// on the test's clock, the phases exactly as given, metrics lines with the documented
// names (plus the workload's own extras, which must be present), and the end totals.
func CheckProtocol(t *testing.T, r *Result, workload string, phases []string, extras ...string) {
	t.Helper()
	if len(r.Lines) < 3 {
		t.Fatalf("only %d lines", len(r.Lines))
	}
	if first := r.Lines[0]; first.Ev != "start" || first.Fields["workload"] != workload {
		t.Errorf("first line is not the start of %s: %s", workload, first.Raw)
	}
	if last := r.Lines[len(r.Lines)-1]; last.Ev != "end" {
		t.Errorf("last line is not end: %s", last.Raw)
	}
	start := r.Lines[0]
	for _, key := range []string{"go_version", "env", "gogc_percent", "memlimit_bytes", "gomaxprocs", "pid", "args"} {
		if _, ok := start.Fields[key]; !ok {
			t.Errorf("start has no %s: %s", key, start.Raw)
		}
	}
	prev := r.Before
	for _, l := range r.Lines {
		if l.T < prev {
			t.Errorf("t went back (%d < %d): %s", l.T, prev, l.Raw)
		}
		prev = l.T
		if l.T > r.After {
			t.Errorf("t %d is after the test's own clock reading %d: %s", l.T, r.After, l.Raw)
		}
	}
	if got := strings.Join(r.Phases(), ","); got != strings.Join(phases, ",") {
		t.Errorf("phases = %s; want %s", got, strings.Join(phases, ","))
	}
	// A metrics line directly precedes every phase line and the end line.
	for i, l := range r.Lines {
		if (l.Ev == "phase" || l.Ev == "end") && (i == 0 || r.Lines[i-1].Ev != "metrics") {
			t.Errorf("no metrics line right before %s", l.Raw)
		}
	}
	allowed := map[string]bool{}
	for _, n := range append(append(append([]string{}, MemStatsMetrics...), runtimeMetrics...), extras...) {
		allowed[n] = true
	}
	metrics := r.Of("metrics")
	if len(metrics) == 0 {
		t.Fatal("no metrics lines")
	}
	for _, l := range metrics {
		m, ok := l.Fields["m"].(map[string]interface{})
		if !ok {
			t.Fatalf("metrics without m: %s", l.Raw)
		}
		for name, v := range m {
			if !allowed[name] {
				t.Errorf("undocumented metric %q in %s", name, l.Raw)
			}
			if _, ok := v.(json.Number); !ok {
				t.Errorf("metric %q = %v is not a number", name, v)
			}
		}
		for _, name := range append(append([]string{}, MemStatsMetrics...), extras...) {
			if _, ok := m[name]; !ok {
				t.Errorf("metric %q missing in %s", name, l.Raw)
			}
		}
	}
	end := r.Lines[len(r.Lines)-1]
	for _, key := range []string{"num_gc", "pause_total_ns", "utime_s", "stime_s", "minflt", "majflt", "ops", "wall_s"} {
		end.Num(t, "totals", key)
	}
}

// LastMetric returns metric name from the last metrics line before the first line
// matching ev/name (a phase line: the state at the end of the previous phase).
func (r *Result) MetricBefore(t *testing.T, phase string, name string) float64 {
	t.Helper()
	var last *Line
	for i := range r.Lines {
		l := r.Lines[i]
		if l.Ev == "metrics" {
			last = &r.Lines[i]
		}
		if l.Ev == "phase" && l.Fields["name"] == phase {
			if last == nil {
				t.Fatalf("no metrics before phase %s", phase)
			}
			return last.Num(t, "m", name)
		}
	}
	t.Fatalf("no phase %s", phase)
	return 0
}

// waitStopped waits until every thread of pid is stopped (state T in /proc/PID/task/*/stat);
// the deadline only bounds a hang.
func waitStopped(pid int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		stopped, err := allStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not stopped after 2 minutes")
		}
		time.Sleep(time.Millisecond)
	}
}

func allStopped(pid int) (bool, error) {
	tasks, err := ioutil.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, err
	}
	for _, task := range tasks {
		stat, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		// "pid (comm) S ...": the state follows the last ')'.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			return false, nil
		}
		switch fields[0][0] {
		case 'T':
		case 'Z', 'X':
			return false, fmt.Errorf("exited instead of stopping")
		default:
			return false, nil
		}
	}
	return true, nil
}

// ProcStatusKiB reads one "Key: N kB" field of /proc/<pid>/status.
func ProcStatusKiB(pid int, key string) (int64, error) {
	data, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
}
