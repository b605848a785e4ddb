"""What returned released memory to the OS, and when: a per-cell release timeline, and the
scavenger's retention goal.

After a workload drops its data (phase `release`), three things can hand the memory back:

- the background scavenger, down to its retention goal (`retention_goal`); since Go 1.21 it skips a
  4 MiB chunk that was dense in the current or the previous GC cycle (runtime/mgcscavenge.go
  scavChunkData.shouldScavenge, golang/go#59960), so memory freed by GC n goes back only after
  GC n+1;
- the periodic GC that sysmon starts when none ran for 2 minutes (runtime/proc.go forcegcperiod),
  which is how an idle program gets that next GC; gctrace does not mark it "(forced)";
- debug.FreeOSMemory: runtime.GC then mheap.scavengeAll with force, which ignores the density rule.

A timeline names which of them brought RSS below half its value at the start of `release`
(the summary metric `release_s`) and when; with MADV_FREE the runtime returns the pages but RSS
keeps them, which the timeline tells apart through HeapReleased.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from harness.analyse.summary import RunData, parse_detail
from harness.define.metrics import last, release_seconds, value_at
from harness.define.units import UNITS

NAN = float("nan")
MiB = 1024 * 1024

# A GC no one asked for, this long after the previous one in a program that allocates nothing,
# is the periodic one (forcegcperiod is 120 s; sysmon may notice it a little late).
PERIODIC_GAP_S = 100.0
# RSS below this share of its value at the start of `release`: it has started to fall. The GC
# before that moment is the one after which the scavenger returned the memory.
FALLING_SHARE = 0.9
# gctrace lines are stamped when the harness receives them, a little after the runtime wrote
# them; a GC stamped this soon after RSS started to fall still came before the fall.
TRACE_LAG_S = 0.2
# RSS at the start of `release` less than this share of the freed heap above RSS's lowest reading:
# the freed pages were never resident (an untouched slice), so there is nothing to return.
NOT_RESIDENT = 0.5
# The scavenger keeps this much above the heap in use (runtime/mgcscavenge.go retainExtraPercent).
RETAIN_EXTRA = 0.10
# ...and the memory-limit goal is this share of GOMEMLIMIT (reduceExtraPercent = 5).
LIMIT_GOAL_SHARE = 0.95

mib = UNITS["bytes"].format

# What returned a cell's released memory (Timeline.cause).
ReleaseCause = Literal["freeos", "scavenger", "eager", "periodic", "nothing", "not-resident"]


def go_minor(version: str) -> int | None:
    """12 for "1.12.17"; None for a version that is not 1.N[.P]."""
    m = re.fullmatch(r"(?:go)?1\.([0-9]+)(?:\.[0-9]+)?", str(version).strip())
    return int(m.group(1)) if m else None


def scavenger_rule(version: str) -> str:
    """When memory freed by a GC becomes eligible for the background scavenger, for a Go version."""
    minor = go_minor(version)
    if minor is None or minor >= 21:
        return ("Go 1.21+: the scavenger skips chunks that were dense in this or the previous GC cycle "
                "(runtime/mgcscavenge.go scavChunkData.shouldScavenge, golang/go#59960), so memory freed by "
                "one GC goes back only after a later GC, in an idle program the periodic one every 2 min "
                "(runtime/proc.go forcegcperiod)")
    if minor >= 19:
        return ("Go 1.19–1.20: freed pages are eligible for the scavenger at once (its index has no GC "
                "generations), which returns them at about 1% of the CPU (scavengePercent)")
    if minor >= 14:
        return ("Go 1.14–1.18: freed pages are eligible for the scavenger at once; its goal is 1.1 × the heap "
                "in use at the last GC (runtime/mgcscavenge.go gcPaceScavenger, golang/go#34048)")
    return "Go ≤1.13: an older scavenger (golang/go#30333; before 1.13 sysmon's 5-minute scavengelimit)"


def madvise_default(version: str) -> str:
    """The advice the runtime uses to return memory on Linux by default, with its reference."""
    minor = go_minor(version)
    if minor is not None and 12 <= minor <= 15:
        return ("MADV_FREE by default in Go 1.12–1.15 (runtime/mem_linux.go sysUnusedOS; MADV_DONTNEED "
                "from Go 1.16, golang/go#42330)")
    return ("MADV_DONTNEED by default since Go 1.16 (runtime/runtime1.go parsedebugvars, golang/go#42330; "
            "runtime/mem_linux.go sysUnusedOS)")


# ---- GC cycles -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GCCycle:
    n: int             # the runtime's GC number (gctrace "gc N", else MemStats.NumGC)
    t_s: float         # when it ended, seconds from the start of the cell
    requested: bool    # by the workload: runtime.GC() or debug.FreeOSMemory ("(forced)" in gctrace)
    periodic: bool     # not requested, and PERIODIC_GAP_S or more after the previous GC
    heap_end: float    # gctrace: heap at mark termination, dead objects still in it (bytes; NaN without)
    goal: float        # gctrace: the heap goal this cycle ran against (bytes; NaN without)

    def kind(self) -> str:
        if self.requested:
            return "runtime.GC()"
        return "the periodic GC" if self.periodic else "an automatic GC"

    def text(self, since_s: float) -> str:
        """'GC 12 (runtime.GC, 0.0 s after the drop)', 'the periodic GC 14 (121 s after the drop)'."""
        after = self.t_s - since_s
        when = f"{after:.0f} s after the drop" if after >= 1 else f"{after:.1f} s after the drop"
        if self.requested:
            return f"GC {self.n} (runtime.GC, {when})"
        if self.periodic:
            return f"the periodic GC {self.n} ({when})"
        return f"GC {self.n} (heap goal, {when})"


# Phases in which a workload itself calls runtime.GC() or debug.FreeOSMemory().
REQUESTING_PHASES = ("release", "freeos", "drain")


def _phase_at(run: RunData, cell_id: str, t: float) -> str:
    found = ""
    for name, start, _ in run.phases_of(cell_id):
        if start <= t + 1e-9:
            found = name
    return found


def _classify(raw: list[tuple[int, float, bool | None, float, float]], run: RunData, cell_id: str) -> list[GCCycle]:
    out: list[GCCycle] = []
    previous = NAN
    for n, t, forced, heap_end, goal in sorted(raw, key=lambda g: (g[1], g[0])):
        requested = forced if forced is not None else _phase_at(run, cell_id, t) in REQUESTING_PHASES
        # The first GC cannot be the periodic one: the runtime starts it only once a GC has run.
        periodic = (not requested) and not math.isnan(previous) and t - previous >= PERIODIC_GAP_S
        out.append(GCCycle(n, t, bool(requested), periodic, heap_end, goal))
        previous = t
    return out


def gc_cycles(run: RunData, cell_id: str) -> list[GCCycle]:
    """Every GC of a cell in time order: from its gctrace lines, else from MemStats.NumGC readings
    (then a GC is requested when /gc/cycles/forced rose with it, else when it ended in `release` or
    `freeos`)."""
    events = run.events(cell_id, "gc")
    raw: list[tuple[int, float, bool | None, float, float]] = []
    for name, t, detail in zip(events["name"].astype(str), events["t_s"].astype(float), events["detail"],
                               strict=True):
        d = parse_detail(detail)
        n = d.get("num_gc")
        if n is None:
            digits = re.sub(r"\D", "", name)
            n = int(digits) if digits else -1
        forced = d.get("forced")
        raw.append((int(n), float(t), bool(forced) if forced is not None else None,
                    float(d.get("heap_end_bytes", NAN)), float(d.get("goal_bytes", NAN))))
    if raw:
        return _classify(raw, run, cell_id)
    num_gc = run.series(cell_id, "runtime", "num_gc")
    forced_count = run.series(cell_id, "runtime", "gc_forced")
    asked = [(start, end) for name, start, end in run.phases_of(cell_id) if name in REQUESTING_PHASES]
    prev_t, prev_n, prev_forced = NAN, None, NAN
    for at, v in zip(num_gc.index.to_numpy(dtype=float), num_gc.to_numpy(), strict=True):
        n, t = int(v), float(at)
        f = value_at(forced_count, t) if len(forced_count) else NAN
        if prev_n is not None and n > prev_n:
            if not (math.isnan(f) or math.isnan(prev_forced)):
                requested = f > prev_forced
            else:
                # The GC ended between two readings: requested if a release or freeos phase ran then.
                requested = any(start <= t and (math.isnan(end) or end >= prev_t) for start, end in asked)
            raw += [(k, t, requested, NAN, NAN) for k in range(prev_n + 1, n + 1)]
        prev_t, prev_n, prev_forced = t, n, f
    return _classify(raw, run, cell_id)


# ---- the release timeline ------------------------------------------------------------------------

@dataclass(frozen=True)
class Timeline:
    """How one cell's released memory went back (times in seconds from the start of `release`)."""

    cell_id: str
    go_version: str
    window_s: float         # from the start of `release` to the end of the cell
    rss_start: float        # RSS at the start of `release`
    rss_end: float
    half_s: float           # until RSS fell below half of rss_start (summary metric release_s); NaN: never
    freeos_s: float         # when debug.FreeOSMemory began; NaN: not called
    gcs: tuple[GCCycle, ...]  # GCs from the start of `release` on, t_s relative to it
    freed: float            # heap in use given up by the GC (bytes)
    released: float         # rise of HeapReleased over the window (bytes)
    released_half_s: float  # until HeapReleased had risen by half of `freed`; NaN: never
    bg_scavenged: float     # background scavenger work reported by scavtrace in the window (bytes)
    eager_scavenged: float  # eager (allocation-time or FreeOSMemory) scavenger work, same source
    lazyfree_end: float     # LazyFree at the end (smaps_rollup)
    cause: ReleaseCause
    lazy: bool              # the runtime returned it but RSS kept it (MADV_FREE)
    after: GCCycle | None   # the GC after which the scavenger returned it
    at_s: float             # when it went back: half_s, or released_half_s when lazy

    @property
    def requested_gcs(self) -> int:
        """runtime.GC() calls of the workload after the drop (debug.FreeOSMemory's own GC not counted)."""
        return sum(g.requested for g in self.gcs) - (0 if math.isnan(self.freeos_s) else 1)


