"""What every claim file uses: the inputs, the decision type, and the small helpers verdicts are written with."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from harness.analyse import derived as derive
from harness.analyse.summary import (
    EVENT_COLUMNS,
    SAMPLE_COLUMNS,
    RunData,
    retained_fraction,
)
from harness.define.axes import STANDARD_AXES, axis_text
from harness.define.metrics import Source
from harness.define.units import UNITS, UnitError, parse_duration, parse_size
from harness.run.backends.base import MEASURED

VERDICTS = ("supported", "refuted", "partly", "inconclusive", "not-applicable", "not-tested")
USABLE_STATUSES = MEASURED
MiB = 1024 * 1024
NAN = float("nan")


@dataclass(frozen=True)
class Decision:
    """A verdict, the named parts it combines and the facts it rests on; `case` names the outcome the
    evidence text explains.

    Every verdict other than `inconclusive` is `combine` of its parts (`judged`): each part is one
    test that the data can pass or fail (True / False), or leave undecided (None). A claim declares
    its parts' names (`Claim.parts`); tests/test_claims_parts.py shows each coming out both ways.
    Facts read as attributes (`decision.after`), so a claim's evidence function reads like its
    decide function.
    """

    verdict: str
    case: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    parts: Mapping[str, bool | None] = field(default_factory=dict)
    why: Mapping[str, str] = field(default_factory=dict)   # why an undecided part is undecided

    def __getattr__(self, name: str) -> Any:
        facts = self.__dict__.get("facts", {})
        if name in facts:
            return facts[name]
        raise AttributeError(name)


def decision(verdict: str, case: str, **facts: Any) -> Decision:
    """A decision without parts: only `inconclusive` (the data needed to test any part is missing).
    Every other verdict comes from `judged`, so it can be traced to parts that could have failed."""
    assert verdict == "inconclusive", f"{verdict}: a verdict other than inconclusive comes from judged(parts)"
    return Decision(verdict, case, facts)


def judged(case: str, parts: Mapping[str, bool | None], why: Mapping[str, str] | None = None, /,
           **facts: Any) -> Decision:
    """The verdict `combine` makes of named parts, each True (held), False (failed) or None (undecided,
    `why` says why when it is not the spread between repeats)."""
    parts = dict(parts)
    return Decision(combine(list(parts.values())), case, facts, parts, dict(why or {}))


# A part judged over several cells holds where at least MOST of them held and fails where at most
# 1 − MOST did; in between it is undecided. Up to three cells that is all or none: a part is never
# decided against a third of its cells. From four cells on, one that strays (a GC that came early, a
# repeat the host disturbed) no longer leaves the part undecided. Measured on two quick runs and their
# recomputation: two thirds (a plain majority) decides every split of three cells, and a 1-of-3 split
# that moved to 2-of-3 between runs flipped C10 from `refuted` to `partly`; three quarters left one row
# of 28 differing in each pair (benchmarks/compare_verdicts.py). Each claim's evidence gives the count.
MOST = 3 / 4


def either(values: Iterable[bool]) -> bool | None:
    """One part over several cells or settings: True when it held in at least MOST of them, False when
    it held in at most 1 − MOST, None when they split closer than that or there are none."""
    v = [bool(x) for x in values]
    if not v:
        return None
    held = sum(v) / len(v)
    return True if held >= MOST - 1e-9 else False if held <= 1 - MOST + 1e-9 else None


def peers(cell: pd.Series, pool: pd.DataFrame, contrasted: Iterable[str]) -> pd.DataFrame:
    """The cells of `pool` set as `cell` is on every standard axis but the `contrasted` ones: what the
    cell is compared with, so that a setting the claim does not test (a GOGC a run crossed in with
    --matrix) is never taken for noise between repeats. All of `pool` where none match."""
    keys = [a for a in STANDARD_AXES if a not in set(contrasted) and a in pool.columns and a in cell.index]
    same = pd.Series(True, index=pool.index)
    for key in keys:
        same &= axis(pool, key) == axis_text(cell[key])
    return pool[same] if same.any() else pool


class Derived:
    """The quantities claims compute from raw events and samples (harness.analyse.derived), with the
    run split by cell once."""

    def __init__(self, events: pd.DataFrame | None, samples: pd.DataFrame | None):
        self.events, self.samples = events, samples

    @cached_property
    def run(self) -> RunData:
        return self.data if self.data is not None else RunData(self.samples, self.events)

    data: RunData | None = None  # the run already split by cell, when the caller has it

    def sizes(self, cell_ids: Iterable[str]) -> pd.DataFrame:
        return derive.sizes_table(self.events, cell_ids)

    def syscalls(self, cell_ids: Iterable[str]) -> dict[str, tuple[int, float]]:
        return derive.syscall_totals(self.events, cell_ids)

    def phase_syscalls(self, cell_id: str, phase: str) -> dict[str, tuple[int, float]]:
        return derive.phase_syscalls(self.run, self.events, cell_id, phase)

    def live_heap(self, cell_ids: Iterable[str]) -> dict[str, float]:
        return derive.live_heap(self.events, cell_ids)

    def phase_mean(self, cell_id: str, source: Source, metric: str, phase: str) -> float:
        return derive.phase_mean(self.run, cell_id, source, metric, phase)

    def second_half_slope(self, cell_id: str, source: Source, metric: str, phase: str) -> float:
        return derive.second_half_slope(self.run, cell_id, source, metric, phase)


@dataclass
class Inputs:
    """What the claims read: cells.csv, the per-cell summary and the raw events/samples."""
    cells: pd.DataFrame
    summary: pd.DataFrame
    events: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(EVENT_COLUMNS)))
    samples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SAMPLE_COLUMNS)))
    data: RunData | None = None  # samples and events already split by cell (summary.split_by_cell)

    def table(self) -> pd.DataFrame:
        """cells joined with their summary, one row per cell, indexed by cell_id."""
        cells = self.cells.copy()
        cells["cell_id"] = cells["cell_id"].astype(str)
        cells = cells.set_index("cell_id")
        summary = self.summary.drop(columns=[c for c in self.summary.columns if c in cells.columns])
        return cells.join(summary, how="left")

    @cached_property
    def derived(self) -> Derived:
        derived = Derived(self.events, self.samples)
        derived.data = self.data
        return derived


# ---- formatting ----------------------------------------------------------------------------------

mib = UNITS["bytes"].format  # 1078984704 -> "1029 MiB"; NaN -> "n/a"


def span(values: Iterable[float], fmt: Callable[[float], str] = mib) -> str:
    """"a" for one value or equal values, "a–b" for a spread."""
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return "n/a"
    lo, hi = fmt(float(v.min())), fmt(float(v.max()))
    return lo if lo == hi else f"{lo}–{hi}"


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}%"


def ratio2(x: float) -> str:
    return f"{x:.2f}"


seconds2 = UNITS["s"].format  # 0.523 -> "0.52 s"


def capital(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}"


# ---- reading the joined table ----------------------------------------------------------------------

def col(t: pd.DataFrame, name: str) -> pd.Series:
    """A column as floats; NaN when the run lacks it."""
    if name in t.columns:
        return pd.to_numeric(t[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=t.index, dtype=float)


def axis(t: pd.DataFrame, name: str) -> pd.Series:
    """An axis column as normalised strings ("unset" where absent)."""
    if name in t.columns:
        return t[name].map(axis_text)
    return pd.Series("unset", index=t.index, dtype=object)


def unlimited(t: pd.DataFrame) -> pd.Series:
    """Cells that ran without GOMEMLIMIT."""
    return axis(t, "gomemlimit").isin(["off", "unset"])


def limit_bytes(t: pd.DataFrame) -> pd.Series:
    """GOMEMLIMIT in bytes per cell: the resolved `gomemlimit_bytes` column (cells.csv v2), else a
    plain byte count in `gomemlimit` (v1); NaN for off, unset or a value not resolved."""
    if "gomemlimit_bytes" in t.columns:
        return col(t, "gomemlimit_bytes")
    return axis(t, "gomemlimit").map(lambda v: float(v) if v.isdigit() else NAN).astype(float)


def duration(text: str) -> float:
    try:
        return float(parse_duration(text))
    except (UnitError, ValueError, TypeError):
        return NAN


def size(text: str) -> float:
    try:
        return float(parse_size(text))
    except (UnitError, ValueError, TypeError):
        return NAN


# ---- judging -------------------------------------------------------------------------------------

MIN_REL_TOL = 0.05   # the smallest effect read as one when the run shows no larger noise


def noise(a: Iterable[float], b: Iterable[float], placebo: float = 0.0) -> float:
    """The tolerance a difference between `a` and `b` must exceed, as a share of the larger median:
    the largest of half the widest range between repeats of either side (how far a repeat strays
    from its group's middle; repeats run interleaved, so this is the host's noise between rounds
    too), a placebo difference the run measured (a setting that should change nothing), and
    MIN_REL_TOL."""
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty:
        return math.nan
    scale = max(abs(a.median()), abs(b.median()), 1e-12)
    spread = float(max(a.max() - a.min(), b.max() - b.min())) / 2 / scale
    return max(MIN_REL_TOL, spread, abs(placebo) if not math.isnan(placebo) else 0.0)


def _pair_gaps(a: pd.Series, b: pd.Series, rel_tol: float) -> tuple[np.ndarray, float]:
    """Every repeat of `a` minus every repeat of `b`, and the tolerance in their unit (`rel_tol` of the
    larger median)."""
    return a.to_numpy()[:, None] - b.to_numpy()[None, :], rel_tol * max(abs(a.median()), abs(b.median()), 1e-12)


def compare(a: Iterable[float], b: Iterable[float], rel_tol: float | None = None, placebo: float = 0.0) -> str:
    """Where `a` lies relative to `b`: lower | higher | same | unclear.

    Each side is the values of its repeats. The tolerance is measured, not fixed (`noise`): the
    spread between repeats, a placebo difference, at least 5% (`rel_tol` overrides it).
    `lower`/`higher`: at least MOST of the pairs (a repeat of `a`, a repeat of `b`) differ that way by
    more than the tolerance, so the effect is larger than the noise. With ranges apart by more than
    the tolerance every pair does; one repeat the host slowed for its whole run (seen in gogc_sweep
    and greentea, 30% for 10–20 s) no longer leaves an effect of 60% undecided. `same`: every value of both sides lies
    within MIN_REL_TOL of each other, so any effect is smaller than that and the repeats are tight
    enough to say so (a real null result, which can contradict a claim). Anything else is
    `unclear`: the difference is within the noise, which decides nothing either way.
    """
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty:
        return "unclear"
    scale = max(abs(a.median()), abs(b.median()), 1e-12)
    gaps, tol = _pair_gaps(a, b, rel_tol if rel_tol is not None else noise(a, b, placebo))
    if (gaps < -tol).mean() >= MOST - 1e-9:
        return "lower"
    if (gaps > tol).mean() >= MOST - 1e-9:
        return "higher"
    spread = max(a.max(), b.max()) - min(a.min(), b.min())
    return "same" if spread <= MIN_REL_TOL * scale else "unclear"


def exceeds(a: Iterable[float], b: Iterable[float], placebo: float = 0.0) -> bool | None:
    """A one-sided part, "`a` above `b`", over the pairs (a repeat of `a`, a repeat of `b`): True where at
    least MOST of them are above by more than the tolerance (`noise`), False where at least MOST are not
    above at all, None in between (within the noise). compare()'s `same` needs every value within
    MIN_REL_TOL, a boundary a real 3–5% difference the other way sits on (Green Tea's RSS: `same` in one
    reference run, `unclear` in the next); here that difference is simply not above."""
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty:
        return None
    gaps, tol = _pair_gaps(a, b, noise(a, b, placebo))
    if (gaps > tol).mean() >= MOST - 1e-9:
        return True
    return False if (gaps <= 0).mean() >= MOST - 1e-9 else None


def change(a: Iterable[float], b: Iterable[float]) -> float:
    """Relative change of the median of `a` from the median of `b` (0.25 = 25% higher); NaN when empty."""
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty or b.median() == 0:
        return NAN
    return float(a.median() / b.median() - 1)


def signed_pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.0f}%"


def combine(parts: list[bool | None]) -> str:
    """Verdict from part results: each True (holds), False (fails) or None (undecided: within the
    spread between repeats, or a reading is missing).

    An undecided part never counts against the claim: parts that held next to parts that failed
    are `partly` whatever the undecided ones; otherwise any undecided part makes the verdict
    `inconclusive` (the evidence names that part, see `parts_text`).
    """
    held, failed = any(p is True for p in parts), any(p is False for p in parts)
    if held and failed:
        return "partly"
    if any(p is None for p in parts) or not parts:
        return "inconclusive"
    return "supported" if held else "refuted"


WITHIN_SPREAD = "within the spread between repeats"


def parts_line(d: Decision) -> str:
    """Every part of a decision and how it came out, for the end of the evidence: "Parts: a held; b
    did not hold; c undecided (why)." """
    if not d.parts:
        return ""
    said = {True: "held", False: "did not hold", None: "undecided"}
    bits = [f"{name} {said[p]}" + (f" ({d.why.get(name, WITHIN_SPREAD)})" if p is None else "")
            for name, p in d.parts.items()]
    return "Parts: " + "; ".join(bits) + "."


