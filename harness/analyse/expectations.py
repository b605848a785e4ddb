"""A scenario's [[expect]] tables checked against summaries of measured cells.

Expectations check that the harness measured something sane (an untouched slice is not
resident, a 512 MiB write into 256 MiB is killed); claim verdicts live in harness.analyse.claims.
A metric that is missing or NaN fails its check: a sanity check that cannot be read is a
measurement problem worth seeing.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.define.axes import axis_text
from harness.define.cell import Cell
from harness.define.metrics import metric_unit
from harness.define.scenario import (
    Expectation,
    Scenario,
    cell_settings,
    matches,
    same_value,
)

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Failure:
    cell_id: str
    expectation: Expectation
    message: str       # "alloc_release[madvdontneed=1,r0]: rss@freeos = 512 MiB, expected < 64 MiB"

    def __str__(self) -> str:
        return self.message


def summarize_cell(result) -> Any:
    """The summary row (a Series named by cell id) of one finished cell's RunResult."""
    from harness.analyse.summary import summarize
    from harness.store.rundir import result_frames

    cells, samples, events = result_frames(result)
    return summarize(cells, samples, events).loc[result.cell.cell_id]


def format_value(metric: str, value: float | None) -> str:
    """How a measured value reads in a failure message: the metric's unit's short form."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing (NaN)"
    return metric_unit(metric).format(value)


def settings_of(scenario: Scenario, cell: Cell | Mapping[str, Any]) -> dict[str, str]:
    """The values `where` tables are matched against: workload flags and axis values."""
    workload = scenario.descriptor
    if isinstance(cell, Cell):
        flags = dict(a[2:].split("=", 1) for a in cell.args if a.startswith("--") and "=" in a)
        return cell_settings(workload, flags, dict(cell.axes))
    # A cells.csv row: its flags are in `args` when present, else the scenario's fixed params.
    args = cell.get("args")
    if isinstance(args, str) and args.strip():
        words = json.loads(args) if args.lstrip().startswith("[") else args.split()
        flags = dict(a[2:].split("=", 1) for a in words if a.startswith("--") and "=" in a)
    else:
        flags = dict(scenario.full.params)
    return cell_settings(workload, flags, {k: axis_text(v) for k, v in cell.items() if k != "args"})


def _read(row: Mapping[str, Any] | Any, metric: str) -> float | None:
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
    return _OPS[op](left, right)


def check_cell(scenario: Scenario, cell: Cell | Mapping[str, Any], summary_row: Mapping[str, Any],
               cell_id: str | None = None) -> list[Failure]:
    """Per-cell expectations whose `where` selects this cell.

    `cell` is the Cell (or a mapping of its axis values, e.g. a cells.csv row) so that `where`
    can see axes and flags that a cell id leaves out.
    """
    cell_id = cell_id or (cell.cell_id if isinstance(cell, Cell) else str(cell.get("cell_id", "?")))
    settings = settings_of(scenario, cell)
    failures = []
    for expectation in scenario.expects:
        if expectation.relative or not matches(expectation.where, settings):
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
                   cells: Iterable[tuple[str, int, dict[str, str]]]) -> list[tuple[str, str | None]]:
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


def _cell_records(scenario: Scenario, cells: Any) -> list[tuple[str, int, dict[str, str]]]:
    """(cell_id, repeat, axis settings) from Cells or from a cells DataFrame (cells.csv)."""
    records = []
    if hasattr(cells, "to_dict"):  # a DataFrame: axis columns are the scenario's axes plus flags
        from harness.define.matrix import all_axes

        frame = cells[cells["scenario"] == scenario.name] if "scenario" in cells.columns else cells
        axis_columns = [c for c in all_axes() if c in frame.columns]
        for row in frame.to_dict("records"):
            axes = {c: axis_text(row[c]) for c in axis_columns}
            records.append((str(row["cell_id"]), int(row.get("repeat", 0)), settings_of(scenario, axes)))
        return records
    for cell in cells:
        if cell.scenario == scenario.name:
            records.append((cell.cell_id, cell.repeat, settings_of(scenario, cell)))
    return records


def relative_checks(scenario: Scenario, records: Iterable[tuple[str, int, dict[str, str]]],
                    summaries: Any, done: set | None = None) -> tuple[list[Failure], list[str]]:
    """`of` expectations over the pairs among the cells run so far; callable after every cell.

    `records` are (cell_id, repeat, settings) of this scenario's cells that ran (settings_of gives
    the settings); `summaries` maps a cell id to its summary row (a summary DataFrame indexed by
    cell_id, or a dict). A pair is compared once both summaries are there, and its key
    (expectation index, cell id, partner id) goes into `done` so a later call skips it. Returns
    (failures of the pairs compared now, notes on the selected cells whose partner is not among
    `records`): a driver reports the notes of its last call.
    """
    done = set() if done is None else done
    records = list(records)
    present = set(summaries.index) if hasattr(summaries, "index") else set(summaries)
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
            key = (expectation.index, cell_id, partner_id)
            if key in done or cell_id not in present or partner_id not in present:
                continue
            done.add(key)
            failure = compare_pair(expectation, cell_id, _row(summaries, cell_id), partner_id,
                                   _row(summaries, partner_id))
            if failure:
                failures.append(failure)
    return failures, unchecked


def _row(summaries: Any, cell_id: str) -> Any:
    return summaries.loc[cell_id] if hasattr(summaries, "loc") else summaries[cell_id]


def check_relative(scenario: Scenario, summaries: Any, cells: Any) -> tuple[list[Failure], list[str]]:
    """`of` expectations over every pair present in `summaries` (indexed by cell_id), all at once.

    `cells` is a cells DataFrame (cells.csv) or a list of Cells. Returns (failures, skipped):
    a check whose partner cell was not run is skipped with a note, not failed.
    """
    present = set(summaries.index) if summaries is not None else set()
    records = [r for r in _cell_records(scenario, cells) if r[0] in present]
    return relative_checks(scenario, records, summaries)


def compare_pair(expectation: Expectation, cell_id: str, row: Mapping[str, Any], partner_id: str,
                 partner_row: Mapping[str, Any]) -> Failure | None:
    measured = _read(row, expectation.metric)
    reference = _read(partner_row, expectation.metric)
    bound = None if reference is None else expectation.ratio * reference
    if _ok(expectation.op, measured, bound):
        return None
    metric = expectation.metric
    return Failure(cell_id, expectation,
                   f"{cell_id}: {metric} = {format_value(metric, measured)}, expected {expectation.op} "
                   f"{expectation.ratio:g} × {partner_id} ({format_value(metric, reference)})")
