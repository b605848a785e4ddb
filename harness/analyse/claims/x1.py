"""X1 (added): a GOMEMLIMIT below the container limit avoids OOM kills, at the cost of more GC CPU."""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    combine,
    compare,
    decision,
    limit_bytes,
    mib,
    seconds2,
    span,
    unlimited,
)
from harness.analyse.claims.registry import Claim


def _limits(on: pd.DataFrame) -> list[str]:
    """The limits the limited cells ran with, smallest first: as bytes where resolved, else as written."""
    labels = {}
    for text, resolved in zip(axis(on, "gomemlimit"), limit_bytes(on)):
        key = resolved if not math.isnan(resolved) else math.inf
        labels[mib(resolved) if not math.isnan(resolved) else text] = key
    return sorted(labels, key=lambda label: (labels[label], label))


def decide(t: pd.DataFrame, derived) -> Decision:
    gm = t[t["scenario"] == "gomemlimit"]
    if gm.empty:
        return decision("inconclusive", "not-run")
    off, on = gm[unlimited(gm)], gm[~unlimited(gm)]
    if off.empty or on.empty:
        return decision("inconclusive", "one-side")
    killed_on, killed_off = col(on, "oom_killed").fillna(0), col(off, "oom_killed").fillna(0)
    no_kill = not killed_on.any()
    peak_cmp = compare(col(on, "peak_rss"), col(off, "peak_rss"))
    lower_peak = None if peak_cmp == "unclear" else peak_cmp in ("lower", "same") and (
        peak_cmp == "lower" or not killed_off.any())
    facts = {"off": {"peak": col(off, "peak_rss"), "gc": col(off, "gc_cpu_s"), "killed": int(killed_off.sum()),
                      "n": len(off)},
                 "on": {"peak": col(on, "peak_rss"), "gc": col(on, "gc_cpu_s"), "killed": int(killed_on.sum()),
                     "n": len(on)},
                 "limits": _limits(on), "gogc_off": None}
    gs = t[(t["scenario"] == "gogc_sweep") & (axis(t, "gogc") == "off")]
    if not gs.empty:
        facts["gogc_off"] = (col(gs[unlimited(gs)], "peak_rss"), col(gs[~unlimited(gs)], "peak_rss"))
    return decision(combine([no_kill, lower_peak]), "judged", **facts)


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "The gomemlimit scenario did not run."
    if d.case == "one-side":
        return "Needs cells with and without GOMEMLIMIT."
    off, on = d.off, d.on
    text = (f"GOMEMLIMIT off: peak RSS {span(off['peak'])}, GC CPU {span(off['gc'], seconds2)}, "
            f"OOM-killed {off['killed']}/{off['n']}; with a limit ({', '.join(d.limits)}): peak RSS "
            f"{span(on['peak'])}, GC CPU {span(on['gc'], seconds2)}, OOM-killed {on['killed']}/{on['n']}")
    if d.gogc_off is not None:
        without, with_limit = d.gogc_off
        text += f"; GOGC=off peak RSS {span(without)} without, {span(with_limit)} with a limit"
    return text + "."


CLAIM = Claim(
    "X1", "(added)",
    "Not in the article: a `GOMEMLIMIT` set to a share of the container limit keeps the program under that "
    "limit and avoids OOM kills, at the cost of more GC CPU.",
    "Large-object churn near the container limit with GOMEMLIMIT off, 90% and 70%; GOGC=off with and without a "
    "limit: OOM kills, peak RSS, GC CPU.",
    scenarios=("gomemlimit", "gogc_sweep"),
    metrics=("peak_rss", "gc_cpu_s", "gc_cycles", "oom_killed"),
    figure="figures/gomemlimit.png",
    decide=decide, evidence=evidence)
