"""The metric registry: every sampled series and every per-cell summary metric, declared once.

A declaration says what a metric is called, where it comes from, its unit (a key of
`harness.define.units.UNITS`), whether it has per-phase values (`X@phase`), a label for figures
and tables, and how it is computed. Analysis computes from it, scenario validation checks names
against it, expectations parse bounds and print values with its unit, figures scale axes and the
report and exporters format values by it. A new metric is one declaration here (plus a probe in
`harness.run.observe.probes` if it reads a new source).

Summary metrics are computed from a `CellView` (implemented in `harness.analyse.summary`):
the cell's samples, events, phases and telemetry totals, seen one cell at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from harness.define.hosts import UNTIMED_ACCELERATORS
from harness.define.units import UNITS, Unit, UnitName

# ---------------------------------------------------------------------------------- samples and events
# What a cell's measurements are (docs/ARCHITECTURE.md, "Samples" and "Events"): a sample comes from one
# source, an event is of one kind.

Source = Literal["proc", "cgroup", "smaps", "runtime", "docker"]
EventKind = Literal["start", "phase", "freeos", "sizes", "end", "gc", "scav", "syscall", "exit", "bench", "load",
                    "heapprofile"]
Sample = tuple[int, Source, str, float]          # (t_ns, source, metric, value)
Event = tuple[int, EventKind, str, float, str]   # (t_ns, kind, name, value, detail JSON)

# ---------------------------------------------------------------------------------- sampled series


@dataclass(frozen=True)
class Series:
    """One time series in samples.parquet: rows (cell_id, t_s, source, metric, value)."""

    source: Source
    metric: str
    unit: UnitName
    label: str
    origin: str      # the file or API it is read from

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.metric


SERIES: dict[tuple[str, str], Series] = {s.key: s for s in (
    Series("proc", "vm_rss", "bytes", "VmRSS", "/proc/<pid>/status VmRSS (fast tier)"),
    Series("proc", "rss_anon", "bytes", "RssAnon", "/proc/<pid>/status RssAnon (fast tier)"),
    Series("proc", "rss_file", "bytes", "RssFile", "/proc/<pid>/status RssFile (fast tier)"),
    Series("proc", "vm_size", "bytes", "VmSize", "/proc/<pid>/status VmSize (fast tier)"),
    Series("proc", "vm_hwm", "bytes", "VmHWM", "/proc/<pid>/status VmHWM (fast tier)"),
    Series("proc", "vm_swap", "bytes", "VmSwap", "/proc/<pid>/status VmSwap: the process's swapped-out pages"),
    Series("cgroup", "usage", "bytes", "cgroup usage", "memory.usage_in_bytes | memory.current (fast tier)"),
    Series("cgroup", "anon", "bytes", "cgroup anon", "memory.stat anon/rss (fast tier)"),
    Series("cgroup", "file", "bytes", "cgroup file", "memory.stat file/cache (fast tier)"),
    Series("cgroup", "inactive_file", "bytes", "cgroup inactive_file", "memory.stat inactive_file (fast tier)"),
    Series("cgroup", "working_set", "bytes", "working set", "usage - inactive_file, as kubelet computes it"),
    # Read where the kernel writes them, not read (NaN) where it does not: never a 0 standing for "absent".
    Series("cgroup", "shmem", "bytes", "cgroup shmem", "memory.stat shmem (v2) / total_shmem (v1): tmpfs, shared"),
    Series("cgroup", "anon_thp", "bytes", "cgroup anon_thp",
           "memory.stat anon_thp (v2) / total_rss_huge (v1): anonymous memory in transparent huge pages"),
    Series("cgroup", "pglazyfree", "count", "pglazyfree",
           "memory.stat pglazyfree (v2 only): pages marked MADV_FREE, cumulative"),
    Series("cgroup", "pglazyfreed", "count", "pglazyfreed",
           "memory.stat pglazyfreed (v2 only): MADV_FREE pages reclaimed, cumulative"),
    Series("cgroup", "swap", "bytes", "cgroup swap",
           "memory.swap.current (v2) / memory.stat total_swap (v1); both only with swap accounting"),
    # cgroup v2 only: what the memory controller did and how long the cgroup's tasks stalled on memory.
    Series("cgroup", "events_high", "count", "memory.high events", "memory.events high: usage went over memory.high"),
    Series("cgroup", "events_max", "count", "memory.max events", "memory.events max: usage hit memory.max"),
    Series("cgroup", "events_oom", "count", "OOM events", "memory.events oom: reclaim failed at the limit"),
    Series("cgroup", "events_oom_kill", "count", "OOM kills", "memory.events oom_kill: OOM killer kills"),
    Series("cgroup", "psi_some_avg10", "fraction", "PSI some avg10", "memory.pressure some avg10 (share of 10 s)"),
    Series("cgroup", "psi_full_avg10", "fraction", "PSI full avg10", "memory.pressure full avg10 (share of 10 s)"),
    Series("cgroup", "psi_some_total_s", "s", "PSI some total", "memory.pressure some total: time some task stalled"),
    Series("cgroup", "psi_full_total_s", "s", "PSI full total", "memory.pressure full total: time all tasks stalled"),
    # Docker cells only: Docker's stats API read at every phase change (harness.run.observe.docker_stats).
    Series("docker", "mem_usage", "bytes", "docker stats",
           "Docker's stats API: memory_stats.usage − total_inactive_file (v1) / inactive_file (v2), as docker/cli "
           "calculateMemUsageUnixNoCache"),
    Series("docker", "usage", "bytes", "docker stats usage", "Docker's stats API memory_stats.usage"),
    Series("docker", "inactive_file", "bytes", "docker stats inactive file",
           "Docker's stats API: the inactive file pages docker stats subtracts"),
    Series("smaps", "rss", "bytes", "smaps Rss", "/proc/<pid>/smaps_rollup Rss (slow tier)"),
    Series("smaps", "lazyfree", "bytes", "LazyFree", "/proc/<pid>/smaps_rollup LazyFree (slow tier)"),
    Series("smaps", "anon_huge_pages", "bytes", "AnonHugePages", "/proc/<pid>/smaps_rollup (slow tier)"),
    Series("runtime", "heap_alloc", "bytes", "heap alloc", "MemStats.HeapAlloc"),
    Series("runtime", "heap_inuse", "bytes", "heap in use", "MemStats.HeapInuse"),
    Series("runtime", "heap_idle", "bytes", "heap idle", "MemStats.HeapIdle"),
    Series("runtime", "heap_released", "bytes", "heap released", "MemStats.HeapReleased"),
    Series("runtime", "heap_sys", "bytes", "heap sys", "MemStats.HeapSys"),
    Series("runtime", "sys", "bytes", "runtime sys", "MemStats.Sys"),
    Series("runtime", "next_gc", "bytes", "next GC", "MemStats.NextGC"),
    Series("runtime", "stack_inuse", "bytes", "stacks in use", "MemStats.StackInuse"),
    Series("runtime", "stack_sys", "bytes", "stacks", "MemStats.StackSys (goroutine and OS thread stacks)"),
    Series("runtime", "heap_goal", "bytes", "heap goal", "runtime/metrics /gc/heap/goal:bytes"),
    Series("runtime", "memlimit", "bytes", "GOMEMLIMIT", "runtime/metrics /gc/gomemlimit:bytes (1.21+)"),
    Series("runtime", "num_gc", "count", "GC cycles", "MemStats.NumGC"),
    Series("runtime", "pause_total_ns", "ns", "GC pause total", "MemStats.PauseTotalNs"),
    Series("runtime", "gc_cpu_fraction", "fraction", "GC CPU fraction", "MemStats.GCCPUFraction"),
    Series("runtime", "gc_cpu_s", "s", "GC CPU", "runtime/metrics /cpu/classes/gc/total:cpu-seconds (1.20+)"),
    Series("runtime", "scavenge_cpu_s", "s", "scavenger CPU",
           "runtime/metrics /cpu/classes/scavenge/total:cpu-seconds (1.20+)"),
    Series("runtime", "total_alloc", "bytes", "total allocated", "MemStats.TotalAlloc"),
    Series("runtime", "mallocs", "count", "mallocs", "MemStats.Mallocs"),
    Series("runtime", "frees", "count", "frees", "MemStats.Frees"),
    Series("runtime", "pprof_inuse_space", "bytes", "pprof inuse_space",
           "a heap profile's inuse_space (runtime/pprof, read by harness.run.observe.heapprofile): sampled, as of "
           "the last GC"),
    Series("runtime", "tiny_allocs", "count", "tiny allocs", "runtime/metrics /gc/heap/tiny/allocs:objects (1.17+)"),
    Series("runtime", "ops", "count", "work done", "the workload's own counter"),
    Series("runtime", "cache_entries", "count", "cache entries", "cache-growth's own counter"),
    Series("runtime", "live_bytes", "bytes", "live bytes", "the workload's own count of what it holds"),
    Series("runtime", "limiter_last_enabled", "count", "GC CPU limiter last on",
           "runtime/metrics /gc/limiter/last-enabled:gc-cycle (1.19+): the GC cycle it was last on, 0 never"),
    Series("runtime", "gc_forced", "count", "forced GC cycles",
           "runtime/metrics /gc/cycles/forced:gc-cycles (runtime.GC, FreeOSMemory; not the periodic GC)"),
    Series("runtime", "gc_auto", "count", "automatic GC cycles",
           "runtime/metrics /gc/cycles/automatic:gc-cycles (heap goal, memory limit, periodic)"),
)}


def series_unit(source: Source, metric: str) -> Unit:
    """The unit of a sampled series; bytes for one not declared (every probe reads bytes)."""
    found = SERIES.get((source, metric))
    return UNITS[found.unit if found else "bytes"]


# ---------------------------------------------------------------------------------- the cell view


class CellView(Protocol):
    """What a summary metric is computed from: one cell's data (harness.analyse.summary builds it)."""

    row: Mapping[str, Any]       # the cell's cells.csv row ({} when it has none)
    totals: Mapping[str, Any]    # the `totals` of the workload's `end` line ({} when absent)
    work_phase: str              # the workload descriptor's work phase ("" when it has none)

    def series(self, source: Source, metric: str) -> pd.Series[float]:
        """Readings indexed by t_s, sorted, NaN dropped; empty when never read."""

    def events(self, kind: EventKind) -> pd.DataFrame:
        """This cell's events of one kind."""

    def phase_span(self, phase: str) -> tuple[float, float]:
        """(start_s, end_s) of the phase's last occurrence; NaNs when it never ran."""

    def phase_duration(self, phase: str) -> float:
        """Seconds spent in the phase over all its occurrences; NaN when it never ran."""

    def value(self, metric: str) -> Any:
        """Another summary metric of the same cell (computed once)."""


