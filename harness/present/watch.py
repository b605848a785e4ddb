"""The report of a `goreclaim watch` run: what the process is, where its memory is over time (a figure and a
table at each slow-tier sample), the findings that apply to it in plain words, then the program report's
summary, memory figure, cells and provenance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.analyse import summary as analysis
from harness.analyse.whereis import GO_PARTS, KERNEL_PARTS, LINES, breakdown, findings
from harness.define.units import format_size
from harness.present import plots
from harness.present.report import build_program_blocks, program_figures, render_png
from harness.present.results import Block, Results
from harness.store.rundir import Run

FIGURE = "figures/where_is_my_memory.png"
# The table lists at most this many samples, evenly spread (the figure and samples.parquet have them all).
TABLE_ROWS = 12


def _mib(v: float) -> str:
    return "–" if v != v else format_size(int(v))


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    step = max(1, len(frame) // TABLE_ROWS)
    rows = frame.iloc[::step]
    if rows.index[-1] != frame.index[-1]:
        rows = pd.concat([rows, frame.iloc[[-1]]])
    runtime = frame["heap_live"].notna().any()
    columns = [("rss", "RSS"), *KERNEL_PARTS, *LINES[1:],
               *((*GO_PARTS, ("heap_refaulted", "released, re-faulted")) if runtime else ())]
    out = pd.DataFrame({"t (s)": rows["t_s"].map(lambda t: f"{t:.1f}")})
    for column, label in columns:
        out[label] = rows[column].map(_mib)
    return out.reset_index(drop=True)


def _what(watch: dict) -> list[str]:
    go = f"Go {watch['go_version']}" if watch.get("go_version") else "not a Go program (no Go build information)"
    settings = watch.get("build_settings") or {}
    build = ", ".join(f"{k}={v}" for k, v in settings.items() if k in ("CGO_ENABLED", "GOARCH", "GOAMD64", "-ldflags",
                                                                        "-trimpath", "path"))
    env = ", ".join(f"{k}={v}" for k, v in (watch.get("env") or {}).items() if v) or "none set"
    limits = watch.get("limits") or {}
    cgroup = (f"{watch['cgroup']} (cgroup v{watch.get('cgroup_version')})" if watch.get("cgroup")
              else "not found")
    lines = [f"{watch.get('named')}: {watch.get('exe')}, {go}" + (f", built with {build}" if build else ""),
             f"runtime settings in its environment: {env}",
             f"memory cgroup: {cgroup}; limit {_mib(limits['memory_max']) if 'memory_max' in limits else 'none'}"
             + (f", memory.high {_mib(limits['memory_high'])}" if "memory_high" in limits else ""),
             f"runtime metrics: {watch.get('metrics_url') or 'not read (no --metrics-url)'}"]
    shared = int(watch.get("cgroup_processes") or 0) - 1
    if shared > 0:
        lines.append(f"its memory cgroup holds {shared} other process{'es' if shared > 1 else ''}: the cgroup's usage "
                     "and working set below are theirs together, not this process's (RSS and LazyFree are its own)")
    return lines + [f"note: {n}" for n in watch.get("notes") or []]


def _without_output(blocks: list[Block]) -> list[Block]:
    """The program report's blocks without its Output section: a watched process's output is not read."""
    out, skipping = [], False
    for block in blocks:
        if block.kind == "h2":
            skipping = block.content == "Output"
        if not skipping:
            out.append(block)
    return out


def watch_results(run: Run, summary: pd.DataFrame, data: analysis.RunData) -> Results:
    """The Results of a watch run, its figures written into run.path."""
    watch = run.manifest.get("watch") or {}
    cells = run.cells
    cell_id = str(cells["cell_id"].iloc[0]) if len(cells) else ""
    frame = breakdown(data, cell_id) if cell_id else pd.DataFrame()
    limit = (watch.get("limits") or {}).get("memory_max")
    peak = float(frame["rss"].max()) if len(frame) else 0.0
    shown_limit = limit if limit and peak and limit < 4 * peak else None   # a far-off limit would flatten the figure
    todo = {FIGURE: lambda: plots.where_is_memory(frame, f"{watch.get('named', cell_id)}: where is its memory?",
                                                  GO_PARTS, KERNEL_PARTS, LINES, shown_limit)}
    todo.update({rel: draw for rel, (_, draw) in program_figures(run, data, summary).items()})
    figures = {rel: render_png(draw) for rel, draw in todo.items()}
    for rel, png in figures.items():
        (Path(run.path) / rel).parent.mkdir(parents=True, exist_ok=True)
        (Path(run.path) / rel).write_bytes(png)
    kernel = str((run.manifest.get("kernel") or {}).get("release", "?"))
    wall = float(pd.to_numeric(cells["wall_s"], errors="coerce").iloc[0]) if len(cells) else 0.0
    said = findings(frame, watch, kernel, str(run.manifest.get("thp", "?")), wall)
    program = build_program_blocks(run, summary, [rel for rel in figures if rel != FIGURE])
    blocks = [program[0],
              Block("p", "A process that was already running, watched without touching it: sampled from /proc and "
                         "its memory cgroup (and its own metrics page where given) with the harness's two-tier "
                         "sampler. Nothing was stopped, signalled or traced."),
              Block("h2", "What it is"), Block("list", _what(watch)),
              Block("h2", "Where is its memory?"), Block("image", (FIGURE, "RSS over time by what holds it")),
              Block("table", _table(frame)),
              Block("p", "RSS = anonymous + file-backed. LazyFree: pages freed with MADV_FREE, still counted in RSS "
                         "until the kernel needs them. Where the runtime's numbers were read: live heap (HeapAlloc), "
                         "fragmentation (HeapInuse − HeapAlloc), free heap not released (HeapIdle − HeapReleased), "
                         "stacks (StackSys), other runtime (Sys − HeapSys − StackSys), and not Go's (RSS − (Sys − "
                         "HeapReleased)): Sys counts mapped memory, so that last is a lower bound. Released, "
                         "re-faulted: the falls of HeapReleased summed since the watch began, released heap taken "
                         "back into use."),
              Block("h2", "What applies to it"), Block("list", said),
              *_without_output(program[2:])]
    result = Results(run=run, summary=summary, verdicts=pd.DataFrame(), figures=figures)
    result.blocks = blocks
    return result
