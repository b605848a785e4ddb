"""C7: memory goes back when free memory exceeds a share of the heap, or after some GC cycles."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    combine,
    compare,
    decision,
    span,
    unlimited,
)
from harness.analyse.claims.registry import Claim

# RSS after the idle window at most this many times the heap goal: retained memory follows the heap share.
GOAL_BOUND = 1.3
FEW_GCS, MANY_GCS = "1", "4"

WHY = {"supported": "both the heap-share bound and extra GC cycles matter",
       "refuted": "neither the heap-goal bound nor the GC count explains what stayed",
       "inconclusive": "the GC-count comparison is within the spread"}


def _times(x: float) -> str:
    return f"{x:.2f}"


def decide(t: pd.DataFrame, derived) -> Decision:
    rt = t[t["scenario"] == "release_threshold"]
    if rt.empty:
        return decision("inconclusive", "not-run")
    ratio = col(rt, "rss@idle") / col(rt, "heap_goal@idle")
    if ratio.dropna().empty:
        return decision("inconclusive", "missing")
    share = bool((ratio <= GOAL_BOUND).all())
    off = rt[unlimited(rt)]
    gcs = axis(off, "gcs")
    few, many = col(off[gcs == FEW_GCS], "rss@idle"), col(off[gcs == MANY_GCS], "rss@idle")
    cmp = compare(many, few)
    gc_part = None if cmp == "unclear" or few.empty or many.empty else cmp == "lower"
    limited = col(rt[~unlimited(rt)], "rss@idle")
    return decision(combine([share, gc_part]), "judged", ratio=ratio, share=share, few=few, many=many,
                    limited=limited)


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "release_threshold did not run; idle_scavenger alone does not vary the heap goal."
    if d.case == "missing":
        return "rss@idle or heap_goal@idle is missing."
    text = (f"after the idle window RSS was {span(d.ratio, _times)}× the heap goal (bound {GOAL_BOUND:g}×)"
            f"; without GOMEMLIMIT, {MANY_GCS} GCs kept {span(d.many)} vs {FEW_GCS} GC {span(d.few)}")
    if not d.limited.dropna().empty:
        text += f"; with GOMEMLIMIT {span(d.limited)}"
    if d.verdict == "partly":
        why = ("retained memory follows the heap goal, not the GC count" if d.share else
               "more GCs returned more, but retained memory exceeded the heap-goal bound")
    else:
        why = WHY[d.verdict]
    return f"{capital(text)}: {why}."


CLAIM = Claim(
    "C7", "2.4",
    "Memory goes back when free memory exceeds a share of the heap or after some GC cycles.",
    "Retained memory after a spike against the heap goal and the number of GC cycles; with and without "
    "GOMEMLIMIT.",
    scenarios=("release_threshold", "idle_scavenger"),
    metrics=("rss@idle", "heap_goal@idle", "gc_cycles"),
    figure="figures/release_threshold_retained.png",
    decide=decide, evidence=evidence)
