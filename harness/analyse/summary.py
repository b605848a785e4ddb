"""Summaries of a run: DataFrames in, DataFrames out. No I/O, no plotting.

Inputs follow docs/ARCHITECTURE.md: `cells` (cells.csv), tidy `samples`
(cell_id, t_s, source, metric, value) and `events` (cell_id, t_s, kind, name, value, detail).
The identifying columns may be object or categorical. Every summary is NaN where its input is
missing: a run that lost a reading still gets a report.

What each summary metric means and how it is computed is declared in harness.define.metrics;
this module feeds those declarations one cell at a time (`CellData`, a `CellView`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.define.axes import axis_display, axis_text
from harness.define.metrics import METRICS, PHASE_METRICS, EventKind, Source
from harness.define.workloads import WORKLOADS

# How long after a phase's end a reading still counts as "at the end" of it: the phase-change
# reading arrives within milliseconds; 0.25 s leaves room for a slow smaps_rollup read.
SETTLE_WINDOW_S = 0.25
# Readings and phase boundaries are compared with this slack (float seconds from two clocks' sums).
EPS = 1e-9

# cells.csv columns that describe an outcome or identity, not a configuration. gomemlimit_bytes and
# memory_high_bytes restate the gomemlimit and memory_high columns (as resolved bytes), so they never
# label a configuration.
OUTCOME_COLUMNS = frozenset({
    "cell_id", "repeat", "status", "exit_code", "oom_killed", "wall_s", "peak_rss_bytes",
    "peak_cgroup_bytes", "reason", "gomemlimit_bytes", "memory_high_bytes",
    # where it ran (a cluster spreads one configuration over hosts and CPUs)
    "host", "kernel", "cgroup_version", "thp", "khugepaged_ms", "accel", "cpuset",
})
# Where it ran that a run with cells in a guest kernel chose (the kernel and cgroup axes): there they
# tell configurations apart. The kernel axis's column is the kernel that ran (6.1.0-57-amd64 for 6.1).
HOST_COLUMNS = ("kernel", "cgroup_version")

SAMPLE_COLUMNS = ("cell_id", "t_s", "source", "metric", "value")
EVENT_COLUMNS = ("cell_id", "t_s", "kind", "name", "value", "detail")

# summary.csv's fixed columns: numeric metrics in name order, then the text ones.
NUMERIC_METRICS = tuple(sorted(n for n, m in METRICS.items() if m.unit != "text"))
TEXT_METRICS = tuple(sorted(n for n, m in METRICS.items() if m.unit == "text"))
FIXED_COLUMNS = NUMERIC_METRICS + TEXT_METRICS

NAN = float("nan")
EMPTY = pd.Series(dtype=float)
Rows = npt.NDArray[np.intp]   # row numbers into a run's samples or events


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


def _text(column: pd.Series[Any]) -> pd.Series[str]:
    """A key column as plain strings, whether pandas holds it as object or categorical."""
    return column.astype(str)


def parse_detail(detail: object) -> dict[str, Any]:
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


def end_totals(events: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """cell_id -> the `totals` of its `end` event (the detail may hold the totals or {"totals": ...})."""
    events = _frame(events, EVENT_COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    ends = events[_text(events["kind"]) == "end"]
    for cell_id, detail in zip(_text(ends["cell_id"]), ends["detail"], strict=True):
        parsed = parse_detail(detail)
        totals = parsed.get("totals", parsed)
        out[cell_id] = totals if isinstance(totals, dict) else {}
    return out


def _empty_phases() -> pd.DataFrame:
    return pd.DataFrame({"cell_id": pd.Series(dtype=object), "phase": pd.Series(dtype=object),
                         "start_s": pd.Series(dtype=float), "end_s": pd.Series(dtype=float)})


def _cell_ends(events: pd.DataFrame, last_sample: Mapping[str, float] | None) -> dict[str, float]:
    """cell_id -> when the cell ended: its `end` event, else `exit`, else its last sample."""
    kinds = _text(events["kind"])
    cells = _text(events["cell_id"])
    t = events["t_s"].astype(float)
    out = dict(last_sample or {})
    for kind in ("exit", "end"):  # `end` wins over `exit`, which wins over the last sample
        sel = kinds == kind
        if sel.any():
            out.update((str(c), float(v)) for c, v in t[sel].groupby(cells[sel]).min().items())
    return out


def _phase_rows(events: pd.DataFrame, last_sample: Mapping[str, float] | None) -> pd.DataFrame:
    is_phase = (_text(events["kind"]) == "phase").to_numpy()
    if not is_phase.any():
        return _empty_phases()
    cells = _text(events["cell_id"]).to_numpy()[is_phase]
    starts = events["t_s"].astype(float).to_numpy()[is_phase]
    names = _text(events["name"]).to_numpy()[is_phase]
    # Cells in id order, within a cell by time; equal times keep the order they were written in
    # (lexsort is stable).
    codes, _ = pd.factorize(cells, sort=True)
    order = np.lexsort((starts, codes))
    cells, starts, names = cells[order], starts[order], names[order]
    ends_by_cell = _cell_ends(events, last_sample)
    last_of_cell = np.append(cells[1:] != cells[:-1], True)
    ends = np.append(starts[1:], NAN)
    ends[last_of_cell] = [ends_by_cell.get(c, NAN) for c in cells[last_of_cell]]
    return pd.DataFrame({"cell_id": pd.Series(cells, dtype=object), "phase": pd.Series(names, dtype=object),
                         "start_s": starts.astype(float), "end_s": ends.astype(float)})


class CellData:
    """One cell's samples, events and phases: what harness.define.metrics computes from (a CellView).

    Series are cut out of the run's arrays on first use and kept; `value` computes another
    summary metric once.
    """

    def __init__(self, cell_id: str, run: RunData, row: Mapping[str, Any] | None = None,
                 totals: Mapping[str, Any] | None = None):
        self.cell_id = cell_id
        self.row = row if row is not None else {}
        self.totals = totals if totals is not None else run.totals(cell_id)
        workload = WORKLOADS.get(str(self.row.get("workload", "")))
        self.work_phase = workload.work_phase if workload else ""
        self._run = run
        self._values: dict[str, Any] = {}

    def series(self, source: Source, metric: str) -> pd.Series[float]:
        return self._run.series(self.cell_id, source, metric)

    def events(self, kind: EventKind) -> pd.DataFrame:
        return self._run.events(self.cell_id, kind)

    def phases(self) -> list[tuple[str, float, float]]:
        """(phase, start_s, end_s) of every phase occurrence, in order."""
        return self._run.phases_of(self.cell_id)

    def phase_span(self, phase: str) -> tuple[float, float]:
        return self._run.phase_span(self.cell_id, phase)

    def phase_duration(self, phase: str) -> float:
        return self._run.phase_duration(self.cell_id, phase)

    def value(self, metric: str) -> Any:
        if metric not in self._values:
            self._values[metric] = METRICS[metric].compute(self)
        return self._values[metric]


class RunData:
    """A run's samples and events split once by cell, and within a cell by series and event kind.

    Selecting one cell's series by comparing whole columns costs a pass over every sample each
    time; this indexes the rows once, so the summary, the claims and the figures take pieces.
    """

    def __init__(self, samples: pd.DataFrame | None, events: pd.DataFrame | None):
        self.samples_frame = _frame(samples, SAMPLE_COLUMNS)
        self.events_frame = _frame(events, EVENT_COLUMNS)
        s = self.samples_frame
        self._t = s["t_s"].to_numpy(dtype=float)
        self._v = s["value"].to_numpy(dtype=float)
        # The row numbers of each (cell, source, metric) and each (cell, event kind).
        series_groups: dict[Any, Any] = (
            s.groupby(["cell_id", "source", "metric"], observed=True, sort=False).indices if len(s) else {})
        self._series_rows: dict[tuple[str, str, str], Rows] = {
            (str(c), str(src), str(m)): np.asarray(rows, dtype=np.intp) for (c, src, m), rows in series_groups.items()}
        e = self.events_frame
        event_groups: dict[Any, Any] = (
            e.groupby(["cell_id", "kind"], observed=True, sort=False).indices if len(e) else {})
        self._event_rows: dict[tuple[str, str], Rows] = {
            (str(c), str(k)): np.asarray(rows, dtype=np.intp) for (c, k), rows in event_groups.items()}
        self._series: dict[tuple[str, str, str], pd.Series[float]] = {}
        self._phases: pd.DataFrame | None = None
        self._phases_by_cell: dict[str, list[tuple[str, float, float]]] | None = None
        self._totals: dict[str, dict[str, Any]] | None = None

    def cell_ids(self) -> list[str]:
        """Every cell with a sample or an event, in the order first seen (samples first)."""
        return list(dict.fromkeys([k[0] for k in self._series_rows] + [k[0] for k in self._event_rows]))

    def series(self, cell_id: str, source: str, metric: str) -> pd.Series[float]:
        """One cell's readings of one metric, indexed by t_s (sorted, stable), NaN readings dropped."""
        key = (cell_id, source, metric)
        if key not in self._series:
            rows = self._series_rows.get(key)
            if rows is None:
                self._series[key] = EMPTY
            else:
                t, v = self._t[rows], self._v[rows]
                order = np.argsort(t, kind="stable")
                t, v = t[order], v[order]
                keep = ~np.isnan(v)
                self._series[key] = pd.Series(v[keep], index=t[keep])
        return self._series[key]

    def samples(self, cell_id: str) -> pd.DataFrame:
        """One cell's sample rows, in their original order."""
        rows = [r for k, r in self._series_rows.items() if k[0] == cell_id]
        return self.samples_frame.iloc[np.sort(np.concatenate(rows))] if rows else self.samples_frame.iloc[0:0]

    def events(self, cell_id: str, kind: str | None = None) -> pd.DataFrame:
        """One cell's events (of one kind), in their original order."""
        rows = [r for k, r in self._event_rows.items() if k[0] == cell_id and (kind is None or k[1] == kind)]
        return self.events_frame.iloc[np.sort(np.concatenate(rows))] if rows else self.events_frame.iloc[0:0]

    def totals(self, cell_id: str) -> dict[str, Any]:
        if self._totals is None:
            ends = [r for k, r in self._event_rows.items() if k[1] == "end"]
            frame = self.events_frame.iloc[np.sort(np.concatenate(ends))] if ends else None
            self._totals = end_totals(frame)
        return self._totals.get(cell_id, {})

    @property
    def phases(self) -> pd.DataFrame:
        """One row per phase occurrence: (cell_id, phase, start_s, end_s), cells in id order.

        A phase ends where the next one starts; the last ends at the cell's `end` event (or `exit`),
        else at its last sample, else NaN (open-ended).
        """
        if self._phases is None:
            last: dict[str, float] = {}
            for (cell_id, _, _), rows in self._series_rows.items():
                t = float(np.nanmax(self._t[rows]))
                last[cell_id] = max(last.get(cell_id, t), t)
            self._phases = _phase_rows(self.events_frame, last)
        return self._phases

    def phases_of(self, cell_id: str) -> list[tuple[str, float, float]]:
        if self._phases_by_cell is None:
            by: dict[str, list[tuple[str, float, float]]] = {}
            p = self.phases
            for c, name, start, end in zip(p["cell_id"], p["phase"], p["start_s"], p["end_s"], strict=True):
                by.setdefault(c, []).append((name, float(start), float(end)))
            self._phases_by_cell = by
        return self._phases_by_cell.get(cell_id, [])

    def phase_span(self, cell_id: str, phase: str) -> tuple[float, float]:
        """(start_s, end_s) of the last occurrence of `phase` in a cell; NaNs if it never ran."""
        found = [(s, e) for name, s, e in self.phases_of(cell_id) if name == phase]
        return found[-1] if found else (NAN, NAN)

    def phase_duration(self, cell_id: str, phase: str) -> float:
        """Total seconds spent in `phase` (summed over its occurrences); NaN if it never ran."""
        found = [e - s for name, s, e in self.phases_of(cell_id) if name == phase]
        # An open-ended occurrence (no end) adds nothing, as pandas' sum skips NaN.
        return float(np.nansum(found)) if found else NAN

    def cell(self, cell_id: str, row: Mapping[str, Any] | None = None) -> CellData:
        return CellData(cell_id, self, row)


