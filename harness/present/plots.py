"""A run's data → matplotlib Figures. No file reading and no statistics beyond selecting and pivoting.

The only module that imports matplotlib, always with the Agg backend, so a headless run draws.
Time series are read through a `RunData` (harness.analyse.summary.split_by_cell: the run split by cell
once): a figure looks up the few
series it draws instead of filtering every sample of the run. Axis scales and labels come from the
unit and series registries (harness.define.units, harness.define.metrics).
"""

from __future__ import annotations

import io
import json
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from PIL import Image  # matplotlib's own PNG writer

from harness.analyse.summary import RunData, config_label
from harness.define.axes import axis_display, axis_text, order_key
from harness.define.metrics import SERIES, Source, metric_unit, series_unit
from harness.define.units import MiB

WIDTH_IN = 9.0  # at dpi 100: ~900 px wide

STYLE: dict[str, Any] = {
    "figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10, "axes.grid": True,
    "grid.alpha": 0.3, "legend.fontsize": 8, "lines.linewidth": 1.4, "font.family": "DejaVu Sans",
    "svg.hashsalt": "goreclaim", "path.simplify": True,
}
cast(Any, plt.rcParams).update(STYLE)  # its keys are typed as literals; these are all valid

BREAKDOWN = tuple(SERIES[key] for key in (  # the series memory_breakdown draws, labelled as declared
    ("proc", "vm_rss"),
    ("runtime", "heap_inuse"),
    ("runtime", "heap_idle"),
    ("runtime", "heap_released"),
    ("smaps", "lazyfree"),
    ("cgroup", "usage"),
))
# What a program's figure draws: what the process holds, what a dashboard shows, what the kernel counts.
PROGRAM_SERIES = tuple(SERIES[key] for key in (("proc", "vm_rss"), ("cgroup", "working_set"), ("cgroup", "usage")))


def _tight(fig: Figure) -> None:
    """tight_layout over what can spill out of an axes (tick labels, titles, axis labels, annotations
    beside a point). Texts and legends placed inside an axes (phase names, "n/a") cannot, and
    measuring each of them took a seventh of the report's drawing time."""
    for ax in fig.axes:
        for text in ax.texts:
            if not isinstance(text, Annotation):
                text.set_in_layout(False)
        legend = ax.get_legend()
        if legend is not None:
            legend.set_in_layout(False)
    fig.tight_layout()


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, closed afterwards. Drawn once on its own canvas and encoded as RGB
    (the background is opaque), which costs a fifth less than savefig; no version stamp in the
    file, so the same figure gives the same bytes on any install."""
    try:
        fig.canvas.draw()
        image = Image.fromarray(np.asarray(cast(FigureCanvasAgg, fig.canvas).buffer_rgba())).convert("RGB")
        png = io.BytesIO()
        image.save(png, format="png", dpi=(fig.dpi, fig.dpi))
        return png.getvalue()
    finally:
        plt.close(fig)


def _labels(cells: pd.DataFrame) -> dict[str, str]:
    cells = cells.reset_index(drop=True)
    labels = config_label(cells)
    if "repeat" in cells.columns and cells["repeat"].map(axis_text).nunique() > 1:
        labels = labels + cells["repeat"].map(lambda r: f" r{axis_text(r)}")
    return dict(zip(cells["cell_id"].astype(str), labels, strict=False))


def _phase_lines(ax, data: RunData, cell_id: str, label: bool = True) -> None:
    """Phase boundaries as dotted lines, named. Call once the panel's x range is final (after every
    panel sharing it is drawn): names closer than a 25th of it would print on top of each other, so
    of a cluster of boundaries the last is named (the phase the window is then in)."""
    phases = data.phases_of(cell_id)
    lo, hi = ax.get_xlim()
    min_gap = (hi - lo) / 25
    next_named = np.inf
    for name, start, _ in reversed(phases):
        ax.axvline(start, color="0.6", linestyle=":", linewidth=0.8)
        if label and next_named - start >= min_gap:
            ax.text(start, 1.0, f" {name}", transform=ax.get_xaxis_transform(), rotation=90,
                    va="top", ha="left", fontsize=7, color="0.35")
            next_named = start


def _gc_marks(ax, data: RunData, cell_id: str) -> None:
    """The cell's GCs from its gctrace lines: a forced one (runtime.GC, FreeOSMemory) as a line, the
    others (heap goal, periodic) as ticks along the bottom; nothing without gctrace."""
    gcs = data.events(cell_id, "gc")
    if gcs.empty:
        return
    forced = np.array([bool(json.loads(d).get("forced")) if isinstance(d, str) and d.startswith("{") else False
                       for d in gcs["detail"]])
    t = gcs["t_s"].astype(float).to_numpy()
    for i, at in enumerate(t[forced]):
        ax.axvline(at, color="tab:purple", linestyle="-", linewidth=0.9, alpha=0.7,
                   label="runtime.GC() or FreeOSMemory (gctrace: forced)" if i == 0 else None)
    if (~forced).any():
        ax.plot(t[~forced], np.full((~forced).sum(), 0.02), "|", color="tab:green", markersize=9,
                transform=ax.get_xaxis_transform(),
                label="GC the runtime started: heap goal, or the periodic GC 2 min after the last")


def _kill_mark(ax, s: pd.Series, scale: float) -> None:
    """The last reading of an OOM-killed cell's series, marked."""
    if len(s):
        ax.plot([s.index[-1]], [s.iloc[-1] / scale], "X", color="tab:red", markersize=9, label="OOM kill")


