"""Hand-made run frames with exactly the documented schema, from a compact description.

A cell is described by its phases (name, start second), its end second and piecewise-linear
curves such as {"rss": [(0, 10), (1, 1024), (3, 1024), (3.5, 20)]} in MiB. Samples are drawn on
the documented cadences: proc/cgroup fast, smaps slow, runtime at the metrics interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MiB = 1024 * 1024

# curve name -> (source, metric, sampling period in seconds)
CURVES = {
    "rss": ("proc", "vm_rss", 0.01),
    "vm_size": ("proc", "vm_size", 0.01),
    "usage": ("cgroup", "usage", 0.01),
    "working_set": ("cgroup", "working_set", 0.01),
    "lazyfree": ("smaps", "lazyfree", 0.5),
    "heap_inuse": ("runtime", "heap_inuse", 0.1),
    "heap_idle": ("runtime", "heap_idle", 0.1),
    "heap_released": ("runtime", "heap_released", 0.1),
    "heap_goal": ("runtime", "heap_goal", 0.1),
    "num_gc": ("runtime", "num_gc", 0.1),
    "gc_cpu_s": ("runtime", "gc_cpu_s", 0.1),
    "gc_cpu_fraction": ("runtime", "gc_cpu_fraction", 0.1),
}
# Curves given in plain units rather than MiB.
UNITLESS = {"num_gc", "gc_cpu_s", "gc_cpu_fraction"}


@dataclass
class CellSpec:
    cell_id: str
    phases: list[tuple[str, float]]
    end_s: float
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    scenario: str = "alloc_release"
    workload: str = "alloc-release"
    go_version: str = "1.27.3"
    repeat: int = 0
    status: str = "ok"
    oom_killed: bool = False
    axes: dict[str, str] = field(default_factory=dict)
    totals: dict = field(default_factory=dict)
    freeos_ns: list[float] = field(default_factory=list)
    extra_events: list[tuple[float, str, str, float, str]] = field(default_factory=list)
    peak_rss_bytes: float | None = None
    memory_limit_bytes: int | None = 1536 * MiB


def _curve_samples(points, period, end_s):
    t = np.round(np.arange(0.0, end_s + 1e-9, period), 6)
    xs, ys = zip(*points, strict=True)
    return t, np.interp(t, xs, ys)


def cell_frames(spec: CellSpec) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    rows = []
    for name, points in spec.curves.items():
        source, metric, period = CURVES[name]
        t, v = _curve_samples(points, period, spec.end_s)
        scale = 1 if name in UNITLESS else MiB
        rows.extend((spec.cell_id, float(ti), source, metric, float(vi * scale)) for ti, vi in zip(t, v, strict=True))
    samples = pd.DataFrame(rows, columns=["cell_id", "t_s", "source", "metric", "value"])
    ev = [(spec.cell_id, 0.0, "start", spec.workload, np.nan, json.dumps({"go_version": spec.go_version}))]
    ev += [(spec.cell_id, float(t), "phase", name, np.nan, "") for name, t in spec.phases]
    t_free = next((t for n, t in spec.phases if n == "freeos"), spec.end_s / 2)
    ev += [(spec.cell_id, t_free + 0.01 * i, "freeos", "freeos", float(ns), "")
           for i, ns in enumerate(spec.freeos_ns)]
    ev += [(spec.cell_id, float(t), k, n, float(v), d) for t, k, n, v, d in spec.extra_events]
    if spec.status == "ok":
        ev.append((spec.cell_id, spec.end_s, "end", spec.workload, np.nan, json.dumps(spec.totals)))
    ev.append((spec.cell_id, spec.end_s, "exit", "0" if spec.status == "ok" else "137",
               0.0 if spec.status == "ok" else 137.0, ""))
    events = pd.DataFrame(ev, columns=["cell_id", "t_s", "kind", "name", "value", "detail"])
    peak = spec.peak_rss_bytes
    if peak is None and "rss" in spec.curves:
        peak = max(v for _, v in spec.curves["rss"]) * MiB
    cell = {
        "cell_id": spec.cell_id, "scenario": spec.scenario, "workload": spec.workload,
        **spec.axes,
        "gogc": spec.axes.get("gogc", ""), "madvdontneed": spec.axes.get("madvdontneed", ""),
        "gomemlimit": spec.axes.get("gomemlimit", ""),
        "memory_limit_bytes": spec.memory_limit_bytes, "cpus": 2.0, "go_version": spec.go_version,
        "backend": "docker", "repeat": spec.repeat, "status": spec.status,
        "exit_code": 0 if spec.status == "ok" else 137, "oom_killed": spec.oom_killed,
        "wall_s": spec.end_s, "peak_rss_bytes": peak,
        "peak_cgroup_bytes": (max(v for _, v in spec.curves["usage"]) * MiB
                              if "usage" in spec.curves else None),
        "reason": "" if spec.status == "ok" else spec.status, "args": "",
    }
    return cell, samples, events


def run_frames(specs: list[CellSpec]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(cells, samples, events) for several cells."""
    parts = [cell_frames(s) for s in specs]
    cells = pd.DataFrame([p[0] for p in parts])
    samples = pd.concat([p[1] for p in parts], ignore_index=True)
    events = pd.concat([p[2] for p in parts], ignore_index=True)
    return cells, samples, events


def alloc_release_spec(cell_id: str, *, touch: bool = True, freeos: bool = True, stays: bool = False,
                       **kw) -> CellSpec:
    """The article's experiment: 1 GiB up at 1 s, released at 3 s, FreeOSMemory at 3.5 s, idle to 8 s."""
    peak = 1034 if touch else 12
    after = peak if stays or not freeos else 14
    lazy_after = 1000 if (stays and freeos and touch) else 0
    kw.setdefault("axes", {"touch": "true" if touch else "false", "freeos": "true" if freeos else "false"})
    phases = [("baseline", 0.0), ("allocate", 0.5), ("hold", 1.5), ("release", 3.0)]
    if freeos:
        phases.append(("freeos", 3.5))
    phases.append(("idle", 4.0))
    return CellSpec(
        cell_id=cell_id, phases=phases, end_s=8.0,
        curves={
            "rss": [(0, 10), (0.5, 10), (1.0, peak), (3.5, peak), (3.6, after), (8, after)],
            "vm_size": [(0, 800), (1.0, 1900), (8, 1900)],
            "lazyfree": [(0, 0), (3.5, 0), (3.6, lazy_after), (8, lazy_after)],
            "heap_inuse": [(0, 1), (0.5, 1), (1.0, 1025 if touch else 1025), (3.0, 1025), (3.1, 1), (8, 1)],
            "heap_released": [(0, 0), (3.5, 0), (3.6, 1024), (8, 1024)],
            "num_gc": [(0, 0), (3.0, 0), (3.1, 1), (8, 1)],
        },
        totals={"num_gc": 2, "utime_s": 0.5, "stime_s": 0.25, "minflt": 262000, "majflt": 0,
                "ops": 1, "wall_s": 8.0},
        **kw,
    )
