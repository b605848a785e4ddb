"""An advise run directory → advice.md, advice.html, advice.json and figures/advice_front.png.

The recommendation, the environment lines to paste, a Kubernetes `env:` snippet with GOMEMLIMIT
in bytes (Kubernetes cannot pass a share of the limit, kubernetes/kubernetes#91514), the figure,
and every configuration with its numbers and class. Read from the run directory alone, so
`goreclaim report RUN_DIR` writes the same advice again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from harness.analyse import advice as analysis
from harness.analyse.summary import summarize
from harness.define.advice_grid import AUTOMEMLIMIT, AUTOMEMLIMIT_NOTE
from harness.define.axes import OF_MEMORY_MAX, axis_text
from harness.define.metrics import metric_label, metric_unit
from harness.define.units import format_size
from harness.present import plots
from harness.present.exporters.html import render_html
from harness.present.exporters.markdown import render_markdown
from harness.present.report import render_png
from harness.present.results import Block
from harness.store.rundir import Run, load_run

FIGURE = "figures/advice_front.png"


def _pct(v: float) -> str:
    return "–" if v != v else f"{v:.1%}"


def _size(v: float) -> str:
    return "–" if v != v else metric_unit("peak_working_set").format(v)


def _perf(performance: str | None, v: float) -> str:
    return "–" if not performance or v != v else metric_unit(performance).format(v)


def _companion(performance: str | None) -> str:
    """The metric judged beside the performance measure (a server's requests/s), "" when none."""
    return analysis.PERFORMANCE[performance].companion if performance in analysis.PERFORMANCE else ""


def _spread(row, stem: str, fmt) -> str:
    median, lo, hi = row[f"{stem}_median"], row[f"{stem}_min"], row[f"{stem}_max"]
    if median != median:
        return "–"
    return fmt(median) if row["n"] < 2 or lo == hi else f"{fmt(median)} ({fmt(lo)}–{fmt(hi)})"


def _limit_text(limit: float) -> str:
    return format_size(int(limit)) if limit == limit else "no limit"


def env_lines(choice: analysis.Choice) -> str:
    return "\n".join(f"{k}={v}" for k, v in choice.env.items())


# Kubernetes' MemoryQoS (KEP-2570, cgroup v2 nodes) writes a container's memory.high as
# requests + memoryThrottlingFactor × (limit − requests), rounded down to a page (kubelet,
# pkg/kubelet/kuberuntime/kuberuntime_container_linux.go); the factor's default is 0.9.
DEFAULT_THROTTLING_FACTOR = 0.9


def memory_qos(memory_limit: int, memory_high: int) -> tuple[float, int]:
    """(memoryThrottlingFactor, requests.memory in bytes) that make MemoryQoS write this memory.high: the
    default factor with the request that lands on it, else (a memory.high below 0.9 of the limit) the
    factor memory.high / limit with no request."""
    factor = DEFAULT_THROTTLING_FACTOR
    if memory_high >= factor * memory_limit:
        return factor, round((memory_high - factor * memory_limit) / (1 - factor) / (1 << 20)) << 20  # whole MiB
    return round(memory_high / memory_limit, 3), 0


def _quantity(n: int) -> str:
    return format_size(n).replace("iB", "i") if n else "0"


def kubernetes_env(choice: analysis.Choice, memory_limit: int, memory_high: int | None = None) -> str:
    """An `env:` and `resources:` snippet; GOMEMLIMIT in bytes, the share it is written beside. With a
    memory.high, the MemoryQoS setting (kubelet memoryThrottlingFactor) and request that give it."""
    of = f"the {format_size(memory_high)} memory.high" if memory_high else f"the {format_size(memory_limit)} limit"
    lines = ["env:"]
    for name, value in choice.env.items():
        lines += [f"  - name: {name}", f'    value: "{value}"']
        if name == "GOMEMLIMIT":
            share = str((choice.row or {}).get("gomemlimit", ""))
            lines[-1] += f"  # {analysis.gomemlimit_label(choice.row or {'gomemlimit': share})}" \
                if share.endswith("%" + OF_MEMORY_MAX) else f"  # {share} of {of}"
    lines += ["resources:", "  limits:", f"    memory: {_quantity(memory_limit)}"]
    if memory_high:
        factor, request = memory_qos(memory_limit, memory_high)
        lines[-1] += (f"  # memory.high {format_size(memory_high)} = requests + memoryThrottlingFactor × (limit − "
                      "requests) under MemoryQoS (KEP-2570)")
        lines += ["  requests:", f"    memory: {_quantity(request)}",
                  f"# kubelet (KubeletConfiguration), on cgroup v2 nodes: featureGates: {{MemoryQoS: true}}, "
                  f"memoryThrottlingFactor: {factor:g}" + (" (the default)" if factor == DEFAULT_THROTTLING_FACTOR
                                                          else "")]
    return "\n".join(lines)


def memory_high_of(manifest: dict) -> int | None:
    """The memory.high of an advise run's cells in bytes (advise --memory-high), None without one."""
    value = (manifest.get("advise") or {}).get("memory_high_bytes")
    return int(value) if value else None


def summary_lines(choice: analysis.Choice, advice: analysis.Advice) -> list[str]:
    """The recommendation in three lines: settings, numbers and margin, status."""
    where = f" ({choice.context})" if choice.context else ""
    if choice.row is None:
        return [f"no recommendation{where}: {choice.why}", "", ""]
    row = choice.row
    numbers = (f"peak working set {_size(row['ws_median'])} ({row['ws_median'] / advice.memory_limit:.0%} of "
               f"{format_size(advice.memory_limit)}), GC CPU {_pct(row['gc_median'])}")
    if advice.performance:
        numbers += f", {analysis.PERFORMANCE[advice.performance].label} {_perf(advice.performance, row['perf_median'])}"
    companion = _companion(advice.performance)
    if companion:
        numbers += f", {metric_label(companion)} {_perf(companion, row.get(f'{analysis.COMPANION}_median', math.nan))}"
    near = "; ".join(f"{u['config']} ({u['class'].replace('_', ' ')})" for u in choice.nearest_unhealthy)
    margin = f"nearest unhealthy: {near}" if near else "every configuration tried was healthy"
    status = f"{choice.status} for objective {choice.objective}{where}"
    if choice.why:
        status += f": {choice.why}"
    smallest = advice.smallest_healthy(choice.context)
    tried = (f"smallest limit healthy with these settings: {format_size(smallest)} "
             f"({len(advice.limits_tried.get(choice.context, {}))} limits tried)") if smallest else ""
    return [f"{' '.join(f'{k}={v}' for k, v in choice.env.items())}   # {analysis.config_name(row)}; {status}",
            f"{numbers}; {margin}", tried]


def _gomemlimit(row) -> str:
    """GOMEMLIMIT as set and, for a share, the size it came to in the cells."""
    label = analysis.gomemlimit_label(row)
    limit = row.get("gomemlimit_bytes")
    if label != row["gomemlimit"] or not str(row["gomemlimit"]).endswith("%") or not limit == limit:
        return label
    return f"{label} ({format_size(int(limit))})"


def _count(v: float) -> str:
    return "–" if v != v else str(int(v))


def memory_high_lines(finding: analysis.MemoryHighFinding, performance: str | None = None) -> list[str]:
    """One line per throttled configuration (its high events, its GOMEMLIMIT against memory.high) and per
    healthy one with a GOMEMLIMIT below memory.high, each with its performance (what a throttle costs);
    the conclusion when there are both."""
    high, memory_high = format_size(finding.memory_high), finding.memory_high

    def speed(row: dict) -> str:
        return (f", {analysis.PERFORMANCE[performance].label} {_spread(row, 'perf', lambda v: _perf(performance, v))}"
                if performance in analysis.PERFORMANCE else "")

    items = []
    for row in finding.throttled:
        limit = float(row["gomemlimit_bytes"])
        where = (f"GOMEMLIMIT {format_size(int(limit))} is above memory.high {high}" if limit > memory_high
                 else "its heap went above memory.high " + high)   # NaN (no GOMEMLIMIT): never above
        items.append(f"throttled: {analysis.config_name(row)}: {row['why']}; {where}{speed(row)}")  # why: high events
    for row in finding.healthy_below:
        items.append(f"healthy: {analysis.config_name(row)} = {format_size(int(row['gomemlimit_bytes']))}, "
                     f"below memory.high {high}: {_count(row['high_events_max'])} memory.high events, peak "
                     f"working set {_size(row['ws_median'])}{speed(row)}")
    if finding.throttled and finding.healthy_below:
        items.append("so: set GOMEMLIMIT below memory.high (a share of memory.high, as the grid's shares are), "
                     "not at a share of memory.max")
    return items


def memory_high_blocks(advice: analysis.Advice, memory_high: int) -> list[Block]:
    """What memory.high did: the throttled configurations with their high events, against the healthy
    ones that kept GOMEMLIMIT below memory.high."""
    findings = analysis.memory_high_findings(advice.table, advice.memory_limit, memory_high)
    if not findings:
        return []
    blocks = [Block("h2", "memory.high"),
              Block("p", f"Above memory.high ({format_size(memory_high)}) the kernel throttles the cgroup into "
                         "direct reclaim instead of killing it (Documentation/admin-guide/cgroup-v2.rst, "
                         "memory.high): a heap goal between memory.high and memory.max stalls the program rather "
                         "than ending it. Tools that read only memory.max set GOMEMLIMIT above it: "
                         f"GOMEMLIMIT={AUTOMEMLIMIT} is {AUTOMEMLIMIT_NOTE}.")]
    for finding in findings:
        blocks += ([Block("p", finding.context)] if finding.context else []) \
            + [Block("list", memory_high_lines(finding, advice.performance))]
    return blocks


def configuration_table(advice: analysis.Advice) -> pd.DataFrame:
    rows = []
    chosen = {c.row["cell_ids"] for c in advice.choices if c.row is not None}
    for _, r in advice.table.iterrows():
        row = {}
        if r["context"]:
            row["context"] = r["context"]
        row.update({"limit": _limit_text(r["memory_limit_bytes"]), "GOGC": r["gogc"], "GOMEMLIMIT": _gomemlimit(r),
                    "class": r["class"].replace("_", " ") + (" (recommended)" if r["cell_ids"] in chosen else "")
                    + (", front" if r["front"] else ""),
                    "why": r["why"] or "–", "repeats": int(r["n"]),
                    "peak working set": _spread(r, "ws", _size), "GC CPU": _spread(r, "gc", _pct)})
        if advice.performance:
            row[analysis.PERFORMANCE[advice.performance].label] = _spread(
                r, "perf", lambda v: _perf(advice.performance, v))
        companion = _companion(advice.performance)
        if companion:
            row[metric_label(companion)] = _spread(r, analysis.COMPANION, lambda v, m=companion: _perf(m, v))
        rows.append(row)
    return pd.DataFrame(rows)


def _ran(cells: pd.DataFrame, column: str) -> str:
    """The values a cells.csv column took where the cells ran, "" when it has none."""
    return ", ".join(sorted({axis_text(v) for v in cells.get(column, pd.Series(dtype=object))} - {"unset"}))


def _holds_for(manifest: dict, cells: pd.DataFrame) -> str:
    host = manifest.get("host") or {}
    # Where the cells ran: a guest kernel when advise asked for host settings this machine has not.
    kernel = _ran(cells, "kernel") or (manifest.get("kernel") or {}).get("release", "?")
    cgroup = _ran(cells, "cgroup_version") or f"v{(manifest.get('cgroup') or {}).get('memory_version', '?')}"
    go = _ran(cells, "go_version")
    settings = manifest.get("advise") or {}
    node = [f"THP {_ran(cells, 'thp') or '?'}", f"swap {settings.get('swap') or '0'}"]
    if settings.get("memory_high"):
        node.append(f"memory.high {settings['memory_high']} of the limit"
                    if str(settings["memory_high"]).endswith("%") else f"memory.high {settings['memory_high']}")
    accel = _ran(cells, "accel")
    return (f"This advice holds for what was measured: host {host.get('hostname', '?')} ({host.get('cpus', '?')} CPUs, "
            f"{format_size(host['mem_total_bytes']) if host.get('mem_total_bytes') else '?'} of memory), kernel "
            f"{kernel}, cgroup {cgroup}, {', '.join(node)}, backend {manifest.get('backend', '?')}, Go {go or '?'}"
            + (f", run under {accel}" if accel and accel != "native" else "") + ". It was computed from "
            f"this run's {len(cells)} cells only; a configuration that did not run is never recommended.")


def build_blocks(advice: analysis.Advice, manifest: dict, cells: pd.DataFrame) -> list[Block]:
    settings = manifest.get("advise", {})
    target = settings.get("target", "?")
    memory_high = memory_high_of(manifest)
    blocks = [Block("h1", f"GOMEMLIMIT and GOGC for {target} in a {format_size(advice.memory_limit)} container"
                    + (f" with memory.high {format_size(memory_high)}" if memory_high else "")),
              Block("p", _holds_for(manifest, cells))]
    for choice in advice.choices:
        blocks.append(Block("h2", "Recommendation" + (f" ({choice.context})" if choice.context else "")))
        if choice.row is None:
            blocks.append(Block("p", f"No recommendation: {choice.why}."))
            continue
        lines = summary_lines(choice, advice)
        blocks += [Block("p", f"**{choice.status}** ({analysis.config_name(choice.row)}), objective "
                              f"*{choice.objective}*: {analysis.OBJECTIVES[choice.objective]}."
                              + (f" {choice.why[0].upper()}{choice.why[1:]}." if choice.why else "")),
                   Block("list", [lines[1]]
                         + ([f"Equally good within the spread of the repeats: {'; '.join(choice.tied)}"]
                            if choice.tied else [])
                         + ([f"Healthy here but passed over: {'; '.join(choice.passed_over)}. "
                             f"{analysis.BELOW_HIGH_RULE[0].upper()}{analysis.BELOW_HIGH_RULE[1:]}."]
                            if choice.passed_over else [])
                         + [f"Headroom left: {format_size(max(0, int(advice.memory_limit - choice.row['ws_max'])))}"
                            f" between the largest peak working set of its repeats and the limit."]),
                   Block("p", "Environment:"), Block("pre", env_lines(choice)),
                   Block("p", "Kubernetes (GOMEMLIMIT in bytes: a pod cannot pass a share of its limit, "
                              "kubernetes/kubernetes#91514)" + (
                                  f"; GOMEMLIMIT shares here are shares of memory.high "
                                  f"({format_size(memory_high)}), the limit a Go heap meets first, not of the "
                                  "memory limit" if memory_high else "") + ":"),
                   Block("pre", kubernetes_env(choice, advice.memory_limit, memory_high))]
        tried = advice.limits_tried.get(choice.context, {})
        if len(tried) > 1:
            smallest = advice.smallest_healthy(choice.context)
            blocks += [Block("h3", "The smallest memory limit"),
                       Block("p", f"With {analysis.config_name(choice.row)}, bisection over the limit: the smallest "
                                  "limit healthy in every repeat was "
                                  f"{_limit_text(smallest) if smallest else 'none'}."),
                       Block("list", [f"{_limit_text(m)}: {c.replace('_', ' ')}" for m, c in sorted(tried.items())])]
    if memory_high:
        blocks += memory_high_blocks(advice, memory_high)
    blocks += [Block("h2", "Every configuration"),
               Block("image", (FIGURE, "peak working set against GC CPU and performance, by class")),
               Block("table", configuration_table(advice)),
               Block("h2", "How a configuration is classed"),
               Block("list", [f"{k.replace('_', ' ')}: {v}" + (f" ({advice.headroom:.0%} of the limit)"
                                                               if k == "over_headroom" else "")
                              for k, v in analysis.CLASSES.items()]),
               Block("p", "The Pareto front: the healthy configurations that no other healthy one beats on peak "
                          "working set, GC CPU share and performance at once (a server under a parsed load: "
                          "peak working set, p99 latency and requests/s). Figures are medians over repeats, "
                          "with min–max in brackets.")]
    if settings:
        blocks += [Block("h2", "What ran"),
                   Block("list", [f"target: {target}", f"grid: {settings.get('grid_text', '?')}",
                                  f"objective: {advice.objective}; headroom {advice.headroom:.0%}",
                                  f"performance measure: {settings.get('performance') or 'none (GC CPU stands in)'}",
                                  f"command: {settings.get('command', '?')}"])]
    return blocks


def advice_document(advice: analysis.Advice, manifest: dict) -> dict:
    """advice.json: the recommendation per context, every configuration, and what it holds for."""
    def plain(v):
        if isinstance(v, float):
            return None if math.isnan(v) else v
        if hasattr(v, "item"):
            return plain(v.item())
        return v

    return {
        "memory_limit_bytes": advice.memory_limit, "objective": advice.objective, "headroom": advice.headroom,
        "performance": advice.performance,
        "holds_for": {k: manifest.get(k) for k in ("host", "kernel", "cgroup", "backend", "docker")},
        "recommendations": [{
            "context": c.context, "status": c.status, "why": c.why, "env": c.env,
            "gogc": c.row["gogc"] if c.row else None, "gomemlimit": c.row["gomemlimit"] if c.row else None,
            "peak_working_set_bytes": plain(c.row["ws_median"]) if c.row else None,
            "gc_cpu_share": plain(c.row["gc_median"]) if c.row else None,
            "performance": plain(c.row["perf_median"]) if c.row else None,
            **({_companion(advice.performance): plain(c.row.get(f"{analysis.COMPANION}_median")) if c.row else None}
               if _companion(advice.performance) else {}),
            "tied": c.tied, "passed_over": c.passed_over, "nearest_unhealthy": c.nearest_unhealthy,
            "smallest_healthy_limit_bytes": advice.smallest_healthy(c.context),
            "limits_tried": {str(m): k for m, k in sorted(advice.limits_tried.get(c.context, {}).items())},
        } for c in advice.choices],
        "configurations": [{k: plain(v) for k, v in row.items()} for row in advice.table.to_dict("records")],
    }


def compute(run_dir: Path) -> tuple[analysis.Advice, Run]:
    run = load_run(run_dir)
    settings = run.manifest.get("advise")
    if not settings:
        raise ValueError(f"{run_dir}: not an advise run (its manifest has no \"advise\" settings)")
    summary = summarize(run.cells, run.samples, run.events)
    result = analysis.advise(run.cells, summary, int(settings["memory_bytes"]), settings["objective"],
                             settings.get("performance"), float(settings["headroom"]))
    return result, run


def write_advice(run_dir: str | Path) -> tuple[Path, analysis.Advice]:
    """Write advice.md/html/json and the figure; returns (advice.md, the advice)."""
    run_dir = Path(run_dir)
    advice, run = compute(run_dir)
    perf = analysis.PERFORMANCE.get(advice.performance) if advice.performance else None
    panels = [("gc", "GC CPU share (%)", 100.0)]
    if perf is not None:
        unit = metric_unit(perf.metric)
        panels.append(("perf", f"{perf.label} ({unit.plot_label})" + (" ↑" if perf.higher_is_better else " ↓"),
                       1.0 / unit.plot_scale))
        if perf.companion:  # a server: its requests/s beside its p99 latency, in place of GC CPU
            unit = metric_unit(perf.companion)
            panels = [panels[-1], (analysis.COMPANION, f"{metric_label(perf.companion)} ↑", 1.0 / unit.plot_scale)]
    at_limit = advice.table[advice.table["memory_limit_bytes"] == float(advice.memory_limit)] \
        if not advice.table.empty else advice.table
    chosen = [c.row["cell_ids"] for c in advice.choices if c.row is not None]
    figures = {}
    if not at_limit.empty:
        figures[FIGURE] = render_png(lambda: plots.advice_front(
            at_limit, chosen, advice.memory_limit, advice.headroom, panels,
            f"{run.manifest['advise'].get('target', '')}: every configuration in {format_size(advice.memory_limit)}"))
        (run_dir / "figures").mkdir(exist_ok=True)
        (run_dir / FIGURE).write_bytes(figures[FIGURE])
    blocks = build_blocks(advice, run.manifest, run.cells)
    if FIGURE not in figures:
        blocks = [b for b in blocks if b.kind != "image"]
    (run_dir / "advice.md").write_text(render_markdown(blocks), encoding="utf-8")
    (run_dir / "advice.html").write_text(render_html(blocks, figures, "goreclaim advice"), encoding="utf-8")
    (run_dir / "advice.json").write_text(json.dumps(advice_document(advice, run.manifest), indent=2, default=str)
                                         + "\n", encoding="utf-8")
    return run_dir / "advice.md", advice
