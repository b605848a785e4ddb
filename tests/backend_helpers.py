"""Shared pieces of the real backend and runner tests: a cell maker and readers of a RunResult."""

from __future__ import annotations

from harness.define.cell import Cell

def alloc_release(cell_id: str, *args: str, **kw) -> Cell:
    kw.setdefault("godebug_extra", ())
    kw.setdefault("timeout_s", 120.0)
    return Cell(cell_id=cell_id, scenario="test", workload="alloc-release", args=tuple(args), **kw)


def series(result, source: str, metric: str) -> list[tuple[float, float]]:
    """[(t_s, value)] of one sampled metric, in time order."""
    return sorted(((t - result.t0_ns) / 1e9, v) for (t, s, m, v) in result.samples if s == source and m == metric)


def phases(result) -> dict[str, float]:
    """{phase name: t_s} from the telemetry's phase events."""
    return {name: (t - result.t0_ns) / 1e9 for (t, kind, name, _, _) in result.events if kind == "phase"}


def between(points, start: float, end: float) -> list[float]:
    return [v for (t, v) in points if start <= t < end]
