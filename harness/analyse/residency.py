"""What stays resident, and what returned it when: quantities C5, C12, C13 and C14 compute from a
run's raw samples and events (a RunData), beyond summary.csv's columns.

- GC completions over time (`gcs`), from the runtime's num_gc readings, told apart as forced
  (runtime.GC, FreeOSMemory) or not (heap-goal or periodic) by /gc/cycles/forced where the Go
  version has it, else by the phase they ran in.
- `retention`: after a drop, RSS against the live bytes plus the scavenger's allowance, and the
  moment RSS came down to that bound with the GC or FreeOSMemory call that preceded it.
- `cgroup_state`: cgroup usage, page cache, working set and RSS at one instant of a cell.
- `drain`: the heap a cache keeps after every entry is deleted and two GCs ran.
- `size_runs`: the allocation counters per size run with the shape and counter source.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analyse import derived as derive
from harness.analyse.release import gc_cycles
from harness.analyse.summary import RunData, parse_detail
from harness.define.metrics import value_at

NAN = float("nan")
MiB = 1024 * 1024

# runtime/mgcscavenge.go retainExtraPercent: the background scavenger keeps the heap's retained
# memory (in use + free, not released) at 1.1 × the heap in use at the last GC (gcPaceScavenger).
RETAIN_EXTRA = 0.10
# RSS may exceed baseline + (1 + RETAIN_EXTRA) × heap in use by this much and still count as
# "everything else went back": runtime metadata that grows with the heap (spans, bitmaps) and the
# 4 KiB granularity of RSS. The larger of a fixed amount and a share of the peak.
SLACK_BYTES = 8 * MiB
SLACK_OF_PEAK = 0.03
# Without gctrace a GC is dated by the first runtime reading that counts it, up to one metrics
# interval (100 ms) after it ended, when the scavenger may already have brought RSS down.
GC_READING_LAG_S = 0.25


# ---- retention after a drop ----------------------------------------------------------------------

@dataclass(frozen=True)
class Retention:
    """One cell after its drop: what RSS kept against what the program still holds."""

    baseline_rss: float    # RSS at the end of the baseline phase: the runtime and binary alone
    peak_rss: float
    drop_s: float          # when the drop happened (start of the release phase)
    live: float            # the workload's own live bytes at the end
    heap_inuse: float      # MemStats.HeapInuse at the end
    heap_free: float       # HeapIdle - HeapReleased at the end: free, not returned
    rss_end: float         # the last RSS reading
    bound: float           # baseline + (1 + RETAIN_EXTRA) × heap in use + slack
    within_s: float        # seconds after the drop from which RSS stayed within `bound`; NaN: never
    by: str                # what preceded that moment: a GC's text, "FreeOSMemory", "the drop" or ""
    waited_at: float       # RSS just before `by` when that came a second or more after the drop: what
                           # stayed until then (NaN otherwise)
    gcs_after: int         # GC cycles completed after the drop
    forced_after: int      # of which forced: runtime.GC calls, FreeOSMemory's own GC included
    periodic: bool         # a periodic GC ran after the drop
    quiet_s: float         # seconds from the last GC after the drop to the last RSS reading (NaN: no GC)
    freeos: bool           # FreeOSMemory ran after the drop

    @property
    def kept(self) -> float:
        """RSS above baseline + live bytes at the end: what the heap holds beyond the program's data."""
        return self.rss_end - self.baseline_rss - self.live

    @property
    def rss_per_live(self) -> float:
        return self.rss_end / self.live if self.live > 0 else NAN

    @property
    def returned(self) -> bool:
        return not math.isnan(self.within_s)


def _last(s: pd.Series) -> float:
    return float(s.iloc[-1]) if len(s) else NAN


def retention(run: RunData, cell_id: str, drop_phase: str = "release") -> Retention | None:
    """RSS after the drop (the start of `drop_phase`) against baseline + 1.1 × heap in use; None
    when the cell never reached that phase or lacks RSS."""
    drop_s, _ = run.phase_span(cell_id, drop_phase)
    rss = run.series(cell_id, "proc", "vm_rss")
    if math.isnan(drop_s) or rss.empty:
        return None
    _, baseline_end = run.phase_span(cell_id, "baseline")
    baseline = value_at(rss, baseline_end) if not math.isnan(baseline_end) else float(rss.iloc[0])
    peak = float(rss.max())
    inuse = _last(run.series(cell_id, "runtime", "heap_inuse"))
    free = _last(run.series(cell_id, "runtime", "heap_idle")) - _last(run.series(cell_id, "runtime", "heap_released"))
    live = _last(run.series(cell_id, "runtime", "live_bytes"))
    bound = baseline + (1 + RETAIN_EXTRA) * inuse + max(SLACK_BYTES, SLACK_OF_PEAK * peak)
    after = rss[rss.index >= drop_s]
    within_s, by, waited_at = NAN, "", NAN
    if len(after) and not math.isnan(bound):
        above = np.flatnonzero(after.to_numpy() > bound)
        if len(above) == 0:
            within_s = 0.0
        elif above[-1] + 1 < len(after):
            within_s = float(after.index[above[-1] + 1]) - drop_s
    # Readings before a phase belong to the one before.
    cycles = [g for g in gc_cycles(run, cell_id) if g.t_s > drop_s + 1e-9]
    freeos_s, _ = run.phase_span(cell_id, "freeos")
    freeos = not math.isnan(freeos_s) and freeos_s >= drop_s - 1e-9
    if not math.isnan(within_s):
        at = drop_s + within_s
        before = [g for g in cycles if g.t_s <= at + GC_READING_LAG_S]
        if freeos and freeos_s <= at + 1e-9 and (not before or before[-1].t_s <= freeos_s + 0.2):
            by, by_s = "FreeOSMemory", freeos_s
        elif before:
            by, by_s = before[-1].text(drop_s), before[-1].t_s
        else:
            by, by_s = "the drop", drop_s
        if by_s - drop_s >= 1.0:
            # The GC's reading comes up to a metrics interval after it; RSS a second before it.
            waited_at = value_at(rss, by_s - 1.0)
    return Retention(baseline, peak, drop_s, live, inuse, free, float(rss.iloc[-1]), bound, within_s, by, waited_at,
                     len(cycles), sum(g.requested for g in cycles), any(g.periodic for g in cycles),
                     float(rss.index.max()) - cycles[-1].t_s if cycles else NAN, freeos)


