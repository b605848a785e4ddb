"""A scenario's [[expect]] tables checked against summaries of measured cells.

Expectations check that the harness measured something sane (an untouched slice is not
resident, a 512 MiB write into 256 MiB is killed); claim verdicts live in harness.analyse.claims.
A metric that is missing or NaN fails its check: a sanity check that cannot be read is a
measurement problem worth seeing.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from harness.define.cell import Cell
from harness.define.hosts import UNTIMED_ACCELERATORS
from harness.define.metrics import metric_unit, timing_sensitive
from harness.define.scenario import (
    Expectation,
    Scenario,
    cell_settings,
    matches,
    same_value,
)

if TYPE_CHECKING:
    from harness.run.backends.base import RunResult

# A cell's summary: its row of the summary DataFrame, or a mapping of metric to value.
SummaryRow = Mapping[str, float] | pd.Series
# (cell id, repeat, settings_of the cell) of a cell that ran.
CellRecord = tuple[str, int, dict[str, str]]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Failure:
    cell_id: str
    expectation: Expectation
    message: str       # "alloc_release[madvdontneed=1,r0]: rss@freeos = 512 MiB, expected < 64 MiB"

    def __str__(self) -> str:
        return self.message


def summarize_cell(result: RunResult) -> pd.Series:
    """The summary row (a Series named by cell id) of one finished cell's RunResult."""
    from harness.analyse.summary import summarize
    from harness.store.rundir import result_frames

    cells, samples, events = result_frames(result)
    row = summarize(cells, samples, events).loc[result.cell.cell_id]
    assert isinstance(row, pd.Series)   # one row: a cell id is unique
    return row


