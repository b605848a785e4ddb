"""The kinds of figure a claim can declare (harness.analyse.claims.study.FigureSpec), and how each is
drawn from a run.

A kind says which of a spec's optional fields it needs and which it reads; `check_figures` turns
anything else (an unknown kind, a field the kind does not read, one it needs left out) into a
`StudyError`, so a figure a study declares is either drawn or refused, never left out unseen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from harness.analyse import derived, release
from harness.analyse import summary as analysis
from harness.analyse.claims import FigureSpec, Study, StudyError
from harness.define.axes import axis_text, order_key
from harness.define.metrics import PHASE_METRICS, SERIES, series_unit
from harness.present import plots


@dataclass(frozen=True)
class FigureInputs:
    """What a figure is drawn from: the run's cells, summary, events, and the run split by cell."""
    cells: pd.DataFrame
    summary: pd.DataFrame
    events: pd.DataFrame
    data: analysis.RunData

    def cells_of(self, scenario: str) -> pd.DataFrame:
        return scenario_cells(self.cells, scenario)


def scenario_cells(cells: pd.DataFrame, scenario: str) -> pd.DataFrame:
    if "scenario" not in cells.columns:
        return cells.iloc[0:0]
    return cells[cells["scenario"] == scenario].reset_index(drop=True)


def memory_limit(cells: pd.DataFrame) -> float | None:
    """The cells' memory limit when they share one (drawn as a line), else None."""
    if "memory_limit_bytes" not in cells.columns:
        return None
    limits = pd.to_numeric(cells["memory_limit_bytes"], errors="coerce").dropna().unique()
    return float(limits[0]) if len(limits) == 1 else None


