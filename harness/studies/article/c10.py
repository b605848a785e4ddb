"""C10: pprof's heap view (inuse_space) does not show what the OS sees; RSS does.

Two parts, each judged on this run's data for the Go version: (a) right after runtime.GC() a real
heap profile (runtime/pprof, written by alloc-release --heap-profile and decoded by
harness.run.observe.heapprofile) shows little while RSS shows much, at the same instant; (b) RSS
shows what the OS sees, against what the kernel itself accounts: cgroup usage and the working set
(usage − inactive_file) at the same instants, LazyFree pages RSS still counts after MADV_FREE (the
alloc_release FreeOSMemory cells on Go ≤ 1.15, the madvdontneed scenario, C3), and page cache the
cgroup charges outside RSS (cgroup_limit, C12).
"""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse import release, residency
from harness.analyse.claims import common
from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    judged,
    pct,
    retained,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("pprof shows little while RSS shows much right after runtime.GC()", "RSS shows what the OS sees")
# "Little" beside RSS: the profile's inuse_space below this share of VmRSS at the same instant...
LITTLE_SHARE = 0.25
# ..."much": RSS still holds at least this share of the freed spike's rise above baseline.
MUCH_SHARE = 0.5
# RSS misreads the OS when LazyFree is at least this share of RSS (pages the kernel may drop at will)...
LAZY_SHARE = 0.25
# ...or when cgroup usage exceeds RSS by at least this share of RSS in page cache the cgroup charges.
CACHE_SHARE = 0.10


def live_heap(t: pd.DataFrame) -> pd.Series:
    """HeapAlloc at the end of `release`; HeapInuse where the run has no HeapAlloc readings."""
    heap = col(t, "heap_alloc@release")
    return heap.where(heap.notna(), col(t, "heap_inuse@release"))


def _lazy_rows(t: pd.DataFrame) -> pd.DataFrame:
    """After FreeOSMemory: RSS, LazyFree and the working set at the same instant, where pages may have gone
    back with MADV_FREE (alloc_release with FreeOSMemory on any version; madvdontneed=0)."""
    ar = t[(t["scenario"] == "alloc_release") & (axis(t, "freeos") == "true") & (axis(t, "touch") != "false")]
    md = t[(t["scenario"] == "madvdontneed") & (axis(t, "madvdontneed") == "0")]
    rows = pd.concat([ar, md])
    return pd.DataFrame({"rss": col(rows, "rss@freeos"), "lazy": col(rows, "lazyfree@freeos"),
                         "ws": col(rows, "working_set@freeos")}).dropna(subset=["rss", "lazy"])


def decide(t: pd.DataFrame, derived) -> Decision:
    ar = t[t["scenario"] == "alloc_release"]
    sel = ar[(axis(ar, "freeos") != "true") & (axis(ar, "touch") != "false")]
    heap, rss, peak = live_heap(sel), col(sel, "rss@release"), col(sel, "peak_rss")
    at_gc = pd.DataFrame({"pprof": col(sel, "pprof_inuse_space"), "heap": heap, "rss": rss,
                          "held": retained(sel, "rss@release"),
                          "usage": col(sel, "cgroup_usage@release"), "ws": col(sel, "working_set@release")})
    profiled = at_gc.dropna(subset=["pprof", "rss"])
    long = [tl for tl in release.timelines(derived.run, t[t["scenario"] == "idle_scavenger"]).values()
            if tl.requested_gcs == 1]
    lazy = _lazy_rows(t)
    # What RSS misses that the cgroup charges: page cache at the peak of the surviving cells.
    cl = t[(t["scenario"] == "cgroup_limit") & (col(t, "oom_killed").fillna(0) == 0)]
    run = derived.run
    states = [residency.cgroup_state(run, str(c), residency.phase_end(run, str(c), "hold")) for c in cl.index]
    states = [st for st in states if not (pd.isna(st.usage) or pd.isna(st.rss))]
    at_gc_cgroup = at_gc.dropna(subset=["rss", "usage"])
    facts = {"heap": heap, "rss": rss, "peak": peak, "ratio": heap / rss, "long": long, "lazy": lazy,
             "states": states, "profiled": profiled, "at_gc": at_gc}
    parts: dict[str, bool | None] = {}
    why: dict[str, str] = {}
    if profiled.empty:
        parts[PARTS[0]] = None
        why[PARTS[0]] = "no heap profile was read (alloc-release --heap-profile)"
    else:
        parts[PARTS[0]] = common.either(bool(p < LITTLE_SHARE * r and not h < MUCH_SHARE) for p, r, h in
                                        zip(profiled["pprof"], profiled["rss"], profiled["held"], strict=True))
    counts_lazy = bool((lazy["lazy"] >= LAZY_SHARE * lazy["rss"]).any())
    misses_cache = (any(st.usage - st.rss >= CACHE_SHARE * st.rss for st in states)
                    or bool((at_gc_cgroup["usage"] - at_gc_cgroup["rss"] >= CACHE_SHARE * at_gc_cgroup["rss"]).any()))
    if lazy.empty and not states and at_gc_cgroup.empty:
        parts[PARTS[1]] = None
        why[PARTS[1]] = "neither LazyFree after FreeOSMemory nor cgroup usage beside RSS was measured"
    else:
        parts[PARTS[1]] = not (counts_lazy or misses_cache)
    return judged("judged", parts, why, counts_lazy=counts_lazy, misses_cache=misses_cache, **facts)


