"""C12: in a container, cgroup memory usage is the container's RSS, and the limit is a hard one (OOM kill).

cgroup_limit writes a file and reads it back before a touched allocation, so the page cache is
there to be counted: usage is judged against RSS at the peak (end of hold) in the cells that
survive; the smallest limit shows what happens at it (the page cache reclaimed first, then the
kill). With madvdontneed=0 the released pages stay in RSS and usage as LazyFree but leave the
working set that docker stats and kubectl top show.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse import residency
from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    decision,
    judged,
    mib,
    ratio2,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("cgroup usage is the container's RSS", "the limit is hard: the OOM killer ends the process")
SAME_LOW, SAME_HIGH = 0.9, 1.1   # usage / RSS at the peak within this band counts as the same
LIMIT_SLACK = 1.01               # peak usage may exceed the limit by this factor (accounting granularity)


def decide(t: pd.DataFrame, derived) -> Decision:
    cl = t[t["scenario"] == "cgroup_limit"]
    if cl.empty:
        return decision("inconclusive", "not-run")
    run = derived.run
    killed_col = col(cl, "oom_killed").fillna(0)
    alive = cl[killed_col == 0]
    peaks = {cid: residency.cgroup_state(run, cid, residency.phase_end(run, cid, "hold")) for cid in alive.index}
    ratio = pd.Series({cid: s.usage / s.rss for cid, s in peaks.items()}, dtype=float)
    usage_is_rss = None if ratio.dropna().empty else bool(((ratio >= SAME_LOW) & (ratio <= SAME_HIGH)).all())
    # After the release, per madvdontneed setting: what each tool shows.
    after = {}
    for setting in sorted(set(axis(alive, "madvdontneed"))):
        ids = alive.index[axis(alive, "madvdontneed") == setting]
        after[setting] = [residency.cgroup_state(run, cid, residency.phase_end(run, cid, "idle")) for cid in ids]
    limits = col(cl, "memory_limit_bytes")
    small = cl[limits == limits.min()]
    killed = col(small, "oom_killed")
    within = bool((col(small, "peak_cgroup") <= LIMIT_SLACK * col(small, "memory_limit_bytes")).all())
    hard_limit = None if killed.dropna().empty or len(small) == len(cl) else bool(killed.all() and within)
    reclaim = [residency.page_cache_reclaim(run, cid) for cid in small.index]
    why = {}
    if usage_is_rss is None:
        why[PARTS[0]] = "no cell survived to compare usage with RSS"
    if hard_limit is None:
        why[PARTS[1]] = "no cell ran at a limit below the allocation"
    return judged("judged", {PARTS[0]: usage_is_rss, PARTS[1]: hard_limit}, why, ratio=ratio,
                  peaks=list(peaks.values()), after=after, limit=float(limits.min()),
                  killed=int(killed.fillna(0).sum()), small=len(small), small_peak=col(small, "peak_cgroup"),
                  reclaim=reclaim, usage_is_rss=usage_is_rss)


def _tools(s: residency.CgroupState) -> str:
    lazy = "" if math.isnan(s.lazyfree) else f", LazyFree {mib(s.lazyfree)}"
    return f"RSS {mib(s.rss)}{lazy}, usage {mib(s.usage)}, working set {mib(s.working_set)}"


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "cgroup_limit did not run."
    if d.peaks:
        text = (f"At the peak, with the file's page cache ({span([s.file for s in d.peaks])}) resident: cgroup usage "
                f"{span([s.usage for s in d.peaks])} vs RSS {span([s.rss for s in d.peaks])}, usage / RSS "
                f"{span(d.ratio, ratio2)} (within 10% counts as the same)")
        text += {True: ": usage is RSS here.",
                 False: ": usage counts the page cache too, so it is not the container's RSS."}[d.usage_is_rss]
    else:
        text = "No cell survived to compare usage with RSS."
    for setting, states in d.after.items():
        if not states:
            continue
        name = "madvdontneed unset" if setting == "unset" else f"madvdontneed={setting}"
        text += (f" After FreeOSMemory ({name}): " + "; ".join(_tools(s) for s in states) + ".")
    if any(s.lazyfree > 0 for states in d.after.values() for s in states):
        text += (" Lazily freed pages stay in RSS and usage but sit on the inactive file list, so the working set "
                 "(usage − inactive_file) that docker stats, kubectl top and kubelet eviction use leaves them out,"
                 " as it leaves out inactive page cache.")
    before = [b for b, _ in d.reclaim if not math.isnan(b)]
    least = [a for _, a in d.reclaim if not math.isnan(a)]
    text += (f" At the {mib(d.limit)} limit: OOM-killed {d.killed}/{d.small}, peak usage {span(d.small_peak)}")
    if before and least:
        text += f"; the page cache went from {span(before)} to {span(least)} before the end (reclaimed first)"
    return text + "."


CLAIM = Claim(
    "C12", "4.3",
    "In a container, cgroup v1 `memory.usage_in_bytes` is the container's RSS, and `memory.limit_in_bytes` is a "
    "hard limit past which the OOM killer ends the process.",
    "A file written and read back (page cache) before a touched allocation: cgroup usage next to process RSS at "
    "the peak; after release with MADV_DONTNEED and MADV_FREE, RSS, LazyFree, usage and the working set "
    "(usage − inactive_file); at a limit below the allocation, reclaim then the kill (cgroup v2: memory.current, "
    "memory.max).",
    plain="In a container, cgroup memory usage is the process's RSS, and the limit is enforced by an OOM kill.",
    scenarios=("cgroup_limit",),
    metrics=("peak_rss", "peak_cgroup", "cgroup_usage@hold", "working_set@idle", "oom_killed"),
    figure=FigureSpec("breakdown", "cgroup_limit", "cgroup_limit_usage"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=(
        "cgroup usage (memory.usage_in_bytes on v1, memory.current on v2) charges every page the container "
        "touches: anonymous memory and the page cache of files it reads or writes, so it is not RSS. At the "
        "limit the kernel first reclaims (page cache; MADV_FREE pages, which Linux 4.12+ keeps on the inactive "
        "file LRU, mm/swap.c lru_lazyfree_fn) and only when nothing is left calls the OOM killer. docker stats "
        "shows usage − inactive_file (docker/cli stats_helpers.go calculateMemUsageUnixNoCache, total_inactive_file "
        "on v1, inactive_file on v2) and kubectl top / kubelet eviction use the same working set (google/cadvisor "
        "container/libcontainer/handler.go setMemoryStats), so lazily freed Go memory (madvdontneed=0, the default "
        "only in Go 1.12–1.15, runtime/mem_linux.go sysUnusedOS) counts in RSS and usage but not there."),
)
