"""C13: large objects with mixed lifetimes fragment memory and keep it resident.

Judged on Go's large objects (large_churn: the long-lived ones kept, scattered among the freed
ones): whether RSS comes down to what the program still holds plus the scavenger's allowance,
and what returned it when. Beside it, Go's real case of memory kept by occupancy (small_frag:
small objects freed at random leave spans partly used) is measured as RSS per live byte.
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
    go_before,
    judged,
    mib,
    ratio2,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

# One part per number of GCs at the drop (the release-gcs axis): kept resident after them, or not.
PARTS = ("large-object memory stays resident past later GCs (dropped with one GC)",
         "large-object memory stays resident past later GCs (dropped with two GCs)")
PART_OF_GCS = {"1": PARTS[0], "2": PARTS[1]}
# At the end of the window, RSS counts as still being returned (not kept) when heap_released
# rose by at least this much over its last STILL_WINDOW_S seconds: the scavenger is working.
STILL_RETURNING = 4 * 1024 * 1024
STILL_WINDOW_S = 5.0
# Since Go 1.21 memory freed in one GC cycle is returned only after a later one: a cell judged
# as "kept" needs this many GCs after its drop, and this long a window after the last of them (the
# background scavenger has been seen to start ~10 s after a forced GC).
GCS_TO_JUDGE = 2
QUIET_TO_JUDGE_S = 30.0
# Small objects keep memory resident when RSS at the end is at least this multiple of the live bytes.
RESIDENT_PER_LIVE = 2.0


def _still_returning(derived, cell_id: str) -> bool:
    released = derived.run.series(cell_id, "runtime", "heap_released")
    if released.empty:
        return False
    end = float(released.index.max())
    recent = released[released.index >= end - STILL_WINDOW_S]
    return float(recent.iloc[-1] - recent.iloc[0]) >= STILL_RETURNING


def large_outcome(r: residency.Retention, still: bool) -> str:
    """returned | kept | returning (still falling at the end) | waiting (too few GCs to tell)."""
    if r.returned:
        return "returned"
    if still:
        return "returning"
    return "kept" if r.gcs_after >= GCS_TO_JUDGE and r.quiet_s >= QUIET_TO_JUDGE_S else "waiting"


def _churn_per_goal(derived, cell_id: str) -> float:
    rss = derived.phase_mean(cell_id, "proc", "vm_rss", "churn")
    goal = derived.phase_mean(cell_id, "runtime", "heap_goal", "churn")
    return rss / goal if goal and goal > 0 else math.nan


def decide(t: pd.DataFrame, derived) -> Decision:
    large = t[t["scenario"] == "large_churn"]
    small = t[t["scenario"] == "small_frag"]
    cells = []
    for cid in large.index:
        r = residency.retention(derived.run, cid)
        if r is None:
            continue
        outcome = large_outcome(r, _still_returning(derived, cid))
        sys_ = derived.run.series(cid, "runtime", "heap_sys")
        cells.append({"cell": cid, "gcs": axis(large, "release-gcs").get(cid, "unset"), "r": r, "outcome": outcome,
                      "per_goal": _churn_per_goal(derived, cid),
                      "go": str(large.loc[cid, "go_version"]) if "go_version" in large.columns else "",
                      "heap_sys": float(sys_.iloc[-1]) if len(sys_) else math.nan,
                      "heap_sys_max": float(sys_.max()) if len(sys_) else math.nan})
    frag = []
    for cid in small.index:
        r = residency.retention(derived.run, cid)
        if r is not None:
            frag.append({"cell": cid, "free_frac": col(small, "free-frac").get(cid, math.nan),
                         "freeos": axis(small, "freeos").get(cid, "unset") == "true", "r": r})
    partly_used = [f for f in frag if f["free_frac"] < 1 and f["r"].live > 0]
    small_resident = (None if not partly_used else
                      all(f["r"].rss_per_live >= RESIDENT_PER_LIVE for f in partly_used))
    facts = {"large": cells, "small": frag, "small_resident": small_resident}
    if not cells:
        return decision("inconclusive", "no-large", **facts)
    parts: dict[str, bool | None] = {}
    why = {}
    for c in cells:
        name = PART_OF_GCS.get(c["gcs"], PARTS[0])
        got = {"returned": False, "kept": True}.get(c["outcome"])
        parts[name] = got if parts.get(name, got) == got else None
        if got is None:
            why[name] = ("still being returned when the window ended" if c["outcome"] == "returning"
                         else "too few GCs or too soon after the last one to tell")
    values = set(parts.values())
    case = "kept" if values == {True} else "returned" if values == {False} else "mixed"
    return judged(case, parts, why, **facts)


def _large_text(c: dict) -> str:
    r: residency.Retention = c["r"]
    gcs = f"{c['gcs']} GC{'' if c['gcs'] == '1' else 's'} at the drop" if c["gcs"] != "unset" else "after the drop"
    head = (f"{gcs}: live {mib(r.live)}, RSS {mib(r.peak_rss)} at the peak → {mib(r.rss_end)} at the end "
            f"(bound baseline + 1.1 × heap in use = {mib(r.bound)})")
    if c["outcome"] == "returned":
        if math.isnan(r.waited_at):
            return f"{head}; within it {r.within_s:.0f} s after the drop, returned by the scavenger after {r.by}"
        why = ("the dense-chunk rule (a chunk freed in one GC cycle is scavenged only after a later one, "
               "scavChunkData.shouldScavenge, Go 1.21+)" if not go_before(c["go"], (1, 21))
               else "the scavenger's pacing (runtime/mgcscavenge.go gcPaceScavenger)")
        return (f"{head}; RSS was still {mib(r.waited_at)} ({r.waited_at / r.bound:.1f}× the bound) just before "
                f"{r.by}: kept resident that long by {why}, not by fragmentation; after it the scavenger brought "
                f"RSS within the bound ({r.within_s:.0f} s after the drop)")
    tail = {"kept": f"; still above it after {r.gcs_after} GCs{' incl. the periodic one' if r.periodic else ''}",
            "returning": "; still being returned when the window ended (heap released rising)",
            "waiting": (f"; only {r.gcs_after} GC{'' if r.gcs_after == 1 else 's'} after the drop, so nothing could "
                        f"be returned yet (one-more-GC rule)" if r.gcs_after < GCS_TO_JUDGE else
                        f"; the window ended {r.quiet_s:.0f} s after the last GC, too soon to tell")}
    return head + tail[c["outcome"]]


def _small_text(d: Decision) -> str:
    if not d.small:
        return "small_frag did not run"
    parts = []
    for f in sorted(d.small, key=lambda f: (f["free_frac"], f["freeos"])):
        r: residency.Retention = f["r"]
        gcs = r.forced_after - (1 if f["freeos"] else 0)   # FreeOSMemory runs a GC of its own
        how = f"{gcs} runtime.GC{'' if gcs == 1 else 's'}" + (" and FreeOSMemory" if f["freeos"] else "")
        if f["free_frac"] < 1 and r.live > 0:
            parts.append(f"{f['free_frac']:.0%} freed, after {how}: RSS {mib(r.rss_end)} = "
                         f"{ratio2(r.rss_per_live)}× the {mib(r.live)} live, heap in use {mib(r.heap_inuse)}")
        else:
            parts.append(f"all freed, after {how}: RSS {mib(r.rss_end)}")
    return "; ".join(parts)


def evidence(d: Decision) -> str:
    if d.case == "no-large":
        return f"large_churn has no readings after its drop. Small objects: {_small_text(d)}."
    large = "; ".join(_large_text(c) for c in d.large)
    goal = span([c["per_goal"] for c in d.large], ratio2)
    text = (f"Large objects (long-lived ones kept among the freed ones; during churn RSS / heap goal {goal}): "
            f"{large}. Small 64 B objects freed at random: {_small_text(d)}")
    shown = {True: "The data show the small-object case: spans with a survivor stay in use and no GC or "
                   "FreeOSMemory returns them",
             False: "Scattered small survivors did not keep memory either",
             None: "The small-object case was not measured"}[d.small_resident]
    verdict = {
        "returned": "Large-object memory did not stay resident for good: freed page runs went back once a later "
                    "GC made them eligible (the one-more-GC rule, Go 1.21+); what kept them until then was that "
                    "rule, not fragmentation",
        "kept": "Large-object memory stayed resident past two GCs beyond the live bytes and the 10% allowance",
        "mixed": "Large-object memory stayed resident in some configurations and went back in others, or the "
                 "window ended too soon",
    }[d.case]
    sys_ = [c for c in d.large if not math.isnan(c["heap_sys"])]
    address = ""
    if sys_:
        address = (" Address space, apart: HeapSys " + "; ".join(
            f"{mib(c['heap_sys_max'])} at most, {mib(c['heap_sys'])} at the end" for c in sys_)
            + " — the runtime keeps the address space it mapped (it never unmaps heap memory) but not the pages, "
              "so fragmentation of address space does not keep memory resident.")
    return f"{text}. {verdict}. {shown}.{address}"


CLAIM = Claim(
    "C13", "3.2",
    "Large objects, allocated and freed with mixed lifetimes, fragment memory and keep it resident (stated for "
    "the .NET LOH and the JVM; tested for Go's large objects).",
    "Large-object churn with mixed sizes and lifetimes, long-lived objects kept scattered among the freed ones, "
    "one or two forced GCs and an idle window past the periodic GC: RSS against the live bytes plus the "
    "scavenger's 10% allowance. Beside it small objects freed at random, with and without FreeOSMemory: RSS per "
    "live byte.",
    plain="Large objects freed with mixed lifetimes fragment memory and keep it resident.",
    scenarios=("large_churn", "small_frag"),
    metrics=("peak_rss", "rss@release", "rss@idle", "heap_inuse@idle"),
    figure=FigureSpec("breakdown", "large_churn", "large_churn_rss"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=(
        "A large object (above 32760 B since Go 1.22, 32 KiB before) gets its own run of pages from the page "
        "heap (runtime/mheap.go allocSpan); freed runs merge and the background scavenger returns free pages "
        "at page granularity (runtime/mgcscavenge.go) down to 1.1 × the heap in use at the last GC "
        "(gcPaceScavenger, retainExtraPercent = 10). Since Go 1.21 a chunk freed in one GC cycle is returned "
        "only after a later cycle (scavChunkData.shouldScavenge, golang/go#59960); an idle program waits for the "
        "periodic GC, 2 minutes after the last one (runtime/proc.go forcegcperiod). Small objects share 8 KiB "
        "spans by size class (runtime/sizeclasses.go); a span with one live object stays in use and Go's GC "
        "never moves objects, so sparse survivors pin whole spans, which neither the scavenger nor "
        "debug.FreeOSMemory (runtime/mheap.go scavengeAll: free pages only) can return."),
)