# ---------------------------------------------------------------------------------- reductions
# Pure reductions of one time series (a Series indexed by t_s), used by the declarations below.

NAN = float("nan")


def number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return NAN


def last(s: pd.Series) -> float:
    return float(s.iloc[-1]) if len(s) else NAN


def largest(s: pd.Series) -> float:
    return float(s.max()) if len(s) else NAN


def rise(s: pd.Series) -> float:
    """How much a cumulative counter grew over the readings (the largest less the first): the cell's
    own count where the cgroup counted something before it started (the process backend's)."""
    return float(s.max() - s.iloc[0]) if len(s) else NAN


def value_at(s: pd.Series, t: float) -> float:
    """The last reading at or before t; NaN if none."""
    if s.empty or (isinstance(t, float) and math.isnan(t)):
        return NAN
    before = s[s.index <= t + 1e-9]
    return float(before.iloc[-1]) if len(before) else NAN


def time_weighted_mean(s: pd.Series) -> float:
    """Trapezoid mean over t_s; the value itself for a single reading."""
    if s.empty:
        return NAN
    if len(s) == 1 or s.index[-1] == s.index[0]:
        return float(s.mean())
    t = s.index.to_numpy(dtype=float)
    v = s.to_numpy(dtype=float)
    area = float(np.sum((v[1:] + v[:-1]) / 2.0 * np.diff(t)))
    return area / float(t[-1] - t[0])


