"""C7: memory goes back when free memory exceeds a share of the heap, or after some GC cycles.

Judged against the runtime's own rule. The background scavenger returns heap memory above
1.1 × the heap in use at the last GC × (new heap goal ÷ that GC's goal) (runtime/mgcscavenge.go
gcPaceScavenger, retainExtraPercent = 10): that is "a share of the heap". Since Go 1.21 it skips
chunks that were dense in the current or previous GC cycle, so what one GC frees goes back only
after another GC: the "GC cycles". The claim's "or" holds when the share alone decides; when
both are needed it holds only in part.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.analyse import release
from harness.analyse.claims.common import (
    Decision,
    MiB,
    capital,
    compare,
    decision,
    either,
    go_before,
    judged,
    limit_bytes,
    mib,
    peers,
    unlimited,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("released down to a share of the heap (the retention goal)",
         "the share alone decides (one GC is enough)")
# Retained heap at most this many times the runtime's retention goal: released down to the share.
AT_GOAL = 1.05
RATIO = "{:.2f}×".format


def mib1(x: float) -> str:
    """141.1 MiB: the retention goal is 10% above the heap in use, so whole MiB blur it."""
    return "n/a" if math.isnan(x) else f"{x / MiB:.1f} MiB"


def _ratio_text(x: float) -> str:
    return "n/a" if math.isnan(x) else RATIO(x)


def decide(t: pd.DataFrame, derived) -> Decision:
    rt = t[t["scenario"] == "release_threshold"]
    if rt.empty:
        return decision("inconclusive", "not-run")
    run = derived.run
    version = str(rt["go_version"].iloc[0]) if "go_version" in rt.columns else ""
    limits = limit_bytes(rt)
    found = {c: release.retention(run, str(c), float(limits[c])) for c in rt.index}
    tls = release.timelines(run, rt)
    kept = {c: r for c, r in found.items() if r is not None}
    if len(kept) < len(found) or len(tls) < len(rt):
        return decision("inconclusive", "missing", version=version)
    off = rt[unlimited(rt)]
    # The GCs the cell asked for (runtime.GC calls at the drop), not every GC in the window.
    n_gcs = {c: tls[str(c)].requested_gcs for c in rt.index}
    one = [c for c in off.index if n_gcs[c] == 1]
    more = [c for c in off.index if n_gcs[c] >= 2]
    ratio = pd.Series({c: kept[c].ratio for c in rt.index}, dtype=float)
    facts: dict[str, Any] = {
        "version": version,
        "one": [(kept[c], tls[str(c)]) for c in one],
        "more": [(kept[c], tls[str(c)], n_gcs[c]) for c in more],
        "limited": [(kept[c], tls[str(c)], n_gcs[c]) for c in rt.index if c not in off.index],
        "long": [tl for tl in release.timelines(run, t[t["scenario"] == "idle_scavenger"]).values()
                 if tl.requested_gcs == 1],
    }
    if not one or not more:
        return decision("inconclusive", "one-or-more-missing", **facts)
    r_one, r_more = ratio[one], ratio[more]
    share = either(r_more <= AT_GOAL)
    # Each one-GC cell against the several-GC cells set alike (the same GOGC where a run crossed GOGC in):
    # more GCs needed where it kept more than they did, not where it kept the same.
    said = {"higher": True, "same": False}
    pairs = [said.get(compare(r_one[[c]], ratio[peers(rt.loc[c], rt.loc[more], ()).index])) for c in one]
    decided = [p for p in pairs if p is not None]
    needed = either(decided) if decided else None
    alone = None if needed is None else not needed
    why = {}
    if share is None:
        why[PARTS[0]] = f"as many cells kept more than {AT_GOAL:.2f}× the goal after several GCs as did not"
    case = ("unclear" if share is None or needed is None else
            {(True, False): "share-only", (True, True): "both-needed", (False, True): "gcs-only",
             (False, False): "neither"}[(share, needed)])
    return judged(case, {PARTS[0]: share, PARTS[1]: alone}, why, **facts)


def _kept(r: release.Retention) -> str:
    return (f"kept {mib1(r.retained)} of heap (HeapSys − HeapReleased) against its retention goal {mib1(r.goal)} "
            f"({_ratio_text(r.ratio)})")


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "release_threshold did not run; idle_scavenger alone has no live heap to set the share."
    if d.case == "missing":
        return "The heap readings (HeapSys, HeapReleased, HeapInuse, heap goal) or GCs of a cell are missing."
    parts = []
    for r, tl, n in d.more:
        parts.append(f"after {n} GCs the runtime {_kept(r)}: {release.release_cause(tl)}")
    for r, tl in d.one:
        parts.append(f"after 1 GC it {_kept(r)}: {release.release_cause(tl)}")
    text = "Without GOMEMLIMIT, " + "; ".join(parts)
    for r, tl, n in d.limited:
        limit = r.limit_goal / release.LIMIT_GOAL_SHARE
        text += (f". With GOMEMLIMIT {mib(limit)} and {n} GC{'' if n == 1 else 's'}: kept {mib1(r.retained)}, "
                 f"{'within' if r.retained <= r.limit_goal else 'above'} 95% of the limit ({mib(r.limit_goal)})")
        if go_before(d.version, (1, 22)):
            text += (" — though in this Go the scavenger's memory-limit goal was effectively 95× the limit, not 95% "
                     "(gcPaceScavenger's miscalculated memoryLimitGoal, golang/go#62449, fixed in Go 1.22), so the "
                     "limit did not drive the background scavenger")
        text += f": {release.release_cause(tl)}"
    for tl in d.long:
        if tl is not None:
            text += (f". One GC and a {release.seconds(tl.window_s)} idle window (no live heap): "
                     f"{release.release_cause(tl)}")
    text += "."
    rule = release.scavenger_rule(d.version)
    if d.case == "one-or-more-missing":
        return f"{text} Needs cells released by one GC and by several, without GOMEMLIMIT."
    if d.case == "unclear":
        return f"{text} {rule}."
    return capital(text) + " " + {
        "share-only": ("The share decides: what exceeded 1.1 × the heap in use went back after the GC that freed "
                       "it, with no further GC cycles; more GCs do not take it below the share."),
        "both-needed": ("Both are needed, not either: the scavenger returns only what exceeds the share, and only "
                        "after a GC later than the one that freed it."),
        "gcs-only": "More GCs returned more, but the runtime kept more than its share of the heap.",
        "neither": "Neither the share of the heap nor the GC count explains what the runtime kept.",
    }[d.case] + f" {rule}."


CLAIM = Claim(
    "C7", "2.4",
    "Memory goes back when free memory exceeds a share of the heap or after some GC cycles.",
    "Retained heap after a spike against the runtime's retention goal (1.1 × heap in use at the last GC × goal "
    "ratio), after one GC and after two; with GOMEMLIMIT against 95% of the limit.",
    plain="Memory goes back once free memory passes a share of the heap, or after a few GCs.",
    scenarios=("release_threshold", "idle_scavenger"),
    metrics=("rss@idle", "heap_goal@idle", "gc_cycles"),
    figure=FigureSpec("retention", "release_threshold", "release_threshold_retained", x="gcs", hue="gomemlimit",
                      title="release_threshold: heap kept after the idle window against the scavenger's goals"),
    version_metric="rss@idle",
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("runtime/mgcscavenge.go gcPaceScavenger: the background scavenger keeps heapInUse + heapFree at "
               "1.1 × the heap in use at the last GC × heapGoal/lastHeapGoal (retainExtraPercent = 10, Go 1.14+, "
               "golang/go#34048) and, with GOMEMLIMIT, total memory at 95% of the limit (reduceExtraPercent = 5, "
               "Go 1.19+; the goal was 95× the limit until Go 1.22, golang/go#62449); since Go 1.21 it skips "
               "chunks dense in this or the previous GC cycle (scavChunkData.shouldScavenge, golang/go#59960). "
               "Past GOMEMLIMIT the allocator scavenges with force (runtime/mheap.go allocSpan)."))