def _first_below(s: pd.Series, start: float, bound: float) -> float:
    hit = s[(s.index >= start) & (s < bound)]
    return float(hit.index[0]) if len(hit) else NAN


def _first_above(s: pd.Series, start: float, bound: float) -> float:
    hit = s[(s.index >= start) & (s > bound)]
    return float(hit.index[0]) if len(hit) else NAN


def _cell_end(run: RunData, cell_id: str) -> float:
    phases = run.phases_of(cell_id)
    ends = [e for _, _, e in phases if not math.isnan(e)]
    return max(ends) if ends else NAN


def timeline(run: RunData, cell_id: str, go_version: str = "") -> Timeline | None:
    """The release timeline of one cell; None when it has no `release` phase or no RSS readings."""
    start, _ = run.phase_span(cell_id, "release")
    rss = run.series(cell_id, "proc", "vm_rss")
    if math.isnan(start) or rss.empty:
        return None
    end = _cell_end(run, cell_id)
    rss_start = value_at(rss, start)
    if math.isnan(rss_start):
        rss_start = float(rss[rss.index >= start].iloc[0]) if (rss.index >= start).any() else NAN
    half_s = release_seconds(rss, start)
    rss_floor = float(rss.min())
    falling = _first_below(rss, start, FALLING_SHARE * rss_start)
    freeos_at, _ = run.phase_span(cell_id, "freeos")
    gcs = tuple(GCCycle(g.n, g.t_s - start, g.requested, g.periodic, g.heap_end, g.goal)
                for g in gc_cycles(run, cell_id) if g.t_s >= start - 1e-6)

    inuse = run.series(cell_id, "runtime", "heap_inuse")
    freed = max(value_at(inuse, start) - last(inuse), 0.0) if len(inuse) else NAN
    rel = run.series(cell_id, "runtime", "heap_released")
    rel_start = value_at(rel, start) if len(rel) else NAN
    released = last(rel) - rel_start if len(rel) else NAN
    released_half = (_first_above(rel, start, rel_start + freed / 2) - start
                     if len(rel) and freed > 0 else NAN)

    scav = run.events(cell_id, "scav")
    scav = scav[scav["t_s"].astype(float) >= start - 1e-6]
    details = [parse_detail(d) for d in scav["detail"]]
    bg = float(sum(float(d.get("released_bg_bytes", 0) or 0) for d in details))
    eager = float(sum(float(d.get("released_eager_bytes", 0) or 0) for d in details))

    lazy = False
    if freed > 0 and rss_start - rss_floor < NOT_RESIDENT * freed:
        at = moment = NAN
    elif not math.isnan(half_s):
        at = half_s
        moment = falling - start if not math.isnan(falling) else half_s
    elif not math.isnan(released_half):
        at = moment = released_half
        lazy = True
    else:
        at = moment = NAN
    after = None
    cause: ReleaseCause
    if math.isnan(at):
        cause = "not-resident" if freed > 0 and rss_start - rss_floor < NOT_RESIDENT * freed else "nothing"
    else:
        freeos_s = freeos_at - start
        before = [g for g in gcs if g.t_s <= moment + TRACE_LAG_S]
        # FreeOSMemory's own GC is requested and comes within the call; a later GC would be another.
        later = [g for g in before if not math.isnan(freeos_s) and g.t_s > freeos_s + TRACE_LAG_S]
        if not math.isnan(freeos_s) and freeos_s <= moment + TRACE_LAG_S and not later:
            cause = "freeos"
        else:
            after = before[-1] if before else None
            if after is not None and after.periodic:
                cause = "periodic"
            elif eager > bg and eager >= freed / 2:
                cause = "eager"
            else:
                cause = "scavenger"
    return Timeline(
        cell_id=cell_id, go_version=go_version, window_s=end - start, rss_start=rss_start,
        rss_end=last(rss), half_s=half_s, freeos_s=freeos_at - start, gcs=gcs, freed=freed,
        released=released, released_half_s=released_half, bg_scavenged=bg, eager_scavenged=eager,
        lazyfree_end=last(run.series(cell_id, "smaps", "lazyfree")), cause=cause, lazy=lazy, after=after,
        at_s=at)