def slope(s: pd.Series, start_s: float = -math.inf, end_s: float = math.inf) -> float:
    """Least-squares slope (units per second) of the readings within [start_s, end_s]."""
    sel = s[(s.index >= start_s) & (s.index <= end_s)]
    if len(sel) < 2 or sel.index.max() == sel.index.min():
        return NAN
    t = sel.index.to_numpy(dtype=float)
    v = sel.to_numpy(dtype=float)
    return float(np.polyfit(t, v, 1)[0])


def release_seconds(rss: pd.Series, release_start: float) -> float:
    """Seconds from `release_start` until RSS falls below half its value at that instant."""
    if rss.empty or math.isnan(release_start):
        return NAN
    at_start = value_at(rss, release_start)
    if math.isnan(at_start):
        after = rss[rss.index >= release_start]
        if after.empty:
            return NAN
        at_start = float(after.iloc[0])
    below = rss[(rss.index >= release_start) & (rss < at_start / 2.0)]
    return float(below.index[0] - release_start) if len(below) else NAN


def _peak(view: CellView, source: Source, metric: str, kernel_column: str) -> float:
    """The larger of the sampled maximum and the kernel's own peak recorded in cells.csv."""
    values = [v for v in (largest(view.series(source, metric)), number(view.row.get(kernel_column)))
              if not math.isnan(v)]
    return max(values) if values else NAN


