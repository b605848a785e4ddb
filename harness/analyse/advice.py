"""From an advise run's cells to advice: each GOGC × GOMEMLIMIT configuration classified, the
Pareto front of the healthy ones, one chosen by a stated objective, and the smallest memory limit
that stayed healthy. Pure functions over the cells and summary frames: nothing here runs a cell.

Everything is computed from the run's own measurements; a configuration that did not run is
never recommended, and a choice the repeats cannot separate from the others is "inconclusive".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from harness.analyse.summary import config_columns
from harness.define.advice_grid import AUTOMEMLIMIT, AUTOMEMLIMIT_NOTE
from harness.define.axes import OF_MEMORY_MAX, axis_text, order_key
from harness.define.metrics import METRICS
from harness.define.scenario import Scenario
from harness.define.units import format_size
from harness.run.backends.base import ERRORS, MEASURED

NAN = float("nan")

# The GC CPU limiter caps GC at 50% of GOMAXPROCS × time (runtime/mgclimit.go); a GC that takes
# that much is spiralling whether or not the runtime has a limiter to show it (it came in Go 1.19).
SPIRAL_GC_CPU_SHARE = 0.5
# Kubernetes evicts on the working set; operators keep it below ~90% of the limit (automemlimit's
# default share, nats-io/k8s#965 moved to 80% after OOM kills).
DEFAULT_HEADROOM = 0.9

# Classes, most severe first: a configuration takes the first that applies in any repeat.
ConfigClass = Literal["failed", "oom_killed", "death_spiral", "throttled", "over_headroom", "healthy"]
CLASSES: dict[ConfigClass, str] = {
    "failed": "did not run to its end in some repeat (timeout, error, non-zero exit), or requests failed under its "
              "load (responses outside 2xx/3xx, or none)",
    "oom_killed": "the kernel's OOM killer ended it in some repeat",
    "death_spiral": "the GC CPU limiter engaged (/gc/limiter/last-enabled:gc-cycle above 0, Go 1.19+), or GC took "
                    f"at least {SPIRAL_GC_CPU_SHARE:.0%} of GOMAXPROCS × wall time (golang/go#58106)",
    # Every `high` event is a throttle: "the number of times processes of the cgroup are throttled and routed to
    # perform direct memory reclaim because the high memory boundary was exceeded" (Documentation/admin-guide/
    # cgroup-v2.rst, memory.events). A count, so it holds under a guest's TCG too, where PSI's stall times
    # (Documentation/accounting/psi.rst) are not the host's: the count decides, PSI is shown beside it.
    "throttled": "memory.high was crossed in some repeat: the kernel throttled it into direct reclaim (memory.events "
                 "high above 0; cgroup v2 only)",
    "over_headroom": "its peak working set (what kubectl top and evictions read) went above the headroom",
    "healthy": "none of the above in every repeat",
}
HEALTHY: ConfigClass = "healthy"


@dataclass(frozen=True)
class Performance:
    metric: str
    higher_is_better: bool
    # A second measure judged beside it (higher is better): a server's requests/s beside its p99 latency.
    companion: str = ""

    @property
    def label(self) -> str:
        return METRICS[self.metric].label


# What "faster" means for a target, in the order they are looked for.
PERFORMANCE = {
    "throughput": Performance("throughput", True),     # a built-in workload: ops over its work phase
    "ns_per_op": Performance("ns_per_op", False),      # a program's benchmarks
    "wall_s": Performance("wall_s", False),            # a batch program: the time it takes
    # A server under a load generator whose summary was parsed (hey, wrk --latency): what operators tune
    # GOGC for is its tail latency, at the requests/s it serves.
    "load_p99_ns": Performance("load_p99_ns", False, companion="load_rps"),
}
# The companion's column stem in the configuration table.
COMPANION = "rps"

OBJECTIVES: dict[str, str] = {
    "throughput": "the best performance (without a performance figure: the least GC CPU); ties go to the smaller "
                  "peak working set",
    "memory": "the smallest peak working set; ties go to the better performance",
    "balanced": "the smallest sum of two distances from the best healthy value, each scaled by its range among "
                "healthy configurations: peak working set, and performance (without a performance figure: GC CPU "
                "share; a server under load: p99 latency and requests/s); GC CPU is not counted beside performance, "
                "which already pays for it",
    "latency": "a server under load: the smallest sum of two distances from the best healthy value, each scaled by "
               "its range among healthy configurations: p99 latency and requests/s (GC CPU is not counted: the "
               "latency already pays for it); ties go to the smaller peak working set. Without a parsed load "
               "(hey or wrk --latency), as throughput",
}
DEFAULT_OBJECTIVE = "balanced"


def performance_for(scenario: Scenario) -> str | None:
    """The PERFORMANCE key that measures the target's speed; None for a server without a load command or
    a workload without a work phase. A server's load is judged by what its load generator reports."""
    program = scenario.program
    if program is None:
        return "throughput" if scenario.descriptor.work_phase else None
    if program.kind == "bench":
        return "ns_per_op"
    if program.load:
        return "load_p99_ns"
    if program.serves or program.idle_s is not None:
        return None
    return "wall_s"