def seconds(x: float) -> str:
    return f"{x:.0f} s" if abs(x) >= 10 else f"{x:.1f} s"


def release_cause(tl: Timeline) -> str:
    """What returned the memory and when, in words: "the scavenger after GC 4 (runtime.GC() at 0.0 s):
    RSS below half after 2.1 s"."""
    if tl.cause == "nothing":
        return f"nothing within the {seconds(tl.window_s)} window (RSS {mib(tl.rss_start)} → {mib(tl.rss_end)})"
    if tl.cause == "not-resident":
        return (f"nothing to return: the {mib(tl.freed)} freed were never resident (RSS {mib(tl.rss_start)} "
                f"when they were dropped)")
    if tl.cause == "freeos":
        text = f"debug.FreeOSMemory at {seconds(tl.freeos_s)}"
    elif tl.cause == "periodic" and tl.after is not None:   # a periodic cause is the GC `after`
        text = (f"the periodic GC {tl.after.n} at {seconds(tl.after.t_s)} (runtime/proc.go forcegcperiod), "
                f"then the scavenger")
    elif tl.cause == "eager":
        text = (f"the allocation-time scavenger ({mib(tl.eager_scavenged)} of eager work in scavtrace; forced once "
                f"memory passes GOMEMLIMIT, runtime/mheap.go allocSpan)")
    elif tl.after is not None:
        text = f"the scavenger after GC {tl.after.n} ({tl.after.kind()} at {seconds(tl.after.t_s)})"
    else:
        text = "the scavenger, with no GC after the drop"
    if tl.lazy:
        return (f"{text}, with MADV_FREE: HeapReleased rose by half the freed heap after {seconds(tl.at_s)} but RSS "
                f"kept the pages ({mib(tl.rss_end)} at the end, LazyFree {mib(tl.lazyfree_end)})")
    return f"{text}: RSS below half after {seconds(tl.at_s)}"