def _details(view: CellView, kind: EventKind) -> list[dict[str, Any]]:
    """The parsed `detail` of each of the cell's events of one kind (gctrace lines, benchmark results)."""
    out = []
    for detail in view.events(kind)["detail"]:
        try:
            parsed = json.loads(detail) if isinstance(detail, str) else {}
        except ValueError:
            parsed = {}
        out.append(parsed if isinstance(parsed, dict) else {})
    return out


def _gc_cpu(view: CellView) -> tuple[float, str]:
    gc_cpu = view.series("runtime", "gc_cpu_s")
    if len(gc_cpu):
        return float(gc_cpu.max()), "runtime/metrics"
    fraction, wall = view.series("runtime", "gc_cpu_fraction"), view.value("wall_s")
    if len(fraction) and not math.isnan(wall):
        # GCCPUFraction is a share of the program's available CPU time, GOMAXPROCS × wall time.
        return float(fraction.iloc[-1]) * wall * _gomaxprocs(view), "gc_cpu_fraction*wall*gomaxprocs"
    # A program without telemetry: the CPU times of its gctrace lines (GODEBUG=gctrace=1).
    traced = [d["cpu_s"] for d in _details(view, "gc") if isinstance(d.get("cpu_s"), (int, float))]
    if traced or _gctrace_on(view):
        return float(sum(traced)), "gctrace"
    return NAN, ""


def _gctrace_on(view: CellView) -> bool:
    """The cell ran with GODEBUG gctrace=1 (a Go program): no gctrace line then means no GC cycle."""
    return any("gctrace=1" in str((d.get("env") or {}).get("GODEBUG", "")).split(",")
               for d in _details(view, "start"))


def _gc_cycles(view: CellView) -> float:
    total = _or_series(number(view.totals.get("num_gc")), view.series("runtime", "num_gc"))
    if math.isnan(total):
        cycles = [d["num_gc"] for d in _details(view, "gc") if isinstance(d.get("num_gc"), (int, float))]
        total = float(max(cycles)) if cycles else (0.0 if _gctrace_on(view) else NAN)
    return total


def _gc_cycles_per_gib(view: CellView) -> float:
    allocated = largest(view.series("runtime", "total_alloc"))
    return _gc_cycles(view) / (allocated / (1 << 30)) if allocated > 0 else NAN


def _final_alive(view: CellView, source: Source, metric: str) -> float:
    rss = view.series("proc", "vm_rss")
    return value_at(view.series(source, metric), float(rss.index[-1])) if len(rss) else NAN


def _bench(view: CellView, unit: str) -> float:
    """The first benchmark's `unit` value (ns/op, B/op, ...), median over its result lines."""
    results = [d for d in _details(view, "bench") if isinstance(d.get("metrics"), dict)]
    if not results:
        return NAN
    first = [d["metrics"].get(unit) for d in results if d.get("name") == results[0].get("name")]
    values = sorted(float(v) for v in first if isinstance(v, (int, float)))
    return float(np.median(values)) if values else NAN


def _load(view: CellView, key: str) -> float:
    """A number of the cell's parsed load run (harness.run.loadgen: hey or wrk); NaN without one."""
    runs = [d for d in _details(view, "load") if d.get("tool")]
    return number(runs[-1].get(key)) if runs else NAN


def _bench_name(view: CellView) -> str:
    results = _details(view, "bench")
    return str(results[0].get("name", "")) if results else ""


def _gomaxprocs(view: CellView) -> float:
    """GOMAXPROCS from the workload's start line, else the `N P` of a gctrace line; 1 when not known."""
    for d in _details(view, "start"):
        value = number(d.get("gomaxprocs"))
        if value > 0:
            return value
    for d in _details(view, "gc"):
        value = number(d.get("procs"))
        if value > 0:
            return value
    return 1.0


def _gc_cpu_share(view: CellView) -> float:
    """GC CPU over the CPU the program could use (GOMAXPROCS × wall time). Close to what the GC CPU
    limiter holds at about 50% (runtime/mgclimit.go updateLocked), not equal: the limiter counts
    assists plus a 25% background share, and leaves idle time (idle-P marking included) out."""
    gc_cpu, wall = float(view.value("gc_cpu_s")), float(view.value("wall_s"))
    if math.isnan(gc_cpu) or not wall > 0:
        return NAN
    return gc_cpu / (wall * _gomaxprocs(view))


