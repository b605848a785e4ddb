"""C11: with MADV_FREE, RSS does not fall until the kernel is under memory pressure; with MADV_DONTNEED at once."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    MiB,
    axis,
    col,
    decision,
    judged,
    pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("without pressure RSS stays with MADV_FREE and falls at once with MADV_DONTNEED",
         "under pressure the lazily freed pages are given up without an OOM kill")
STAYS = 0.5          # madvdontneed=0: RSS after FreeOSMemory at or above this share of the peak
FALLS = 0.25         # madvdontneed=1: below this share
LAZY_MIN = 16 * MiB  # under pressure, LazyFree must first exceed this for the test to mean anything
# The kernel reclaims lazily freed pages only as far as the pressure needs, not all of them:
# a fifth of them gone, and no kill, shows that they are given up under pressure.
GIVEN_UP = 0.8


def decide(t: pd.DataFrame, derived) -> Decision:
    madv, press = t[t["scenario"] == "madvdontneed"], t[t["scenario"] == "oom_pressure"]
    if madv.empty or press.empty:
        return decision("inconclusive", "missing-scenario",
                        missing=[n for n, g in (("madvdontneed", madv), ("oom_pressure", press)) if g.empty])
    if col(t, "lazyfree@freeos").dropna().empty and col(t, "lazyfree@settle").dropna().empty:
        return decision("inconclusive", "no-lazyfree")
    zero, one = madv[axis(madv, "madvdontneed") == "0"], madv[axis(madv, "madvdontneed") == "1"]
    stays = col(zero, "rss@freeos") / col(zero, "peak_rss")
    falls = col(one, "rss@freeos") / col(one, "peak_rss")
    no_pressure = None if stays.dropna().empty or falls.dropna().empty else bool(
        (stays >= STAYS).all() and (falls < FALLS).all())
    pz = press[axis(press, "madvdontneed") == "0"]
    before, after = col(pz, "lazyfree@settle"), col(pz, "lazyfree@hold")
    killed = col(pz, "oom_killed").fillna(0)
    if before.dropna().empty or not (before > LAZY_MIN).any():
        under = None
    else:
        under = bool((after <= GIVEN_UP * before).all() and not killed.any())
    why = {}
    if no_pressure is None:
        why[PARTS[0]] = "RSS after FreeOSMemory missing for madvdontneed=0 or 1"
    if under is None:
        why[PARTS[1]] = f"LazyFree before the pressure was not above {LAZY_MIN // MiB} MiB"
    return judged("judged", {PARTS[0]: no_pressure, PARTS[1]: under}, why, stays=stays, falls=falls, before=before,
                  after=after, killed=int(killed.sum()), pressured=len(pz), no_pressure=no_pressure, under=under)


def evidence(d: Decision) -> str:
    if d.case == "missing-scenario":
        return "Needs both madvdontneed and oom_pressure; missing: " + ", ".join(d.missing) + "."
    if d.case == "no-lazyfree":
        return "LazyFree (smaps_rollup) was not read."
    text = (f"No pressure: RSS after FreeOSMemory {span(d.stays, pct)} of peak with 0, {span(d.falls, pct)} with 1; "
            f"under pressure (madvdontneed=0): LazyFree {span(d.before)} → {span(d.after)}, "
            f"OOM-killed {d.killed}/{d.pressured}")
    if d.no_pressure and d.under:
        return text + (". MADV_FREE pages stayed in RSS as LazyFree until the cgroup limit made the kernel reclaim "
                       "them, without an OOM kill; MADV_DONTNEED dropped them at once.")
    return text + "."


CLAIM = Claim(
    "C11", "2.5",
    "With MADV_FREE, RSS does not fall until the kernel is under memory pressure; with MADV_DONTNEED it falls "
    "at once.",
    "RSS and LazyFree after release, with no pressure and then under cgroup pressure.",
    plain="With MADV_FREE, RSS falls only under memory pressure; with MADV_DONTNEED it falls at once.",
    scenarios=("oom_pressure", "madvdontneed"),
    metrics=("rss@freeos", "lazyfree@freeos", "lazyfree@settle", "lazyfree@hold", "oom_killed"),
    figure=FigureSpec("breakdown", "oom_pressure", "oom_pressure_breakdown"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("MADV_FREE (madvdontneed=0; the default in Go 1.12–1.15) only marks pages as lazily freeable: they stay "
               "in RSS, shown as LazyFree in /proc/<pid>/smaps_rollup and kept on the inactive file LRU (Linux 4.12+, "
               "mm/swap.c lru_lazyfree_fn), until memory pressure (here the cgroup limit) makes the kernel discard "
               "them, before any OOM kill; MADV_DONTNEED (runtime/mem_linux.go sysUnusedOS with madvdontneed=1) "
               "frees them in the call."))