# ------------------------------------------------------------------------------- configurations

KEY = ("gogc", "gomemlimit", "memory_limit_bytes")
# Configuration columns that never tell two contexts apart: what names the target, what the key
# already holds (`memory` is the limit as written), `go` beside the go_version it resolved to.
# memory_high_bytes follows from the limit where memory.high is a share of it.
_NOT_CONTEXT = {"scenario", "workload", "args", "backend", "memory", "go", "memory_high_bytes", *KEY}


def _text(value: object) -> str:
    return axis_text(value)


def context_columns(cells: pd.DataFrame) -> list[str]:
    """The columns besides GOGC, GOMEMLIMIT and the limit that vary: each value set is a context
    (a Go version, say) that gets its own recommendation."""
    return [c for c in config_columns(cells) if c not in _NOT_CONTEXT and cells[c].map(_text).nunique() > 1]


def _stats(values: pd.Series) -> tuple[float, float, float]:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return (float(v.median()), float(v.min()), float(v.max())) if len(v) else (NAN, NAN, NAN)


def classify(runs: pd.DataFrame, memory_limit: float, headroom: float) -> tuple[ConfigClass, str]:
    """(class, why) of one configuration from its repeats (rows with status, oom_killed,
    limiter_engaged, gc_cpu_share, peak_working_set, and a server's load_errors)."""
    n = len(runs)
    statuses = runs["status"].map(str)
    bad = statuses[~statuses.isin(MEASURED) | (statuses == "exited")]
    if len(bad):
        return "failed", f"{', '.join(sorted(set(bad)))} in {len(bad)} of {n}"
    errors = pd.to_numeric(runs.get("load_errors", pd.Series(dtype=float)), errors="coerce").fillna(0)
    if (errors > 0).any():
        return "failed", f"up to {int(errors.max())} failed requests under load in {int((errors > 0).sum())} of {n}"
    oom = pd.to_numeric(runs["oom_killed"], errors="coerce").fillna(0) > 0
    if oom.any():
        return "oom_killed", f"OOM-killed in {int(oom.sum())} of {n}"
    limiter = pd.to_numeric(runs["limiter_engaged"], errors="coerce").fillna(0) > 0
    if limiter.any():
        return "death_spiral", f"GC CPU limiter engaged in {int(limiter.sum())} of {n}"
    share = pd.to_numeric(runs["gc_cpu_share"], errors="coerce")
    if (share >= SPIRAL_GC_CPU_SHARE).any():
        return "death_spiral", f"GC CPU share up to {share.max():.0%} (≥ {SPIRAL_GC_CPU_SHARE:.0%})"
    high = pd.to_numeric(runs.get("memory_high_events", pd.Series(dtype=float)), errors="coerce").fillna(0)
    if (high > 0).any():
        psi = pd.to_numeric(runs.get("psi_some_avg10", pd.Series(dtype=float)), errors="coerce")
        stalled = f"; PSI some avg10 up to {psi.max():.0%}" if psi.notna().any() else ""
        return "throttled", f"up to {int(high.max())} memory.high events in {int((high > 0).sum())} of {n}{stalled}"
    ws = pd.to_numeric(runs["peak_working_set"], errors="coerce")
    if memory_limit > 0 and (ws > headroom * memory_limit).any():
        return "over_headroom", (f"peak working set up to {format_size(int(ws.max()))} = {ws.max() / memory_limit:.1%} "
                                 f"of the limit (> {headroom:.0%})")
    if ws.isna().all():
        return "failed", "no working set was sampled"
    return HEALTHY, ""


