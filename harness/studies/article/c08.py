"""C8: lower GOGC means more GC, lower peak and more CPU; higher means fewer GCs, more memory and throughput."""

from __future__ import annotations

import itertools

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    compare,
    decision,
    go_before,
    judged,
    mib,
    span,
    unlimited,
)
from harness.analyse.claims.study import Claim, FigureSpec

DEFAULT_GOGC = "100"
# How each metric must move as GOGC rises, in the order the evidence lists them.
EXPECTED = {"gc_cycles": "lower", "gc_cpu_s": "lower", "peak_rss": "higher", "throughput": "higher"}
OPPOSITE = {"lower": "higher", "higher": "lower"}
PARTS = tuple(f"{m} {d} as GOGC rises" for m, d in EXPECTED.items())


def direction(levels: list[float], by: dict[float, pd.Series], expected: str) -> tuple[bool | None, list[str]]:
    """Whether the metric moves as expected from the lowest GOGC to the highest, and the steps between
    neighbouring values that were within the spread between repeats.

    The lowest-to-highest comparison decides; a step between neighbours counts against only when it
    clearly goes the other way (beyond the spread), never when it is within the spread.
    """
    steps = {(a, b): compare(by[b], by[a]) for a, b in itertools.pairwise(levels)}
    within = [f"{a:g}→{b:g}" for (a, b), r in steps.items() if r == "unclear"]
    end = compare(by[levels[-1]], by[levels[0]])
    if any(r == OPPOSITE[expected] for r in steps.values()):
        return False, within
    if end == "unclear":
        return None, within
    return end == expected, within


def decide(t: pd.DataFrame, derived) -> Decision:
    sel = t[unlimited(t)]
    gogc = pd.to_numeric(axis(sel, "gogc").replace("unset", DEFAULT_GOGC), errors="coerce")
    sel = sel[gogc.notna()]
    gogc = gogc[gogc.notna()]
    levels = sorted(gogc.unique())
    if len(levels) < 2:
        return decision("inconclusive", "too-few-levels")
    values = {metric: {g: col(sel[gogc == g], metric) for g in levels} for metric in EXPECTED}
    results = {m: direction(levels, values[m], d) for m, d in EXPECTED.items()}
    parts = {f"{m} {EXPECTED[m]} as GOGC rises": r for m, (r, _) in results.items()}
    within = {m: steps for m, (_, steps) in results.items() if steps}
    repeats = int(sel.groupby(gogc).size().min())
    version = str(sel["go_version"].iloc[0]) if "go_version" in sel.columns and len(sel) else ""
    return judged("judged", parts, levels=levels, values=values, within=within, repeats=repeats, version=version)


def evidence(d: Decision) -> str:
    if d.case == "too-few-levels":
        return "Fewer than two numeric GOGC values completed without a memory limit."
    bits = []
    for metric, by in d.values.items():
        fmt = mib if metric == "peak_rss" else (lambda v: f"{v:.3g}")
        bits.append(f"{metric} " + " / ".join(span(by[g], fmt) for g in d.levels))
    text = (f"GOGC {' / '.join(f'{g:g}' for g in d.levels)} (no memory limit, at least {d.repeats} repeat(s) each): "
            + "; ".join(bits) + f". {heap_goal(d.version)}, so a higher GOGC means fewer cycles over a larger heap")
    if d.within:
        text += ("; steps within the spread between repeats (they decide nothing): "
                 + ", ".join(f"{m} {', '.join(s)}" for m, s in d.within.items()))
    return f"{text}."


def heap_goal(version: str) -> str:
    """The pacer's heap goal in this Go version's own terms."""
    if go_before(version, (1, 18)):
        return "The pacer's heap goal is the live heap × (1 + GOGC/100) (runtime/mgcpacer.go)"
    return ("The pacer's heap goal is the live heap + (live heap + goroutine stacks + globals) × GOGC/100 "
            "(runtime/mgcpacer.go heapGoal; stacks and globals count since Go 1.18, golang/go#44167)")


CLAIM = Claim(
    "C8", "4.1",
    "`GOGC`: lower means more frequent GC, lower peak memory and more CPU; higher means fewer GCs, more memory "
    "and more throughput (its table: 50 / 100 / 300).",
    "A steady allocation load swept over GOGC, three repeats each: GC cycles, GC CPU, peak RSS, throughput; "
    "each judged from the lowest GOGC to the highest, a step within the spread between repeats deciding nothing.",
    plain="A lower GOGC means more GCs, less memory and more CPU; a higher one the reverse.",
    scenarios=("gogc_sweep",),
    metrics=("gc_cycles", "gc_cpu_s", "peak_rss", "throughput"),
    figure=FigureSpec("bars", "gogc_sweep", "gogc_sweep", metrics=("gc_cycles", "gc_cpu_s", "peak_rss", "throughput"),
                      x="gogc", hue="gomemlimit"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism="GOGC sets the heap goal to the live heap + (live heap + stacks + globals) × GOGC/100 "
              "(runtime/mgcpacer.go gcControllerState.heapGoal, gcPercentHeapGoal; stacks and globals since Go "
              "1.18, golang/go#44167; the live heap × (1 + GOGC/100) before); a GOMEMLIMIT adds a second goal "
              "from the memory limit (gcControllerState.memoryLimit, memoryLimitHeapGoal), and the GC CPU limiter "
              "caps GC at about 50% of CPU (runtime/mgclimit.go gcCPULimiter, Go 1.19+).")