def split_by_cell(samples: pd.DataFrame | None, events: pd.DataFrame | None) -> RunData:
    """A run's samples and events indexed once by cell (and series, event kind) for repeated reads."""
    return RunData(samples, events)


def _phase_series(cell: CellData, reads: tuple[tuple[Source, str], ...]) -> pd.Series[float]:
    """The first of `reads` that has readings (empty when none has)."""
    s = EMPTY
    for source, metric in reads:
        s = cell.series(source, metric)
        if not s.empty:
            break
    return s


def phase_values(cell: CellData) -> dict[str, float]:
    """`X@phase` for every X in PHASE_METRICS and every phase the cell ran."""
    out: dict[str, float] = {}
    occurrences = cell.phases()
    if not occurrences:
        return out
    names = list(dict.fromkeys(name for name, _, _ in occurrences))
    spans = {phase: cell.phase_span(phase) for phase in names}
    windows = []
    for i, phase in enumerate(names):
        start, end = spans[phase]
        end = math.inf if math.isnan(end) else end
        # For the sampler's sources the state a phase leaves behind is the first reading just
        # after it ends: the sampler takes one on every phase change (Sampler.trigger), which
        # matters for phases shorter than a sampling period, such as a FreeOSMemory call. A
        # reading taken after the next phase has ended shows that phase's work instead, so the
        # window stops there. The runtime's own reading comes just before (END_OF_PHASE_READING).
        # The last phase ends with the workload: a reading after that shows the process exiting
        # (the cgroup uncharging its memory page by page), so its state is the last one by the end.
        next_end = spans[names[i + 1]][1] if i + 1 < len(names) else end
        windows.append((phase, start, end, min(end + SETTLE_WINDOW_S, math.inf if math.isnan(next_end) else next_end)))
    for x, declared in PHASE_METRICS.items():
        s = _phase_series(cell, declared.reads)
        t, v = s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)
        for phase, start, end, window_end in windows:
            first_after = np.searchsorted(t, end - EPS, side="left")
            last_by_end = np.searchsorted(t, end + EPS, side="right") - 1
            in_phase = last_by_end >= 0 and t[last_by_end] >= start - EPS
            if declared.only_inside:
                value = v[last_by_end] if in_phase else NAN
            elif declared.end_reading == "last_by_end" and in_phase:
                value = v[last_by_end]   # the workload's own reading at the phase change
            elif first_after < len(t) and t[first_after] <= window_end + EPS:
                value = v[first_after]
            elif declared.source in ("smaps", "docker"):
                # The slow tier (and Docker's once-a-second stream) may have no reading near the phase's
                # end; one from inside the phase is the closest honest value, one from an earlier phase is not.
                value = v[last_by_end] if in_phase else NAN
            else:
                value = v[last_by_end] if last_by_end >= 0 else NAN  # the last reading by the end
            out[f"{x}@{phase}"] = float(value)
    return out


