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
    axis_text,
    retained_fraction,
)
from harness.run.backends.base import MEASURED
from harness.define.units import UNITS, UnitError, parse_duration, parse_size

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

    def phase_mean(self, cell_id: str, source: str, metric: str, phase: str) -> float:
        return derive.phase_mean(self.run, cell_id, source, metric, phase)

    def second_half_slope(self, cell_id: str, source: str, metric: str, phase: str) -> float:
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


def span(values, fmt: Callable[[float], str] = mib) -> str:
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


def seconds0(s: float) -> str:
    return f"{s:.0f} s"


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

def compare(a, b, rel_tol: float = 0.05) -> str:
    """Where `a` lies relative to `b`: lower | higher | same | unclear.

    Ranges (min–max over repeats) that overlap are `unclear` unless both are tight (then `same`);
    a gap smaller than `rel_tol` of the larger value is `same`.
    """
    a = pd.Series(a, dtype=float).dropna()
    b = pd.Series(b, dtype=float).dropna()
    if a.empty or b.empty:
        return "unclear"
    scale = max(abs(a.median()), abs(b.median()), 1e-12)
    tol = rel_tol * scale
    if a.max() < b.min():
        return "lower" if b.min() - a.max() > tol else "same"
    if a.min() > b.max():
        return "higher" if a.min() - b.max() > tol else "same"
    spread = max(a.max(), b.max()) - min(a.min(), b.min())
    return "same" if spread <= 2 * tol else "unclear"


def combine(parts: list[bool | None]) -> str:
    """Verdict from part results: each True (holds), False (fails) or None (could not tell)."""
    if any(p is None for p in parts):
        return "inconclusive"
    if all(parts):
        return "supported"
    if not any(parts):
        return "refuted"
    return "partly"


def retained(t: pd.DataFrame, after_col: str) -> pd.Series:
    """Share of the rise above rss@baseline at peak_rss still resident at `after_col`."""
    return pd.Series([retained_fraction(a, p, b) for a, p, b in
                      zip(col(t, after_col), col(t, "peak_rss"), col(t, "rss@baseline"))], index=t.index)
