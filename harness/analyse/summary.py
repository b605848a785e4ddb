"""Summaries of a run: DataFrames in, DataFrames out. No I/O, no plotting.

Inputs follow docs/ARCHITECTURE.md: `cells` (cells.csv), tidy `samples`
(cell_id, t_s, source, metric, value) and `events` (cell_id, t_s, kind, name, value, detail).
Every summary is NaN where its input is missing: a run that lost a reading still gets a report.
"""

from __future__ import annotations

import json
import math
from typing import Iterable

import numpy as np
import pandas as pd

# Plain per-cell summary names, usable in scenario expectations.
METRICS = frozenset({
    "peak_rss", "peak_cgroup", "mean_rss", "final_rss", "final_lazyfree", "final_vm_size",
    "max_vm_size", "gc_cycles", "gc_cpu_s", "gc_cpu_fraction", "cpu_s", "minflt", "majflt",
    "ops", "throughput", "freeos_calls", "freeos_p50_ns", "freeos_p99_ns", "oom_killed",
    "wall_s", "release_s",
})

# X of the per-phase summaries `X@phase` (value of X at the end of that phase).
PHASE_METRICS = frozenset({
    "rss", "lazyfree", "cgroup_usage", "working_set", "heap_inuse", "heap_idle",
    "heap_released", "heap_goal", "vm_size",
})


# How long after a phase's end a reading still counts as "at the end" of it: the phase-change
# reading arrives within milliseconds; 0.25 s leaves room for a slow smaps_rollup read.
SETTLE_WINDOW_S = 0.25

# Where each per-phase X is read: (source, metric names in order of preference).
PHASE_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rss": ("proc", ("vm_rss",)),
    "vm_size": ("proc", ("vm_size",)),
    "lazyfree": ("smaps", ("lazyfree",)),
    "cgroup_usage": ("cgroup", ("usage",)),
    "working_set": ("cgroup", ("working_set",)),
    "heap_inuse": ("runtime", ("heap_inuse",)),
    "heap_idle": ("runtime", ("heap_idle",)),
    "heap_released": ("runtime", ("heap_released",)),
    "heap_goal": ("runtime", ("heap_goal", "next_gc")),
}

# The phase whose length turns a workload's `ops` total into a throughput.
WORK_PHASE = {
    "freeos-periodic": "load",
    "large-churn": "churn",
    "small-churn": "churn",
    "cache-growth": "serve",
    "pressure": "second",
    "alloc-release": "allocate",
}

# cells.csv columns that describe an outcome or identity, not a configuration.
OUTCOME_COLUMNS = frozenset({
    "cell_id", "repeat", "status", "exit_code", "oom_killed", "wall_s", "peak_rss_bytes",
    "peak_cgroup_bytes", "reason",
})

SAMPLE_COLUMNS = ("cell_id", "t_s", "source", "metric", "value")
EVENT_COLUMNS = ("cell_id", "t_s", "kind", "name", "value", "detail")
PHASE_COLUMNS = ("cell_id", "phase", "start_s", "end_s")

MiB = 1024 * 1024


def _frame(df: pd.DataFrame | None, columns: Iterable[str]) -> pd.DataFrame:
    """`df` with at least `columns` (missing ones filled with NaN); an empty frame for None."""
    columns = list(columns)
    if df is None:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    out = df
    for c in columns:
        if c not in out.columns:
            out = out.assign(**{c: np.nan})
    return out


def axis_str(value) -> str:
    """One spelling for an axis value however pandas read it: 0.0 -> "0", True -> "true", NaN -> "unset"."""
    if value is None:
        return "unset"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "unset"
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "none"):
        return "unset"
    if text in ("True", "False"):
        return text.lower()
    return text


# Axis columns whose values cells.csv holds as bytes.
BYTE_AXES = ("gomemlimit", "memory", "memory_limit_bytes")


def axis_display(column: str, value) -> str:
    """axis_str, with byte counts of size axes written as sizes (314572800 -> "300MiB")."""
    text = axis_str(value)
    if column in BYTE_AXES and text.isdigit():
        from harness.define.units import format_size

        return format_size(int(text))
    return text