def parts_text(parts: Mapping[str, bool | None], undecided: Mapping[str, str] | None = None) -> str:
    """What the verdict rests on, part by part: the parts that did not hold and those undecided
    with why (by default: within the spread between repeats); "" when every part held."""
    undecided = undecided or {}
    failed = [name for name, p in parts.items() if p is False]
    open_ = [f"{name} ({undecided.get(name, WITHIN_SPREAD)})" for name, p in parts.items() if p is None]
    bits = []
    if failed:
        bits.append("Did not hold: " + ", ".join(failed) + ".")
    if open_:
        bits.append("Inconclusive for " + "; ".join(open_) + ".")
    return " ".join(bits)


def go_before(go: str, major_minor: tuple[int, int]) -> bool:
    """Whether a Go version ("1.19.8", "go1.21.13") is older than `major_minor`; False when it does not
    parse (`default` and toolchain paths are new enough)."""
    numbers = str(go).strip().removeprefix("go").split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) < major_minor
    except (ValueError, IndexError):
        return False


def retained(t: pd.DataFrame, after_col: str) -> pd.Series:
    """Share of the rise above rss@baseline at peak_rss still resident at `after_col`."""
    return pd.Series([retained_fraction(a, p, b) for a, p, b in
                      zip(col(t, after_col), col(t, "peak_rss"), col(t, "rss@baseline"), strict=False)], index=t.index)
