"""C12: in a container, cgroup memory usage is the container's RSS, and the limit is a hard one (OOM kill)."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    combine,
    decision,
    mib,
    ratio2,
    span,
)
from harness.analyse.claims.registry import Claim

SAME_LOW, SAME_HIGH = 0.9, 1.1   # peak cgroup usage / peak RSS within this band counts as the same
LIMIT_SLACK = 1.01               # peak usage may exceed the limit by this factor (accounting granularity)


def decide(t: pd.DataFrame, derived) -> Decision:
    cl = t[t["scenario"] == "cgroup_limit"]
    if cl.empty:
        return decision("inconclusive", "not-run")
    alive = cl[col(cl, "oom_killed").fillna(0) == 0]
    ratio = col(alive, "peak_cgroup") / col(alive, "peak_rss")
    usage_is_rss = None if ratio.dropna().empty else bool(((ratio >= SAME_LOW) & (ratio <= SAME_HIGH)).all())
    limits = col(cl, "memory_limit_bytes")
    small = cl[limits == limits.min()]
    killed = col(small, "oom_killed")
    within = (col(small, "peak_cgroup") <= LIMIT_SLACK * col(small, "memory_limit_bytes")).all()
    hard_limit = None if killed.dropna().empty else bool(killed.all() and within)
    pz = t[(t["scenario"] == "oom_pressure") & (axis(t, "madvdontneed") == "0")]
    lazy = None if pz.empty else (col(pz, "cgroup_usage@settle"), col(pz, "rss@settle"))
    return decision(combine([usage_is_rss, hard_limit]), "judged", ratio=ratio, limit=limits.min(),
                    killed=int(killed.fillna(0).sum()), small=len(small), small_peak=col(small, "peak_cgroup"),
                    lazy=lazy)


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "cgroup_limit did not run."
    text = (f"Peak cgroup usage / peak RSS {span(d.ratio, ratio2)} (equal within 10% counts as the same); "
            f"at the {mib(d.limit)} limit: OOM-killed {d.killed}/{d.small}, peak usage {span(d.small_peak)}")
    if d.lazy is not None:
        usage, rss = d.lazy
        text += f"; with lazily freed pages cgroup usage {span(usage)} vs RSS {span(rss)}"
    return text + "."


CLAIM = Claim(
    "C12", "4.3",
    "In a container, cgroup v1 `memory.usage_in_bytes` is the container's RSS, and `memory.limit_in_bytes` is a "
    "hard limit past which the OOM killer ends the process.",
    "cgroup usage next to process RSS; what happens at the limit (cgroup v2: memory.current, memory.max).",
    scenarios=("cgroup_limit", "oom_pressure"),
    metrics=("peak_rss", "peak_cgroup", "oom_killed"),
    figure="figures/cgroup_limit_usage.png",
    decide=decide, evidence=evidence)