def _or_series(total: float, s: pd.Series) -> float:
    return total if not math.isnan(total) else largest(s)


def _throughput(view: CellView) -> float:
    ops = view.value("ops")
    duration = view.phase_duration(view.work_phase) if view.work_phase else NAN
    if not duration > 0:
        duration = view.value("wall_s")
    return ops / duration if duration and duration > 0 else NAN


def _freeos(view: CellView) -> pd.Series:
    return view.events("freeos")["value"].astype(float).dropna()


def _quantile(s: pd.Series, q: float) -> float:
    return float(s.quantile(q)) if len(s) else NAN


def _oom(view: CellView) -> float:
    value = view.row.get("oom_killed")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NAN
    text = str(value).strip().lower()
    if text in ("", "nan", "none", "unset"):
        return NAN
    return float(text in ("true", "1", "1.0"))


def _limiter_engaged(view: CellView) -> float:
    """1 if the GC CPU limiter was on in any cycle, 0 if never; NaN on a Go without the metric (< 1.19)."""
    cycle = largest(view.series("runtime", "limiter_last_enabled"))
    return NAN if math.isnan(cycle) else float(cycle > 0)


def _untimed(view: CellView) -> str:
    """The accelerator this cell ran under when it leaves its timing metrics (timing=True) untrue to the
    host (qemu's TCG emulates every instruction: memory physics holds, time does not); "" otherwise."""
    accel = str(view.row.get("accel") or "")
    return accel if accel in UNTIMED_ACCELERATORS else ""


def _wall(view: CellView) -> float:
    wall = number(view.row.get("wall_s"))
    return wall if not math.isnan(wall) else number(view.totals.get("wall_s"))


# ---------------------------------------------------------------------------------- summary metrics


@dataclass(frozen=True)
class Metric:
    """One per-cell summary value: a column of summary.csv and a name scenarios may expect on."""

    name: str
    unit: UnitName
    label: str
    source: str                  # what it is computed from, in words
    compute: Callable[[CellView], Any]
    benchfmt: str = ""           # its unit in Go's benchmark format when Go itself names it ("ns/op")
    # It reads CPU time, throughput, latency or GC CPU: a cell judged on it must have its host to
    # itself (nothing running beside it), or what it measures depends on its neighbours.
    timing: bool = False

    @property
    def units(self) -> Unit:
        return UNITS[self.unit]


# Which reading of a source shows the state a phase leaves behind. The sampler reads proc, cgroup
# and smaps on every phase change, just after the workload's phase line: the first reading after
# the end. The workload writes its runtime metrics just before that line (telemetry Run.Phase):
# the last reading by the end; the first after it is already some way into the next phase.
EndReading = Literal["first_after", "last_by_end"]
END_OF_PHASE_READING: dict[Source, EndReading] = {"proc": "first_after", "cgroup": "first_after",
                                                  "smaps": "first_after", "runtime": "last_by_end",
                                                  "docker": "first_after"}


