"""C2: the article's snippet (make 1 GiB, drop it, GC, FreeOSMemory) hands the 1 GiB back."""

from __future__ import annotations

import pandas as pd

from harness.analyse import release
from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    decision,
    pct,
    retained,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

# Share of the rise above baseline that FreeOSMemory must hand back for "hands it back".
HANDED_BACK = 0.75
# An untouched slice whose peak rose by less than this share of the touched rise never became resident.
NEVER_RESIDENT = 0.25


def decide(t: pd.DataFrame, derived) -> Decision:
    freeos = t[axis(t, "freeos") == "true"]
    touched = freeos[axis(freeos, "touch") == "true"]
    untouched = freeos[axis(freeos, "touch") == "false"]
    if touched.empty:
        return decision("inconclusive", "no-touched")
    back = 1 - retained(touched, "rss@freeos")
    without = t[(axis(t, "freeos") == "false") & (axis(t, "touch") == "true")]
    tls = release.timelines(derived.run, touched)
    facts = {"back": back, "baseline": col(touched, "rss@baseline"), "peak": col(touched, "peak_rss"),
             "after": col(touched, "rss@freeos"),
             "how": [release.release_cause(tl) for tl in tls.values()][:1],
             "without": [release.release_cause(tl) for tl in release.timelines(derived.run, without).values()][:1]}
    if back.dropna().empty:
        return decision("inconclusive", "missing", **facts)
    if back.min() < HANDED_BACK <= back.max():
        return decision("inconclusive", "disagree", **facts)
    if back.max() < HANDED_BACK:
        return decision("refuted", "kept", **facts)
    if untouched.empty:
        return decision("supported", "untouched-not-run", **facts)
    rise = col(untouched, "peak_rss") - col(untouched, "rss@baseline")
    touched_rise = (col(touched, "peak_rss") - col(touched, "rss@baseline")).median()
    if (rise < NEVER_RESIDENT * touched_rise).all():
        return decision("partly", "untouched-never-resident", rise=rise, **facts)
    return decision("supported", "both-handed-back", rise=rise, **facts)


def _how(d: Decision) -> str:
    """What returned the touched slice with FreeOSMemory, and what happened without it."""
    text = "".join(f" Returned by {how}." for how in d.how)
    return text + "".join(f" Without FreeOSMemory, after the same GC: {how}." for how in d.without)


def evidence(d: Decision) -> str:
    if d.case == "no-touched":
        return "No touched cell with FreeOSMemory completed."
    if d.case == "missing":
        return "RSS after FreeOSMemory (rss@freeos) is missing."
    touched = (f"touched: RSS {span(d.baseline)} → peak {span(d.peak)} → {span(d.after)} after FreeOSMemory "
               f"({span(d.back, pct)} handed back)")
    if d.case == "disagree":
        text = f"{touched}; repeats disagree around the {pct(HANDED_BACK)} mark."
    elif d.case == "kept":
        text = f"{touched}: less than {pct(HANDED_BACK)} handed back."
    elif d.case == "untouched-not-run":
        text = f"{touched}; the untouched snippet was not run."
    elif d.case == "untouched-never-resident":
        text = (f"The snippet as written never made RSS rise (+{span(d.rise)} at peak: an untouched slice "
                f"is never resident, so there is nothing to hand back); {touched}.")
    else:
        text = f"{touched}; untouched RSS rose by {span(d.rise)} and was handed back too."
    return text[0].upper() + text[1:] + _how(d)


CLAIM = Claim(
    "C2", "1 (code)",
    "`data := make([]byte, 1<<30); data = nil; runtime.GC(); FreeOSMemory()` hands the 1 GiB back to the OS.",
    "The snippet as written (the slice is never written to) and a variant that touches every page; RSS "
    "before, at peak and after. The article's `runtime.Debug.FreeOSMemory()` does not compile; the real "
    "call is `runtime/debug.FreeOSMemory()`.",
    plain="The article's snippet (allocate 1 GiB, drop it, GC, FreeOSMemory) gives the 1 GiB back.",
    scenarios=("alloc_release",),
    metrics=("rss@baseline", "peak_rss", "rss@freeos", "final_rss"),
    figure=FigureSpec("rss-over-time", "alloc_release", "alloc_release_rss"),
    decide=decide, evidence=evidence,
    mechanism=("The article's `runtime.Debug.FreeOSMemory()` does not compile; runtime/debug.FreeOSMemory runs "
               "runtime.GC() and then mheap.scavengeAll, which scavenges every free page with force "
               "(runtime/mheap.go runtime_debug_freeOSMemory, pages.scavenge(^uintptr(0), nil, true)), ignoring "
               "the Go 1.21+ dense-chunk rule (golang/go#59960) that makes a GC alone wait for a later GC. Pages "
               "never written are never resident, so the snippet as written has nothing to hand back."))