def _closed(tl: release.Timeline) -> str:
    if tl.cause == "nothing":
        return f"the gap lasted the whole {release.seconds(tl.window_s)} window: {release.release_cause(tl)}"
    until = "" if math.isnan(tl.at_s) else f" ({release.seconds(tl.at_s)})"
    return f"the gap closed only when the runtime returned the pages{until}: {release.release_cause(tl)}"


def evidence(d: Decision) -> str:
    text = []
    if not d.profiled.empty:
        p = d.profiled
        same = (f", cgroup usage {span(p['usage'].dropna())}, working set {span(p['ws'].dropna())}"
                if p["usage"].notna().any() else "")
        text.append(f"Right after runtime.GC(), the heap profile's inuse_space was {span(p['pprof'])} "
                    f"(HeapAlloc {span(p['heap'].dropna())}) while VmRSS was {span(p['rss'])}{same} at the same "
                    f"instant: inuse_space {span(p['pprof'] / p['rss'], pct)} of RSS (little: below "
                    f"{pct(LITTLE_SHARE)}), RSS still holding {span(p['held'].dropna(), pct)} of the freed spike "
                    f"(much: {pct(MUCH_SHARE)} or more)")
    if not d.lazy.empty:
        ws = f", working set {span(d.lazy['ws'].dropna())}" if d.lazy["ws"].notna().any() else ""
        text.append(f"after FreeOSMemory, RSS {span(d.lazy['rss'])} of which LazyFree {span(d.lazy['lazy'])}{ws}"
                    + (": RSS counts pages the kernel may take back at any moment and the working set leaves out "
                       "(lazily freed pages sit on the inactive file list)" if d.counts_lazy else
                       ": RSS held no lazily freed pages"))
    if d.states:
        text.append(f"with a file's page cache resident, cgroup usage {span([s.usage for s in d.states])} against "
                    f"RSS {span([s.rss for s in d.states])} (page cache {span([s.file for s in d.states])}): RSS "
                    f"misses memory the cgroup charges and its limit counts")
    out = capital("; ".join(text) + ".") if text else ""
    if d.parts[PARTS[1]] is True:
        out += " RSS matched what the kernel accounts here."
    if d.profiled.empty and not d.heap.dropna().empty and not d.rss.dropna().empty:
        out += (f" No heap profile was read; the live heap (HeapAlloc) right after runtime.GC() was {span(d.heap)} "
                f"while VmRSS was {span(d.rss)} (peak {span(d.peak)}).")
    note = ""
    for tl in d.long:
        note += f" Released by one GC, then a {release.seconds(tl.window_s)} idle window: {_closed(tl)}."
    return (out + note).strip()


CLAIM = Claim(
    "C10", "2.5",
    "pprof's heap view (`inuse_space`) does not show what the OS sees; RSS (`ps`, `/proc/<pid>/status` VmRSS) "
    "does.",
    "A heap profile (runtime/pprof) written right after runtime.GC() releases a spike, its inuse_space against "
    "VmRSS, HeapAlloc, cgroup usage and the working set at the same instant; and whether RSS shows what the OS "
    "sees, against the kernel's own accounting: LazyFree pages RSS still counts after MADV_FREE (which the "
    "working set leaves out), and page cache that cgroup usage counts beside RSS.",
    plain="pprof's heap profile does not show the memory the OS sees; RSS does.",
    scenarios=("alloc_release", "idle_scavenger", "madvdontneed", "cgroup_limit"),
    metrics=("pprof_inuse_space", "heap_alloc@release", "rss@release", "cgroup_usage@release",
             "working_set@release", "peak_rss"),
    figure=FigureSpec("breakdown", "alloc_release", "alloc_release_breakdown",
                      select=(("freeos", "false"), ("touch", "true")),
                      title="alloc_release (touched, no FreeOSMemory): heap vs RSS"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("pprof's inuse_space is the live objects as of the last completed GC, estimated from allocations "
               "sampled every runtime.MemProfileRate bytes (runtime/mprof.go runtime.MemProfile, runtime/pprof "
               "scaleHeapSample); runtime.GC() publishes its cycle's profile before it returns (mProf_PostSweep); "
               "RSS also counts free heap pages the runtime has not returned (HeapIdle − HeapReleased) until the "
               "scavenger returns them (runtime/mgcscavenge.go; Go 1.21+ only after a later GC, golang/go#59960) "
               "or debug.FreeOSMemory does. RSS is not what the OS can reclaim: MADV_FREE pages stay in it as "
               "LazyFree (runtime/mem_linux.go sysUnusedOS with madvdontneed=0, the default before Go 1.16), "
               "which the working set leaves out: since Linux 4.12 lazily freed pages move to the inactive file "
               "list (mm/swap.c lru_lazyfree_fn); and the page cache a cgroup charges is outside RSS "
               "(mm/memcontrol.c)."))
