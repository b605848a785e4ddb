"""C10: pprof's heap view (inuse_space) does not show what the OS sees; RSS does.

One part is judged: "RSS shows what the OS sees", against this run's own data on the same Go
version: RSS counts lazily freed (MADV_FREE) pages the kernel may take at any moment (LazyFree,
the madvdontneed scenario, C3), and misses the page cache that the cgroup charges and limits
(cgroup_limit, C12). The other half, the heap view, is not a part: no heap profile was taken
(inuse_space is a sampled profile as of the last GC, not HeapAlloc), and HeapAlloc below RSS
right after runtime.GC() holds on every Go version (runtime.GC never scavenges synchronously),
so it could not come out the other way; it is reported as a note with what closed the gap.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse import release, residency
from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    judged,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("RSS shows what the OS sees",)
# RSS misreads the OS when LazyFree is at least this share of RSS (pages the kernel may drop at will)...
LAZY_SHARE = 0.25
# ...or when cgroup usage exceeds RSS by at least this share of RSS in page cache the cgroup charges.
CACHE_SHARE = 0.10


def live_heap(t: pd.DataFrame) -> pd.Series:
    """HeapAlloc (live objects, pprof's inuse_space after a GC) at the end of `release`; HeapInuse where
    the run has no HeapAlloc readings."""
    heap = col(t, "heap_alloc@release")
    return heap.where(heap.notna(), col(t, "heap_inuse@release"))


def decide(t: pd.DataFrame, derived) -> Decision:
    ar = t[t["scenario"] == "alloc_release"]
    sel = ar[(axis(ar, "freeos") != "true") & (axis(ar, "touch") != "false")]
    heap, rss, peak = live_heap(sel), col(sel, "rss@release"), col(sel, "peak_rss")
    long = [tl for tl in release.timelines(derived.run, t[t["scenario"] == "idle_scavenger"]).values()
            if tl.requested_gcs == 1]
    # What RSS counts that the OS can take back at will: LazyFree after FreeOSMemory with MADV_FREE.
    md = t[(t["scenario"] == "madvdontneed") & (axis(t, "madvdontneed") == "0")]
    lazy = pd.DataFrame({"rss": col(md, "rss@freeos"), "lazy": col(md, "lazyfree@freeos")}).dropna()
    # What RSS misses that the cgroup charges: page cache at the peak of the surviving cells.
    cl = t[(t["scenario"] == "cgroup_limit") & (col(t, "oom_killed").fillna(0) == 0)]
    run = derived.run
    states = [residency.cgroup_state(run, str(c), residency.phase_end(run, str(c), "hold")) for c in cl.index]
    states = [st for st in states if not (pd.isna(st.usage) or pd.isna(st.rss))]
    facts = {"heap": heap, "rss": rss, "peak": peak, "ratio": heap / rss, "long": long, "lazy": lazy,
             "states": states}
    if lazy.empty and not states:
        return judged("judged", {PARTS[0]: None},
                      {PARTS[0]: "neither LazyFree after MADV_FREE nor cgroup usage beside RSS was measured"}, **facts)
    counts_lazy = bool((lazy["lazy"] >= LAZY_SHARE * lazy["rss"]).any()) if not lazy.empty else False
    misses_cache = any(st.usage - st.rss >= CACHE_SHARE * st.rss for st in states)
    return judged("judged", {PARTS[0]: not (counts_lazy or misses_cache)}, counts_lazy=counts_lazy,
                  misses_cache=misses_cache, **facts)


def _closed(tl: release.Timeline) -> str:
    if tl.cause == "nothing":
        return f"the gap lasted the whole {release.seconds(tl.window_s)} window: {release.release_cause(tl)}"
    until = "" if math.isnan(tl.at_s) else f" ({release.seconds(tl.at_s)})"
    return f"the gap closed only when the runtime returned the pages{until}: {release.release_cause(tl)}"


def evidence(d: Decision) -> str:
    text = []
    if not d.lazy.empty:
        text.append(f"After FreeOSMemory with madvdontneed=0, RSS {span(d.lazy['rss'])} of which LazyFree "
                    f"{span(d.lazy['lazy'])}: RSS counts pages the kernel may take back at any moment")
    if d.states:
        text.append(f"with a file's page cache resident, cgroup usage {span([s.usage for s in d.states])} against "
                    f"RSS {span([s.rss for s in d.states])} (page cache {span([s.file for s in d.states])}): RSS "
                    f"misses memory the cgroup charges and its limit counts")
    out = capital("; ".join(text) + ".") if text else ""
    if d.parts[PARTS[0]] is True:
        out += " RSS matched what the kernel accounts here."
    note = ""
    if not d.heap.dropna().empty and not d.rss.dropna().empty:
        note = (f" Note, not a part: right after runtime.GC() the live heap (HeapAlloc) was {span(d.heap)} while "
                f"VmRSS was {span(d.rss)} (peak {span(d.peak)}), as on every Go version (runtime.GC never "
                "scavenges synchronously). No heap profile was taken: pprof's inuse_space is a sampled profile as "
                "of the last GC, not HeapAlloc, so the heap view itself was not measured")
        for tl in d.long:
            note += f". Released by one GC, then a {release.seconds(tl.window_s)} idle window: {_closed(tl)}"
        note += "."
    return (out + note).strip()


CLAIM = Claim(
    "C10", "2.5",
    "pprof's heap view (`inuse_space`) does not show what the OS sees; RSS (`ps`, `/proc/<pid>/status` VmRSS) "
    "does.",
    "Whether RSS shows what the OS sees, against the run's own accounting: LazyFree pages RSS still counts after "
    "MADV_FREE, and page cache that cgroup usage counts beside RSS. Beside it, the live heap (HeapAlloc) next to "
    "RSS after a spike is released and over an idle window that crosses the periodic GC (no heap profile).",
    plain="pprof's heap profile does not show the memory the OS sees; RSS does.",
    scenarios=("alloc_release", "idle_scavenger", "madvdontneed", "cgroup_limit"),
    metrics=("heap_alloc@release", "heap_inuse@release", "rss@release", "peak_rss"),
    figure=FigureSpec("breakdown", "alloc_release", "alloc_release_breakdown",
                      select=(("freeos", "false"), ("touch", "true")),
                      title="alloc_release (touched, no FreeOSMemory): heap vs RSS"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("pprof's inuse_space is the live objects as of the last GC (runtime/mprof.go, runtime.MemProfile); "
               "RSS also counts free heap pages the runtime has not returned (HeapIdle − HeapReleased) until the "
               "scavenger returns them (runtime/mgcscavenge.go; Go 1.21+ only after a later GC, golang/go#59960) "
               "or debug.FreeOSMemory does. RSS is not what the OS can reclaim: MADV_FREE pages stay in it as "
               "LazyFree (runtime/mem_linux.go sysUnusedOS with madvdontneed=0), and the page cache a cgroup "
               "charges is outside it (mm/memcontrol.c)."))
