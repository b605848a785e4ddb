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
from harness.define.axes import axis_text
from harness.define.metrics import Source
from harness.define.units import UNITS, UnitError, parse_duration, parse_size
from harness.run.backends.base import MEASURED

VERDICTS = ("supported", "refuted", "partly", "inconclusive", "not-applicable", "not-tested")
USABLE_STATUSES = MEASURED
MiB = 1024 * 1024
NAN = float("nan")


@dataclass(frozen=True)
class Decision:
    """A verdict and the facts it rests on; `case` names the outcome the evidence text explains.

    Facts read as attributes (`decision.after`), so a claim's evidence function reads like its
    decide function.
    """

    verdict: str
    case: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        facts = self.__dict__.get("facts", {})
        if name in facts:
            return facts[name]
        raise AttributeError(name)


def decision(verdict: str, case: str, **facts: Any) -> Decision:
    assert verdict in VERDICTS, verdict
    return Decision(verdict, case, facts)


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

def compare(a: Iterable[float], b: Iterable[float], rel_tol: float = 0.05) -> str:
    """Where `a` lies relative to `b`: lower | higher | same | unclear.

    Each side is the values of its repeats. `lower`/`higher`: the two ranges (min–max) do not
    overlap and the gap between them is more than `rel_tol` of the larger median, so the effect
    is larger than the spread between repeats. `same`: every value of both sides lies within
    `rel_tol` of each other, so any effect is smaller than that and the repeats are tight enough
    to say so (a real null result, which can contradict a claim). Anything else is `unclear`:
    the difference is within the spread between repeats, which decides nothing either way.
    """
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty:
        return "unclear"
    tol = rel_tol * max(abs(a.median()), abs(b.median()), 1e-12)
    if a.max() < b.min() and b.min() - a.max() > tol:
        return "lower"
    if a.min() > b.max() and a.min() - b.max() > tol:
        return "higher"
    spread = max(a.max(), b.max()) - min(a.min(), b.min())
    return "same" if spread <= tol else "unclear"


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