def _selected(cells: pd.DataFrame, select: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    """The cells whose axes have the selected values; an axis the run lacks selects nothing out."""
    for column, value in select:
        if column in cells.columns and len(cells):
            cells = cells[cells[column].map(axis_text) == value]
    return cells


def series_name(key: tuple[str, str]) -> str:
    """A series' short name: that of the per-phase metric reading it ("RSS" for VmRSS), else its label."""
    names = [m.label for m in PHASE_METRICS.values() if m.reads[0] == key]
    return names[0] if names else SERIES[key].label


def _rss_over_time(spec: FigureSpec, run: FigureInputs) -> Figure:
    c = run.cells_of(spec.scenario)
    if spec.also:
        # Several scenarios in one figure: one panel per configuration, in Go version order.
        c = pd.concat([c] + [run.cells_of(s) for s in spec.also], ignore_index=True)
        if "go_version" in c.columns:
            c = c.iloc[sorted(range(len(c)), key=lambda i: order_key("go", axis_text(c["go_version"].iloc[i])))]
            c = c.reset_index(drop=True)
    source, metric = spec.series   # checked against SERIES when the study is built
    name = series_name(spec.series)
    return plots.rss_over_time(run.data, c, spec.title or f"{spec.scenario}: {name} over time",
                               memory_limit=memory_limit(c) if spec.limit else None, source=source, metric=metric,
                               ylabel=f"{name} ({series_unit(source, metric).plot_label})",
                               max_panels=spec.max_panels or 6, overlay=spec.overlay or None)


def _huge_pages(spec: FigureSpec, run: FigureInputs) -> Figure:
    """RSS (solid) and AnonHugePages of smaps_rollup (dashed) over time, the overlay's values (THP
    modes) sharing a panel: memory that a release took out of RSS and khugepaged put back shows as
    both rising again after the release, in huge pages."""
    c = run.cells_of(spec.scenario)
    return plots.rss_over_time(run.data, c, spec.title or f"{spec.scenario}: RSS and AnonHugePages over time",
                               source="proc", metric="vm_rss", ylabel="RSS, AnonHugePages (MiB)",
                               max_panels=spec.max_panels or 6, overlay=spec.overlay or None,
                               dashed=("smaps", "anon_huge_pages"))


def _memory_high(spec: FigureSpec, run: FigureInputs) -> Figure:
    """cgroup usage (memory.current) over time against each cell's memory.high (dotted) and memory.max
    (dashed, when the cells share one): a heap goal above memory.high holds usage at the line."""
    c = run.cells_of(spec.scenario)
    return plots.rss_over_time(run.data, c, spec.title or f"{spec.scenario}: cgroup usage against memory.high",
                               memory_limit=memory_limit(c), source="cgroup", metric="usage",
                               ylabel="cgroup usage (MiB)", max_panels=spec.max_panels or 6,
                               overlay=spec.overlay or None, level="memory_high_bytes")


def _breakdown(spec: FigureSpec, run: FigureInputs) -> Figure:
    c = _selected(run.cells_of(spec.scenario), spec.select)
    if "repeat" in c.columns and (c["repeat"].map(axis_text) == "0").any():
        c = c[c["repeat"].map(axis_text) == "0"]   # one repeat per configuration: the panels stay readable
    return plots.memory_breakdown(run.data, c, spec.title or f"{spec.scenario}: where the memory is",
                                  memory_limit=memory_limit(c) if spec.limit else None,
                                  max_panels=spec.max_panels or 4)


def _bars(spec: FigureSpec, run: FigureInputs) -> Figure:
    c = run.cells_of(spec.scenario)
    metrics = list(spec.metrics)
    table = analysis.by_config(run.summary, c, metrics) if len(c) else pd.DataFrame()
    hue = spec.hue if spec.hue and spec.hue in table.columns and table[spec.hue].nunique() > 1 else (
        "go_version" if "go_version" in table.columns and table["go_version"].nunique() > 1 else None)
    limit = memory_limit(c)
    title = spec.title or f"{spec.scenario}: by {spec.x}"
    if limit:
        title += f" (container limit {plots.mib_text(limit)})"
    return plots.summary_bars(table, metrics, x=spec.x, hue=hue, title=title, memory_limit=limit)


def _retention(spec: FigureSpec, run: FigureInputs) -> Figure:
    """What the runtime kept after a release against the goal its scavenger works to (C7's reading):
    per cell, HeapSys − HeapReleased, the retention goal and 95% of GOMEMLIMIT (release.retention)."""
    c = run.cells_of(spec.scenario)
    limits = (pd.to_numeric(c["gomemlimit_bytes"], errors="coerce") if "gomemlimit_bytes" in c.columns
              else pd.Series(float("nan"), index=c.index))
    rows = []
    for (_, cell), limit in zip(c.iterrows(), limits.tolist(), strict=True):
        kept = release.retention(run.data, str(cell["cell_id"]), float("nan") if pd.isna(limit) else float(limit))
        if kept is None:
            continue
        rows.append({"go_version": axis_text(cell.get("go_version", "")), "x": axis_text(cell.get(spec.x, "")),
                     "hue": f"{spec.hue}={axis_text(cell.get(spec.hue, ''))}" if spec.hue else "",
                     "retained": kept.retained, "goal": kept.goal, "limit_goal": kept.limit_goal})
    return plots.retention_bars(pd.DataFrame(rows), spec.x, spec.title or f"{spec.scenario}: retained heap")


def _sizes(spec: FigureSpec, run: FigureInputs) -> Figure:
    c = run.cells_of(spec.scenario)
    rows = derived.sizes_table(run.events, c["cell_id"].astype(str))
    hue = spec.hue or "hue"
    values = c[spec.hue] if spec.hue in c.columns else pd.Series("", index=c.index)
    rows[hue] = rows["cell_id"].map(dict(zip(c["cell_id"].astype(str), values, strict=False)))
    return plots.sizes_throughput(rows, spec.title or f"{spec.scenario}: throughput by object size", hue=hue,
                                  markers=spec.markers)


@dataclass(frozen=True)
class FigureKind:
    name: str
    draw: Callable[[FigureSpec, FigureInputs], Figure]
    needs: tuple[str, ...] = ()    # optional fields a spec of this kind must set
    reads: tuple[str, ...] = ()    # optional fields it may set (needs included)


FIGURE_KINDS: dict[str, FigureKind] = {k.name: k for k in (
    FigureKind("rss-over-time", _rss_over_time, reads=("series", "overlay", "max_panels", "also", "limit")),
    FigureKind("breakdown", _breakdown, reads=("select", "max_panels", "limit")),
    FigureKind("bars", _bars, needs=("metrics", "x"), reads=("metrics", "x", "hue")),
    FigureKind("sizes", _sizes, reads=("hue", "markers")),
    FigureKind("retention", _retention, needs=("x",), reads=("x", "hue")),
    FigureKind("huge-pages", _huge_pages, needs=("overlay",), reads=("overlay", "max_panels")),
    FigureKind("memory-high", _memory_high, reads=("overlay", "max_panels")),
)}


def figure_problems(study: Study) -> list[str]:
    """Why each figure the study's claims declare cannot be drawn, one line each."""
    errors = []
    for claim, spec in ((c, spec) for c in study.claims for spec in c.figures):
        where = f"study {study.name}, claim {claim.id}: figure {spec.name}"
        kind = FIGURE_KINDS.get(spec.kind)
        if kind is None:
            errors.append(f"{where}: unknown kind {spec.kind!r} (valid: {', '.join(FIGURE_KINDS)})")
            continue
        given = spec.given()
        errors += [f"{where}: a {kind.name} figure needs {name}" for name in kind.needs if name not in given]
        errors += [f"{where}: a {kind.name} figure does not read {name} (it reads: {', '.join(kind.reads) or 'none'})"
                   for name in sorted(given) if name not in kind.reads]
    return errors


def check_figures(study: Study) -> None:
    """Raise StudyError when a figure the study declares cannot be drawn."""
    errors = figure_problems(study)
    if errors:
        raise StudyError(errors)


def draw_figure(spec: FigureSpec, run: FigureInputs) -> Figure:
    return FIGURE_KINDS[spec.kind].draw(spec, run)