def configurations(cells: pd.DataFrame, summary: pd.DataFrame, performance: str | None = None,
                   headroom: float = DEFAULT_HEADROOM) -> pd.DataFrame:
    """One row per (context, GOGC, GOMEMLIMIT, limit) that ran: class, reason, repeats, and
    median/min/max of peak working set, GC CPU share and the performance metric."""
    cells = cells[cells["status"].map(str).isin(MEASURED + ERRORS)].copy()  # not skipped or interrupted
    if cells.empty:
        return pd.DataFrame()
    cells["cell_id"] = cells["cell_id"].map(str)
    context = context_columns(cells)
    values = summary.reindex(cells["cell_id"])
    if "memory_high_bytes" not in cells.columns:
        cells["memory_high_bytes"] = NAN
    frame = cells[["cell_id", "status", "oom_killed", *KEY, "gomemlimit_bytes", "memory_high_bytes", *context]].copy()
    companion = PERFORMANCE[performance].companion if performance in PERFORMANCE else ""
    metrics = ["limiter_engaged", "gc_cpu_share", "peak_working_set", "memory_high_events", "psi_some_avg10"] \
        + ([performance] if performance else []) \
        + ([companion, "load_errors"] if companion else [])
    for m in metrics:
        frame[m] = values[m].to_numpy(dtype=float) if m in values.columns else NAN
    frame["context"] = [", ".join(f"{c}={_text(row[c])}" for c in context) for _, row in frame.iterrows()]
    for column in KEY:
        frame[column] = frame[column].map(_text)
    rows = []
    for key, runs in frame.groupby(["context", *KEY], sort=False):
        assert isinstance(key, tuple)   # grouped by a list of columns
        ctx, gogc, gomemlimit, limit = (str(k) for k in key)
        limit_bytes = float(limit) if limit.isdigit() else NAN
        klass, why = classify(runs, limit_bytes, headroom)
        row: dict[str, Any] = {"context": ctx, "gogc": gogc, "gomemlimit": gomemlimit,
                               "gomemlimit_bytes": _first_number(runs["gomemlimit_bytes"]),
                               "memory_high_bytes": _first_number(runs["memory_high_bytes"]),
                               "memory_limit_bytes": limit_bytes, "n": len(runs), "class": klass, "why": why,
                               "high_events_max": float(pd.to_numeric(runs["memory_high_events"]).max()),
                               "cell_ids": ";".join(runs["cell_id"])}
        measures: tuple[tuple[str | None, str], ...] = (
            ("peak_working_set", "ws"), ("gc_cpu_share", "gc"), (performance, "perf"), (companion or None, COMPANION))
        for metric, name in measures:
            row[f"{name}_median"], row[f"{name}_min"], row[f"{name}_max"] = (
                _stats(runs[metric]) if metric else (NAN, NAN, NAN))
        rows.append(row)
    return pd.DataFrame(rows)


def _first_number(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.iloc[0]) if len(v) else NAN


# ------------------------------------------------------------------------------------- the front

def _objectives(table: pd.DataFrame, performance: Performance | None) -> list[tuple[str, bool]]:
    """(column stem, higher is better) of the measures a configuration is judged on, where measured."""
    out = [("ws", False)]
    measured = performance if performance is not None and table["perf_median"].notna().any() else None
    if measured is not None and measured.companion and table[f"{COMPANION}_median"].notna().any():
        # A server's latency and requests/s: GC CPU is paid for in them, not judged beside them.
        return out + [("perf", measured.higher_is_better), (COMPANION, True)]
    if table["gc_median"].notna().any():
        out.append(("gc", False))
    if measured is not None:
        out.append(("perf", measured.higher_is_better))
    return out


def _cost(table: pd.DataFrame, stem: str, higher: bool) -> pd.Series:
    """The measure as a cost (lower is better), NaN as the worst."""
    v = table[f"{stem}_median"].astype(float)
    v = -v if higher else v
    return v.fillna(np.inf)


def pareto_front(table: pd.DataFrame, performance: Performance | None = None) -> pd.Series:
    """True for each healthy configuration no other healthy one beats on every measure."""
    healthy = table["class"] == HEALTHY
    front = pd.Series(False, index=table.index)
    if not healthy.any():
        return front
    sub = table[healthy]
    costs = np.column_stack([_cost(sub, s, h).to_numpy() for s, h in _objectives(sub, performance)])
    for i, idx in enumerate(sub.index):
        dominated = ((costs <= costs[i]).all(axis=1) & (costs < costs[i]).any(axis=1)).any()
        front[idx] = not dominated
    return front