def summarize(cells: pd.DataFrame | None, samples: pd.DataFrame | RunData | None,
              events: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell (index cell_id): every name in METRICS, and `X@phase` per phase.

    `samples` may be a RunData already split (then `events` is ignored).
    """
    cells = _frame(cells, ("cell_id", "workload"))
    run = samples if isinstance(samples, RunData) else RunData(samples, events)
    cell_rows = {str(r["cell_id"]): {str(k): v for k, v in r.items()}
                 for r in cells.to_dict("records") if not _missing(r["cell_id"])}
    cell_ids = list(dict.fromkeys(list(cell_rows) + run.cell_ids()))
    rows = []
    for cell_id in cell_ids:
        cell = CellData(cell_id, run, cell_rows.get(cell_id, {}))
        row: dict[str, object] = {"cell_id": cell_id}
        row.update((name, cell.value(name)) for name in FIXED_COLUMNS)
        row.update(phase_values(cell))
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=list(FIXED_COLUMNS)).rename_axis("cell_id")
    out = pd.DataFrame(rows).set_index("cell_id")
    phase_cols = sorted(c for c in out.columns if "@" in c)
    return out[list(FIXED_COLUMNS) + phase_cols]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def retained_fraction(after: float, peak: float, baseline: float = 0.0) -> float:
    """Share of what was gained above `baseline` at `peak` that is still there `after`."""
    try:
        gained = float(peak) - float(baseline)
        if not gained > 0:
            return NAN
        return (float(after) - float(baseline)) / gained
    except (TypeError, ValueError):
        return NAN


def config_columns(cells: pd.DataFrame) -> list[str]:
    """The cells.csv columns that define a configuration (everything but identity and outcome)."""
    chosen = set(HOST_COLUMNS) if _in_guests(cells) else set()
    return [c for c in cells.columns if c not in OUTCOME_COLUMNS or c in chosen]


def _in_guests(cells: pd.DataFrame) -> bool:
    """Whether some cells ran in a guest kernel (accel kvm or tcg), so the host was an axis."""
    if "accel" not in cells.columns:
        return False
    return bool(cells["accel"].map(axis_text).isin(("kvm", "tcg")).any())


def config_label(cells: pd.DataFrame) -> pd.Series:
    """A short label per cell from the axis columns that vary within its scenario."""
    labels: dict[Hashable, str] = {}
    group_key = cells["scenario"] if "scenario" in cells.columns else pd.Series("", index=cells.index)
    candidates = [c for c in config_columns(cells) if c not in ("scenario", "workload", "args", "backend")]
    texts = {c: cells[c].map(axis_text) for c in candidates}
    for idx in group_key.groupby(group_key).groups.values():
        varying = [c for c in candidates if texts[c].loc[idx].nunique() > 1]
        if "go_version" in varying and "go" in varying:
            varying.remove("go")
        if "cgroup" in varying and "cgroup_version" in varying:  # the axis and what ran say the same
            varying.remove("cgroup_version")
        if "memory" in varying and "memory_limit_bytes" in varying:  # the limit, and it resolved in bytes
            varying.remove("memory_limit_bytes")
        for i in idx:
            labels[i] = ", ".join(f"{c}={axis_display(c, cells.at[i, c])}" for c in varying) or "default"
    return pd.Series([labels.get(i, "") for i in cells.index], index=cells.index, dtype=object)


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
        keyed[c] = keyed[c].map(axis_text)
    values = summary.reindex(keyed["cell_id"])
    for m in metrics:
        keyed[m] = values[m].to_numpy(dtype=float) if m in values.columns else np.nan
    # Configurations in the order they first ran, which is the scenario's matrix order
    # (GOGC 50, 100, 300, off), not the string order ("100" < "300" < "50"). One aggregation for
    # every metric at once: the report pools dozens of metrics over hundreds of cells.
    grouped = keyed.groupby(key_cols, sort=False, dropna=False)
    out = grouped.agg(config=("config", "first"), cell_ids=("cell_id", ";".join), n=("cell_id", "size"))
    if metrics:
        stats = grouped[metrics].agg(["median", "min", "max"]).astype(float)
        pairs = stats.columns   # (metric, statistic)
        assert isinstance(pairs, pd.MultiIndex)
        stats.columns = [f"{m}_{stat}" for m, stat in pairs]
        out = pd.concat([out, stats], axis=1)
    out = out.reset_index()
    out["n"] = out["n"].astype(int)
    return out
