"""C1: after GC, freed memory stays with the runtime and is not returned to the OS right away."""

from __future__ import annotations

import pandas as pd

from harness.analyse import release
from harness.analyse.claims.common import (
    Decision,
    col,
    decision,
    either,
    judged,
    pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("RSS kept right after the GC", "not returned right away (kept a whole idle window after one GC)")
# RSS right after runtime.GC() above this share of the peak counts as "kept".
KEPT_SHARE = 0.5
# A one-GC cell in which nothing went back counts as "kept until a later GC" only with an idle
# window at least this long (the scavenger of Go 1.19–1.20 returns 1 GiB within seconds).
MIN_WINDOW_S = 25.0


def config_label(gcs: int, window_s: float) -> str:
    return f"{gcs} GC{'' if gcs == 1 else 's'}, {window_s:.0f} s window"


def describe(tls: list[release.Timeline]) -> str:
    """One configuration's timelines: the first one's cause, and the spread of times over repeats."""
    text = release.release_cause(tls[0])
    times = [tl.at_s for tl in tls]
    if len(tls) > 1:
        back = f": back after {span(times, release.seconds)}" if not pd.Series(times).isna().all() else ""
        text += f" ({len(tls)} runs{back})"
    return text


def one_gc_outcome(tl: release.Timeline) -> str:
    """until-next-gc | soon | lazy | unclear, for a cell released by one runtime.GC()."""
    if tl.lazy:
        return "lazy"
    if tl.cause == "periodic" or (tl.cause == "nothing" and tl.window_s >= MIN_WINDOW_S):
        return "until-next-gc"
    if tl.cause in ("scavenger", "eager") and tl.after is not None and tl.after.requested:
        return "soon"
    return "unclear"


def decide(t: pd.DataFrame, derived) -> Decision:
    after = col(t, "rss@release") / col(t, "peak_rss")
    tls = release.timelines(derived.run, t)
    version = str(t["go_version"].iloc[0]) if "go_version" in t.columns and len(t) else ""
    configs: dict[str, list[release.Timeline]] = {}
    for tl in sorted(tls.values(), key=lambda tl: (tl.requested_gcs, tl.window_s)):
        configs.setdefault(config_label(tl.requested_gcs, tl.window_s), []).append(tl)
    one = [tl for tl in tls.values() if tl.requested_gcs == 1]
    # "Right after the GC" is right after the one GC that freed the memory: after three GCs in a row
    # the scavenger of Go 1.19–1.20 has raced them (34% of the peak in one run, 81% in the next).
    one_gc = [c for c in t.index if str(c) in tls and tls[str(c)].requested_gcs == 1]
    more = after.drop(index=one_gc).dropna()
    after = after[one_gc].dropna() if one_gc else after.dropna()
    facts = {"after": after, "after_more": more, "peak": col(t, "peak_rss"), "configs": configs,
             "version": version}
    if after.empty:
        return decision("inconclusive", "missing", **facts)
    kept = either(after > KEPT_SHARE)
    why = {PARTS[0]: f"some cells kept it, some did not (threshold {pct(KEPT_SHARE)})"} if kept is None else {}
    outcomes = {one_gc_outcome(tl) for tl in one}
    facts["outcomes"] = sorted(outcomes)
    facts["observed"] = any(tl.cause == "periodic" for tl in one)
    # Not right away: memory one GC freed stayed resident for a window of MIN_WINDOW_S or more (False
    # when RSS fell at once, or the scavenger returned it within seconds; the MADV_FREE case is the
    # kernel's, not the runtime's keeping).
    if kept is False:
        later: bool | None = False
    elif not outcomes:
        later, why[PARTS[1]] = None, "no cell released by a single GC completed"
    elif len(outcomes) > 1 or "unclear" in outcomes:
        later = None
        why[PARTS[1]] = (f"the one-GC cells show {', '.join(sorted(outcomes))}; an idle window under "
                         f"{MIN_WINDOW_S:.0f} s cannot show memory kept")
    else:
        later = outcomes == {"until-next-gc"}
    case = ("returned-at-once" if kept is False else "disagree" if kept is None
            else {"until-next-gc": "kept-until-next-gc", "soon": "scavenged-soon", "lazy": "lazy"}.get(
                next(iter(outcomes)) if len(outcomes) == 1 else "", "unclear"))
    if case == "scavenged-soon":
        facts["soon"] = span([tl.at_s for tl in one], release.seconds)
    return judged(case, {PARTS[0]: kept, PARTS[1]: later}, why, **facts)


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "RSS at the end of the release phase (rss@release) is missing."
    text = f"Right after one runtime.GC() RSS was {span(d.after, pct)} of the peak ({span(d.peak)})"
    if len(d.after_more):
        text += f"; after several in a row, {span(d.after_more, pct)}"
    if d.case == "returned-at-once":
        return f"Memory went back at once: {text}."
    text += ". What returned it, and when: " + "; ".join(
        f"{label}: {describe(tls)}" for label, tls in d.configs.items()) + "."
    rule = release.scavenger_rule(d.version)
    if d.case in ("disagree", "unclear"):
        return f"{text} {rule}."
    if d.case == "kept-until-next-gc":
        if d.observed:
            return (f"{text} Kept, as stated: memory freed by one GC stayed resident until a later GC let the "
                    f"scavenger return it; more GCs return it within seconds. {rule}.")
        return (f"{text} Kept, as stated, for the whole idle window after one GC; more GCs return it within "
                f"seconds. No one-GC window of this Go version crossed the periodic GC, so that a later GC "
                f"released it was not observed here. {rule}.")
    if d.case == "scavenged-soon":
        return (f"{text} Kept only briefly: after one GC the scavenger returned it on its own within "
                f"{d.soon}, with no further GC. {rule}.")
    return (f"{text} top shows it as used, but not because the runtime kept it: the runtime returned it with "
            f"MADV_FREE, and the kernel leaves such pages in RSS until it needs the memory; "
            f"{release.madvise_default(d.version)}. {rule}.")


CLAIM = Claim(
    "C1", "1, 3.1",
    "After GC, freed memory stays with the runtime (mcache/mcentral/mheap) and is not returned to the OS "
    "right away, so `top`/`free` show it as still used.",
    "RSS after the live data is dropped and runtime.GC() runs: one GC with a 30 s idle window, one GC with a "
    "140 s window that crosses the periodic GC, and three GCs; what returned the memory and when.",
    plain="After a GC, Go keeps the memory it freed for a while instead of returning it to the OS.",
    scenarios=("idle_three_gcs", "idle_one_gc", "idle_scavenger"),
    metrics=("peak_rss", "rss@release", "final_rss", "release_s"),
    figure=FigureSpec("rss-over-time", "idle_scavenger", "idle_scavenger_rss", also=("idle_one_gc",),
                      max_panels=10, limit=False,
                      title="One runtime.GC(), then idle: RSS per Go version\n(idle_one_gc: a 30 s window; "
                            "idle_scavenger: 140 s, past the periodic GC 120 s after the last one)"),
    version_metric="release_s",
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("The background scavenger returns free heap memory above its retention goal (runtime/mgcscavenge.go "
               "gcPaceScavenger); since Go 1.21 it skips chunks that were dense in the current or previous GC "
               "cycle (scavChunkData.shouldScavenge, golang/go#59960), so memory freed by one GC waits for a "
               "later GC, in an idle program the periodic one every 2 minutes (runtime/proc.go forcegcperiod)."))