def _killed(cell: pd.Series) -> bool:
    return axis_text(cell.get("oom_killed", False)).lower() in ("true", "1", "1.0")


LEGEND_ROW_CHARS = 150


def _figure_legend(fig: Figure) -> None:
    """One legend for the figure, below the panels (outside the data), each label once; run after
    _tight, it lifts the panels to make room."""
    seen: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label and not label.startswith("_"):
                seen.setdefault(label, handle)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    if not seen:
        return
    # As many columns as the longest label lets fit across the figure (about 150 characters at this size).
    ncol = max(1, min(len(seen), 4, LEGEND_ROW_CHARS // (max(len(label) for label in seen) + 6)))
    rows = -(-len(seen) // ncol)
    # The figure grows by the legend's height and the panels keep theirs: lifting the bottom inside a
    # fixed height left no room for panels once a run had many configurations (bottom above top).
    room_in = 0.2 * rows + 0.1
    height = fig.get_figheight()
    pars = fig.subplotpars
    fig.set_figheight(height + room_in)
    fig.subplots_adjust(bottom=(pars.bottom * height + room_in) / (height + room_in),
                        top=(pars.top * height + room_in) / (height + room_in))
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, frameon=False,
               bbox_to_anchor=(0.5, 0.0), fontsize=7)


def mib_text(value: float) -> str:
    return f"{value / MiB:.0f} MiB"


def _limit_line(ax, memory_limit) -> None:
    if memory_limit and memory_limit == memory_limit:
        ax.axhline(memory_limit / MiB, color="black", linestyle="--", linewidth=1.0,
                   label=f"memory limit {memory_limit / MiB:.0f} MiB")


LEVEL_NAMES = {"memory_high_bytes": "memory.high", "gomemlimit_bytes": "GOMEMLIMIT"}


def _level_lines(ax, cells: pd.DataFrame, column: str, scale: float = MiB) -> None:
    """A cells column of bytes (memory.high, GOMEMLIMIT) as a dotted line per value the cells have."""
    if column not in cells.columns:
        return
    for value in pd.to_numeric(cells[column], errors="coerce").dropna().unique():
        ax.axhline(value / scale, color="tab:orange", linestyle=":", linewidth=1.2,
                   label=f"{LEVEL_NAMES.get(column, column)} {value / MiB:.0f} MiB")


def _empty(fig: Figure, ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this run", ha="center", va="center", transform=ax.transAxes)


def rss_over_time(data: RunData, cells: pd.DataFrame, title: str,
                  memory_limit: float | None = None, source: Source = "proc", metric: str = "vm_rss",
                  ylabel: str = "RSS (MiB)", max_panels: int = 6, overlay: str | None = None,
                  dashed: tuple[Source, str] | None = None, level: str | None = None) -> Figure:
    """One panel per configuration (repeats overlaid), phase boundaries named, the limit drawn.

    With `overlay`, that axis's values share a panel instead of having one each (e.g. a GODEBUG
    setting's values in one panel per Go version), so the figure shows the contrast a claim reads.
    `dashed`: a second series of the same unit, drawn dashed in each cell's colour (AnonHugePages
    beside RSS); `level`: a cells column of bytes drawn as a dotted line per panel (memory.high)."""
    scale = series_unit(source, metric).plot_scale
    cells = cells.reset_index(drop=True)
    overlay = overlay if overlay and overlay in cells.columns else None
    panel_axes = cells.drop(columns=[overlay]) if overlay else cells
    labels = config_label(panel_axes) if len(cells) else pd.Series(dtype=object)
    groups = list(dict.fromkeys(labels)) or ["(no cells)"]
    groups = groups[:max_panels]
    ncols = 1 if len(groups) == 1 else 2
    nrows = (len(groups) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, 2.6 * nrows + 0.6), squeeze=False,
                             sharex=True, sharey=True)
    phased: list[tuple[Any, str]] = []
    for i, group in enumerate(groups):
        ax = axes[i // ncols][i % ncols]
        members = cells[labels == group] if len(cells) else cells
        drawn = False
        for _, cell in members.iterrows():
            s = data.series(str(cell["cell_id"]), source, metric)
            if s.empty:
                continue
            rep = axis_text(cell.get("repeat", 0))
            label = f"repeat {rep}"
            if overlay:
                label = f"{overlay}={axis_display(overlay, cell[overlay])}" + (f", r{rep}" if rep != "0" else "")
            line, = ax.plot(s.index, s.to_numpy() / scale, label=label)
            if dashed is not None:
                d = data.series(str(cell["cell_id"]), *dashed)
                if not d.empty:
                    ax.plot(d.index, d.to_numpy() / scale, linestyle="--", color=line.get_color(),
                            label=f"{SERIES[dashed].label} (dashed)")
            if _killed(cell):
                _kill_mark(ax, s, scale)
            drawn = True
        if len(members):
            phased.append((ax, str(members.iloc[0]["cell_id"])))
            _gc_marks(ax, data, str(members.iloc[0]["cell_id"]))
        _limit_line(ax, memory_limit)
        if level:
            _level_lines(ax, members, level, scale)
        ax.set_title(group, fontsize=9)
        ax.set_ylabel(ylabel)
        if not drawn:
            _empty(fig, ax, metric)
    for j in range(len(groups), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    for ax, cell_id in phased:
        _phase_lines(ax, data, cell_id)
    for ax in axes[-1]:
        ax.set_xlabel("time since start (s)")
    for i in range(len(groups), nrows * ncols):   # the panel above an empty slot shows its x axis
        if i >= ncols:
            axes[i // ncols - 1][i % ncols].set_xlabel("time since start (s)")
            axes[i // ncols - 1][i % ncols].xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(title)
    _tight(fig)
    _figure_legend(fig)
    return fig


def gctrace_heap(data: RunData, cell_id: str) -> dict[str, pd.Series]:
    """The heap as a program's gctrace lines tell it: live heap after each GC and the next goal."""
    gcs = data.events(cell_id, "gc")
    out: dict[str, pd.Series] = {}
    if gcs.empty:
        return out
    details = [json.loads(d) if isinstance(d, str) and d.startswith("{") else {} for d in gcs["detail"]]
    t = gcs["t_s"].astype(float).to_numpy()
    for key, label in (("heap_live_bytes", "live heap (gctrace)"), ("goal_bytes", "heap goal (gctrace)")):
        values = [float(d.get(key, np.nan)) for d in details]
        out[label] = pd.Series(values, index=t).dropna()
    return out


def memory_breakdown(data: RunData, cells: pd.DataFrame, title: str,
                     memory_limit: float | None = None, max_panels: int = 4, series=BREAKDOWN,
                     gctrace: bool = False) -> Figure:
    """Per cell: VmRSS against the runtime's heap in use/idle/released, smaps LazyFree and cgroup usage
    (or the declared `series` given; with `gctrace`, also the heap from gctrace lines), the memory
    limit, the cell's GOMEMLIMIT where it has one, its GCs and an OOM kill."""
    cells = cells.reset_index(drop=True).head(max_panels)
    labels = _labels(cells)
    n = max(len(cells), 1)
    fig, axes = plt.subplots(n, 1, figsize=(WIDTH_IN, 2.8 * n + 0.6), squeeze=False, sharex=True)
    phased: list[tuple[Any, str]] = []
    for i in range(n):
        ax = axes[i][0]
        if i >= len(cells):
            _empty(fig, ax, "cells")
            continue
        cell_id = str(cells.iloc[i]["cell_id"])
        for declared in series:
            source = declared.source
            s = data.series(cell_id, source, declared.metric)
            if not s.empty:
                style = "-" if source == "proc" else ("--" if source == "runtime" else "-.")
                ax.plot(s.index, s.to_numpy() / MiB, style, label=declared.label,
                        drawstyle="steps-post" if source == "smaps" else "default")
        for label, s in (gctrace_heap(data, cell_id) if gctrace else {}).items():
            if not s.empty:
                ax.plot(s.index, s.to_numpy() / MiB, ":", label=label, drawstyle="steps-post")
        if _killed(cells.iloc[i]):
            _kill_mark(ax, data.series(cell_id, "proc", "vm_rss"), MiB)
        phased.append((ax, cell_id))
        _gc_marks(ax, data, cell_id)
        _limit_line(ax, memory_limit)
        _level_lines(ax, cells.iloc[[i]], "gomemlimit_bytes")
        ax.set_title(labels.get(cell_id, cell_id), fontsize=9)
        ax.set_ylabel("memory (MiB)")
        if not ax.get_legend_handles_labels()[0]:
            _empty(fig, ax, "memory samples")
    for ax, cell_id in phased:
        _phase_lines(ax, data, cell_id)
    axes[-1][0].set_xlabel("time since start (s)")
    fig.suptitle(title)
    _tight(fig)
    _figure_legend(fig)
    return fig


def summary_bars(by_config: pd.DataFrame, metric: str | list[str], x: str, hue: str | None = None,
                 title: str = "", order: list[str] | None = None, memory_limit: float | None = None) -> Figure:
    """Bars of `<metric>_median` per x (grouped by hue) with min–max whiskers; one panel per metric;
    the memory limit drawn on a panel in bytes whose bars reach at least LIMIT_SHOWN of it."""
    metrics = [metric] if isinstance(metric, str) else list(metric)
    ncols = min(len(metrics), 2)
    nrows = (len(metrics) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, 3.0 * nrows + 0.6), squeeze=False)
    data = by_config.copy()
    xs = order or (list(dict.fromkeys(data[x].map(axis_text))) if x in data.columns and len(data) else [])
    data["_x"] = data[x].map(axis_text) if x in data.columns else ""
    data["_hue"] = (data[hue].map(lambda v: f"{hue}={axis_display(hue, v)}")
                    if hue and hue in data.columns else "")
    if data.duplicated(["_x", "_hue"]).any() and "config" in data.columns:
        # Other axes vary too (e.g. one added with --matrix): one bar per configuration, so no
        # two configurations are drawn as one.
        data["_hue"] = data["config"].map(
            lambda c: ", ".join(p for p in str(c).split(", ") if not p.startswith(f"{x}=")))
    hues = list(dict.fromkeys(data["_hue"])) if len(data) else [""]
    width = 0.8 / max(len(hues), 1)
    for k, m in enumerate(metrics):
        ax = axes[k // ncols][k % ncols]
        unit = metric_unit(m)
        scale = unit.plot_scale
        if f"{m}_median" not in data.columns or not len(xs):
            _empty(fig, ax, m)
        else:
            for j, h in enumerate(hues):
                sub = data[data["_hue"] == h].drop_duplicates("_x").set_index("_x").reindex(xs)
                med = sub[f"{m}_median"] / scale
                lo = (sub[f"{m}_median"] - sub[f"{m}_min"]) / scale
                hi = (sub[f"{m}_max"] - sub[f"{m}_median"]) / scale
                pos = [i + (j - (len(hues) - 1) / 2) * width for i in range(len(xs))]
                ax.bar(pos, med.fillna(0), width=width, yerr=[lo.fillna(0), hi.fillna(0)], capsize=3,
                       label=h or None)
            ax.set_xticks(range(len(xs)))
            ax.set_xticklabels([axis_display(x, v) for v in xs])
            top = pd.to_numeric(data[f"{m}_max"], errors="coerce").max()
            if unit.name == "bytes" and memory_limit and top >= LIMIT_SHOWN * memory_limit:
                _limit_line(ax, memory_limit)
        ax.set_xlabel(x)
        ax.set_ylabel(f"{m} ({unit.plot_label})")
        ax.set_title(m)
    for j in range(len(metrics), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle((title or ", ".join(metrics) + f" by {x}") + "\nbars: median over repeats; whiskers: min–max")
    _tight(fig)
    _figure_legend(fig)
    return fig


# A memory limit far above every bar would squash them: drawn only where the bars reach this share of it.
LIMIT_SHOWN = 0.4


def retention_bars(table: pd.DataFrame, x: str, title: str) -> Figure:
    """One panel per Go version: bars of the heap the runtime kept (HeapSys − HeapReleased, median over
    repeats) per x value and hue, each with its retention goal and, where a limit was set, 95% of
    it drawn as marks across the bar."""
    versions = sorted(set(table["go_version"]), key=lambda v: order_key("go", v)) if len(table) else [""]
    ncols = min(len(versions), 3)
    fig, axes = plt.subplots(1, ncols, figsize=(WIDTH_IN, 3.6), squeeze=False, sharey=True)
    for k, go in enumerate(versions[:ncols]):
        ax = axes[0][k]
        sub = table[table["go_version"] == go] if len(table) else table
        if sub.empty:
            _empty(fig, ax, "retained heap readings")
            continue
        pooled = sub.groupby(["x", "hue"], sort=False).median(numeric_only=True).reset_index()
        xs = list(dict.fromkeys(pooled["x"]))
        hues = list(dict.fromkeys(pooled["hue"]))
        width = 0.8 / max(len(hues), 1)
        for j, h in enumerate(hues):
            part = pooled[pooled["hue"] == h].set_index("x").reindex(xs)
            pos = np.array([i + (j - (len(hues) - 1) / 2) * width for i in range(len(xs))])
            ax.bar(pos, part["retained"].fillna(0) / MiB, width=width, label=h or "retained")
            ax.plot(pos, part["goal"] / MiB, "_", color="black", markersize=18, markeredgewidth=2,
                    label="retention goal: 1.1 × heap in use × goal ratio")
            ax.plot(pos, part["limit_goal"] / MiB, "_", color="tab:red", markersize=18, markeredgewidth=2,
                    label="95% of GOMEMLIMIT")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels(xs)
        ax.set_xlabel(x)
        ax.set_title(f"Go {go}", fontsize=9)
    axes[0][0].set_ylabel("heap kept, HeapSys − HeapReleased (MiB)")
    fig.suptitle(title)
    _tight(fig)
    _figure_legend(fig)
    return fig


def sizes_throughput(sizes: pd.DataFrame, title: str, hue: str,
                     markers: tuple[tuple[float, str], ...] = ()) -> Figure:
    """Throughput per allocation size (log x), one line per value of the `hue` column, the `markers`
    (size, label) drawn as vertical lines.

    `sizes`: rows (size [bytes], hue, ops_per_s, tiny_allocs, small_allocs, large_allocs).
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH_IN, 6.0), sharex=True)
    if sizes.empty:
        _empty(fig, top, "sizes events")
    for value, g in sizes.groupby(sizes[hue].map(axis_text), sort=True):
        g = g.sort_values("size")
        top.plot(g["size"], g["ops_per_s"] / 1e6, marker="o", label=f"{hue}={value}")
        total = g[["tiny_allocs", "small_allocs", "large_allocs"]].sum(axis=1).where(lambda v: v > 0)
        for col, style in (("tiny_allocs", "-"), ("large_allocs", "--")):
            bottom.plot(g["size"], 100 * g[col] / total, style, marker=".",
                        label=f"{col.split('_')[0]} share, {hue}={value}")
    for ax in (top, bottom):
        ax.set_xscale("log", base=2)
        for edge, name in markers:
            ax.axvline(edge, color="tab:red", linestyle=":", linewidth=1)
            ax.text(edge, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="top", fontsize=7, color="tab:red")
    top.set_ylabel("throughput (M allocs/s)")
    bottom.set_ylabel("share of allocations (%)")
    bottom.set_xlabel("object size (bytes)")
    fig.suptitle(title)
    _tight(fig)
    _figure_legend(fig)   # below the panels: a legend inside covered the points
    return fig


def tool_views(table: pd.DataFrame, tools: list[str], title: str, max_rows: int = 8) -> Figure:
    """Horizontal bars: for each (configuration, phase) row, the MiB each tool would have shown."""
    table = table.head(max_rows)
    n = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.2 + 0.12 * len(tools) * n + 0.8))
    if table.empty:  # e.g. every cell OOM-killed before a phase ended
        _empty(fig, ax, "per-phase readings")
        fig.suptitle(title)
        return fig
    height = 0.8 / max(len(tools), 1)
    labels = [f"{_setting_label(str(r.config))}\nGo {r.go_version}, end of {r.phase}"
              for r in table.itertuples(index=False)]
    for j, tool in enumerate(tools):
        pos = [i + (j - (len(tools) - 1) / 2) * height for i in range(len(table))]
        # tab20: a colour of its own for each of more than ten tools (the default cycle repeats after ten).
        ax.barh(pos, table[tool].fillna(0) / MiB, height=height, label=tool, color=plt.get_cmap("tab20")(j % 20))
    ax.set_yticks(range(len(table)))
    ax.set_yticklabels(labels, fontsize=7)
    for i in range(1, len(table)):   # a rule between configurations, so each group reads as one
        ax.axhline(i - 0.5, color="0.85", linewidth=0.6)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlabel("what the tool shows (MiB)")
    fig.suptitle(title)
    _tight(fig)
    _figure_legend(fig)
    return fig


def _setting_label(config: str) -> str:
    """A configuration as the settings it varies: no Go version (said apart) and no resolved byte
    columns (memory_limit_bytes repeats memory)."""
    parts = [p for p in _without_go(config).split(", ") if not p.split("=", 1)[0].endswith("_bytes")]
    return ", ".join(parts) or "default"


# Twenty colours, then the same twenty hatched: the one legend below the panels names every
# configuration of every panel (over 20 in a reproduce run), so no two may look alike.
CONFIG_HATCHES = ("", "///", "...", "xxx")


def _config_style(index: int) -> dict[str, Any]:
    colour = plt.get_cmap("tab20")(index % 20)
    hatch = CONFIG_HATCHES[(index // 20) % len(CONFIG_HATCHES)]
    return {"color": colour, "hatch": hatch, "edgecolor": "0.25" if hatch else colour}


def by_go_version(panels: list[tuple[str, pd.DataFrame, str]], title: str) -> Figure:
    """One panel per (title, by_config table, metric): the metric's median per Go version (x), one
    bar per configuration, min–max whiskers."""
    n = max(len(panels), 1)
    ncols = 1 if n == 1 else 2
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, 3.0 * nrows + 0.6), squeeze=False)
    # One colour per configuration across panels, so the one legend below them reads for every panel.
    every_config = list(dict.fromkeys(c for _, table, _ in panels for c in table["config"].map(_without_go)))
    for k, (panel_title, table, metric) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        unit = metric_unit(metric)
        versions = sorted(set(table["go_version"].map(axis_text)), key=lambda v: order_key("go", v))
        configs = list(dict.fromkeys(table["config"].map(_without_go)))
        width = 0.8 / max(len(configs), 1)
        for j, config in enumerate(configs):
            sub = table[table["config"].map(_without_go) == config]
            sub = (sub.assign(_v=sub["go_version"].map(axis_text)).drop_duplicates("_v").set_index("_v")
                   .reindex(versions))
            med = sub[f"{metric}_median"] / unit.plot_scale
            err = [((sub[f"{metric}_median"] - sub[f"{metric}_min"]) / unit.plot_scale).fillna(0),
                   ((sub[f"{metric}_max"] - sub[f"{metric}_median"]) / unit.plot_scale).fillna(0)]
            pos = [i + (j - (len(configs) - 1) / 2) * width for i in range(len(versions))]
            ax.bar(pos, med.fillna(0), width=width, yerr=err, capsize=2, label=config,
                   **_config_style(every_config.index(config)))
            for x, value in zip(pos, med, strict=False):  # no reading (e.g. RSS never fell): say so, not a zero bar
                if value != value:
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90, color="0.4")
        ax.set_xticks(range(len(versions)))
        ax.set_xticklabels(versions, rotation=45, fontsize=7)
        ax.set_ylabel(f"{metric} ({unit.plot_label})")
        ax.set_xlabel("Go version")
        ax.set_title(panel_title, fontsize=9)
    for j in range(max(len(panels), 1), nrows * ncols):   # the one empty panel stays, to say why
        axes[j // ncols][j % ncols].set_visible(False)
    if not panels:
        _empty(fig, axes[0][0], "claim run on several Go versions")
    fig.suptitle(title)
    _tight(fig)
    if len(every_config) > 1:
        _figure_legend(fig)   # below the panels (whiskers: min–max over repeats), not over the bars
    return fig


def _without_go(label: str) -> str:
    parts = [p for p in str(label).split(", ") if not p.startswith(("go=", "go_version="))]
    return ", ".join(parts) or "default"


# Class colours of the advice figure, most severe first (harness.analyse.advice.CLASSES).
CLASS_COLOURS = {"failed": "0.45", "oom_killed": "tab:red", "death_spiral": "tab:purple", "throttled": "tab:brown",
                 "over_headroom": "tab:orange", "healthy": "tab:green"}


def advice_front(table: pd.DataFrame, chosen: list[str], memory_limit: float, headroom: float,
                 y_columns: list[tuple[str, str, float]], title: str) -> Figure:
    """Each configuration at its peak working set (x) against each y measure (one panel each:
    (column stem, label, scale)), coloured by class, min-max bars over repeats, the Pareto front
    ringed and the chosen configuration starred. `chosen` are cell_ids strings of chosen rows."""
    panels = max(1, len(y_columns))
    fig, axes = plt.subplots(1, panels, figsize=(WIDTH_IN, 4.2), squeeze=False)
    for ax, (stem, label, scale) in zip(axes[0], y_columns or [("gc", "GC CPU share (%)", 100.0)], strict=False):
        drawn = table[table["ws_median"].notna() & table[f"{stem}_median"].notna()]
        if drawn.empty:
            _empty(fig, ax, label)
            continue
        for klass, colour in CLASS_COLOURS.items():
            sub = drawn[drawn["class"] == klass]
            if sub.empty:
                continue
            x, y = sub["ws_median"] / MiB, sub[f"{stem}_median"] * scale
            ax.errorbar(x, y, xerr=[x - sub["ws_min"] / MiB, sub["ws_max"] / MiB - x],
                        yerr=[y - sub[f"{stem}_min"] * scale, sub[f"{stem}_max"] * scale - y],
                        fmt="o", color=colour, ecolor=colour, elinewidth=0.7, capsize=2, markersize=5,
                        label=f"{klass.replace('_', ' ')} ({len(sub)})")
        front = drawn[drawn.get("front", pd.Series(False, index=drawn.index)).astype(bool)]
        ax.scatter(front["ws_median"] / MiB, front[f"{stem}_median"] * scale, s=110, facecolors="none",
                   edgecolors="black", linewidths=0.9, label="Pareto front")
        best = drawn[drawn["cell_ids"].isin(chosen)]
        ax.scatter(best["ws_median"] / MiB, best[f"{stem}_median"] * scale, s=260, marker="*", color="gold",
                   edgecolors="black", linewidths=0.8, zorder=5, label="recommended")
        for _, row in best.iterrows():
            ax.annotate(f"GOGC={row['gogc']}\nGOMEMLIMIT={row['gomemlimit']}",
                        (row["ws_median"] / MiB, row[f"{stem}_median"] * scale), textcoords="offset points",
                        xytext=(8, 6), fontsize=7)
        if memory_limit and memory_limit == memory_limit:
            ax.axvline(memory_limit / MiB, color="tab:red", linestyle="--", linewidth=1.0,
                       label=f"limit {memory_limit / MiB:.0f} MiB")
            ax.axvline(headroom * memory_limit / MiB, color="tab:orange", linestyle=":", linewidth=1.0,
                       label=f"headroom {headroom:.0%}")
        ax.set_xlabel("peak working set (MiB)")
        ax.set_ylabel(label)
    axes[0][0].legend(loc="best")
    fig.suptitle(title)
    _tight(fig)
    return fig


LOAD_LATENCIES = ("load_p50_ns", "load_p90_ns", "load_p99_ns", "load_max_ns")


def load_latency(rows: pd.DataFrame, title: str) -> Figure:
    """A server under load, one group of bars per cell (rows: `label` and the load_* summary metrics):
    its latency percentiles, and the requests/s its load generator reached."""
    fig, (lat_ax, rps_ax) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.4), gridspec_kw={"width_ratios": [3, 1]})
    labels = [str(v) for v in rows.get("label", pd.Series(dtype=object))]
    width = 0.8 / len(LOAD_LATENCIES)
    unit = metric_unit("load_p99_ns")
    for j, metric in enumerate(LOAD_LATENCIES):
        values = rows[metric].astype(float) / unit.plot_scale if metric in rows.columns else pd.Series(dtype=float)
        pos = [i + (j - (len(LOAD_LATENCIES) - 1) / 2) * width for i in range(len(labels))]
        lat_ax.bar(pos, values.fillna(0).to_numpy(), width=width, label=metric.split("_")[1])
    lat_ax.set_xticks(range(len(labels)))
    lat_ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    lat_ax.set_ylabel(f"latency ({unit.plot_label})")
    lat_ax.set_yscale("log")
    lat_ax.legend(fontsize=7)
    rps = rows["load_rps"].astype(float) if "load_rps" in rows.columns else pd.Series(dtype=float)
    rps_ax.bar(range(len(labels)), rps.fillna(0).to_numpy())
    rps_ax.set_xticks(range(len(labels)))
    rps_ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
    rps_ax.set_ylabel("requests/s")
    if not labels:
        _empty(fig, lat_ax, "parsed load")
    fig.suptitle(title)
    _tight(fig)
    return fig


def where_is_memory(frame: pd.DataFrame, title: str, go_parts: tuple[tuple[str, str], ...],
                    kernel_parts: tuple[tuple[str, str], ...], lines: tuple[tuple[str, str], ...],
                    memory_limit: float | None = None) -> Figure:
    """A watched process's RSS over time, stacked by what holds it: the runtime's parts where they were read
    (`go_parts`), else the kernel's anonymous/file split (`kernel_parts`); `lines` (RSS, LazyFree, ...) over it."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.2))
    if frame.empty:
        _empty(fig, ax, "slow-tier samples")
    else:
        t = frame["t_s"].to_numpy(dtype=float)
        parts = go_parts if frame[go_parts[0][0]].notna().any() else kernel_parts
        if parts is go_parts:  # the samples before the first reading of its metrics page have no split
            frame = frame[frame[go_parts[0][0]].notna()]
            t = frame["t_s"].to_numpy(dtype=float)
        layers = [frame[c].fillna(0).clip(lower=0).to_numpy(dtype=float) / MiB for c, _ in parts]
        ax.stackplot(t, *layers, labels=[label for _, label in parts], alpha=0.75)
        for column, label in lines:
            if column in frame.columns and frame[column].notna().any():
                ax.plot(t, frame[column].to_numpy(dtype=float) / MiB, "-" if column == "rss" else "--",
                        color="black" if column == "rss" else None, label=label, linewidth=1.2)
        _limit_line(ax, memory_limit)
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.set_xlabel("time since the watch started (s)")
    ax.set_ylabel("MiB")
    fig.suptitle(title)
    _tight(fig)
    return fig
