"""Shared pieces of the real backend and runner tests: a cell maker and readers of a RunResult."""

from __future__ import annotations

from dataclasses import fields

from harness.define.axes import AXES, contributions
from harness.define.cell import Cell

CELL_FIELDS = {f.name for f in fields(Cell)}


def alloc_release(cell_id: str, *args: str, **kw) -> Cell:
    """A cell of the alloc-release workload; keywords naming a Cell field are that field, the others
    (memory="256MiB", madvdontneed="1") values of the axis they name."""
    values = {name: AXES[name].canonical(kw.pop(name)) for name in list(kw) if name not in CELL_FIELDS}
    kw.setdefault("timeout_s", 120.0)
    return Cell(cell_id=cell_id, scenario="test", workload="alloc-release", args=tuple(args), **kw,
                **contributions(values))


def series(result, source: str, metric: str) -> list[tuple[float, float]]:
    """[(t_s, value)] of one sampled metric, in time order."""
    return sorted(((t - result.t0_ns) / 1e9, v) for (t, s, m, v) in result.samples if s == source and m == metric)


def phases(result) -> dict[str, float]:
    """{phase name: t_s} from the telemetry's phase events."""
    return {name: (t - result.t0_ns) / 1e9 for (t, kind, name, _, _) in result.events if kind == "phase"}


def between(points, start: float, end: float) -> list[float]:
    return [v for (t, v) in points if start <= t < end]
