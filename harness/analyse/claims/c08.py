"""C8: lower GOGC means more GC, lower peak and more CPU; higher means fewer GCs, more memory and throughput."""

from __future__ import annotations

import itertools

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    combine,
    compare,
    decision,
    mib,
    span,
    unlimited,
)
from harness.analyse.claims.registry import Claim

DEFAULT_GOGC = "100"
# How each metric must move as GOGC rises, in the order the evidence lists them.
EXPECTED = {"gc_cycles": "lower", "gc_cpu_s": "lower", "peak_rss": "higher", "throughput": "higher"}


def monotone(x: list[float], series_by_x: dict[float, pd.Series], direction: str) -> bool | None:
    """Whether each step along x moves the values in `direction`; None when a step is within the spread."""
    results = [compare(series_by_x[b], series_by_x[a]) for a, b in itertools.pairwise(x)]
    if "unclear" in results:
        return None
    return all(r == direction for r in results)


def decide(t: pd.DataFrame, derived) -> Decision:
    sel = t[unlimited(t)]
    gogc = pd.to_numeric(axis(sel, "gogc").replace("unset", DEFAULT_GOGC), errors="coerce")
    sel = sel[gogc.notna()]
    gogc = gogc[gogc.notna()]
    levels = sorted(gogc.unique())
    if len(levels) < 2:
        return decision("inconclusive", "too-few-levels")
    values = {metric: {g: col(sel[gogc == g], metric) for g in levels} for metric in EXPECTED}
    parts = [monotone(levels, values[m], direction) for m, direction in EXPECTED.items()]
    failed = [m for m, p in zip(EXPECTED, parts) if p is False]
    return decision(combine(parts), "judged", levels=levels, values=values, failed=failed)


def evidence(d: Decision) -> str:
    if d.case == "too-few-levels":
        return "Fewer than two numeric GOGC values completed without a memory limit."
    bits = []
    for metric, by in d.values.items():
        fmt = mib if metric == "peak_rss" else (lambda v: f"{v:.3g}")
        bits.append(f"{metric} " + " / ".join(span(by[g], fmt) for g in d.levels))
    text = f"GOGC {' / '.join(f'{g:g}' for g in d.levels)}: " + "; ".join(bits)
    if d.failed:
        text += f". Not monotone as claimed: {', '.join(d.failed)}"
    return text + "."


CLAIM = Claim(
    "C8", "4.1",
    "`GOGC`: lower means more frequent GC, lower peak memory and more CPU; higher means fewer GCs, more memory "
    "and more throughput (its table: 50 / 100 / 300).",
    "A steady allocation load swept over GOGC: GC cycles, GC CPU, peak RSS, throughput.",
    scenarios=("gogc_sweep",),
    metrics=("gc_cycles", "gc_cpu_s", "peak_rss", "throughput"),
    figure="figures/gogc_sweep.png",
    decide=decide, evidence=evidence)
