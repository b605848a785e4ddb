"""A run directory → figures/*.png and one file per exporter (harness.present.exporters): summary.csv,
claims.csv, report.md, a self-contained report.html, summary.json and benchstat.txt.

The report is built once as a list of blocks and rendered by each exporter, so every format says the
same thing. Nothing in it depends on when it was generated: the same data gives the same report.
The run's samples and events are split by cell once (`split_by_cell`) and every figure reads its pieces.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from harness.analyse import claims, views
from harness.analyse import summary as analysis
from harness.analyse.claims import Claim, Study
from harness.analyse.views import TOOL_VIEWS
from harness.define.axes import UNSET, axis_text, order_key
from harness.define.metrics import metric_label, metric_unit, timing_sensitive
from harness.define.units import format_size
from harness.present import plots
from harness.present.exporters import EXPORTERS
from harness.present.figures import FigureInputs, check_figures, draw_figure, memory_limit, scenario_cells
from harness.present.results import HOST_SEPARATOR, JUDGED_ON, Block, Results, section
from harness.store.rundir import Run, load_run

PROVENANCE_KEYS = (  # shown first, in this order (as harness.store.rundir writes them); any other key follows
    "run_id", "complete", "harness", "host", "kernel", "cgroup", "thp", "docker", "go_versions", "backend",
    "backend_reason", "sampler", "python", "date_utc",
)


# ---- blocks -----------------------------------------------------------------------------------------

def _fmt_value(metric: str, v) -> str:
    """The metric's unit's short form; a dash where there is no value (tables read better)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return metric_unit(metric).format(v)


# Marks a timing metric's value measured under an accelerator that does not keep the host's time.
UNTIMED_MARK = "†"


