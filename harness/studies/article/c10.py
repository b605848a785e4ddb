"""C10: pprof's heap view (inuse_space) does not show what the OS sees; RSS does.

pprof's inuse_space counts live objects, which is what HeapAlloc reads right after a GC; RSS also
counts the free pages the runtime still holds. How long the two differ is set by when the runtime
returns those pages, so the verdict reads a release that crosses the periodic GC too
(idle_scavenger) and says what closed the gap, not where a short window happened to end.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse import release
from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    decision,
    pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

HEAP_MISSES = 0.5     # live heap below this share of RSS: the heap view misses what the OS holds
RSS_STAYED = 0.5      # ...while RSS stays at or above this share of the peak
HEAP_TRACKS = 0.8     # live heap at or above this share of RSS: it tracked RSS


def live_heap(t: pd.DataFrame) -> pd.Series:
    """HeapAlloc (live objects, pprof's inuse_space after a GC) at the end of `release`; HeapInuse where
    the run has no HeapAlloc readings."""
    heap = col(t, "heap_alloc@release")
    return heap.where(heap.notna(), col(t, "heap_inuse@release"))


def decide(t: pd.DataFrame, derived) -> Decision:
    ar = t[t["scenario"] == "alloc_release"] if (t["scenario"] == "alloc_release").any() else t
    sel = ar[(axis(ar, "freeos") != "true") & (axis(ar, "touch") != "false")]
    if sel.empty:
        return decision("inconclusive", "no-cell")
    heap, rss, peak = live_heap(sel), col(sel, "rss@release"), col(sel, "peak_rss")
    if heap.dropna().empty or rss.dropna().empty:
        return decision("inconclusive", "missing")
    ratio = heap / rss
    long = [tl for tl in release.timelines(derived.run, t[t["scenario"] == "idle_scavenger"]).values()
            if tl.requested_gcs == 1]
    facts = {"heap": heap, "rss": rss, "peak": peak, "ratio": ratio, "long": long}
    if (ratio < HEAP_MISSES).all() and (rss >= RSS_STAYED * peak).all():
        return decision("supported", "gap", **facts)
    if (ratio >= HEAP_TRACKS).all():
        return decision("refuted", "tracked", **facts)
    return decision("partly", "short-gap", **facts)


def _closed(tl: release.Timeline) -> str:
    if tl.cause == "nothing":
        return f"the gap lasted the whole {release.seconds(tl.window_s)} window: {release.release_cause(tl)}"
    until = "" if math.isnan(tl.at_s) else f" ({release.seconds(tl.at_s)})"
    return f"the gap closed only when the runtime returned the pages{until}: {release.release_cause(tl)}"


def evidence(d: Decision) -> str:
    if d.case == "no-cell":
        return "No touched cell without FreeOSMemory completed."
    if d.case == "missing":
        return "The live heap or RSS after the release is missing."
    text = capital(f"after runtime.GC() the live heap (HeapAlloc, what inuse_space counts) was {span(d.heap)} "
                   f"while VmRSS was {span(d.rss)} (peak {span(d.peak)}); heap/RSS {span(d.ratio, pct)}")
    text += {"gap": ": the heap view misses what the OS still holds",
             "tracked": ": the live heap tracked RSS",
             "short-gap": ": RSS did not stay up, so the gap was short-lived"}[d.case]
    for tl in d.long:
        text += f". Released by one GC, then a {release.seconds(tl.window_s)} idle window: {_closed(tl)}"
    return text + "."


CLAIM = Claim(
    "C10", "2.5",
    "pprof's heap view (`inuse_space`) does not show what the OS sees; RSS (`ps`, `/proc/<pid>/status` VmRSS) "
    "does.",
    "The live heap (HeapAlloc, what inuse_space counts) next to RSS after a spike is released, and over an "
    "idle window that crosses the periodic GC: how long they differ and what closes the gap.",
    plain="pprof's heap profile does not show the memory the OS sees; RSS does.",
    scenarios=("alloc_release", "idle_scavenger"),
    metrics=("heap_alloc@release", "heap_inuse@release", "rss@release", "peak_rss"),
    figure=FigureSpec("breakdown", "alloc_release", "alloc_release_breakdown",
                      select=(("freeos", "false"), ("touch", "true")),
                      title="alloc_release (touched, no FreeOSMemory): heap vs RSS"),
    decide=decide, evidence=evidence,
    mechanism=("pprof's inuse_space is the live objects as of the last GC (runtime/mprof.go, runtime.MemProfile); "
               "RSS also counts free heap pages the runtime has not returned (HeapIdle − HeapReleased) until the "
               "scavenger returns them (runtime/mgcscavenge.go; Go 1.21+ only after a later GC, golang/go#59960) "
               "or debug.FreeOSMemory does."))