def parse_detail(detail) -> dict:
    """An event's `detail` JSON as a dict; {} when absent or not JSON."""
    if isinstance(detail, dict):
        return detail
    if not isinstance(detail, str) or not detail:
        return {}
    try:
        parsed = json.loads(detail)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def end_totals(events: pd.DataFrame | None) -> dict[str, dict]:
    """cell_id -> the `totals` of its `end` event (the detail may hold the totals or {"totals": ...})."""
    events = _frame(events, EVENT_COLUMNS)
    out: dict[str, dict] = {}
    for row in events[events["kind"] == "end"].itertuples(index=False):
        detail = parse_detail(row.detail)
        totals = detail.get("totals", detail)
        out[str(row.cell_id)] = totals if isinstance(totals, dict) else {}
    return out


def phase_table(events: pd.DataFrame | None, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per phase occurrence: (cell_id, phase, start_s, end_s).

    A phase ends where the next one starts; the last ends at the cell's `end` event (or `exit`),
    else at its last sample, else NaN (open-ended).
    """
    events = _frame(events, EVENT_COLUMNS)
    samples = _frame(samples, SAMPLE_COLUMNS)
    rows = []
    last_sample = samples.groupby("cell_id")["t_s"].max() if len(samples) else pd.Series(dtype=float)
    for cell_id, ev in events.groupby("cell_id", sort=True):
        phases = ev[ev["kind"] == "phase"].sort_values("t_s", kind="stable")
        if phases.empty:
            continue
        ends = ev[ev["kind"] == "end"]["t_s"]
        if ends.empty:
            ends = ev[ev["kind"] == "exit"]["t_s"]
        if not ends.empty:
            cell_end = float(ends.min())
        elif cell_id in last_sample.index:
            cell_end = float(last_sample[cell_id])
        else:
            cell_end = float("nan")
        starts = phases["t_s"].astype(float).tolist()
        names = phases["name"].astype(str).tolist()
        for i, (name, start) in enumerate(zip(names, starts)):
            end = starts[i + 1] if i + 1 < len(starts) else cell_end
            rows.append((cell_id, name, start, end))
    return pd.DataFrame(rows, columns=list(PHASE_COLUMNS)).astype(
        {"start_s": float, "end_s": float}) if rows else pd.DataFrame(
        {"cell_id": pd.Series(dtype=object), "phase": pd.Series(dtype=object),
         "start_s": pd.Series(dtype=float), "end_s": pd.Series(dtype=float)})


def series(samples: pd.DataFrame | None, cell_id: str, source: str, metric: str) -> pd.Series:
    """One cell's readings of one metric as a Series indexed by t_s (sorted)."""
    samples = _frame(samples, SAMPLE_COLUMNS)
    sel = samples[(samples["cell_id"] == cell_id) & (samples["source"] == source)
                  & (samples["metric"] == metric)]
    s = pd.Series(sel["value"].astype(float).to_numpy(), index=sel["t_s"].astype(float).to_numpy())
    return s.sort_index(kind="stable").dropna()


def value_at(s: pd.Series, t: float) -> float:
    """The last reading at or before t; NaN if none."""
    if s.empty or (isinstance(t, float) and math.isnan(t)):
        return float("nan")
    before = s[s.index <= t + 1e-9]
    return float(before.iloc[-1]) if len(before) else float("nan")


def time_weighted_mean(s: pd.Series) -> float:
    """Trapezoid mean over t_s; the value itself for a single reading."""
    if s.empty:
        return float("nan")
    if len(s) == 1 or s.index[-1] == s.index[0]:
        return float(s.mean())
    t = s.index.to_numpy(dtype=float)
    v = s.to_numpy(dtype=float)
    area = float(np.sum((v[1:] + v[:-1]) / 2.0 * np.diff(t)))
    return area / float(t[-1] - t[0])


def slope(s: pd.Series, start_s: float = -math.inf, end_s: float = math.inf) -> float:
    """Least-squares slope (units per second) of the readings within [start_s, end_s]."""
    sel = s[(s.index >= start_s) & (s.index <= end_s)]
    if len(sel) < 2 or sel.index.max() == sel.index.min():
        return float("nan")
    t = sel.index.to_numpy(dtype=float)
    v = sel.to_numpy(dtype=float)
    return float(np.polyfit(t, v, 1)[0])


def retained_fraction(after: float, peak: float, baseline: float = 0.0) -> float:
    """Share of what was gained above `baseline` at `peak` that is still there `after`."""
    try:
        gained = float(peak) - float(baseline)
        if not gained > 0:
            return float("nan")
        return (float(after) - float(baseline)) / gained
    except (TypeError, ValueError):
        return float("nan")


def phase_span(phases: pd.DataFrame, cell_id: str, phase: str) -> tuple[float, float]:
    """(start_s, end_s) of the last occurrence of `phase` in a cell; NaNs if it never ran."""
    sel = phases[(phases["cell_id"] == cell_id) & (phases["phase"] == phase)]
    if sel.empty:
        return float("nan"), float("nan")
    row = sel.iloc[-1]
    return float(row["start_s"]), float(row["end_s"])


def phase_duration(phases: pd.DataFrame, cell_id: str, phase: str) -> float:
    """Total seconds spent in `phase` (summed over its occurrences); NaN if it never ran."""
    sel = phases[(phases["cell_id"] == cell_id) & (phases["phase"] == phase)]
    if sel.empty:
        return float("nan")
    return float((sel["end_s"] - sel["start_s"]).sum())


def phase_mean(samples: pd.DataFrame, phases: pd.DataFrame, cell_id: str, source: str,
               metric: str, phase: str) -> float:
    """Time-weighted mean of a metric over the last occurrence of a phase."""
    start, end = phase_span(phases, cell_id, phase)
    if math.isnan(start):
        return float("nan")
    s = series(samples, cell_id, source, metric)
    end = math.inf if math.isnan(end) else end
    return time_weighted_mean(s[(s.index >= start) & (s.index <= end)])


def release_seconds(rss: pd.Series, release_start: float) -> float:
    """Seconds from `release_start` until RSS falls below half its value at that instant."""
    if rss.empty or math.isnan(release_start):
        return float("nan")
    at_start = value_at(rss, release_start)
    if math.isnan(at_start):
        after = rss[rss.index >= release_start]
        if after.empty:
            return float("nan")
        at_start = float(after.iloc[0])
    below = rss[(rss.index >= release_start) & (rss < at_start / 2.0)]
    return float(below.index[0] - release_start) if len(below) else float("nan")


def _num(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _phase_values(samples: pd.DataFrame, phases: pd.DataFrame, cell_id: str) -> dict[str, float]:
    out: dict[str, float] = {}
    cell_phases = phases[phases["cell_id"] == cell_id]
    if cell_phases.empty:
        return out
    cache: dict[str, pd.Series] = {}
    for x, (source, names) in PHASE_SOURCES.items():
        s = pd.Series(dtype=float)
        for name in names:
            s = series(samples, cell_id, source, name)
            if not s.empty:
                break
        cache[x] = s
    names = list(dict.fromkeys(cell_phases["phase"]))
    spans = {phase: phase_span(phases, cell_id, phase) for phase in names}
    for i, phase in enumerate(names):
        start, end = spans[phase]
        end_or_inf = math.inf if math.isnan(end) else end
        # The state a phase leaves behind is the first reading just after it ends: the sampler
        # takes one on every phase change (Sampler.trigger), which matters for phases shorter
        # than a sampling period, such as a FreeOSMemory call. A reading taken after the next
        # phase has ended shows that phase's work instead, so the window stops there.
        next_end = spans[names[i + 1]][1] if i + 1 < len(names) else math.inf
        window_end = min(end_or_inf + SETTLE_WINDOW_S, math.inf if math.isnan(next_end) else next_end)
        for x, s in cache.items():
            after = s[(s.index >= end_or_inf - 1e-9) & (s.index <= window_end + 1e-9)]
            if len(after):
                out[f"{x}@{phase}"] = float(after.iloc[0])
            elif PHASE_SOURCES[x][0] == "smaps":
                # The slow tier may have no reading near the phase's end; one from inside
                # the phase is the closest honest value, one from an earlier phase is not.
                within = s[(s.index >= start) & (s.index <= end_or_inf + 1e-9)]
                out[f"{x}@{phase}"] = float(within.iloc[-1]) if len(within) else float("nan")
            else:
                out[f"{x}@{phase}"] = value_at(s, end_or_inf)
    return out


def summarize(cells: pd.DataFrame | None, samples: pd.DataFrame | None,
              events: pd.DataFrame | None) -> pd.DataFrame:
    """One row per cell (index cell_id): every name in METRICS, `X@phase` per phase, gc_cpu_source."""
    cells = _frame(cells, ("cell_id", "workload", "oom_killed", "wall_s", "peak_rss_bytes",
                           "peak_cgroup_bytes"))
    samples = _frame(samples, SAMPLE_COLUMNS)
    events = _frame(events, EVENT_COLUMNS)
    phases = phase_table(events, samples)
    totals_by_cell = end_totals(events)
    cell_ids = list(dict.fromkeys(
        [str(c) for c in cells["cell_id"].dropna()]
        + [str(c) for c in samples["cell_id"].dropna().unique()]
        + [str(c) for c in events["cell_id"].dropna().unique()]))
    cell_rows = {str(r["cell_id"]): r for _, r in cells.iterrows()}
    # Split once: filtering the whole (large, 100 Hz) frame per cell and metric would dominate.
    samples_by_cell = {str(k): g for k, g in samples.groupby(samples["cell_id"].astype(str))}
    events_by_cell = {str(k): g for k, g in events.groupby(events["cell_id"].astype(str))}
    all_samples, all_events = samples, events
    rows = []
    for cell_id in cell_ids:
        cell = cell_rows.get(cell_id, {})
        totals = totals_by_cell.get(cell_id, {})
        samples = samples_by_cell.get(cell_id, all_samples.iloc[0:0])
        events = events_by_cell.get(cell_id, all_events.iloc[0:0])
        rss = series(samples, cell_id, "proc", "vm_rss")
        vm_size = series(samples, cell_id, "proc", "vm_size")
        usage = series(samples, cell_id, "cgroup", "usage")
        lazyfree = series(samples, cell_id, "smaps", "lazyfree")
        num_gc = series(samples, cell_id, "runtime", "num_gc")
        gc_cpu = series(samples, cell_id, "runtime", "gc_cpu_s")
        gc_frac = series(samples, cell_id, "runtime", "gc_cpu_fraction")
        ops_series = series(samples, cell_id, "runtime", "ops")

        wall = _num(cell.get("wall_s")) if len(cell) else float("nan")
        if math.isnan(wall):
            wall = _num(totals.get("wall_s"))
        row: dict[str, object] = {"cell_id": cell_id}
        row["peak_rss"] = np.nanmax([rss.max() if len(rss) else np.nan,
                                     _num(cell.get("peak_rss_bytes")) if len(cell) else np.nan,
                                     -np.inf])
        row["peak_cgroup"] = np.nanmax([usage.max() if len(usage) else np.nan,
                                        _num(cell.get("peak_cgroup_bytes")) if len(cell) else np.nan,
                                        -np.inf])
        for key in ("peak_rss", "peak_cgroup"):
            if row[key] == -np.inf:
                row[key] = float("nan")
        row["mean_rss"] = time_weighted_mean(rss)
        row["final_rss"] = float(rss.iloc[-1]) if len(rss) else float("nan")
        row["final_lazyfree"] = float(lazyfree.iloc[-1]) if len(lazyfree) else float("nan")
        row["final_vm_size"] = float(vm_size.iloc[-1]) if len(vm_size) else float("nan")
        row["max_vm_size"] = float(vm_size.max()) if len(vm_size) else float("nan")
        gc_cycles = _num(totals.get("num_gc"))
        row["gc_cycles"] = gc_cycles if not math.isnan(gc_cycles) else (
            float(num_gc.max()) if len(num_gc) else float("nan"))
        row["gc_cpu_fraction"] = float(gc_frac.iloc[-1]) if len(gc_frac) else float("nan")
        if len(gc_cpu):
            row["gc_cpu_s"], row["gc_cpu_source"] = float(gc_cpu.max()), "runtime/metrics"
        elif len(gc_frac) and not math.isnan(wall):
            row["gc_cpu_s"] = float(gc_frac.iloc[-1]) * wall
            row["gc_cpu_source"] = "gc_cpu_fraction*wall"
        else:
            row["gc_cpu_s"], row["gc_cpu_source"] = float("nan"), ""
        row["cpu_s"] = _num(totals.get("utime_s")) + _num(totals.get("stime_s"))
        row["minflt"] = _num(totals.get("minflt"))
        row["majflt"] = _num(totals.get("majflt"))
        ops = _num(totals.get("ops"))
        if math.isnan(ops) and len(ops_series):
            ops = float(ops_series.max())
        row["ops"] = ops
        work = WORK_PHASE.get(str(cell.get("workload", "")) if len(cell) else "", "")
        duration = phase_duration(phases, cell_id, work) if work else float("nan")
        if not duration > 0:
            duration = wall
        row["throughput"] = ops / duration if duration and duration > 0 else float("nan")
        freeos = events[(events["cell_id"] == cell_id) & (events["kind"] == "freeos")]["value"]
        freeos = freeos.astype(float).dropna()
        row["freeos_calls"] = float(len(freeos))
        row["freeos_p50_ns"] = float(freeos.quantile(0.5)) if len(freeos) else float("nan")
        row["freeos_p99_ns"] = float(freeos.quantile(0.99)) if len(freeos) else float("nan")
        oom = cell.get("oom_killed") if len(cell) else None
        row["oom_killed"] = float(axis_str(oom) in ("true", "1")) if oom is not None and axis_str(
            oom) != "unset" else float("nan")
        row["wall_s"] = wall
        release_start, _ = phase_span(phases, cell_id, "release")
        row["release_s"] = release_seconds(rss, release_start)
        row.update(_phase_values(samples, phases, cell_id))
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=sorted(METRICS) + ["gc_cpu_source"]).rename_axis("cell_id")
    out = pd.DataFrame(rows).set_index("cell_id")
    fixed = [m for m in sorted(METRICS)] + ["gc_cpu_source"]
    phase_cols = sorted(c for c in out.columns if "@" in c)
    for m in fixed:
        if m not in out.columns:
            out[m] = np.nan
    return out[fixed + phase_cols]


def config_columns(cells: pd.DataFrame) -> list[str]:
    """The cells.csv columns that define a configuration (everything but identity and outcome)."""
    return [c for c in cells.columns if c not in OUTCOME_COLUMNS]


def config_label(cells: pd.DataFrame) -> pd.Series:
    """A short label per cell from the axis columns that vary within its scenario."""
    cells = cells.copy()
    labels = pd.Series("", index=cells.index, dtype=object)
    group_key = cells["scenario"] if "scenario" in cells.columns else pd.Series("", index=cells.index)
    candidates = [c for c in config_columns(cells) if c not in ("scenario", "workload", "args", "backend")]
    for _, idx in group_key.groupby(group_key).groups.items():
        sub = cells.loc[idx]
        varying = [c for c in candidates if sub[c].map(axis_str).nunique() > 1]
        if "go_version" in varying and "go" in varying:
            varying.remove("go")
        for i in idx:
            labels[i] = ", ".join(f"{c}={axis_display(c, cells.at[i, c])}" for c in varying) or "default"
    return labels


def by_config(summary: pd.DataFrame, cells: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """Cells that differ only in `repeat`, pooled: `<metric>_median/_min/_max` and `n` per configuration.

    Keeps the configuration columns (as axis strings), a `config` label and `cell_ids`.
    """
    metrics = list(metrics)
    cells = cells.copy()
    cells["cell_id"] = cells["cell_id"].astype(str)
    cells["config"] = config_label(cells)
    key_cols = config_columns(cells.drop(columns=["config"]))
    keyed = cells[["cell_id", "config"] + key_cols].copy()
    for c in key_cols:
        keyed[c] = keyed[c].map(axis_str)
    values = summary.reindex(keyed["cell_id"])
    for m in metrics:
        keyed[m] = values[m].to_numpy(dtype=float) if m in values.columns else np.nan
    rows = []
    # Configurations in the order they first ran, which is the scenario's matrix order
    # (GOGC 50, 100, 300, off), not the string order ("100" < "300" < "50").
    for key, group in keyed.groupby(key_cols, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(key_cols, key))
        row["config"] = group["config"].iloc[0]
        row["cell_ids"] = ";".join(group["cell_id"])
        row["n"] = len(group)
        for m in metrics:
            v = group[m].astype(float)
            row[f"{m}_median"] = float(v.median()) if v.notna().any() else float("nan")
            row[f"{m}_min"] = float(v.min()) if v.notna().any() else float("nan")
            row[f"{m}_max"] = float(v.max()) if v.notna().any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
