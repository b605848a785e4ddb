"""Quantities some claims need beyond summary.csv's columns, computed from a run's raw events and samples.

They are not summary metrics (they would add summary.csv columns or are tables, not one number
per cell); the claims and the report read them from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from harness.analyse.summary import EVENT_COLUMNS, RunData, parse_detail
from harness.define.metrics import EventKind, Source, slope, time_weighted_mean
from harness.define.units import UnitError, parse_size

NAN = float("nan")
SIZES_COLUMNS = ("cell_id", "size", "ops", "ops_per_s", "tiny_allocs", "small_allocs", "large_allocs")


def _events_of(events: pd.DataFrame | None, kind: EventKind, cell_ids: Iterable[str]) -> pd.DataFrame:
    if events is None or not len(events):
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    wanted = {str(c) for c in cell_ids}
    return events[(events["kind"].astype(str) == kind) & events["cell_id"].astype(str).isin(wanted)]


def _size(value: object) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(parse_size(str(value)))
    except (UnitError, ValueError, TypeError):
        return NAN


def sizes_table(events: pd.DataFrame | None, cell_ids: Iterable[str]) -> pd.DataFrame:
    """One row per `sizes` event of the given cells: the object size, work done and the runtime's
    tiny/small/large allocation counters (NaN where the Go version has none)."""
    rows = []
    ev = _events_of(events, "sizes", cell_ids)
    for cell_id, name, value, detail in zip(ev["cell_id"], ev["name"], ev["value"], ev["detail"], strict=True):
        d = parse_detail(detail)
        rows.append({"cell_id": str(cell_id), "size": _size(d.get("size", name)),
                     "ops": float(d.get("ops", NAN)), "ops_per_s": float(d.get("ops_per_s", value)),
                     **{k: float(d.get(k, NAN)) for k in ("tiny_allocs", "small_allocs", "large_allocs")}})
    return pd.DataFrame(rows, columns=list(SIZES_COLUMNS))


def syscall_totals(events: pd.DataFrame | None, cell_ids: Iterable[str]) -> dict[str, tuple[int, float]]:
    """System call name -> (calls, bytes) over the traced `syscall` events of the given cells."""
    ev = _events_of(events, "syscall", cell_ids)
    names = ev["name"].astype(str)
    return {name: (len(g), float(pd.to_numeric(g["value"], errors="coerce").sum()))
            for name, g in ev.groupby(names, sort=True)}


def phase_mean(run: RunData, cell_id: str, source: Source, metric: str, phase: str) -> float:
    """Time-weighted mean of a series over the last occurrence of a phase; NaN if it never ran."""
    start, end = run.phase_span(cell_id, phase)
    if math.isnan(start):
        return NAN
    s = run.series(cell_id, source, metric)
    end = math.inf if math.isnan(end) else end
    return time_weighted_mean(s[(s.index >= start) & (s.index <= end)])


def second_half_slope(run: RunData, cell_id: str, source: Source, metric: str, phase: str) -> float:
    """Least-squares slope (units/s) over the second half of a phase's last occurrence.

    The first half is where a workload settles (a cache filling up); an open-ended phase ends
    at the last reading.
    """
    start, end = run.phase_span(cell_id, phase)
    if math.isnan(start):
        return NAN
    s = run.series(cell_id, source, metric)
    if math.isnan(end):
        end = float(s.index.max()) if len(s) else NAN
    return slope(s, (start + end) / 2, end)


def phase_syscalls(run: RunData, events: pd.DataFrame | None, cell_id: str,
                   phase: str) -> dict[str, tuple[int, float]]:
    """System call name -> (calls, bytes) over the traced `syscall` events of one cell within the
    last occurrence of a phase (an open-ended phase runs to the cell's end); {} if it never ran."""
    start, end = run.phase_span(cell_id, phase)
    if math.isnan(start):
        return {}
    ev = _events_of(events, "syscall", [cell_id])
    t = pd.to_numeric(ev["t_s"], errors="coerce")
    ev = ev[(t >= start) & (t <= (math.inf if math.isnan(end) else end))]
    return {name: (len(g), float(pd.to_numeric(g["value"], errors="coerce").sum()))
            for name, g in ev.groupby(ev["name"].astype(str), sort=True)}


def live_heap(events: pd.DataFrame | None, cell_ids: Iterable[str]) -> dict[str, float]:
    """cell_id -> median heap the GC marked live (gctrace's third heap number) over the cell's
    automatic GC cycles, whose end state is the program's own live set rather than a forced GC's;
    cells without gctrace events are left out."""
    out: dict[str, float] = {}
    ev = _events_of(events, "gc", cell_ids)
    for cell_id, g in ev.groupby(ev["cell_id"].astype(str)):
        details = [parse_detail(d) for d in g["detail"]]
        live = [float(d["heap_live_bytes"]) for d in details if "heap_live_bytes" in d and not d.get("forced")]
        if live:
            out[cell_id] = float(np.median(live))
    return out
