"""C10: pprof's heap view (inuse_space) does not show what the OS sees; RSS does."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    decision,
    pct,
    span,
)
from harness.analyse.claims.registry import Claim

HEAP_MISSES = 0.5     # heap in use below this share of RSS: the heap view misses what the OS holds
RSS_STAYED = 0.5      # ...while RSS stays at or above this share of the peak
HEAP_TRACKS = 0.8     # heap in use at or above this share of RSS: it tracked RSS


def decide(t: pd.DataFrame, derived) -> Decision:
    sel = t[(axis(t, "freeos") == "false") & (axis(t, "touch") != "false")]
    if sel.empty:
        return decision("inconclusive", "no-cell")
    heap, rss, peak = col(sel, "heap_inuse@release"), col(sel, "rss@release"), col(sel, "peak_rss")
    if heap.dropna().empty or rss.dropna().empty:
        return decision("inconclusive", "missing")
    ratio = heap / rss
    facts = {"heap": heap, "rss": rss, "peak": peak, "ratio": ratio}
    if (ratio < HEAP_MISSES).all() and (rss >= RSS_STAYED * peak).all():
        return decision("supported", "gap", **facts)
    if (ratio >= HEAP_TRACKS).all():
        return decision("refuted", "tracked", **facts)
    return decision("partly", "short-gap", **facts)


def evidence(d: Decision) -> str:
    if d.case == "no-cell":
        return "No touched cell without FreeOSMemory completed."
    if d.case == "missing":
        return "heap_inuse@release or rss@release is missing."
    text = capital(f"after the release, heap in use {span(d.heap)} while VmRSS {span(d.rss)} "
                   f"(peak {span(d.peak)}); heap/RSS {span(d.ratio, pct)}")
    return text + {"gap": ": the heap view misses what the OS still holds.",
                   "tracked": ": heap in use tracked RSS.",
                   "short-gap": ": RSS did not stay up, so the gap was short-lived."}[d.case]


CLAIM = Claim(
    "C10", "2.5",
    "pprof's heap view (`inuse_space`) does not show what the OS sees; RSS (`ps`, `/proc/<pid>/status` VmRSS) "
    "does.",
    "The runtime's heap-in-use next to RSS over a run with a spike and a release.",
    scenarios=("alloc_release",),
    metrics=("heap_inuse@release", "rss@release", "peak_rss"),
    figure="figures/alloc_release_breakdown.png",
    decide=decide, evidence=evidence)