def format_value(metric: str, value: float | None) -> str:
    """How a measured value reads in a failure message: the metric's unit's short form."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing (NaN)"
    return metric_unit(metric).format(value)


def settings_of(scenario: Scenario, cell: Cell) -> dict[str, str]:
    """The values `where` tables are matched against: workload flags and axis values."""
    flags = dict(a[2:].split("=", 1) for a in cell.args if a.startswith("--") and "=" in a)
    return cell_settings(scenario.descriptor, flags, dict(cell.axes))


def _read(row: SummaryRow, metric: str) -> float | None:
    try:
        value = row[metric]
    except (KeyError, IndexError):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ok(op: str, left: float | None, right: float | None) -> bool:
    if left is None or right is None or math.isnan(left) or math.isnan(right):
        return False
    return bool(_OPS[op](left, right))


def inconclusive(expectation: Expectation, accels: Iterable[str]) -> str:
    """Why the expectation cannot be judged on cells run under these accelerators ("" when it can):
    it reads a timing metric and one of them ran under software emulation."""
    slow = sorted({a for a in accels if a in UNTIMED_ACCELERATORS})
    if not slow or not timing_sensitive(expectation.metric):
        return ""
    return (f"{expectation.metric} is a timing metric, measured under {', '.join(slow)} (qemu's software "
            "emulation: timing is not the host's): inconclusive")


def inconclusive_checks(scenario: Scenario, cell: Cell, accel: str) -> list[str]:
    """Per-cell expectations selecting this cell that its accelerator leaves inconclusive, as notes."""
    settings = settings_of(scenario, cell)
    return [f"{cell.cell_id}: {why}" for expectation in scenario.expects
            if not expectation.relative and matches(expectation.where, settings)
            and (why := inconclusive(expectation, [accel]))]


def check_cell(scenario: Scenario, cell: Cell, summary_row: SummaryRow, accel: str = "native") -> list[Failure]:
    """Per-cell expectations whose `where` selects this cell (`where` sees the cell's axes and flags,
    which its id may leave out); those its accelerator leaves inconclusive are not judged."""
    cell_id = cell.cell_id
    settings = settings_of(scenario, cell)
    failures = []
    for expectation in scenario.expects:
        if expectation.relative or not matches(expectation.where, settings) or inconclusive(expectation, [accel]):
            continue
        measured = _read(summary_row, expectation.metric)
        if not _ok(expectation.op, measured, expectation.value):
            bound = _bound_text(expectation)
            failures.append(Failure(cell_id, expectation,
                                    f"{cell_id}: {expectation.metric} = {format_value(expectation.metric, measured)}"
                                    f", expected {expectation.op} {bound}"))
    return failures


def _bound_text(expectation: Expectation) -> str:
    if expectation.value is None:
        return expectation.text
    return metric_unit(expectation.metric).format(expectation.value)


def partner_settings(expectation: Expectation, settings: dict[str, str]) -> dict[str, str]:
    """The settings of the cell an `of` expectation compares with."""
    partner = dict(settings)
    partner.update(dict(expectation.of))
    return partner


def relative_pairs(scenario: Scenario, expectation: Expectation,
                   cells: Iterable[CellRecord]) -> list[tuple[str, str | None]]:
    """(cell id, partner id or None) for every cell the expectation's `where` selects.

    Cells pair up when every axis not named in `of` has the same value and the repeat is equal.
    """
    cells = list(cells)
    pairs = []
    for cell_id, repeat, settings in cells:
        if not matches(expectation.where, settings):
            continue
        target = partner_settings(expectation, settings)
        partner = next((other_id for other_id, other_repeat, other in cells
                        if other_repeat == repeat and other_id != cell_id
                        and all(k in other and same_value(other[k], target[k]) for k in target)), None)
        pairs.append((cell_id, partner))
    return pairs


def relative_checks(scenario: Scenario, records: Iterable[CellRecord], summaries: Mapping[str, SummaryRow],
                    done: set[tuple[int, str, str]] | None = None,
                    accels: Mapping[str, str] | None = None) -> tuple[list[Failure], list[str]]:
    """`of` expectations over the pairs among the cells run so far; callable after every cell.

    `records` are (cell_id, repeat, settings) of this scenario's cells that ran (settings_of gives
    the settings); `summaries` maps a cell id to its summary row. A pair is compared once both
    summaries are there, and its key (expectation index, cell id, partner id) goes into `done` so a
    later call skips it. Returns (failures of the pairs compared now, notes on the selected cells
    whose partner is not among `records`, or whose pair its accelerators (`accels`, by cell id) leave
    inconclusive): a driver reports the notes of its last call.
    """
    accels = accels or {}
    done = set() if done is None else done
    records = list(records)
    present = set(summaries)
    failures: list[Failure] = []
    unchecked: list[str] = []
    for expectation in scenario.expects:
        if not expectation.relative:
            continue
        for cell_id, partner_id in relative_pairs(scenario, expectation, records):
            if partner_id is None:
                wanted = ", ".join(f"{k}={v}" for k, v in expectation.of)
                unchecked.append(f"{cell_id}: {expectation.metric} vs the {wanted} cell: that cell was not run")
                continue
            why = inconclusive(expectation, [accels.get(cell_id, ""), accels.get(partner_id, "")])
            if why:
                unchecked.append(f"{cell_id} vs {partner_id}: {why}")
                continue
            key = (expectation.index, cell_id, partner_id)
            if key in done or cell_id not in present or partner_id not in present:
                continue
            done.add(key)
            failure = compare_pair(expectation, cell_id, summaries[cell_id], partner_id, summaries[partner_id])
            if failure:
                failures.append(failure)
    return failures, unchecked


def compare_pair(expectation: Expectation, cell_id: str, row: SummaryRow, partner_id: str,
                 partner_row: SummaryRow) -> Failure | None:
    measured = _read(row, expectation.metric)
    reference = _read(partner_row, expectation.metric)
    ratio = expectation.ratio
    assert ratio is not None, "scenario validation gives every `of` expectation its ratio"
    bound = None if reference is None else ratio * reference
    if _ok(expectation.op, measured, bound):
        return None
    metric = expectation.metric
    return Failure(cell_id, expectation,
                   f"{cell_id}: {metric} = {format_value(metric, measured)}, expected {expectation.op} "
                   f"{ratio:g} × {partner_id} ({format_value(metric, reference)})")
