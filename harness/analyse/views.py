"""What each monitoring tool shows, side by side: the question "which number do I trust?".

Every tool reads the same memory through a different formula. For a configuration and a phase,
the value each one would have shown at the end of that phase comes from the per-phase summaries
(`X@phase`, harness.define.metrics.PHASE_METRICS), pooled over repeats (median).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analyse.summary import by_config


@dataclass(frozen=True)
class ToolView:
    name: str                      # what a user runs or looks at
    formula: str                   # what it computes, with its reference
    reads: tuple[str, ...]         # X of X@phase; a second one is subtracted from the first


TOOL_VIEWS: tuple[ToolView, ...] = (
    ToolView("top / ps", "VmRSS of the process (/proc/<pid>/status): resident pages, LazyFree ones included",
             ("rss",)),
    ToolView("cgroup usage", "memory.usage_in_bytes (v1) / memory.current (v2): every page charged to the "
             "cgroup, page cache included", ("cgroup_usage",)),
    ToolView("docker stats", "usage − inactive_file (docker/cli calculateMemUsageUnixNoCache; total_inactive_file "
             "on cgroup v1, inactive_file on v2), computed from the cgroup's files", ("working_set",)),
    ToolView("docker stats (API)", "what `docker stats` shows, from Docker's stats stream (Docker cells; "
             "harness/run/observe/docker_stats.py): the daemon's first reading after the phase end, else its last "
             "inside the phase", ("docker_stats",)),
    ToolView("docker stats: API − computed", "where the two differ: the daemon collects once a second, so its "
             "reading can trail the phase end by up to a second while pages still move (the scavenger, a "
             "lazily freed page moving to the inactive file list), and docker subtracts inactive_file only when "
             "it is below usage", ("docker_stats", "working_set")),
    ToolView("kubectl top / kubelet eviction", "working set = usage − inactive_file (cAdvisor / kubelet)",
             ("working_set",)),
    ToolView("LazyFree", "pages freed with MADV_FREE, still resident until the kernel reclaims them "
             "(/proc/<pid>/smaps_rollup)", ("lazyfree",)),
    ToolView("pprof inuse_space", "a heap profile's inuse_space (runtime/pprof WriteHeapProfile, where the "
             "scenario writes one at the phase's end): live objects as of the last GC, estimated from allocations "
             "sampled every 512 KiB (runtime.MemProfileRate)", ("pprof_inuse_space",)),
    ToolView("Go HeapAlloc", "live heap objects: MemStats.HeapAlloc, the exact figure inuse_space estimates",
             ("heap_alloc",)),
    ToolView("Go HeapInuse", "spans in use: MemStats.HeapInuse", ("heap_inuse",)),
    ToolView("Go HeapIdle − HeapReleased", "free heap the runtime keeps resident (the scavenger's to return)",
             ("heap_idle", "heap_released")),
    ToolView("Go HeapReleased", "heap returned to the OS (madvise) and not reused", ("heap_released",)),
)


def tool_table(summary: pd.DataFrame, cells: pd.DataFrame, phases: tuple[str, ...]) -> pd.DataFrame:
    """One row per (configuration, phase): `config`, `go_version`, `phase`, `n`, then one column of
    bytes per tool view (median over repeats; NaN where the run has no reading)."""
    wanted = sorted({f"{x}@{p}" for view in TOOL_VIEWS for x in view.reads for p in phases})
    pooled = by_config(summary, cells, wanted)
    rows = []
    for _, config in pooled.iterrows():
        for phase in phases:
            row = {"config": config["config"], "go_version": config.get("go_version", ""), "phase": phase,
                   "n": int(config["n"])}
            for view in TOOL_VIEWS:
                values = [float(config.get(f"{x}@{phase}_median", np.nan)) for x in view.reads]
                row[view.name] = values[0] - sum(values[1:])
            if not all(np.isnan(row[v.name]) for v in TOOL_VIEWS):
                rows.append(row)
    return pd.DataFrame(rows, columns=["config", "go_version", "phase", "n"] + [v.name for v in TOOL_VIEWS])