@dataclass(frozen=True)
class PhaseMetric:
    """X of `X@phase`: the value of a sampled series at the end of each phase.

    The state a phase leaves behind is the reading its source takes at the phase change
    (END_OF_PHASE_READING); `reads` lists series in order of preference.
    """

    name: str
    unit: UnitName
    label: str
    reads: tuple[tuple[Source, str], ...]
    # A reading taken once, at the end of one phase (a heap profile): only a reading inside the phase
    # is its state, never one carried over from an earlier phase.
    only_inside: bool = False

    @property
    def units(self) -> Unit:
        return UNITS[self.unit]

    @property
    def source(self) -> Source:
        return self.reads[0][0]

    @property
    def end_reading(self) -> EndReading:
        """first_after | last_by_end: see END_OF_PHASE_READING."""
        return END_OF_PHASE_READING[self.source]


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("peak_rss", "bytes", "peak RSS", "max of sampled VmRSS and the kernel's VmHWM",
           lambda v: _peak(v, "proc", "vm_rss", "peak_rss_bytes")),
    Metric("peak_cgroup", "bytes", "peak cgroup usage", "max of sampled usage and the kernel's max_usage/peak",
           lambda v: _peak(v, "cgroup", "usage", "peak_cgroup_bytes")),
    Metric("mean_rss", "bytes", "mean RSS", "time-weighted mean of VmRSS",
           lambda v: time_weighted_mean(v.series("proc", "vm_rss"))),
    Metric("final_rss", "bytes", "final RSS", "last VmRSS reading", lambda v: last(v.series("proc", "vm_rss"))),
    Metric("peak_working_set", "bytes", "peak working set", "max of sampled cgroup working set",
           lambda v: largest(v.series("cgroup", "working_set"))),
    Metric("final_working_set", "bytes", "final working set",
           "the working set at the last VmRSS reading (the process still alive: its cgroup empties at exit)",
           lambda v: _final_alive(v, "cgroup", "working_set")),
    Metric("pprof_inuse_space", "bytes", "pprof inuse_space",
           "the last heap profile's inuse_space (alloc-release --heap-profile: at the end of release, after its GCs)",
           lambda v: last(v.series("runtime", "pprof_inuse_space"))),
    Metric("final_lazyfree", "bytes", "final LazyFree", "last smaps_rollup LazyFree reading",
           lambda v: last(v.series("smaps", "lazyfree"))),
    Metric("final_vm_size", "bytes", "final VmSize", "last VmSize reading",
           lambda v: last(v.series("proc", "vm_size"))),
    Metric("max_vm_size", "bytes", "largest VmSize", "max VmSize reading",
           lambda v: largest(v.series("proc", "vm_size"))),
    Metric("gc_cycles", "count", "GC cycles",
           "num_gc in the end totals, else the largest num_gc reading, else the last gctrace cycle", _gc_cycles),
    # Cycles per byte allocated depend on GOGC and the live heap, not on how fast the cell ran: what a
    # comparison between GOGC values can rest on when cells share a busy machine.
    Metric("gc_cycles_per_gib", "count", "GC cycles per GiB allocated",
           "gc_cycles over the largest MemStats.TotalAlloc reading, in GiB", _gc_cycles_per_gib),
    Metric("gc_cpu_fraction", "fraction", "GC CPU fraction", "last MemStats.GCCPUFraction",
           lambda v: last(v.series("runtime", "gc_cpu_fraction")), timing=True),
    Metric("gc_cpu_s", "s", "GC CPU", "runtime/metrics GC CPU, else GCCPUFraction × wall time, else the sum "
           "of gctrace's CPU times",
           lambda v: _gc_cpu(v)[0], timing=True),
    Metric("gc_cpu_share", "fraction", "GC CPU share",
           "gc_cpu_s over GOMAXPROCS × wall time (near what the GC CPU limiter holds at about 50%, "
           "runtime/mgclimit.go)", _gc_cpu_share,
           timing=True),
    Metric("gc_cpu_source", "text", "GC CPU source", "which of the two gc_cpu_s came from",
           lambda v: _gc_cpu(v)[1]),
    Metric("cpu_s", "s", "CPU", "user + system CPU of the workload (getrusage)",
           lambda v: number(v.totals.get("utime_s")) + number(v.totals.get("stime_s")), timing=True),
    Metric("minflt", "count", "minor faults", "getrusage minflt", lambda v: number(v.totals.get("minflt"))),
    Metric("majflt", "count", "major faults", "getrusage majflt", lambda v: number(v.totals.get("majflt"))),
    Metric("ops", "count", "work done", "ops in the end totals, else the largest ops reading",
           lambda v: _or_series(number(v.totals.get("ops")), v.series("runtime", "ops"))),
    Metric("throughput", "ops/s", "throughput", "ops over the work phase's duration (else the wall time)",
           _throughput, timing=True),
    Metric("freeos_calls", "count", "FreeOSMemory calls", "number of freeos events",
           lambda v: float(len(_freeos(v)))),
    Metric("freeos_p50_ns", "ns", "FreeOSMemory call p50", "median freeos call duration",
           lambda v: _quantile(_freeos(v), 0.5), timing=True),
    Metric("freeos_p99_ns", "ns", "FreeOSMemory call p99", "99th percentile freeos call duration",
           lambda v: _quantile(_freeos(v), 0.99), timing=True),
    Metric("oom_killed", "count", "OOM-killed", "1 if the kernel's OOM killer ended the cell", _oom),
    Metric("scavenge_cpu_s", "s", "scavenger CPU", "largest runtime/metrics scavenger CPU reading (1.20+)",
           lambda v: largest(v.series("runtime", "scavenge_cpu_s")), timing=True),
    Metric("limiter_engaged", "count", "GC CPU limiter on",
           "1 if /gc/limiter/last-enabled:gc-cycle ever read above 0, 0 if never; NaN before Go 1.19",
           _limiter_engaged, timing=True),
    Metric("unit_p50_ns", "ns", "work unit p50", "median latency of one unit of work (end totals lat_p50_ns)",
           lambda v: number(v.totals.get("lat_p50_ns")), timing=True),
    Metric("unit_p99_ns", "ns", "work unit p99", "99th percentile latency of one unit of work (end totals "
           "lat_p99_ns)", lambda v: number(v.totals.get("lat_p99_ns")), timing=True),
    Metric("wall_s", "s", "wall time", "seconds from start to exit", _wall, timing=True),
    # cgroup v2's own signals (NaN on v1): counters and stall totals only grow: largest reading = last.
    Metric("memory_high_events", "count", "memory.high events", "memory.events high (v2), largest reading",
           lambda v: largest(v.series("cgroup", "events_high"))),
    Metric("memory_max_events", "count", "memory.max events", "memory.events max (v2), largest reading",
           lambda v: largest(v.series("cgroup", "events_max"))),
    Metric("oom_events", "count", "OOM events", "memory.events oom (v2), largest reading",
           lambda v: largest(v.series("cgroup", "events_oom"))),
    Metric("oom_kill_events", "count", "OOM kills (kernel count)", "memory.events oom_kill (v2), largest reading",
           lambda v: largest(v.series("cgroup", "events_oom_kill"))),
    Metric("psi_some_avg10", "fraction", "PSI some avg10, highest", "memory.pressure some avg10 (v2), max reading",
           lambda v: largest(v.series("cgroup", "psi_some_avg10")), timing=True),
    Metric("psi_full_avg10", "fraction", "PSI full avg10, highest", "memory.pressure full avg10 (v2), max reading",
           lambda v: largest(v.series("cgroup", "psi_full_avg10")), timing=True),
    Metric("memory_stall_some_s", "s", "memory stall (some)", "memory.pressure some total (v2), largest reading",
           lambda v: largest(v.series("cgroup", "psi_some_total_s")), timing=True),
    Metric("memory_stall_full_s", "s", "memory stall (full)", "memory.pressure full total (v2), largest reading",
           lambda v: largest(v.series("cgroup", "psi_full_total_s")), timing=True),
    # What is huge and what is swapped (issue 18's THP and swap axes). NaN where the file or field is absent.
    Metric("peak_anon_thp", "bytes", "peak cgroup anon_thp", "memory.stat anon_thp / total_rss_huge, max reading",
           lambda v: largest(v.series("cgroup", "anon_thp"))),
    Metric("final_anon_thp", "bytes", "final cgroup anon_thp",
           "anon_thp at the last VmRSS reading (the process still alive: its cgroup empties at exit)",
           lambda v: _final_alive(v, "cgroup", "anon_thp")),
    Metric("peak_anon_huge_pages", "bytes", "peak AnonHugePages", "smaps_rollup AnonHugePages, max reading",
           lambda v: largest(v.series("smaps", "anon_huge_pages"))),
    Metric("final_anon_huge_pages", "bytes", "final AnonHugePages", "last smaps_rollup AnonHugePages reading",
           lambda v: last(v.series("smaps", "anon_huge_pages"))),
    Metric("peak_swap", "bytes", "peak cgroup swap", "memory.swap.current (v2) / total_swap (v1), max reading",
           lambda v: largest(v.series("cgroup", "swap"))),
    Metric("peak_vm_swap", "bytes", "peak VmSwap", "/proc/<pid>/status VmSwap, max reading",
           lambda v: largest(v.series("proc", "vm_swap"))),
    Metric("pglazyfree", "count", "pages lazily freed", "memory.stat pglazyfree (v2): its rise over the cell",
           lambda v: rise(v.series("cgroup", "pglazyfree"))),
    Metric("pglazyfreed", "count", "lazily freed pages reclaimed",
           "memory.stat pglazyfreed (v2): its rise over the cell", lambda v: rise(v.series("cgroup", "pglazyfreed"))),
    Metric("untimed", "text", "timing not the host's",
           "the accelerator (harness.define.hosts.UNTIMED_ACCELERATORS) under which this cell's timing metrics "
           "do not hold, '' where they do", _untimed),
    Metric("benchmark", "text", "benchmark", "the benchmark the bench metrics are of (the first one run)",
           _bench_name),
    Metric("ns_per_op", "ns", "time per op", "the benchmark's ns/op (median over its result lines)",
           lambda v: _bench(v, "ns/op"), "ns/op", timing=True),
    Metric("bytes_per_op", "bytes", "allocated per op", "the benchmark's B/op (-benchmem)",
           lambda v: _bench(v, "B/op"), "B/op"),
    Metric("allocs_per_op", "count", "allocations per op", "the benchmark's allocs/op (-benchmem)",
           lambda v: _bench(v, "allocs/op"), "allocs/op"),
    Metric("mb_per_s", "count", "MB/s", "the benchmark's MB/s (where it calls b.SetBytes)",
           lambda v: _bench(v, "MB/s"), "MB/s", timing=True),
    # A server's load, from its load generator's summary (hey, wrk --latency), one reading per cell.
    Metric("load_rps", "ops/s", "requests/s", "the load generator's Requests/sec (hey, wrk)",
           lambda v: _load(v, "requests_per_s"), timing=True),
    Metric("load_p50_ns", "ns", "latency p50", "the load generator's 50th percentile latency",
           lambda v: _load(v, "p50_ns"), timing=True),
    Metric("load_p90_ns", "ns", "latency p90", "the load generator's 90th percentile latency",
           lambda v: _load(v, "p90_ns"), timing=True),
    Metric("load_p99_ns", "ns", "latency p99", "the load generator's 99th percentile latency",
           lambda v: _load(v, "p99_ns"), timing=True),
    Metric("load_max_ns", "ns", "latency max", "the load generator's slowest request (hey Slowest, wrk Max)",
           lambda v: _load(v, "max_ns"), timing=True),
    Metric("load_errors", "count", "request errors", "responses outside 2xx/3xx plus requests without a "
           "response (hey's error distribution, wrk's socket errors)", lambda v: _load(v, "errors")),
    Metric("release_s", "s", "time to release half",
           "seconds from the start of phase `release` until RSS falls below half its value then",
           lambda v: release_seconds(v.series("proc", "vm_rss"), v.phase_span("release")[0])),
)}

