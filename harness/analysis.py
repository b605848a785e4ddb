"""Summaries of a run: DataFrames in, DataFrames out. No I/O, no plotting.

Inputs follow docs/ARCHITECTURE.md: `cells` (cells.csv), tidy `samples`
(cell_id, t_s, source, metric, value) and `events` (cell_id, t_s, kind, name, value, detail).
Every summary is NaN where its input is missing: a run that lost a reading still gets a report.
"""

from __future__ import annotations

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