def numbers_table(by_config: pd.DataFrame, metrics: Sequence[str],
                  untimed: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Median (min–max) per configuration, formatted with units; a timing metric of a configuration with a
    cell in `untimed` (cell_id -> accelerator, the summary's `untimed`) carries UNTIMED_MARK."""
    rows = []
    untimed = untimed or {}
    for _, r in by_config.iterrows():
        row = {"configuration": r["config"], "Go": r.get("go_version", ""), "n": int(r["n"])}
        emulated = any(untimed.get(c) for c in str(r.get("cell_ids", "")).split(";"))
        for m in metrics:
            med = r.get(f"{m}_median", float("nan"))
            lo, hi = r.get(f"{m}_min", float("nan")), r.get(f"{m}_max", float("nan"))
            text = _fmt_value(m, med)
            if r["n"] > 1 and lo == lo and hi == hi and lo != hi:
                text += f" ({_fmt_value(m, lo)}–{_fmt_value(m, hi)})"
            if emulated and timing_sensitive(m) and text != "–":
                text += f" {UNTIMED_MARK}"
            row[m] = text
        rows.append(row)
    return pd.DataFrame(rows)


# ---- loading ----------------------------------------------------------------------------------------

def _flatten(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def sampler_rates(run_dir: Path) -> list[tuple[str, str]]:
    """Achieved sampler statistics per tier, as median (min–max) over cells, from cells/*/cell.json:
    (statistic, value) rows."""
    stats: dict[str, list[float]] = {}
    for path in sorted(run_dir.glob("cells/*/cell.json")):
        try:
            found = json.loads(path.read_text()).get("sampler_stats") or {}
        except ValueError:
            continue
        for k, v in _flatten(found).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                stats.setdefault(k, []).append(float(v))
    out, gone = [], []
    for k, values in sorted(stats.items()):
        if "_gone." in k:   # instants (monotonic ns) a probe's target went away: counted, not averaged
            gone.append(f"{k.split('_gone.')[1]} in {len(values)}")
            continue
        v = pd.Series(values)
        out.append((f"sampler {k}",
                    f"median {v.median():.4g} (min {v.min():.4g}, max {v.max():.4g}) over {len(v)} cells"))
    if gone:
        out.append(("sampler probes whose target went away before it stopped (the program had ended)",
                    ", ".join(gone) + " cells"))
    return out


# ---- figures ----------------------------------------------------------------------------------------

TOOL_VIEWS_FIGURE = "figures/tool_views.png"
GO_VERSIONS_FIGURE = "figures/go_versions.png"


def usable(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells that completed with measurements (claims.USABLE_STATUSES)."""
    return cells[cells["status"].astype(str).isin(claims.USABLE_STATUSES)] if "status" in cells.columns else cells


def tool_rows(summary: pd.DataFrame, cells: pd.DataFrame, tool_phases: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """The tool table over a study's tool phases, rows of the newest Go version first (the figure shows the top).
    Where the cells ran on more than one cgroup version (or kernel), each is a column (TOOL_HOST_COLUMNS)
    and a configuration's rows on each sit side by side."""
    ran = [(scenario, phases, c) for scenario, phases in tool_phases.items()
           if len(c := scenario_cells(cells, scenario))]
    splits = claims.host_splits(pd.concat([c for _, _, c in ran])) if ran else []
    tables = []
    for scenario, phases, c in ran:
        groups = c.groupby([c[s].map(axis_text) for s in splits], sort=True) if splits else [((), c)]
        for key, group in groups:
            where = dict(zip(splits, key if isinstance(key, tuple) else (key,), strict=True))
            hosts = {TOOL_HOST_COLUMNS[s]: where_text(s, str(v)) for s, v in where.items()}
            tables.append(views.tool_table(summary, group, phases).assign(scenario=scenario, **hosts))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if table.empty:  # no scenario ran, or none of its cells completed a phase (all OOM-killed, interrupted)
        return pd.DataFrame(columns=["scenario", "config", "go_version", "phase", "n"])
    newest = max(table["go_version"].map(axis_text), key=lambda v: order_key("go", v))
    table["_newest"] = table["go_version"].map(axis_text) != newest
    order = ["_newest"]
    if splits:  # each (configuration, phase) once, its host rows together, in the order first met
        firsts = table[["scenario", "config", "phase"]].apply(tuple, axis=1)
        table["_first"] = firsts.map({k: i for i, k in reversed(list(enumerate(firsts)))})
        order += ["_first"]
    table = table.sort_values(order, kind="stable").drop(columns=order).reset_index(drop=True)
    host_columns = [TOOL_HOST_COLUMNS[s] for s in splits]
    rest = [c for c in table.columns if c not in host_columns]
    at = rest.index("go_version") + 1
    return table[rest[:at] + host_columns + rest[at:]]


# The tool table's column for each host fact it is split by.
TOOL_HOST_COLUMNS = {"cgroup_version": "cgroup", "kernel": "kernel"}


def _host_labelled(table: pd.DataFrame) -> pd.DataFrame:
    """The tool rows with their host columns in the configuration's label (the figure shows only the label)."""
    hosts = [c for c in TOOL_HOST_COLUMNS.values() if c in table.columns]
    if not hosts:
        return table
    where = table[hosts].astype(str).apply(lambda row: ", ".join(f"{c} {row[c]}" for c in hosts), axis=1)
    labels = [f"{w}, {c}" if c != "default" else w for w, c in zip(where, table["config"], strict=True)]
    return table.assign(config=labels)


def _versions(cells: pd.DataFrame) -> list[str]:
    if "go_version" not in cells.columns:
        return []
    return sorted(set(cells["go_version"].map(axis_text)), key=lambda v: order_key("go", v))


def _first_versioned(cells: pd.DataFrame) -> str:
    """A scenario run on more than one Go version ("" when none was)."""
    for scenario in dict.fromkeys(cells.get("scenario", pd.Series(dtype=object))):
        if len(_versions(scenario_cells(cells, scenario))) > 1:
            return scenario
    return ""


def version_panels(summary: pd.DataFrame, cells: pd.DataFrame, study: Study) -> list[tuple[str, pd.DataFrame, str]]:
    """(title, by_config table, metric) for every claim with a version metric whose first scenario
    ran on more than one Go version."""
    panels = []
    for claim in study.claims:
        c = scenario_cells(cells, claim.scenarios[0])
        if claim.version_metric and len(_versions(c)) > 1:
            panels.append((f"{claim.id}: {metric_label(claim.version_metric)}",
                           analysis.by_config(summary, c, [claim.version_metric]), claim.version_metric))
    return panels


def figures_to_draw(run: Run, study: Study, summary: pd.DataFrame,
                    data: analysis.RunData | None = None) -> dict[str, Callable[[], Figure]]:
    """Every figure the study declares whose scenario has a usable cell, then the tool views and what
    changed between Go versions: path relative to the run directory → its draw."""
    cells = run.cells
    inputs = FigureInputs(cells, summary, run.events,
                          data if data is not None else analysis.split_by_cell(run.samples, run.events))
    todo: dict[str, Callable[[], Figure]] = {}
    for spec in (spec for claim in study.claims for spec in claim.figures):
        if not usable(scenario_cells(cells, spec.scenario)).empty:
            todo[spec.path] = functools.partial(draw_figure, spec, inputs)
    if any(not usable(scenario_cells(cells, s)).empty for s in study.tool_phases):
        todo[TOOL_VIEWS_FIGURE] = lambda: plots.tool_views(
            _host_labelled(tool_rows(summary, cells, study.tool_phases)), [v.name for v in TOOL_VIEWS],
            "What each tool shows at the end of a phase (median over repeats)")
    versioned = _first_versioned(cells)
    if versioned and not usable(scenario_cells(cells, versioned)).empty:
        todo[GO_VERSIONS_FIGURE] = lambda: plots.by_go_version(
            version_panels(summary, cells, study), "What changed between Go versions")
    return todo


def render_png(draw: Callable[[], Figure]) -> bytes:
    """One figure drawn by `draw` as PNG bytes (the figure is closed)."""
    return plots.to_png(draw())


_PENDING: list[Callable[[], Figure]] = []  # the figures a forked worker draws, by index


def _render_pending(index: int) -> bytes:
    return render_png(_PENDING[index])


def _start_rendering(draws: list[Callable[[], Figure]]) -> Callable[[], list[bytes]]:
    """Start drawing every figure; returns the call that waits for their PNG bytes, in order.

    Drawing is CPU-bound matplotlib work that holds the GIL, so with more than one CPU the figures
    are drawn by forked workers that inherit the data (nothing is pickled but the PNG bytes coming
    back), while this process goes on with the claims and the report's text; the figures are the
    same either way. Only from a process with no other thread: a child forked while another thread
    holds a lock (a pipe reader's, logging's, the allocator's) waits on it forever, which was seen
    once in a test process whose earlier tests left threads running."""
    workers = min(len(draws), len(os.sched_getaffinity(0)))
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return lambda: [render_png(draw) for draw in draws]
    _PENDING[:] = draws
    pool = multiprocessing.get_context("fork").Pool(workers)
    pending = pool.map_async(_render_pending, range(len(draws)), chunksize=1)
    _PENDING.clear()   # the workers have their own copy

    def wait() -> list[bytes]:
        try:
            return pending.get()
        finally:
            pool.terminate()
            pool.join()
    return wait


def _write_figures(out_dir: Path, figures: dict[str, bytes]) -> None:
    for rel, png in figures.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)


# ---- the report ---------------------------------------------------------------------------------------

def _readable(key: str, value) -> str:
    """A manifest value as a reader wants it: sizes for byte counts, lists joined, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and key.endswith("_bytes"):
        return format_size(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(_readable(key, v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_readable(k, v)}" for k, v in sorted(value.items())) or "none"
    return str(value)


def provenance(manifest: dict, cells: pd.DataFrame, run_dir: Path | None = None) -> pd.DataFrame:
    """Where and how the run was made, one (item, value) row each: the manifest's keys in
    PROVENANCE_KEYS order with nested tables flattened into their own rows ("host: cpus"), the cells'
    statuses, and the sampler's achieved rates."""
    rows = []
    keys = [k for k in PROVENANCE_KEYS if k in manifest] + sorted(k for k in manifest if k not in PROVENANCE_KEYS)
    for k in keys:
        v = manifest[k]
        if isinstance(v, dict) and v:
            rows += [(f"{k}: {sub}", _readable(sub, value)) for sub, value in _flatten(v).items()]
        else:
            rows.append((k, _readable(k, v)))
    if "go_versions" not in manifest and "go_version" in cells.columns:
        rows.append(("Go versions in cells", ", ".join(sorted(set(cells["go_version"].map(axis_text))))))
    if "backend" not in manifest and "backend" in cells.columns:
        rows.append(("backends in cells", ", ".join(sorted(set(cells["backend"].map(axis_text))))))
    if "status" in cells.columns:
        counts = cells["status"].astype(str).value_counts().sort_index()
        rows.append(("cell statuses", ", ".join(f"{s} {n}" for s, n in counts.items())))
    if run_dir is not None:
        rows += sampler_rates(run_dir)
    return pd.DataFrame(rows or [("manifest.json", "empty or missing")], columns=["item", "value"])


def _what_ran(cells: pd.DataFrame, claim: Claim) -> list[str]:
    items = []
    for scenario in claim.scenarios:
        c = scenario_cells(cells, scenario)
        if c.empty:
            items.append(f"{scenario}: not run")
            continue
        configs = sorted(set(analysis.config_label(c)))
        counts = c["status"].astype(str).value_counts().sort_index() if "status" in c.columns else pd.Series()
        statuses = {str(s): int(n) for s, n in counts.items()}
        items.append(f"{scenario}: {len(c)} cells; configurations: {'; '.join(configs)}; statuses: "
                     + ", ".join(f"{s} {n}" for s, n in statuses.items()))
    return items


def _versions_blocks(figures) -> list[Block]:
    """The metric behind each claim's change across Go versions (the verdicts per version are the matrix's)."""
    if GO_VERSIONS_FIGURE not in figures:
        return []
    return [Block("h2", "What changed between Go versions"),
            Block("p", "For each claim judged on several Go versions, the metric its verdict turns on, per Go "
                       "version; the summary's matrix gives the verdicts and each claim's evidence (below) says "
                       "what differs."),
            Block("image", (GO_VERSIONS_FIGURE, "what changed between Go versions"))]


# The host facts a verdict is given for besides the Go version (claims.HOST_SPLITS), where the run has more
# than one of them.
VERDICT_DIMENSIONS = ("go_version",) + claims.HOST_SPLITS
NOT_RUN = "not run"


def where_text(dimension: str, value: str) -> str:
    """A verdict dimension's value as a column name's part: cgroup version 2 -> "v2" (cells record "v2")."""
    return f"v{value}" if dimension == "cgroup_version" and value.isdigit() else value


def verdict_matrix(verdicts: pd.DataFrame, study: Study) -> pd.DataFrame:
    """One row per claim: its id, its sentence in plain words, the hosts that judged it (where the run had
    more than one cgroup version or kernel), then its verdict per Go version ("" where it was not judged
    there; "not run" across a claim no cell of which ran). Where the hosts that judged it on a Go version
    agree, the verdict stands once; where they differ, each host's ("v1: partly · v2: supported"). A column
    per Go version and host would halve the columns' width and push the matrix off the first screen."""
    judged = (verdicts[verdicts["go_version"].astype(str) != ""] if "go_version" in verdicts.columns
              else verdicts.iloc[0:0])
    hosts = [d for d in claims.host_splits(judged) if d in VERDICT_DIMENSIONS and d != "go_version"]

    def host(row: pd.Series) -> tuple[tuple[object, ...], str]:
        values = [str(row[d]) for d in hosts]
        return (tuple(order_key(d, v) for d, v in zip(hosts, values, strict=True)),
                " ".join(where_text(d, v) for d, v in zip(hosts, values, strict=True)))

    versions = sorted({str(v) for v in judged["go_version"]}, key=lambda v: order_key("go", v)) or ["verdict"]
    rows = []
    for claim in study.claims:
        mine = judged[judged["claim"] == claim.id]
        row = {"claim": claim.id, "in plain words": claim.plain or claim.statement}
        if hosts:
            row[JUDGED_ON] = ", ".join(label for _, label in sorted({host(r) for _, r in mine.iterrows()}))
        for version in versions:
            here = sorted((host(r), str(r["verdict"])) for _, r in mine[mine["go_version"].astype(str) == version]
                          .iterrows())
            if mine.empty or not here:
                row[version] = NOT_RUN if mine.empty else ""
            elif len({verdict for _, verdict in here}) == 1:
                row[version] = here[0][1]
            else:
                row[version] = HOST_SEPARATOR.join(f"{label}: {verdict}" for (_, label), verdict in here)
        rows.append(row)
    return pd.DataFrame(rows, columns=["claim", "in plain words", *([JUDGED_ON] if hosts else []), *versions])


def _tool_blocks(summary: pd.DataFrame, cells: pd.DataFrame, study: Study, figures) -> list[Block]:
    """The same memory as each monitoring tool shows it, at the end of the phases that tell them apart."""
    table = tool_rows(summary, cells, study.tool_phases)
    if table.empty:
        return []
    bytes_unit = metric_unit("rss@idle")
    shown = table.drop(columns=["scenario"]).rename(columns={"go_version": "Go"})
    for view in TOOL_VIEWS:
        shown[view.name] = shown[view.name].map(lambda v: "–" if v != v else bytes_unit.format(v))
    blocks = [Block("h2", "What each tool shows"),
              Block("p", "Which number to trust depends on the question: what the kernel would kill for "
                         "(cgroup usage at the limit), what a dashboard shows (working set), what the process "
                         "holds (RSS), or what the Go heap holds (the runtime's views). Each column is the value "
                         "at the end of the phase, median over repeats. Lazily freed (MADV_FREE) pages stay in RSS "
                         "and cgroup usage but vanish from the working set: since Linux 4.12 the kernel moves them "
                         "to the inactive file list (mm/swap.c lru_lazyfree_fn), which usage − inactive_file leaves "
                         "out. The docker stats and kubectl top columns are computed from the cgroup's files with "
                         "those tools' formulas; for Docker cells, docker stats (API) is Docker's own stats API read "
                         "at the same phase end, and the column after it says where the two differ."),
              Block("list", [f"{v.name}: {v.formula}" for v in TOOL_VIEWS]),
              Block("table", shown)]
    if TOOL_VIEWS_FIGURE in figures:
        blocks.append(Block("image", (TOOL_VIEWS_FIGURE, "what each tool shows")))
    return blocks


def _hosts_run(cells: pd.DataFrame) -> list[str]:
    """Each (cgroup version, kernel, accelerator) the cells ran on, in words ("" fields left out)."""
    columns = [c for c in ("cgroup_version", "kernel", "accel") if c in cells.columns]
    if not columns:
        return []
    seen = cells[columns].map(axis_text).drop_duplicates().sort_values(columns)
    words = {"cgroup_version": "cgroup {}", "kernel": "kernel {}", "accel": "accelerator {}"}
    return [", ".join(words[c].format(where_text(c, v)) for c, v in zip(columns, row, strict=True)
                      if v not in ("", UNSET)) for row in seen.itertuples(index=False, name=None)]


def limitations(manifest: dict, cells: pd.DataFrame) -> list[str]:
    """What the verdicts do not cover, from the run's own provenance."""
    kernel = section(manifest, "kernel").get("release", "unknown")
    version = section(manifest, "cgroup").get("memory_version", "unknown")
    host = section(manifest, "host")
    swap = host.get("swap_total_bytes")
    backends = sorted(set(cells["backend"].map(axis_text))) if "backend" in cells.columns else []
    items = [f"One kernel ({kernel}) on one machine ({host.get('cpus', '?')} CPUs): the kernel decides when "
             "lazily freed pages are reclaimed and how cgroup memory is charged, and other kernels may differ.",
             f"Memory cgroup version {version} only. The code reads cgroup v2 (memory.current, memory.max, "
             "memory.events) but this run did not exercise it." if version != 2 else
             "Memory cgroup version 2 only: cgroup v1 (memory.usage_in_bytes) was not exercised by this run.",
             "No swap" if not swap else f"Swap of {swap} bytes on the host",
             "; every container's memory+swap limit equals its memory limit, so no page leaves RAM.",
             f"Backends: {', '.join(backends) or 'none'}; throughput and CPU figures come from a shared "
             "machine: a difference counts only where three quarters of the pairs of repeats differ by more than the "
             "noise the run measured (half the widest range between repeats, a placebo setting's difference, at "
             "least 5%)."]
    items[2:4] = [items[2] + items[3]]
    hosts = _hosts_run(cells)
    if len(hosts) > 1:  # cells in guest kernels: the first two items speak of the host alone
        items[0:2] = ["Kernels and cgroup versions: " + "; ".join(hosts) + ". A verdict given per cgroup version "
                      "holds for that kernel: the kernel decides when lazily freed pages are reclaimed and how "
                      "cgroup memory is charged, and other kernels may differ."]
    thp = manifest.get("thp")
    items.append(f"Transparent huge pages: {thp if isinstance(thp, str) and thp else 'not recorded'} only. With "
                 "`madvise` the kernel backs with 2 MiB pages only what a program asks for (MADV_HUGEPAGE); under "
                 "`always` it may back the heap with huge pages, which changes what RSS shows after a release, so "
                 "verdicts on RSS after release hold for this mode.")
    arch = str(host.get("arch", ""))
    page = "4 KiB" if arch in ("x86_64", "amd64") else "not recorded"
    items.append(f"Page size {page} ({arch or 'arch not recorded'}): RSS, LazyFree and every release are counted "
                 "in these pages; on 64 KiB-page kernels (some arm64, ppc64le) the runtime's 8 KiB pages are smaller "
                 "than the OS's and what is returned rounds differently.")
    items.append(f"{host.get('cpus', '?')} CPUs, so GOMAXPROCS {host.get('cpus', '?')}: the GC CPU limiter's "
                 "bucket holds one CPU-second per P and the background mark worker takes 25% of the Ps "
                 "(runtime/mgclimit.go, mgcpacer.go), so when the limiter engages, and the GC CPU and throughput "
                 "numbers, are for this many Ps.")
    items.append("Kernel dependence of the MADV_FREE verdicts (lazily freed pages, their reclaim and what the "
                 "working set leaves out): MADV_FREE exists since Linux 4.5, and lazily freed pages sit on the "
                 "inactive file list, reclaimable without swap, only since 4.12 (mm/swap.c lru_lazyfree_fn); "
                 "before that, with no swap, they are not reclaimed ahead of an OOM kill.")
    return items


def build_blocks(run: Run, study: Study, summary: pd.DataFrame, verdicts: pd.DataFrame,
                 figures: list[str]) -> list[Block]:
    """The report: the answer first (each claim in a sentence and its verdict per Go version), then
    what each tool shows, each claim with its figure, numbers and evidence, the cells, and provenance last."""
    cells, manifest = run.cells, run.manifest
    title = study.title + (f": {manifest['run_id']}" if "run_id" in manifest else "")
    blocks = [Block("h1", title),
              Block("p", study.intro),
              Block("h2", "Summary"),
              Block("verdicts", matrix := verdict_matrix(verdicts, study))]
    after = ["A blank: the claim was not judged on that Go version (its scenarios did not run on it)."]
    if JUDGED_ON in matrix.columns:
        after.insert(0, f"{JUDGED_ON.capitalize()}: the cgroup versions (or kernels) whose cells the verdicts "
                        "come from (one this machine does not have ran in a guest kernel); where they differ, a "
                        "cell gives each one's verdict, and each claim's section below gives them one by one.")
    if study.not_tested:
        after.append(f"{study.not_tested_title}: {', '.join(n.id for n in study.not_tested)}, listed below.")
    blocks.append(Block("p", " ".join(after)))
    blocks += _tool_blocks(summary, cells, study, figures)
    blocks += _versions_blocks(figures)
    untimed = untimed_cells(summary)
    for claim in study.claims:
        cid = claim.id
        rows = verdicts[verdicts["claim"] == cid]
        blocks += [Block("h2", f"{cid} (§{claim.section})", anchor=cid),
                   Block("p", f"{study.source}: {claim.statement}"),
                   Block("p", f"A fair test: {claim.fair_test}")]
        blocks += [Block("image", (spec.path, f"{cid}: {spec.path}")) for spec in claim.figures
                   if spec.path in figures]
        scoped = cells[cells["scenario"].isin(claim.scenarios)] if "scenario" in cells.columns else cells.iloc[0:0]
        if len(scoped):
            table = analysis.by_config(summary, scoped, claim.metrics)
            blocks += [Block("h3", "Numbers (median, min–max over repeats)"),
                       Block("table", shown := numbers_table(table, claim.metrics, untimed))]
            if shown.map(lambda v: str(v).endswith(UNTIMED_MARK)).any().any():
                blocks.append(Block("p", untimed_note(untimed)))
        blocks += [Block("h3", "What was run"), Block("list", _what_ran(cells, claim))]
        if claim.mechanism:
            blocks.append(Block("p", f"Mechanism: {claim.mechanism}"))
        blocks.append(Block("h3", "Verdict and evidence"))
        hosts = [d for d in claims.HOST_SPLITS if d in rows.columns]
        blocks += [Block("details", (" · ".join([f"Go {row['go_version'] or '–'}"]
                                                + [where_text(d, str(row[d])) for d in hosts if str(row[d])]),
                                     str(row["verdict"]), str(row["evidence"])))
                   for _, row in rows.iterrows()]
    if study.not_tested:
        blocks += [Block("h2", study.not_tested_title),
                   Block("table", pd.DataFrame([{"claim": n.id, "statement": n.statement, "why not": n.why}
                                                for n in study.not_tested]))]
    blocks += [Block("h2", "Limitations"), Block("list", limitations(manifest, cells))]
    blocks.append(Block("h2", "Cells"))
    keep = with_host(cells, [c for c in ("cell_id", "scenario", "go_version", "status", "exit_code", "oom_killed",
                                         "wall_s", "reason") if c in cells.columns])
    # Where the cells ran on more than one host (guest kernels), what each ran on.
    hosts = [c for c in ("cgroup_version", "kernel", "accel") if c in cells.columns and len(_hosts_run(cells)) > 1]
    keep = keep[:2] + hosts + keep[2:]
    table = cells[keep].copy()
    for c in keep:
        table[c] = table[c].map(lambda v: "" if axis_text(v) == "unset" else axis_text(v))
    if untimed:  # the cells whose timing metrics (wall time among them) are not the host's
        table["timing"] = cells["cell_id"].astype(str).map(
            lambda c: f"not timed ({untimed[c]}) {UNTIMED_MARK}" if c in untimed else "").to_numpy()
    blocks.append(Block("table", table))
    if untimed:
        blocks.append(Block("p", untimed_note(untimed)))
    blocks += [Block("h2", "Provenance"), Block("table", provenance(manifest, cells, run.path))]
    return blocks


def untimed_cells(summary: pd.DataFrame) -> dict[str, str]:
    """cell_id -> the accelerator that leaves its timing metrics untrue to the host (summary `untimed`)."""
    if "untimed" not in summary.columns:
        return {}
    return {str(c): str(a) for c, a in summary["untimed"].items() if isinstance(a, str) and a}


def untimed_note(untimed: Mapping[str, str]) -> str:
    accels = ", ".join(sorted(set(untimed.values())))
    return (f"{UNTIMED_MARK} Measured in a guest kernel under {accels} (qemu's software emulation, several times "
            "slower than the host): what is resident, reclaimed or killed holds there, but CPU time, wall time, "
            "throughput, latency and PSI stall times do not; claims and expectations that read them are "
            "inconclusive on these cells.")


def with_host(cells: pd.DataFrame, columns: list[str]) -> list[str]:
    """The Cells table's columns, with `host` after the cell id when the run spans more than one host."""
    if "host" not in cells.columns or cells["host"].map(axis_text).replace("unset", "").nunique() < 2:
        return columns
    return columns[:1] + ["host"] + columns[1:]


# ---- a program's run --------------------------------------------------------------------------------

# The summary table of a program run, in this order; a column no cell has a value for is left out.
PROGRAM_METRICS = ("peak_rss", "final_rss", "peak_working_set", "final_working_set", "peak_cgroup",
                   "working_set@idle", "gc_cycles", "gc_cpu_s", "ns_per_op", "bytes_per_op", "allocs_per_op",
                   "mb_per_s", "load_rps", "load_p50_ns", "load_p90_ns", "load_p99_ns", "load_max_ns", "load_errors",
                   "wall_s")
OUTPUT_TAIL_LINES = 15


def program_figure(scenario: str) -> str:
    return f"figures/{scenario}_memory.png"


def program_figures(run: Run, data: analysis.RunData,
                    summary: pd.DataFrame | None = None) -> dict[str, tuple[str, Callable[[], Figure]]]:
    """One figure per program: RSS, working set, cgroup usage and (a Go program's) gctrace heap over
    time per cell, phases marked; and, for a server whose load generator's output was parsed, its
    latency percentiles and requests/s per cell."""
    cells = run.cells
    out: dict[str, tuple[str, Callable[[], Figure]]] = {}
    for scenario in dict.fromkeys(cells.get("scenario", pd.Series(dtype=object)).astype(str)):
        def draw(scenario: str = scenario) -> Figure:
            c = usable(scenario_cells(cells, scenario))
            return plots.memory_breakdown(data, c, f"{scenario}: memory over time", memory_limit=memory_limit(c),
                                          max_panels=6, series=plots.PROGRAM_SERIES, gctrace=True)
        out[program_figure(scenario)] = (scenario, draw)
        loaded = _load_rows(cells, summary, scenario)
        if len(loaded):
            def latency(rows: pd.DataFrame = loaded, scenario: str = scenario) -> Figure:
                return plots.load_latency(rows, f"{scenario}: latency and requests/s under its load")
            out[f"figures/{scenario}_latency.png"] = (scenario, latency)
    return out


def _load_rows(cells: pd.DataFrame, summary: pd.DataFrame | None, scenario: str) -> pd.DataFrame:
    """The usable cells of a scenario with a parsed load: their label and load_* metrics."""
    if summary is None or "load_p99_ns" not in summary.columns:
        return pd.DataFrame()
    c = usable(scenario_cells(cells, scenario)).reset_index(drop=True)
    labels = analysis.config_label(c) if len(c) else pd.Series(dtype=object)
    rows = []
    for i, cell_id in enumerate(c.get("cell_id", pd.Series(dtype=object)).astype(str)):
        if pd.notna(summary["load_rps"].get(cell_id)):
            rows.append({"label": labels.iloc[i], **{m: summary.at[cell_id, m] for m in
                                                     ("load_rps", *plots.LOAD_LATENCIES)}})
    return pd.DataFrame(rows)


def _output_tail(run_dir: Path | None, cell_id: str, n: int = OUTPUT_TAIL_LINES) -> str:
    """The last lines a program wrote (stdout, then stderr), from its cell directory."""
    if run_dir is None:
        return ""
    for path in sorted(Path(run_dir).glob("cells/*/cell.json")):
        try:
            row = json.loads(path.read_text()).get("row", {})
        except ValueError:
            continue
        if row.get("cell_id") == cell_id:
            parts = []
            for stream in ("stdout", "stderr"):
                f = path.parent / f"{stream}.txt"
                lines = f.read_text(errors="replace").splitlines() if f.is_file() else []
                lines = [ln for ln in lines if not ln.startswith(("gc ", "scav "))]  # the runtime's traces
                if lines:
                    parts.append(f"{stream} ({len(lines)} lines, last {min(len(lines), n)}):\n"
                                 + "\n".join(lines[-n:]))
            return "\n".join(parts)
    return ""


# A server's phases whose end the tool view reads (a batch program's only phase ends at its exit).
PROGRAM_TOOL_PHASES = ("ready", "load", "idle")


def _program_tool_blocks(summary: pd.DataFrame, cells: pd.DataFrame) -> list[Block]:
    """What each tool shows at the end of a server's phases; nothing for a batch program."""
    phases = tuple(p for p in PROGRAM_TOOL_PHASES
                   if f"rss@{p}" in summary.columns and summary[f"rss@{p}"].notna().any())
    if not phases or cells.empty:
        return []
    table = views.tool_table(summary, cells, phases)
    shown = [v.name for v in TOOL_VIEWS if table[v.name].notna().any()]
    if table.empty or not shown:
        return []
    table = table[["config", "go_version", "phase", "n"] + shown].rename(columns={"go_version": "Go"})
    unit = metric_unit("rss@idle")
    for name in shown:
        table[name] = table[name].map(lambda v: "–" if v != v else unit.format(v))
    return [Block("h2", "What each tool shows"),
            Block("p", "The same memory as each tool shows it at the end of each phase (median over repeats); "
                       "the runtime's views need --metrics-url."),
            Block("list", [f"{v.name}: {v.formula}" for v in TOOL_VIEWS if v.name in shown]),
            Block("table", table)]


def build_program_blocks(run: Run, summary: pd.DataFrame, figures: list[str]) -> list[Block]:
    cells, manifest = run.cells, run.manifest
    blocks = [Block("h1", "goreclaim report" + (f": {manifest['run_id']}" if "run_id" in manifest else "")),
              Block("p", "A program measured under the matrix: its memory as the process, a dashboard and the "
                         "kernel see it, and the Go runtime's GC cycles and CPU from its gctrace lines where "
                         "it is a Go program. Phases are marked by the harness: start at launch, ready once it "
                         "answers, load while its load command runs, idle while it is left alone, stop when it "
                         "is sent SIGTERM.")]
    for program in manifest.get("programs", []):
        what = program.get("binary") or program.get("package")
        blocks.append(Block("p", f"Program ({program.get('kind')}): {what} "
                                 f"{' '.join(program.get('args', []))}".rstrip()))
    if len(cells):
        metrics = [m for m in PROGRAM_METRICS if m in summary.columns and summary[m].notna().any()]
        rows = []
        labels = analysis.config_label(cells.reset_index(drop=True))
        for i, (_, cell) in enumerate(cells.reset_index(drop=True).iterrows()):
            cell_id = str(cell["cell_id"])
            row = {"configuration": labels.iloc[i], "Go": axis_text(cell.get("go_version", "")),
                   "status": str(cell.get("status", ""))}
            exit_code = axis_text(cell.get("exit_code"))
            row["exit"] = "" if exit_code == "unset" else exit_code
            for m in metrics:
                row[metric_label(m)] = _fmt_value(m, summary[m].get(cell_id) if cell_id in summary.index else None)
            rows.append(row)
        blocks += [Block("h2", "Summary"), Block("table", pd.DataFrame(rows))]
    for rel in figures:
        blocks.append(Block("image", (rel, rel)))
    blocks += _program_tool_blocks(summary, cells)
    blocks.append(Block("h2", "Cells"))
    keep = with_host(cells, [c for c in ("cell_id", "go_version", "status", "exit_code", "oom_killed", "wall_s",
                                         "reason") if c in cells.columns])
    table = cells[keep].copy()
    for c in keep:
        table[c] = table[c].map(lambda v: "" if axis_text(v) == "unset" else axis_text(v)[:300])
    blocks.append(Block("table", table))
    blocks.append(Block("h2", "Output"))
    run_dir = run.path
    for cell_id in cells.get("cell_id", pd.Series(dtype=object)).astype(str):
        tail = _output_tail(run_dir, cell_id)
        blocks += [Block("h3", cell_id), Block("pre", tail) if tail else Block("p", "no output")]
    if len(cells):
        blocks.append(Block("p", "The whole output of each cell: stdout.txt and stderr.txt in its cell directory "
                                 "(the runtime's gctrace and scavtrace lines are left out above); a load "
                                 "command's in load.txt."))
    blocks += [Block("h2", "Provenance"), Block("table", provenance(manifest, cells, run.path))]
    return blocks


def build_results(run: Run, study: Study) -> Results:
    """Everything the report says about a loaded run, the study's claims judged and their figures
    drawn into run.path. Raises StudyError when a figure the study declares cannot be drawn."""
    check_figures(study)
    data = analysis.split_by_cell(run.samples, run.events)
    summary = analysis.summarize(run.cells, data)
    if run.manifest.get("watch"):  # a running process, watched: where its memory is, and what applies to it
        from harness.present.watch import watch_results

        results = watch_results(run, summary, data)
        results.verdicts = claims.evaluate(run, study, summary, data).iloc[0:0]
        return results
    programs = {p.get("scenario") for p in run.manifest.get("programs", [])}
    scenarios = set(run.cells["scenario"].astype(str)) if "scenario" in run.cells.columns else set()
    if programs and scenarios <= programs:  # only programs ran (with built-in workloads: the claims report)
        # No claims about a program: claims are a study's.
        verdicts = claims.evaluate(run, study, summary, data).iloc[0:0]
        todo = {rel: draw for rel, (_, draw) in program_figures(run, data, summary).items()}
        # Drawn here, one after the other: two or three small figures are not worth forking workers for
        # (a fork of a process with threads, a test session's, can leave a worker stuck on a lock).
        figures = {rel: render_png(draw) for rel, draw in todo.items()}
        _write_figures(Path(run.path), figures)
        results = Results(run=run, summary=summary, verdicts=verdicts, figures=figures)
        results.blocks = build_program_blocks(run, summary, list(figures))
        return results
    todo = figures_to_draw(run, study, summary, data)
    rendered = _start_rendering(list(todo.values()))   # drawn while the claims and the text are made
    try:
        verdicts = claims.evaluate(run, study, summary, data)
        # A claim's figure is missing only where its scenario has no usable cell (check_figures
        # refused every figure that cannot be drawn): its rows name no figure then.
        verdicts["figure"] = [f if f in todo else "" for f in verdicts["figure"]]
        blocks = build_blocks(run, study, summary, verdicts, list(todo))
    finally:
        pngs = rendered()   # also on an error: the drawing workers are always reaped
    figures = dict(zip(todo, pngs, strict=False))
    _write_figures(Path(run.path), figures)
    results = Results(run=run, summary=summary, verdicts=verdicts, figures=figures)
    results.blocks = blocks
    return results


def write_report(run_dir: str | Path, study: Study) -> Path:
    """Analyse a run directory in place against a study, writing every exporter's file; returns the
    path of report.md."""
    run_dir = Path(run_dir)
    results = build_results(load_run(run_dir), study)
    for exporter in EXPORTERS:
        (run_dir / exporter.file_name).write_bytes(exporter.render(results))
    return run_dir / "report.md"
