"""C1: after GC, freed memory stays with the runtime and is not returned to the OS right away."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    col,
    decision,
    pct,
    seconds0,
    span,
)
from harness.analyse.claims.registry import Claim

# RSS right after runtime.GC() above this share of the peak counts as "kept"; a final RSS below it
# as "returned" by the end of the idle window.
KEPT_SHARE = 0.5


def _gcs_key(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("inf")


def _release_by_gcs(t: pd.DataFrame) -> str:
    """"; time until RSS fell below half, by GCs after the drop: 0: never within 142 s, 1: 123 s, ..."."""
    gcs = axis(t, "gcs")
    if gcs.nunique() < 2:
        return ""
    parts = []
    for n in sorted(set(gcs), key=_gcs_key):
        rows = t[gcs == n]
        rel = col(rows, "release_s").dropna()
        if len(rel) == len(rows):
            parts.append(f"{n}: {span(rel, seconds0)}")
        elif rel.empty:
            parts.append(f"{n}: never within {span(col(rows, 'wall_s'), seconds0)}")
        else:
            parts.append(f"{n}: {span(rel, seconds0)} in {len(rel)} of {len(rows)}")
    return "; time until RSS fell below half, by GCs after the drop: " + ", ".join(parts)


def decide(t: pd.DataFrame, derived) -> Decision:
    gcs = axis(t, "gcs")
    sel = t[gcs != "0"] if (gcs != "0").any() else t
    after = col(sel, "rss@release") / col(sel, "peak_rss")
    final = col(sel, "final_rss") / col(sel, "peak_rss")
    facts = {"after": after, "final": final, "peak": col(sel, "peak_rss"), "final_rss": col(sel, "final_rss"),
                 "release": col(sel, "release_s").dropna(), "by_gcs": _release_by_gcs(t)}
    if after.dropna().empty:
        return decision("inconclusive", "missing", **facts)
    if after.min() <= KEPT_SHARE < after.max():
        return decision("inconclusive", "disagree", **facts)
    if not (after > KEPT_SHARE).any():
        return decision("refuted", "returned-at-once", **facts)
    returned = final < KEPT_SHARE
    if returned.all():
        return decision("partly", "scavenged", **facts)
    if returned.any():
        return decision("partly", "some-returned", **facts)
    return decision("supported", "kept", **facts)


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "RSS at the end of the release phase (rss@release) is missing."
    text = (f"right after runtime.GC() RSS was {span(d.after, pct)} of the peak ({span(d.peak)}, "
            f"threshold {pct(KEPT_SHARE)})")
    if d.case == "disagree":
        return f"Between cells {text}: some kept it, some did not."
    if d.case == "returned-at-once":
        return f"Memory went back at once: {text}."
    text += d.by_gcs
    if d.case == "scavenged":
        return (f"Not returned right away ({text}), but the scavenger returned it within the idle window: "
                f"below half after {span(d.release, seconds0)}, final RSS {span(d.final_rss)}.")
    if d.case == "some-returned":
        return (f"Not returned right away ({text}); by the end of the idle window final RSS was "
                f"{span(d.final_rss)}: returned in some cells only.")
    return f"{capital(text)}, and it was still {span(d.final, pct)} at the end of the run."


CLAIM = Claim(
    "C1", "1, 3.1",
    "After GC, freed memory stays with the runtime (mcache/mcentral/mheap) and is not returned to the OS "
    "right away, so `top`/`free` show it as still used.",
    "RSS after the live data is dropped and runtime.GC() runs, over an idle window of minutes; one GC "
    "versus several.",
    scenarios=("idle_scavenger",),
    metrics=("peak_rss", "rss@release", "final_rss", "release_s"),
    figure="figures/idle_scavenger_rss.png",
    decide=decide, evidence=evidence)
