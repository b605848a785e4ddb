"""C13: large objects with mixed lifetimes fragment memory and keep it resident."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    decision,
    pct,
    ratio2,
    span,
)
from harness.analyse.claims.registry import Claim

KEPT = 0.5       # RSS after the idle window at or above this share of the peak: memory stayed resident
RETURNED = 0.25  # below this share in every cell: it went back


def decide(t: pd.DataFrame, derived) -> Decision:
    kept = col(t, "rss@idle") / col(t, "peak_rss")
    if kept.dropna().empty:
        return decision("inconclusive", "missing")
    ratio = pd.Series({cid: derived.phase_mean(cid, "proc", "vm_rss", "churn")
                       / derived.phase_mean(cid, "runtime", "heap_inuse", "churn") for cid in t.index}, dtype=float)
    facts = {"kept": kept, "ratio": ratio, "idle": col(t, "rss@idle"),
                 "gogc": sorted(set(axis(t, "gogc"))) if "gogc" in t.columns else None}
    if (kept >= KEPT).all():
        return decision("supported", "resident", **facts)
    if (kept < RETURNED).all():
        return decision("refuted", "returned", **facts)
    return decision("partly", "some", **facts)


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "rss@idle is missing."
    text = capital(f"during churn mean RSS / mean heap in use {span(d.ratio, ratio2)}; after everything was "
                   f"dropped and the idle window, RSS {span(d.idle)} = {span(d.kept, pct)} of peak "
                   f"({'GOGC ' + ', '.join(d.gogc) if d.gogc is not None else ''})")
    return text + {"resident": ": memory stayed resident.",
                   "returned": ": the free large-object pages went back to the OS.",
                   "some": ": some was kept, some returned."}[d.case]


CLAIM = Claim(
    "C13", "3.2",
    "Large objects, allocated and freed with mixed lifetimes, fragment memory and keep it resident (stated for "
    "the .NET LOH and the JVM; tested for Go's large objects).",
    "Large-object churn with mixed sizes and lifetimes: RSS against live heap over time, several GOGC.",
    scenarios=("large_churn",),
    metrics=("mean_rss", "peak_rss", "rss@idle", "heap_inuse@churn"),
    figure="figures/large_churn_rss.png",
    decide=decide, evidence=evidence)