def _scaled(sub: pd.DataFrame, stem: str, higher: bool) -> pd.Series:
    cost: pd.Series[float] = _cost(sub, stem, higher).replace(np.inf, np.nan)
    spread = float(cost.max() - cost.min())
    if not spread > 0:
        return pd.Series(0.0, index=sub.index)
    return ((cost - cost.min()) / spread).fillna(1.0)


def _ranking(sub: pd.DataFrame, objective: str, performance: Performance | None) -> tuple[list[str], pd.DataFrame]:
    """(the measures the objective reads, the healthy configurations sorted best first)."""
    measures = _objectives(sub, performance)
    names = dict(measures)
    ranked = sub.copy()
    for stem, higher in measures:
        ranked[f"_{stem}"] = _cost(ranked, stem, higher)
    if objective == "memory":
        primary = ["ws"]
        order = ["_ws"] + [f"_{s}" for s in ("perf", "gc") if s in names]
    elif objective == "latency" and COMPANION in names:
        primary = ["perf", COMPANION]
        ranked["_score"] = sum(_scaled(ranked, s, names[s]) for s in primary)
        order = ["_score", "_ws"]
    elif objective in ("throughput", "latency"):
        # A server's throughput is its requests/s.
        primary = [COMPANION] if COMPANION in names else (
            ["perf"] if "perf" in names else (["gc"] if "gc" in names else ["ws"]))
        order = [f"_{primary[0]}"] + [f"_{s}" for s in ("perf", "ws", "gc") if s in names and s != primary[0]]
    else:
        speed = "perf" if "perf" in names else ("gc" if "gc" in names else None)
        primary = ["ws"] + ([speed] if speed else []) + ([COMPANION] if COMPANION in names else [])
        ranked["_score"] = sum(_scaled(ranked, s, names[s]) for s in primary)
        order = ["_score", "_ws"]
    return primary, ranked.sort_values(order, kind="stable")


def _overlap(a: pd.Series, b: pd.Series, stem: str) -> bool:
    lo_a, hi_a, lo_b, hi_b = a[f"{stem}_min"], a[f"{stem}_max"], b[f"{stem}_min"], b[f"{stem}_max"]
    if any(isinstance(x, float) and math.isnan(x) for x in (lo_a, hi_a, lo_b, hi_b)):
        return True  # not measured: cannot tell them apart
    return bool(lo_a <= hi_b and lo_b <= hi_a)


