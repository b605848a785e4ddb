"""C4: madvdontneed=1 keeps a container from being OOM-killed because RSS stays high with MADV_FREE."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import Decision, axis, col, decision, either, judged, span
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("killed with madvdontneed=0 where madvdontneed=1 survives",)


def decide(t: pd.DataFrame, derived) -> Decision:
    setting = axis(t, "madvdontneed")
    k0, k1 = col(t[setting == "0"], "oom_killed"), col(t[setting == "1"], "oom_killed")
    if k0.dropna().empty or k1.dropna().empty:
        return decision("inconclusive", "missing-setting")
    facts = {"k0": k0, "k1": k1, "lazy0": col(t[setting == "0"], "lazyfree@settle"),
             "peak_cgroup": col(t, "peak_cgroup")}
    killed0, killed1 = either(k0.dropna() > 0), either(k1.dropna() > 0)
    if killed0 is None or killed1 is None:
        return judged("disagree", {PARTS[0]: None}, {PARTS[0]: "repeats disagree"}, **facts)
    case = ("as-stated" if killed0 and not killed1 else "none-killed" if not killed0 and not killed1
            else "both-killed" if killed1 and killed0 else "only-one-killed")
    return judged(case, {PARTS[0]: case == "as-stated"}, **facts)


def evidence(d: Decision) -> str:
    if d.case == "missing-setting":
        return "Both madvdontneed=0 and =1 cells are needed."
    text = (f"OOM-killed: madvdontneed=0 {int(d.k0.sum())}/{len(d.k0)}, madvdontneed=1 {int(d.k1.sum())}/"
            f"{len(d.k1)}; LazyFree after release with 0: {span(d.lazy0)}, peak cgroup usage {span(d.peak_cgroup)}")
    return text + {
        "disagree": ": repeats disagree.",
        "as-stated": ".",
        "none-killed": (": neither was killed — MADV_FREE pages stay in RSS as LazyFree only until the kernel "
                        "reclaims lazily freed pages under cgroup pressure, which it does before any OOM kill, so "
                        "MADV_FREE does not cause the kill."),
        "both-killed": ": madvdontneed=1 was killed too.",
        "only-one-killed": ": only madvdontneed=1 was killed.",
    }[d.case]


CLAIM = Claim(
    "C4", "1",
    "Setting `madvdontneed=1` keeps a container from being OOM-killed because RSS stays high.",
    "Under a cgroup limit: release memory with each setting, then allocate so that new plus lazily freed "
    "memory exceeds the limit. Killed or not; RSS, LazyFree and cgroup usage on the way.",
    plain="GODEBUG=madvdontneed=1 keeps a container from being OOM-killed.",
    scenarios=("oom_pressure",),
    metrics=("oom_killed", "peak_cgroup", "lazyfree@settle", "rss@hold"),
    figure=FigureSpec("breakdown", "oom_pressure", "oom_pressure_rss",
                      title="oom_pressure: RSS, LazyFree and cgroup usage at the limit, per madvdontneed setting"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("With madvdontneed=0 the runtime returns memory with MADV_FREE (runtime/mem_linux.go sysUnusedOS): "
               "the pages stay in RSS and cgroup usage as LazyFree, moved to the inactive file LRU (Linux 4.12+, "
               "mm/swap.c lru_lazyfree_fn), and memory reclaim at the cgroup limit discards them before the "
               "OOM killer runs (mm/vmscan.c)."))