PHASE_METRICS: dict[str, PhaseMetric] = {m.name: m for m in (
    PhaseMetric("rss", "bytes", "RSS", (("proc", "vm_rss"),)),
    PhaseMetric("vm_size", "bytes", "VmSize", (("proc", "vm_size"),)),
    PhaseMetric("lazyfree", "bytes", "LazyFree", (("smaps", "lazyfree"),)),
    PhaseMetric("cgroup_usage", "bytes", "cgroup usage", (("cgroup", "usage"),)),
    PhaseMetric("working_set", "bytes", "working set", (("cgroup", "working_set"),)),
    PhaseMetric("docker_stats", "bytes", "docker stats (API)", (("docker", "mem_usage"),)),
    PhaseMetric("heap_alloc", "bytes", "heap alloc", (("runtime", "heap_alloc"),)),
    PhaseMetric("pprof_inuse_space", "bytes", "pprof inuse_space", (("runtime", "pprof_inuse_space"),),
                only_inside=True),
    PhaseMetric("heap_inuse", "bytes", "heap in use", (("runtime", "heap_inuse"),)),
    PhaseMetric("heap_idle", "bytes", "heap idle", (("runtime", "heap_idle"),)),
    PhaseMetric("heap_released", "bytes", "heap released", (("runtime", "heap_released"),)),
    PhaseMetric("heap_goal", "bytes", "heap goal", (("runtime", "heap_goal"), ("runtime", "next_gc"))),
)}


def timing_sensitive(name: str) -> bool:
    """Whether a summary metric (`X@phase` included: those are memory readings) reads CPU time,
    throughput, latency or GC CPU, which another cell on the same host would change."""
    base, at, _ = name.partition("@")
    return not at and base in METRICS and METRICS[base].timing


def metric_unit(name: str) -> Unit:
    """The unit of a summary metric, `X@phase` included; `count` for a name not declared."""
    base = name.split("@", 1)[0]
    if "@" in name and base in PHASE_METRICS:
        return PHASE_METRICS[base].units
    if base in METRICS:
        return METRICS[base].units
    return UNITS["count"]


def metric_label(name: str) -> str:
    base, _, phase = name.partition("@")
    if phase and base in PHASE_METRICS:
        return f"{PHASE_METRICS[base].label} at the end of {phase}"
    return METRICS[base].label if base in METRICS else name