# ---- cgroup accounting ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CgroupState:
    """A cell's memory as each tool sees it at one instant."""

    t_s: float
    rss: float             # VmRSS: what ps/top show
    usage: float           # memory.usage_in_bytes / memory.current
    file: float            # page cache charged to the cgroup (memory.stat file/cache)
    inactive_file: float   # page cache and MADV_FREE pages on the inactive file LRU
    working_set: float     # usage - inactive_file: docker stats, kubectl top, kubelet eviction
    lazyfree: float        # smaps_rollup LazyFree: MADV_FREE pages still in RSS


def cgroup_state(run: RunData, cell_id: str, t: float) -> CgroupState:
    """The last reading of each series at or before `t` (LazyFree comes from the slow tier, read
    twice a second)."""
    def at(source: str, metric: str) -> float:
        return value_at(run.series(cell_id, source, metric), t)

    return CgroupState(t, at("proc", "vm_rss"), at("cgroup", "usage"), at("cgroup", "file"),
                       at("cgroup", "inactive_file"), at("cgroup", "working_set"), at("smaps", "lazyfree"))


def phase_end(run: RunData, cell_id: str, phase: str) -> float:
    """When a phase ended; for the last phase of a killed cell, its last reading. NaN if it never ran."""
    start, end = run.phase_span(cell_id, phase)
    if math.isnan(start):
        return NAN
    if math.isnan(end):
        rss = run.series(cell_id, "proc", "vm_rss")
        return float(rss.index.max()) if len(rss) else start
    return end


def page_cache_reclaim(run: RunData, cell_id: str) -> tuple[float, float]:
    """(page cache at the end of the `pagecache` phase, the least page cache after it up to the
    cell's last reading): how much the kernel reclaimed before the end (an OOM kill included)."""
    file = run.series(cell_id, "cgroup", "file")
    end = phase_end(run, cell_id, "pagecache")
    if file.empty or math.isnan(end):
        return NAN, NAN
    later = file[file.index > end]
    return value_at(file, end), float(later.min()) if len(later) else NAN


# ---- a drained cache -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Drain:
    heap_before: float    # heap in use when the drain started (the full cache)
    heap_after: float     # heap in use at the end, after the deletes and two GCs
    heap_baseline: float  # heap in use before serving: the runtime and an empty cache
    entries_after: float  # cache entries at the end
    rss_after: float


def drain(run: RunData, cell_id: str) -> Drain | None:
    """The heap before and after a cache's entries were all deleted; None without a drain phase."""
    start, _ = run.phase_span(cell_id, "drain")
    if math.isnan(start):
        return None
    heap = run.series(cell_id, "runtime", "heap_inuse")
    _, serve_start = run.phase_span(cell_id, "baseline")
    return Drain(value_at(heap, start), _last(heap), value_at(heap, serve_start),
                 _last(run.series(cell_id, "runtime", "cache_entries")), _last(run.series(cell_id, "proc", "vm_rss")))


# ---- allocation counters by size -------------------------------------------------------------------

SIZE_RUN_COLUMNS = derive.SIZES_COLUMNS + ("shape", "pointers", "counters")


def size_runs(events: pd.DataFrame | None, cell_ids: Iterable[str]) -> pd.DataFrame:
    """derived.sizes_table with each run's object shape, whether it had pointers and which
    counters the runtime offered ("runtime/metrics", "memstats", ...); a tiny count of -1 (no
    tiny counter: Go before 1.16) is NaN."""
    wanted = [str(c) for c in cell_ids]
    table = derive.sizes_table(events, wanted)
    extra = []
    if events is not None and len(events):
        ev = events[(events["kind"].astype(str) == "sizes") & events["cell_id"].astype(str).isin(set(wanted))]
        for detail in ev["detail"]:
            d = parse_detail(detail)
            extra.append({"shape": str(d.get("shape", "bytes")), "pointers": bool(d.get("pointers", False)),
                          "counters": str(d.get("counters", ""))})
    out = pd.concat([table.reset_index(drop=True), pd.DataFrame(extra, columns=["shape", "pointers", "counters"])],
                    axis=1)
    out.loc[out["tiny_allocs"] < 0, "tiny_allocs"] = NAN
    return out[list(SIZE_RUN_COLUMNS)]