def timelines(run: RunData, t: pd.DataFrame) -> dict[str, Timeline]:
    """cell_id → timeline, for the cells (rows of a claim's table) that have one."""
    versions = t["go_version"].astype(str) if "go_version" in t.columns else pd.Series("", index=t.index)
    out = {}
    for cell_id in t.index:
        tl = timeline(run, str(cell_id), str(versions.get(cell_id, "")))
        if tl is not None:
            out[str(cell_id)] = tl
    return out


# ---- the scavenger's retention goal --------------------------------------------------------------

@dataclass(frozen=True)
class Retention:
    """What the runtime kept after a release, against the goals its scavenger works towards."""

    cell_id: str
    retained: float     # HeapSys − HeapReleased at the end: heap memory the runtime still holds
    heap_inuse: float   # HeapInuse at the end
    goal: float         # 1.1 × heap in use at the last GC × new heap goal ÷ that GC's heap goal
    last_gc: int        # the GC the goal was computed from
    limit_goal: float   # 95% of GOMEMLIMIT (NaN without a limit)

    @property
    def ratio(self) -> float:
        return self.retained / self.goal if self.goal > 0 else NAN


def retention(run: RunData, cell_id: str, limit_bytes: float = NAN) -> Retention | None:
    """The retained heap at the end of a cell and the scavenger's goals after its last GC.

    runtime/mgcscavenge.go gcPaceScavenger: gcPercentGoal = lastHeapInUse × heapGoal / lastHeapGoal
    × (1 + retainExtraPercent/100), compared with heapInUse + heapFree; lastHeapInUse is read at mark
    termination, before sweeping, so it still holds the objects that GC found dead. It is taken from
    gctrace (heap at the end of the cycle, never below the heap in use afterwards), else from the
    last HeapInuse reading before the GC.
    """
    sys_, released = run.series(cell_id, "runtime", "heap_sys"), run.series(cell_id, "runtime", "heap_released")
    inuse = run.series(cell_id, "runtime", "heap_inuse")
    goal_series = run.series(cell_id, "runtime", "heap_goal")
    if goal_series.empty:
        goal_series = run.series(cell_id, "runtime", "next_gc")
    gcs = gc_cycles(run, cell_id)
    if sys_.empty or released.empty or inuse.empty or goal_series.empty or not gcs:
        return None
    gc = gcs[-1]
    inuse_end = last(inuse)
    in_use_at_gc = gc.heap_end if not math.isnan(gc.heap_end) else value_at(inuse, gc.t_s - 1e-3)
    in_use_at_gc = max(in_use_at_gc, inuse_end)
    last_goal = gc.goal if not math.isnan(gc.goal) else value_at(goal_series, gc.t_s - 1e-3)
    new_goal = last(goal_series)
    goal = in_use_at_gc * new_goal / last_goal * (1 + RETAIN_EXTRA) if last_goal > 0 else NAN
    limit_goal = LIMIT_GOAL_SHARE * limit_bytes if limit_bytes > 0 else NAN
    return Retention(cell_id, last(sys_) - last(released), inuse_end, goal, gc.n, limit_goal)