@dataclass
class Choice:
    """The recommendation within one context."""

    context: str
    status: Literal["recommended", "inconclusive", "none healthy"]
    objective: str
    row: dict[str, Any] | None = None   # the chosen configuration's row of the table
    why: str = ""
    tied: list[str] = field(default_factory=list)      # configurations the repeats cannot tell from it
    # Healthy, but passed over: with a memory.high, nothing of theirs keeps the heap below it (BELOW_HIGH_RULE).
    passed_over: list[str] = field(default_factory=list)
    nearest_unhealthy: list[dict[str, Any]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment to set: GOMEMLIMIT in bytes, which Go and Kubernetes both read."""
        if self.row is None:
            return {}
        env = {"GOGC": self.row["gogc"]}
        limit = self.row.get("gomemlimit_bytes")
        if self.row["gomemlimit"] != "off" and limit is not None and limit == limit:   # NaN: not resolved
            env["GOMEMLIMIT"] = str(int(limit))
        return env


def gomemlimit_label(row: Mapping[str, Any] | pd.Series) -> str:
    """GOMEMLIMIT as run: a share of memory.max (90%max) with its size and where it comes from."""
    value = str(row["gomemlimit"])
    if not value.endswith("%" + OF_MEMORY_MAX):
        return value
    limit = row.get("gomemlimit_bytes")
    size = f"{format_size(int(limit))}, " if isinstance(limit, (int, float)) and limit == limit else ""
    note = AUTOMEMLIMIT_NOTE if value == AUTOMEMLIMIT else f"{value[:-len(OF_MEMORY_MAX)]} of memory.max"
    return f"{value} ({size}{note})"


def config_name(row: Mapping[str, Any] | pd.Series) -> str:
    return f"GOGC={row['gogc']}, GOMEMLIMIT={gomemlimit_label(row)}"


BELOW_HIGH_RULE = ("with a memory.high, the recommendation is among the healthy configurations whose GOMEMLIMIT is "
                   "below it: without a GOMEMLIMIT, or with one above memory.high (automemlimit's 90% of memory.max), "
                   "nothing keeps the heap below memory.high when the live heap grows, so a configuration that stayed "
                   "below it in this run is shown but not recommended, unless no other is healthy")


def below_memory_high(table: pd.DataFrame) -> pd.Series:
    """True where a configuration's GOMEMLIMIT is below its cells' memory.high, or they have none."""
    high = pd.to_numeric(table.get("memory_high_bytes", pd.Series(NAN, index=table.index)), errors="coerce")
    limit = pd.to_numeric(table["gomemlimit_bytes"], errors="coerce")
    return high.isna() | (limit < high)


def choose(table: pd.DataFrame, objective: str = DEFAULT_OBJECTIVE, performance: Performance | None = None,
           context: str = "") -> Choice:
    """The recommendation among one context's configurations at one limit (table rows)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: one of {', '.join(OBJECTIVES)}")
    everything = table
    healthy = table[table["class"] == HEALTHY]
    if healthy.empty:
        return Choice(context, "none healthy", objective,
                      why="no configuration was healthy in every repeat: give the container more memory")
    guarded = below_memory_high(healthy)
    passed_over = healthy[~guarded] if guarded.any() else healthy.iloc[:0]
    table, healthy = table.drop(index=passed_over.index), healthy[guarded] if guarded.any() else healthy
    front = pareto_front(table, performance)
    primary, ranked = _ranking(healthy[front[healthy.index]], objective, performance)
    best = ranked.iloc[0]
    others = healthy.drop(index=best.name)
    tied = [config_name(r) for _, r in others.iterrows() if all(_overlap(best, r, s) for s in primary)]
    choice = Choice(context, "recommended", objective, row={str(k): v for k, v in best.to_dict().items()}, tied=tied,
                    passed_over=[config_name(r) for _, r in passed_over.iterrows()],
                    nearest_unhealthy=nearest_unhealthy(everything, best))
    if int(best["n"]) < 2:
        choice.status = "inconclusive"
        choice.why = "one repeat: no spread was measured, so the choice could flip on a rerun"
    elif len(others) and len(tied) == len(others):
        choice.status = "inconclusive"
        choice.why = ("the repeats overlap: no healthy configuration is better than the others by more than "
                      "their spread; any of them will do, this one is the best by median")
    return choice


def nearest_unhealthy(table: pd.DataFrame, best: pd.Series) -> list[dict[str, Any]]:
    """The unhealthy configurations fewest grid steps (GOGC or GOMEMLIMIT values) from `best`."""
    gogc = sorted(table["gogc"].unique(), key=lambda v: order_key("gogc", v))
    limit = sorted(table["gomemlimit"].unique(), key=lambda v: order_key("gomemlimit", v))
    where = (gogc.index(best["gogc"]), limit.index(best["gomemlimit"]))
    unhealthy = []
    for _, row in table[table["class"] != HEALTHY].iterrows():
        steps = abs(gogc.index(row["gogc"]) - where[0]) + abs(limit.index(row["gomemlimit"]) - where[1])
        unhealthy.append({"config": config_name(row), "class": row["class"], "why": row["why"], "steps": steps})
    if not unhealthy:
        return []
    closest = min(u["steps"] for u in unhealthy)
    return [u for u in unhealthy if u["steps"] == closest]


def choices(table: pd.DataFrame, memory_limit: int, objective: str = DEFAULT_OBJECTIVE,
            performance: str | None = None) -> list[Choice]:
    """One Choice per context, among the configurations run at `memory_limit`."""
    perf = PERFORMANCE.get(performance) if performance else None
    at_limit = table[table["memory_limit_bytes"] == float(memory_limit)]
    return [choose(group, objective, perf, str(context))
            for context, group in at_limit.groupby("context", sort=False)]


# ------------------------------------------------------------------------------- memory.high

@dataclass
class MemoryHighFinding:
    """Within one context at the advised limit: the configurations memory.high throttled (most high events
    first), and the healthy ones whose GOMEMLIMIT is below memory.high (those with a throttled one's GOGC
    where there are any; the largest GOMEMLIMIT first): rows of the configuration table."""

    context: str
    memory_high: int
    throttled: list[dict[str, Any]]
    healthy_below: list[dict[str, Any]]


def memory_high_findings(table: pd.DataFrame, memory_limit: int, memory_high: int) -> list[MemoryHighFinding]:
    """One finding per context that has a throttled configuration or a healthy one with a GOMEMLIMIT
    below memory.high: what a heap goal above memory.high costs, and what keeping it below avoids."""
    if table.empty:
        return []
    at_limit = table[table["memory_limit_bytes"] == float(memory_limit)]
    found = []
    for context, group in at_limit.groupby("context", sort=False):
        limits = pd.to_numeric(group["gomemlimit_bytes"], errors="coerce")
        throttled = group[group["class"] == "throttled"].sort_values("high_events_max", ascending=False)
        below = group[(group["class"] == HEALTHY) & (limits < memory_high)]
        # Beside a throttled configuration, the healthy ones with its GOGC say what the GOMEMLIMIT alone changed.
        same_gogc = below[below["gogc"].isin(set(throttled["gogc"]))]
        below = (same_gogc if len(same_gogc) else below).sort_values(["gogc", "gomemlimit_bytes"],
                                                                     ascending=[True, False], kind="stable")
        if len(throttled) or len(below):
            found.append(MemoryHighFinding(str(context), memory_high,
                                           [{str(k): v for k, v in r.items()} for _, r in throttled.iterrows()],
                                           [{str(k): v for k, v in r.items()} for _, r in below.iterrows()]))
    return found


# ------------------------------------------------------------------------- the smallest limit

MIN_MEMORY_FLOOR = 16 << 20
MIN_MEMORY_STEPS = 6


def next_memory_limit(probes: dict[int, bool], start: int, floor: int = MIN_MEMORY_FLOOR) -> int | None:
    """The next limit to try when bisecting for the smallest healthy one, or None when done.

    `probes` maps each limit tried to whether every repeat was healthy there; `start` is the
    limit of the grid. Stops at a resolution of 5% of the healthy bound (8 MiB at least) or after
    MIN_MEMORY_STEPS tries.
    """
    tried = [m for m in probes if m != start]
    healthy = [m for m, ok in probes.items() if ok] + ([start] if start not in probes else [])
    if not healthy:
        return None
    hi = min(healthy)
    lo = max([m for m, ok in probes.items() if not ok and m < hi], default=floor)
    if len(tried) >= MIN_MEMORY_STEPS or hi - lo <= max(8 << 20, hi // 20):
        return None
    mid = (lo + hi) // 2
    return max(floor, mid - mid % (1 << 20))


def smallest_healthy(probes: dict[int, bool]) -> int | None:
    healthy = [m for m, ok in probes.items() if ok]
    return min(healthy) if healthy else None


# ------------------------------------------------------------------------------------ the whole

@dataclass
class Advice:
    table: pd.DataFrame                    # configurations() with a `front` column
    choices: list[Choice]
    memory_limit: int
    objective: str
    headroom: float
    performance: str | None
    # context -> {limit bytes: class} of the chosen configuration at every limit tried
    limits_tried: dict[str, dict[int, str]] = field(default_factory=dict)

    def smallest_healthy(self, context: str) -> int | None:
        tried = self.limits_tried.get(context, {})
        return smallest_healthy({m: c == HEALTHY for m, c in tried.items()}) if len(tried) > 1 else None


def advise(cells: pd.DataFrame, summary: pd.DataFrame, memory_limit: int, objective: str = DEFAULT_OBJECTIVE,
           performance: str | None = None, headroom: float = DEFAULT_HEADROOM) -> Advice:
    table = configurations(cells, summary, performance, headroom)
    if table.empty:
        return Advice(table, [], memory_limit, objective, headroom, performance)
    perf = PERFORMANCE.get(performance) if performance else None
    table["front"] = False
    at_limit = table["memory_limit_bytes"] == float(memory_limit)
    for _, group in table[at_limit].groupby("context", sort=False):
        table.loc[group.index, "front"] = pareto_front(group, perf)
    picked = choices(table, memory_limit, objective, performance)
    limits: dict[str, dict[int, str]] = {}
    for choice in picked:
        if choice.row is None:
            continue
        same = table[(table["context"] == choice.context) & (table["gogc"] == choice.row["gogc"])
                     & (table["gomemlimit"] == choice.row["gomemlimit"])]
        limits[choice.context] = {int(r["memory_limit_bytes"]): r["class"] for _, r in same.iterrows()}
    return Advice(table, picked, memory_limit, objective, headroom, performance, limits)
