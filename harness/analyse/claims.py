"""The article's claims as predicates over a run's summaries: one verdict row per (claim, Go version).

Every verdict is decided here from what the run measured; the report only prints them.
Thresholds are stated where they are used, in the evidence too, so a reader can redo the call.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from harness.analyse import summary as analysis
from harness.analyse.summary import axis_str
from harness.define.units import UnitError, parse_duration, parse_size

VERDICTS = ("supported", "refuted", "partly", "inconclusive", "not-tested")
USABLE_STATUSES = ("ok", "oom_killed")
MiB = 1024 * 1024


@dataclass(frozen=True)
class Verdict:
    claim: str
    go_version: str
    verdict: str
    evidence: str
    figure: str


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    statement: str
    fair_test: str
    scenarios: tuple[str, ...]   # the first decides which Go versions get a row
    figure: str                  # figure file name the report draws for this claim


# The article's statements in English (section numbers refer to the article).
CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("C1", "1, 3.1", "After GC, freed memory stays with the runtime (mcache/mcentral/mheap) and is not "
          "returned to the OS right away, so `top`/`free` show it as still used.",
          "RSS after the live data is dropped and runtime.GC() runs, over an idle window of minutes; one GC "
          "versus several.", ("idle_scavenger",), "figures/idle_scavenger_rss.png"),
    Claim("C2", "1 (code)", "`data := make([]byte, 1<<30); data = nil; runtime.GC(); FreeOSMemory()` hands the "
          "1 GiB back to the OS.",
          "The snippet as written (the slice is never written to) and a variant that touches every page; RSS "
          "before, at peak and after. The article's `runtime.Debug.FreeOSMemory()` does not compile; the real "
          "call is `runtime/debug.FreeOSMemory()`.", ("alloc_release",), "figures/alloc_release_rss.png"),
    Claim("C3", "1 (table), 2.5", "`GODEBUG=madvdontneed=0` is the default and uses MADV_FREE (the kernel decides "
          "when); `madvdontneed=1` uses MADV_DONTNEED and frees physical memory at once.",
          "Which setting the default behaves like (unset vs explicit 0 and 1); RSS and LazyFree after release.",
          ("madvdontneed",), "figures/madvdontneed_rss.png"),
    Claim("C4", "1", "Setting `madvdontneed=1` keeps a container from being OOM-killed because RSS stays high.",
          "Under a cgroup limit: release memory with each setting, then allocate so that new plus lazily freed "
          "memory exceeds the limit. Killed or not; RSS, LazyFree and cgroup usage on the way.",
          ("oom_pressure",), "figures/oom_pressure_rss.png"),
    Claim("C5", "2.1", "Tiny objects (<16 B) and small ones (16 B–32 KiB) are served from the per-P mcache "
          "without locks; larger ones come straight from the heap.",
          "Allocation-size sweeps around 16 B and 32 KiB; the runtime's counters by size; throughput per size.",
          ("alloc_sizes",), "figures/alloc_sizes_throughput.png"),
    Claim("C6", "2.3, 2.4", "The runtime gives memory back with `munmap` when idle pages pass a threshold; the "
          "background scavenger uses `madvise(MADV_FREE)` or `munmap`.",
          "Whether VmSize ever shrinks while RSS falls; which system calls release memory (syscall trace).",
          ("syscalls", "idle_scavenger"), "figures/syscalls_vm_size.png"),
    Claim("C7", "2.4", "Memory goes back when free memory exceeds a share of the heap or after some GC cycles.",
          "Retained memory after a spike against the heap goal and the number of GC cycles; with and without "
          "GOMEMLIMIT.", ("release_threshold", "idle_scavenger"), "figures/release_threshold_retained.png"),
    Claim("C8", "4.1", "`GOGC`: lower means more frequent GC, lower peak memory and more CPU; higher means fewer "
          "GCs, more memory and more throughput (its table: 50 / 100 / 300).",
          "A steady allocation load swept over GOGC: GC cycles, GC CPU, peak RSS, throughput.",
          ("gogc_sweep",), "figures/gogc_sweep.png"),
    Claim("C9", "4.2", "`debug.FreeOSMemory()` lowers RSS a lot but costs CPU and latency; called often it causes "
          "repeated mapping and page faults.",
          "Periodic calls at several rates under a steady load: call duration, page faults, CPU, RSS and work "
          "done, against no calls.", ("freeos_periodic",), "figures/freeos_periodic.png"),
    Claim("C10", "2.5", "pprof's heap view (`inuse_space`) does not show what the OS sees; RSS (`ps`, "
          "`/proc/<pid>/status` VmRSS) does.",
          "The runtime's heap-in-use next to RSS over a run with a spike and a release.",
          ("alloc_release",), "figures/alloc_release_breakdown.png"),
    Claim("C11", "2.5", "With MADV_FREE, RSS does not fall until the kernel is under memory pressure; with "
          "MADV_DONTNEED it falls at once.",
          "RSS and LazyFree after release, with no pressure and then under cgroup pressure.",
          ("madvdontneed", "oom_pressure"), "figures/oom_pressure_breakdown.png"),
    Claim("C12", "4.3", "In a container, cgroup v1 `memory.usage_in_bytes` is the container's RSS, and "
          "`memory.limit_in_bytes` is a hard limit past which the OOM killer ends the process.",
          "cgroup usage next to process RSS; what happens at the limit (cgroup v2: memory.current, memory.max).",
          ("cgroup_limit", "oom_pressure"), "figures/cgroup_limit_usage.png"),
    Claim("C13", "3.2", "Large objects, allocated and freed with mixed lifetimes, fragment memory and keep it "
          "resident (stated for the .NET LOH and the JVM; tested for Go's large objects).",
          "Large-object churn with mixed sizes and lifetimes: RSS against live heap over time, several GOGC.",
          ("large_churn",), "figures/large_churn_rss.png"),
    Claim("C14", "3.3", "A cache with no bound or expiry grows memory without limit despite GC; a bounded "
          "(LRU/TTL) cache keeps it flat.",
          "The same request stream into an unbounded and a bounded cache: RSS and live heap over time.",
          ("cache_growth",), "figures/cache_growth_rss.png"),
    Claim("X1", "(added)", "Not in the article: a `GOMEMLIMIT` set to a share of the container limit keeps the "
          "program under that limit and avoids OOM kills, at the cost of more GC CPU.",
          "Large-object churn near the container limit with GOMEMLIMIT off, 90% and 70%; GOGC=off with and "
          "without a limit: OOM kills, peak RSS, GC CPU.", ("gomemlimit", "gogc_sweep"),
          "figures/gomemlimit.png"),
)}

# Claims about other runtimes: outside a Go harness.
NOT_TESTED: dict[str, tuple[str, str]] = {
    "J1": ("JVM GC triggers, G1 `MaxGCPauseMillis`, heap sizing flags (§2.2, 4.5).", "JVM, not Go"),
    "J2": ("JVM `MaxHeapFreeRatio`/`MinHeapFreeRatio` decide when heap goes back to the OS (§3.1).", "JVM, not Go"),
    "J3": (".NET large object heap is not compacted and fragments (§3.2).", ".NET, not Go"),
    "J4": ("Node.js heap snapshots; Python generators use O(1) memory (§5).", "not Go"),
}


@dataclass
class Inputs:
    """What the claims read: cells.csv, the per-cell summary and the raw events/samples."""
    cells: pd.DataFrame
    summary: pd.DataFrame
    events: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=analysis.EVENT_COLUMNS))
    samples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=analysis.SAMPLE_COLUMNS))

    def table(self) -> pd.DataFrame:
        """cells joined with their summary, one row per cell, indexed by cell_id."""
        cells = self.cells.copy()
        cells["cell_id"] = cells["cell_id"].astype(str)
        cells = cells.set_index("cell_id")
        summary = self.summary.drop(columns=[c for c in self.summary.columns if c in cells.columns])
        return cells.join(summary, how="left")


# ---- small helpers ---------------------------------------------------------------------------------

def mib(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x / MiB:.0f} MiB"


def span(values, fmt: Callable[[float], str] = mib) -> str:
    """"a" for one value or equal values, "a–b" for a spread."""
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return "n/a"
    lo, hi = fmt(float(v.min())), fmt(float(v.max()))
    return lo if lo == hi else f"{lo}–{hi}"


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}%"


def col(t: pd.DataFrame, name: str) -> pd.Series:
    """A column as floats; NaN when the run lacks it."""
    if name in t.columns:
        return pd.to_numeric(t[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=t.index, dtype=float)


def axis(t: pd.DataFrame, name: str) -> pd.Series:
    """An axis column as normalised strings ("unset" where absent)."""
    if name in t.columns:
        return t[name].map(axis_str)
    return pd.Series("unset", index=t.index, dtype=object)


def compare(a, b, rel_tol: float = 0.05) -> str:
    """Where `a` lies relative to `b`: lower | higher | same | unclear.

    Ranges (min–max over repeats) that overlap are `unclear` unless both are tight (then `same`);
    a gap smaller than `rel_tol` of the larger value is `same`.
    """
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty:
        return "unclear"
    scale = max(abs(a.median()), abs(b.median()), 1e-12)
    tol = rel_tol * scale
    if a.max() < b.min():
        return "lower" if b.min() - a.max() > tol else "same"
    if a.min() > b.max():
        return "higher" if a.min() - b.max() > tol else "same"
    spread = max(a.max(), b.max()) - min(a.min(), b.min())
    return "same" if spread <= 2 * tol else "unclear"


def combine(parts: list[str | None]) -> str:
    """Verdict from part results: each True (holds), False (fails) or None (could not tell)."""
    if any(p is None for p in parts):
        return "inconclusive"
    if all(parts):
        return "supported"
    if not any(parts):
        return "refuted"
    return "partly"


def _size(text: str) -> float:
    try:
        return float(parse_size(text))
    except (UnitError, ValueError, TypeError):
        return float("nan")


def _duration(text: str) -> float:
    try:
        return float(parse_duration(text))
    except (UnitError, ValueError, TypeError):
        return float("nan")


# ---- one function per claim: (rows of one Go version, inputs, go) -> (verdict, evidence) --------------

Decision = tuple[str, str]


def _release_by_gcs(t: pd.DataFrame) -> str:
    """"; time to half of RSS by number of GCs: 0: never within 142 s, 1: 123 s, ..." (one GC versus several)."""
    gcs = axis(t, "gcs")
    if gcs.nunique() < 2:
        return ""
    parts = []
    for n in sorted(set(gcs), key=_limit_key):
        rows = t[gcs == n]
        rel = col(rows, "release_s").dropna()
        parts.append(f"{n}: " + (span(rel, lambda s: f"{s:.0f} s") if len(rel) == len(rows)
                                 else f"never within {span(col(rows, 'wall_s'), lambda s: f'{s:.0f} s')}"
                                 if rel.empty else f"{span(rel, lambda s: f'{s:.0f} s')} in {len(rel)} of {len(rows)}"))
    return "; time until RSS fell below half, by GCs after the drop: " + ", ".join(parts)


def c1(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    gcs = axis(t, "gcs")
    sel = t[gcs != "0"] if (gcs != "0").any() else t
    after = col(sel, "rss@release") / col(sel, "peak_rss")
    final = col(sel, "final_rss") / col(sel, "peak_rss")
    if after.dropna().empty:
        return "inconclusive", "RSS at the end of the release phase (rss@release) is missing."
    stays = after > 0.5
    text = (f"right after runtime.GC() RSS was {span(after, pct)} of the peak ({span(col(sel, 'peak_rss'))}, "
            f"threshold 50%)")
    if after.min() <= 0.5 < after.max():
        return "inconclusive", f"Between cells {text}: some kept it, some did not."
    if not stays.any():
        return "refuted", f"Memory went back at once: {text}."
    returned = final < 0.5
    release = col(sel, "release_s").dropna()
    text += _release_by_gcs(t)
    if returned.all():
        return "partly", (f"Not returned right away ({text}), but the scavenger returned it within the idle window: "
                          f"below half after {span(release, lambda s: f'{s:.0f} s')}, final RSS "
                          f"{span(col(sel, 'final_rss'))}.")
    if returned.any():
        return "partly", (f"Not returned right away ({text}); by the end of the idle window final RSS was "
                          f"{span(col(sel, 'final_rss'))}: returned in some cells only.")
    return "supported", f"{text[0].upper()}{text[1:]}, and it was still {span(final, pct)} at the end of the run."


def c2(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    freeos = t[axis(t, "freeos") == "true"]
    touched = freeos[axis(freeos, "touch") == "true"]
    untouched = freeos[axis(freeos, "touch") == "false"]
    if touched.empty:
        return "inconclusive", "No touched cell with FreeOSMemory completed."
    back = 1 - analysis_retained(touched, "rss@freeos")
    if back.dropna().empty:
        return "inconclusive", "RSS after FreeOSMemory (rss@freeos) is missing."
    touched_text = (f"touched: RSS {span(col(touched, 'rss@baseline'))} → peak {span(col(touched, 'peak_rss'))}"
                    f" → {span(col(touched, 'rss@freeos'))} after FreeOSMemory ({span(back, pct)} handed back)")
    if back.min() < 0.75 <= back.max():
        return "inconclusive", f"{touched_text}; repeats disagree around the 75% mark."
    if back.max() < 0.75:
        return "refuted", f"{touched_text}: less than 75% handed back."
    if untouched.empty:
        return "supported", f"{touched_text}; the untouched snippet was not run."
    rise = col(untouched, "peak_rss") - col(untouched, "rss@baseline")
    touched_rise = (col(touched, "peak_rss") - col(touched, "rss@baseline")).median()
    if (rise < 0.25 * touched_rise).all():
        return "partly", (f"The snippet as written never made RSS rise (+{span(rise)} at peak: an untouched slice "
                          f"is never resident, so there is nothing to hand back); {touched_text}.")
    return "supported", f"{touched_text}; untouched RSS rose by {span(rise)} and was handed back too."


def analysis_retained(t: pd.DataFrame, after_col: str) -> pd.Series:
    return pd.Series([analysis.retained_fraction(a, p, b) for a, p, b in
                      zip(col(t, after_col), col(t, "peak_rss"), col(t, "rss@baseline"))], index=t.index)


def _madv_class(t: pd.DataFrame) -> str | None:
    """free | dontneed | None (unclear) from LazyFree and RSS right after FreeOSMemory."""
    lazy = col(t, "lazyfree@freeos") / col(t, "peak_rss")
    rss = col(t, "rss@freeos") / col(t, "peak_rss")
    if lazy.dropna().empty:
        return None
    if (lazy >= 0.25).all():
        return "free"
    if (lazy < 0.1).all() and (rss < 0.25).all():
        return "dontneed"
    return None


def _madv_text(t: pd.DataFrame, setting: str) -> str:
    return (f"{setting}: RSS {span(col(t, 'rss@freeos'))}, LazyFree {span(col(t, 'lazyfree@freeos'))}")


def c3(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    setting = axis(t, "madvdontneed")
    groups = {s: t[setting == s] for s in ("unset", "0", "1")}
    missing = [s for s, g in groups.items() if g.empty]
    if missing:
        return "inconclusive", f"No completed cell for madvdontneed={', '.join(missing)}."
    if col(t, "lazyfree@freeos").dropna().empty:
        return "inconclusive", "LazyFree (smaps_rollup) was not read: lazyfree@freeos is missing."
    text = "After FreeOSMemory, " + "; ".join(_madv_text(g, s) for s, g in groups.items()) + "."
    cls = {s: _madv_class(g) for s, g in groups.items()}
    if cls["0"] is None or cls["1"] is None or cls["unset"] is None:
        return "inconclusive", f"{text} Not every setting fell clearly on one side (LazyFree ≥25% or <10% of peak)."
    if cls["0"] == cls["1"]:
        return "refuted", f"{text} Explicit 0 and 1 behaved alike ({cls['0']})."
    if cls["0"] != "free":
        return "refuted", f"{text} madvdontneed=0 did not leave pages lazily freed."
    if cls["unset"] == cls["0"]:
        return "supported", f"{text} Unset behaves like 0 (MADV_FREE); 1 frees at once."
    # The claim has three parts: 0 lazily frees, 1 frees at once, and 0 is the default. Only the
    # last failed here, so the statement partly holds.
    return "partly", (f"{text} madvdontneed=0 leaves pages lazily freed and 1 frees them at once, as stated, "
                      f"but unset behaves like madvdontneed=1 (MADV_DONTNEED): 0 is not the default here.")


def c4(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    setting = axis(t, "madvdontneed")
    k0, k1 = col(t[setting == "0"], "oom_killed"), col(t[setting == "1"], "oom_killed")
    if k0.dropna().empty or k1.dropna().empty:
        return "inconclusive", "Both madvdontneed=0 and =1 cells are needed."
    text = (f"OOM-killed: madvdontneed=0 {int(k0.sum())}/{len(k0)}, madvdontneed=1 {int(k1.sum())}/{len(k1)}; "
            f"LazyFree after release with 0: {span(col(t[setting == '0'], 'lazyfree@settle'))}, "
            f"peak cgroup usage {span(col(t, 'peak_cgroup'))}")
    if k0.nunique() > 1 or k1.nunique() > 1:
        return "inconclusive", f"{text}: repeats disagree."
    if k0.all() and not k1.any():
        return "supported", f"{text}."
    if not k0.any() and not k1.any():
        return "refuted", (f"{text}: neither was killed — the kernel reclaims lazily freed pages under cgroup "
                           f"pressure, so MADV_FREE does not cause the kill.")
    if k1.all():
        return "refuted", f"{text}: madvdontneed=1 was killed too."
    return "refuted", f"{text}: only madvdontneed=1 was killed."


def _sizes_rows(inputs: Inputs, cell_ids) -> pd.DataFrame:
    ev = analysis._frame(inputs.events, analysis.EVENT_COLUMNS)
    ev = ev[(ev["kind"] == "sizes") & ev["cell_id"].astype(str).isin(list(cell_ids))]
    rows = []
    for r in ev.itertuples(index=False):
        d = analysis.parse_detail(r.detail)
        size = d.get("size", r.name)
        size = float(size) if isinstance(size, (int, float)) else _size(str(size))
        rows.append({"cell_id": str(r.cell_id), "size": size,
                     "ops": float(d.get("ops", np.nan)), "ops_per_s": float(d.get("ops_per_s", r.value)),
                     **{k: float(d.get(k, np.nan)) for k in ("tiny_allocs", "small_allocs", "large_allocs")}})
    return pd.DataFrame(rows, columns=["cell_id", "size", "ops", "ops_per_s", "tiny_allocs", "small_allocs",
                                       "large_allocs"])


def size_class(size: float, pointers: bool) -> str | None:
    """The class the article expects; None where the runtime's counters cannot show it.

    The tiny counter counts only objects packed into an already open 16-byte block: an object of
    9-15 B never shares a block, so it is served by the tiny allocator but counted as a 16 B
    small allocation. Only sizes up to 8 B show tiny allocation in the counters.
    """
    if size < 16 and not pointers:
        return "tiny" if size <= 8 else None
    return "small" if size <= 32 * 1024 else "large"


def observed_class(row) -> str | None:
    counts = [row.tiny_allocs, row.small_allocs, row.large_allocs]
    if all(math.isnan(c) for c in counts):
        return None
    total = row.ops if row.ops > 0 else np.nansum(counts)
    if not total > 0:
        return None
    # Packing two 8 B objects per block counts half of them as tiny; smaller ones count more.
    if not math.isnan(row.tiny_allocs) and row.tiny_allocs / total >= 0.25:
        return "tiny"
    if not math.isnan(row.large_allocs) and row.large_allocs / total >= 0.5:
        return "large"
    if not math.isnan(row.small_allocs) and row.small_allocs / total >= 0.5:
        return "small"
    return None


def _size_label(size: float) -> str:
    return f"{size / 1024:g} KiB" if size >= 1024 else f"{size:g} B"


def c5(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    rows = _sizes_rows(inputs, t.index)
    if rows.empty:
        return "inconclusive", "No `sizes` events: allocation counters by size are missing."
    pointers = axis(t, "pointers").reindex(rows["cell_id"]).to_numpy() == "true"
    rows["pointers"] = pointers
    rows["expected"] = [size_class(s, p) for s, p in zip(rows["size"], rows["pointers"])]
    rows["observed"] = [observed_class(r) for r in rows.itertuples(index=False)]
    if rows["observed"].isna().all() or rows["tiny_allocs"].isna().all():
        return "inconclusive", "The runtime's tiny/small/large counters are missing (tiny needs Go 1.17+)."
    judged = rows[rows["observed"].notna() & rows["expected"].notna()]
    wrong = judged[judged["observed"] != judged["expected"]]
    rate = judged[~judged["pointers"]].groupby("size")["ops_per_s"].median()
    rates = ", ".join(f"{_size_label(s)} {v / 1e6:.2f} M/s" for s, v in rate.items() if s in (16, 32768, 33792))
    text = f"{len(judged) - len(wrong)} of {len(judged)} size runs landed in the expected class"
    if rates:
        text += f"; throughput {rates}"
    if wrong.empty:
        return "supported", (f"{text}: tiny below 16 B pointer-free, small up to 32 KiB, large above. (Lock-free "
                             f"mcache service itself is not observable here.)")
    misses = "; ".join(f"{_size_label(r.size)}{' ptr' if r.pointers else ''}: {r.observed} not {r.expected}"
                       for r in wrong.drop_duplicates(['size', 'pointers']).itertuples())
    if (wrong["size"] == 32 * 1024).all() and (wrong["observed"] == "large").all():
        misses += (" — the small/large boundary lies just below 32 KiB: since Go 1.22 a small object must"
                   " leave room for an 8-byte malloc header, so above 32760 B it is large")
    return ("refuted" if len(wrong) == len(judged) else "partly"), f"{text}. Off: {misses}."


def _syscall_totals(inputs: Inputs, cell_ids) -> dict[str, tuple[int, float]]:
    ev = analysis._frame(inputs.events, analysis.EVENT_COLUMNS)
    ev = ev[(ev["kind"] == "syscall") & ev["cell_id"].astype(str).isin(list(cell_ids))]
    return {name: (len(g), float(pd.to_numeric(g["value"], errors="coerce").sum()))
            for name, g in ev.groupby("name")}


def c6(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    primary = t[t["scenario"] == "syscalls"] if (t["scenario"] == "syscalls").any() else t
    max_vm, final_vm = col(primary, "max_vm_size"), col(primary, "final_vm_size")
    if max_vm.dropna().empty or final_vm.dropna().empty:
        return "inconclusive", "VmSize was not sampled."
    shrink = (max_vm - final_vm) / max_vm
    rss_fell = (col(primary, "final_rss") < 0.5 * col(primary, "peak_rss"))
    calls = _syscall_totals(inputs, primary.index)
    madvise, munmap = calls.get("madvise", (0, 0.0)), calls.get("munmap", (0, 0.0))
    vm_text = (f"VmSize max {span(max_vm)}, final {span(final_vm)} while RSS went "
               f"{span(col(primary, 'peak_rss'))} → {span(col(primary, 'final_rss'))}")
    trace = (f"; traced madvise {madvise[0]}× ({mib(madvise[1])}), munmap {munmap[0]}× ({mib(munmap[1])})"
             if calls else "; no syscall trace")
    if (shrink > 0.10).any() or (munmap[1] > 0.1 * max(madvise[1], 1.0) and munmap[1] >= MiB):
        return "supported", f"{vm_text}{trace}: address space was given back."
    if not rss_fell.any():
        return "inconclusive", f"{vm_text}{trace}: RSS never fell, so nothing shows how memory goes back."
    if (shrink < 0.02).all():
        how = "memory goes back by madvise, not munmap" if madvise[0] else "no munmap of the heap"
        return "refuted", f"{vm_text}{trace}: VmSize never shrank — {how}."
    return "inconclusive", f"{vm_text}{trace}: VmSize shrank a little ({span(shrink, pct)})."


def c7(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    rt = t[t["scenario"] == "release_threshold"]
    if rt.empty:
        return "inconclusive", "release_threshold did not run; idle_scavenger alone does not vary the heap goal."
    ratio = col(rt, "rss@idle") / col(rt, "heap_goal@idle")
    if ratio.dropna().empty:
        return "inconclusive", "rss@idle or heap_goal@idle is missing."
    share = bool((ratio <= 1.3).all())
    text = f"after the idle window RSS was {span(ratio, lambda x: f'{x:.2f}')}× the heap goal (bound 1.3×)"
    off = rt[axis(rt, "gomemlimit").isin(["off", "unset"])]
    gcs = axis(off, "gcs")
    few, many = col(off[gcs == "1"], "rss@idle"), col(off[gcs == "4"], "rss@idle")
    cmp = compare(many, few)
    gc_part = None if cmp == "unclear" or few.empty or many.empty else cmp == "lower"
    text += f"; without GOMEMLIMIT, 4 GCs kept {span(many)} vs 1 GC {span(few)}"
    limited = col(rt[~axis(rt, "gomemlimit").isin(["off", "unset"])], "rss@idle")
    if not limited.dropna().empty:
        text += f"; with GOMEMLIMIT {span(limited)}"
    verdict = combine([share, gc_part])
    why = {"supported": "both the heap-share bound and extra GC cycles matter",
           "partly": ("retained memory follows the heap goal, not the GC count" if share else
                      "more GCs returned more, but retained memory exceeded the heap-goal bound"),
           "refuted": "neither the heap-goal bound nor the GC count explains what stayed",
           "inconclusive": "the GC-count comparison is within the spread"}[verdict]
    return verdict, f"{text[0].upper()}{text[1:]}: {why}."


def _monotone(x: list[float], series_by_x: dict[float, pd.Series], direction: str) -> bool | None:
    results = [compare(series_by_x[b], series_by_x[a]) for a, b in zip(x, x[1:])]
    if "unclear" in results:
        return None
    return all(r == direction for r in results)


def c8(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    sel = t[axis(t, "gomemlimit").isin(["off", "unset"])]
    gogc = pd.to_numeric(axis(sel, "gogc").replace("unset", "100"), errors="coerce")
    sel = sel[gogc.notna()]
    gogc = gogc[gogc.notna()]
    levels = sorted(gogc.unique())
    if len(levels) < 2:
        return "inconclusive", "Fewer than two numeric GOGC values completed without a memory limit."
    expect = {"gc_cycles": "lower", "gc_cpu_s": "lower", "peak_rss": "higher", "throughput": "higher"}
    parts, bits = [], []
    for metric, direction in expect.items():
        by = {g: col(sel[gogc == g], metric) for g in levels}
        parts.append(_monotone(levels, by, direction))
        fmt = mib if metric == "peak_rss" else (lambda v: f"{v:.3g}")
        bits.append(f"{metric} " + " / ".join(span(by[g], fmt) for g in levels))
    verdict = combine(parts)
    failed = [m for m, p in zip(expect, parts) if p is False]
    text = f"GOGC {' / '.join(f'{g:g}' for g in levels)}: " + "; ".join(bits)
    if failed:
        text += f". Not monotone as claimed: {', '.join(failed)}"
    return verdict, text + "."


def c9(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    every = axis(t, "every").map(_duration)
    none = t[every == 0]
    calls = every[every > 0]
    if none.empty or calls.empty:
        return "inconclusive", "Needs a cell without calls (every=0s) and one with periodic calls."
    fastest = t[every == calls.min()]
    label = f"every={axis(fastest, 'every').iloc[0]}"
    lower_rss = compare(col(fastest, "mean_rss"), col(none, "mean_rss"))
    cost = [compare(col(fastest, "throughput"), col(none, "throughput")),
            compare(col(fastest, "cpu_s"), col(none, "cpu_s"))]
    faults = compare(col(fastest, "minflt"), col(none, "minflt"))
    parts = [None if lower_rss == "unclear" else lower_rss == "lower",
             None if cost == ["unclear", "unclear"] else (cost[0] == "lower" or cost[1] == "higher"),
             None if faults == "unclear" else faults == "higher"]
    text = (f"{label} vs none: mean RSS {span(col(fastest, 'mean_rss'))} vs {span(col(none, 'mean_rss'))}; "
            f"throughput {span(col(fastest, 'throughput'), lambda v: f'{v:.3g}/s')} vs "
            f"{span(col(none, 'throughput'), lambda v: f'{v:.3g}/s')}; CPU {span(col(fastest, 'cpu_s'), lambda v: f'{v:.2f} s')}"
            f" vs {span(col(none, 'cpu_s'), lambda v: f'{v:.2f} s')}; minor faults {span(col(fastest, 'minflt'), lambda v: f'{v:.0f}')}"
            f" vs {span(col(none, 'minflt'), lambda v: f'{v:.0f}')}; each call p50 "
            f"{span(col(fastest, 'freeos_p50_ns'), lambda v: f'{v / 1e6:.2f} ms')}")
    names = ["lower RSS", "CPU/throughput cost", "more page faults"]
    verdict = combine(parts)
    if verdict == "partly":
        text += ". Did not hold: " + ", ".join(n for n, p in zip(names, parts) if p is False)
    return verdict, text + "."


def c10(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    sel = t[(axis(t, "freeos") == "false") & (axis(t, "touch") != "false")]
    if sel.empty:
        return "inconclusive", "No touched cell without FreeOSMemory completed."
    heap, rss, peak = col(sel, "heap_inuse@release"), col(sel, "rss@release"), col(sel, "peak_rss")
    if heap.dropna().empty or rss.dropna().empty:
        return "inconclusive", "heap_inuse@release or rss@release is missing."
    ratio = heap / rss
    text = (f"after the release, heap in use {span(heap)} while VmRSS {span(rss)} "
            f"(peak {span(peak)}); heap/RSS {span(ratio, pct)}")
    if (ratio < 0.5).all() and (rss >= 0.5 * peak).all():
        return "supported", f"{text[0].upper()}{text[1:]}: the heap view misses what the OS still holds."
    if (ratio >= 0.8).all():
        return "refuted", f"{text[0].upper()}{text[1:]}: heap in use tracked RSS."
    return "partly", f"{text[0].upper()}{text[1:]}: RSS did not stay up, so the gap was short-lived."


def c11(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    madv, press = t[t["scenario"] == "madvdontneed"], t[t["scenario"] == "oom_pressure"]
    if madv.empty or press.empty:
        return "inconclusive", f"Needs both madvdontneed and oom_pressure; missing: " + ", ".join(
            n for n, g in (("madvdontneed", madv), ("oom_pressure", press)) if g.empty) + "."
    if col(t, "lazyfree@freeos").dropna().empty and col(t, "lazyfree@settle").dropna().empty:
        return "inconclusive", "LazyFree (smaps_rollup) was not read."
    zero, one = madv[axis(madv, "madvdontneed") == "0"], madv[axis(madv, "madvdontneed") == "1"]
    stays = (col(zero, "rss@freeos") / col(zero, "peak_rss"))
    falls = (col(one, "rss@freeos") / col(one, "peak_rss"))
    no_pressure = None if stays.dropna().empty or falls.dropna().empty else bool(
        (stays >= 0.5).all() and (falls < 0.25).all())
    pz = press[axis(press, "madvdontneed") == "0"]
    before, after = col(pz, "lazyfree@settle"), col(pz, "lazyfree@hold")
    if before.dropna().empty or not (before > 16 * MiB).any():
        under = None
    else:
        # The kernel reclaims lazily freed pages only as far as the pressure needs, not all of them:
        # a fifth of them gone, and no kill, shows that they are given up under pressure.
        under = bool((after <= 0.8 * before).all() and not col(pz, "oom_killed").fillna(0).any())
    text = (f"No pressure: RSS after FreeOSMemory {span(stays, pct)} of peak with 0, {span(falls, pct)} with 1; "
            f"under pressure (madvdontneed=0): LazyFree {span(before)} → {span(after)}, "
            f"OOM-killed {int(col(pz, 'oom_killed').fillna(0).sum())}/{len(pz)}")
    failed = [what for ok, what in ((no_pressure, "without pressure RSS did not behave as stated"),
                                    (under, "under pressure the lazily freed pages were not given up"))
              if ok is False]
    return combine([no_pressure, under]), text + (f". Did not hold: {'; '.join(failed)}." if failed else ".")


def c12(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    cl = t[t["scenario"] == "cgroup_limit"]
    if cl.empty:
        return "inconclusive", "cgroup_limit did not run."
    alive = cl[col(cl, "oom_killed").fillna(0) == 0]
    ratio = col(alive, "peak_cgroup") / col(alive, "peak_rss")
    usage_is_rss = None if ratio.dropna().empty else bool(((ratio >= 0.9) & (ratio <= 1.1)).all())
    limits = col(cl, "memory_limit_bytes")
    small = cl[limits == limits.min()]
    killed = col(small, "oom_killed")
    within = (col(small, "peak_cgroup") <= 1.01 * col(small, "memory_limit_bytes")).all()
    hard_limit = None if killed.dropna().empty else bool(killed.all() and within)
    text = (f"Peak cgroup usage / peak RSS {span(ratio, lambda x: f'{x:.2f}')} (equal within 10% counts as the same); "
            f"at the {mib(limits.min())} limit: OOM-killed {int(killed.fillna(0).sum())}/{len(small)}, peak usage "
            f"{span(col(small, 'peak_cgroup'))}")
    pz = t[(t["scenario"] == "oom_pressure") & (axis(t, "madvdontneed") == "0")]
    if not pz.empty:
        text += (f"; with lazily freed pages cgroup usage {span(col(pz, 'cgroup_usage@settle'))} vs RSS "
                 f"{span(col(pz, 'rss@settle'))}")
    return combine([usage_is_rss, hard_limit]), text + "."


def c13(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    kept = col(t, "rss@idle") / col(t, "peak_rss")
    if kept.dropna().empty:
        return "inconclusive", "rss@idle is missing."
    phases = analysis.phase_table(inputs.events, inputs.samples)
    ratio = pd.Series({cid: analysis.phase_mean(inputs.samples, phases, cid, "proc", "vm_rss", "churn")
                       / analysis.phase_mean(inputs.samples, phases, cid, "runtime", "heap_inuse", "churn")
                       for cid in t.index}, dtype=float)
    text = (f"during churn mean RSS / mean heap in use {span(ratio, lambda x: f'{x:.2f}')}; after everything was "
            f"dropped and the idle window, RSS {span(col(t, 'rss@idle'))} = {span(kept, pct)} of peak "
            f"({'GOGC ' + ', '.join(sorted(set(axis(t, 'gogc')))) if 'gogc' in t.columns else ''})")
    if (kept >= 0.5).all():
        return "supported", f"{text[0].upper()}{text[1:]}: memory stayed resident."
    if (kept < 0.25).all():
        return "refuted", f"{text[0].upper()}{text[1:]}: the free large-object pages went back to the OS."
    return "partly", f"{text[0].upper()}{text[1:]}: some was kept, some returned."


def serve_slope(inputs: Inputs, cell_id: str, source: str, metric: str) -> float:
    """Bytes/s over the second half of the serve phase (the first half is the cache filling up)."""
    phases = analysis.phase_table(inputs.events, inputs.samples)
    start, end = analysis.phase_span(phases, cell_id, "serve")
    if math.isnan(start):
        return float("nan")
    end = end if not math.isnan(end) else math.inf
    s = analysis.series(inputs.samples, cell_id, source, metric)
    if math.isinf(end):
        end = float(s.index.max()) if len(s) else math.nan
    return analysis.slope(s, (start + end) / 2, end)


def c14(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    policy = axis(t, "policy")
    slopes = pd.Series({cid: serve_slope(inputs, cid, "proc", "vm_rss") for cid in t.index}, dtype=float)
    heap = pd.Series({cid: serve_slope(inputs, cid, "runtime", "heap_inuse") for cid in t.index}, dtype=float)
    unb, bounded = slopes[policy == "unbounded"], slopes[policy != "unbounded"]
    if unb.dropna().empty or bounded.dropna().empty:
        return "inconclusive", "Needs RSS over the serve phase for the unbounded cache and a bounded one."
    per = {p: span(slopes[policy == p], lambda v: f"{v / MiB:.1f} MiB/s") for p in sorted(set(policy))}
    text = ("RSS slope over the second half of serving: " + ", ".join(f"{p} {v}" for p, v in per.items())
            + f"; heap in use unbounded {span(heap[policy == 'unbounded'], lambda v: f'{v / MiB:.1f} MiB/s')}")
    grows = bool((unb > MiB).all())
    if not grows:
        return "refuted", f"{text}: the unbounded cache did not grow (threshold 1 MiB/s)."
    flat = bounded.abs() < 0.2 * unb.min()
    if flat.all():
        return "supported", f"{text}: bounded caches stayed flat (<20% of the unbounded slope)."
    return "partly", f"{text}: unbounded grows, but not every bounded cache stayed flat."


def _limit_key(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.inf


def _limit_label(value: str) -> str:
    """cells.csv holds GOMEMLIMIT as bytes; a share like 90% was resolved against the container limit."""
    return mib(float(value)) if value.isdigit() else value


def x1(t: pd.DataFrame, inputs: Inputs, go: str) -> Decision:
    gm = t[t["scenario"] == "gomemlimit"]
    if gm.empty:
        return "inconclusive", "The gomemlimit scenario did not run."
    limit = axis(gm, "gomemlimit")
    off, on = gm[limit.isin(["off", "unset"])], gm[~limit.isin(["off", "unset"])]
    if off.empty or on.empty:
        return "inconclusive", "Needs cells with and without GOMEMLIMIT."
    killed_on = col(on, "oom_killed").fillna(0)
    no_kill = not killed_on.any()
    peak_cmp = compare(col(on, "peak_rss"), col(off, "peak_rss"))
    lower_peak = None if peak_cmp == "unclear" else peak_cmp in ("lower", "same") and (
        peak_cmp == "lower" or not col(off, "oom_killed").fillna(0).any())
    text = (f"GOMEMLIMIT off: peak RSS {span(col(off, 'peak_rss'))}, GC CPU {span(col(off, 'gc_cpu_s'), lambda v: f'{v:.2f} s')}, "
            f"OOM-killed {int(col(off, 'oom_killed').fillna(0).sum())}/{len(off)}; with a limit "
            f"({', '.join(_limit_label(v) for v in sorted(set(limit[~limit.isin(['off', 'unset'])]), key=_limit_key))}): peak RSS {span(col(on, 'peak_rss'))}, "
            f"GC CPU {span(col(on, 'gc_cpu_s'), lambda v: f'{v:.2f} s')}, OOM-killed {int(killed_on.sum())}/{len(on)}")
    gs = t[(t["scenario"] == "gogc_sweep") & (axis(t, "gogc") == "off")]
    if not gs.empty:
        with_limit = gs[~axis(gs, "gomemlimit").isin(["off", "unset"])]
        text += (f"; GOGC=off peak RSS {span(col(gs[axis(gs, 'gomemlimit').isin(['off', 'unset'])], 'peak_rss'))} "
                 f"without, {span(col(with_limit, 'peak_rss'))} with a limit")
    return combine([no_kill, lower_peak]), text + "."


DECIDERS: dict[str, Callable[[pd.DataFrame, Inputs, str], Decision]] = {
    "C1": c1, "C2": c2, "C3": c3, "C4": c4, "C5": c5, "C6": c6, "C7": c7, "C8": c8, "C9": c9,
    "C10": c10, "C11": c11, "C12": c12, "C13": c13, "C14": c14, "X1": x1,
}


def evaluate_claim(claim_id: str, inputs: Inputs) -> list[Verdict]:
    """Verdict rows for one claim: one per Go version among its scenarios' cells."""
    claim = CLAIMS[claim_id]
    table = inputs.table()
    if "scenario" not in table.columns:
        table["scenario"] = ""
    table = table[table["scenario"].isin(claim.scenarios)]
    primary = table[table["scenario"] == claim.scenarios[0]]
    ran_in = primary if not primary.empty else table
    if ran_in.empty:
        return [Verdict(claim_id, "", "not-tested", "not run", "")]
    versions = sorted(set(ran_in["go_version"].map(axis_str)) if "go_version" in ran_in.columns else {""})
    out = []
    for go in versions:
        rows = table[table["go_version"].map(axis_str) == go] if "go_version" in table.columns else table
        status = rows["status"].astype(str) if "status" in rows.columns else pd.Series("ok", index=rows.index)
        usable = rows[status.isin(USABLE_STATUSES)]
        if usable.empty:
            counts = ", ".join(f"{s}×{n}" for s, n in status.value_counts().sort_index().items())
            out.append(Verdict(claim_id, go, "inconclusive", f"No cell completed (statuses: {counts}).",
                               claim.figure))
            continue
        verdict, evidence = DECIDERS[claim_id](usable, inputs, go)
        assert verdict in VERDICTS, verdict
        out.append(Verdict(claim_id, go, verdict, evidence, claim.figure))
    return out


def evaluate_inputs(inputs: Inputs) -> pd.DataFrame:
    rows = [v for cid in CLAIMS for v in evaluate_claim(cid, inputs)]
    rows += [Verdict(cid, "", "not-tested", reason, "") for cid, (_, reason) in NOT_TESTED.items()]
    return pd.DataFrame([asdict(v) for v in rows], columns=["claim", "go_version", "verdict", "evidence", "figure"])


def evaluate(run, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every claim over a loaded run (`store.Run`: .cells, .samples, .events): claims.csv's rows."""
    if summary is None:
        summary = analysis.summarize(run.cells, run.samples, run.events)
    return evaluate_inputs(Inputs(run.cells, summary, run.events, run.samples))
