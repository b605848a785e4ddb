"""C2: the article's snippet (make 1 GiB, drop it, GC, FreeOSMemory) hands the 1 GiB back."""

from __future__ import annotations

import pandas as pd

from harness.analyse import release
from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    decision,
    either,
    judged,
    pct,
    retained,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

# Share of the rise above baseline that FreeOSMemory must hand back for "hands it back".
HANDED_BACK = 0.75
# LazyFree at least this share of the rise: the pages went back with MADV_FREE, which RSS does not show.
LAZY_SHARE = 0.25
PARTS = ("FreeOSMemory hands the freed 1 GiB back",)
# An untouched slice whose peak rose by less than this share of the touched rise never became resident.
NEVER_RESIDENT = 0.25


def decide(t: pd.DataFrame, derived) -> Decision:
    freeos = t[axis(t, "freeos") == "true"]
    touched = freeos[axis(freeos, "touch") == "true"]
    untouched = freeos[axis(freeos, "touch") == "false"]
    if touched.empty:
        return decision("inconclusive", "no-touched")
    # Handed back = no longer the process's: MADV_FREE pages (Go 1.12-1.15's default) stay in RSS as
    # LazyFree until the kernel needs them, so they are taken out of RSS before judging.
    lazy = lazyfree_after(touched)
    back = 1 - retained(touched.assign(**{"rss_less_lazy@freeos": col(touched, "rss@freeos") - lazy.fillna(0)}),
                        "rss_less_lazy@freeos")
    rise = col(touched, "peak_rss") - col(touched, "rss@baseline")
    without = t[(axis(t, "freeos") == "false") & (axis(t, "touch") == "true")]
    tls = release.timelines(derived.run, touched)
    facts = {"back": back, "baseline": col(touched, "rss@baseline"), "peak": col(touched, "peak_rss"),
             "after": col(touched, "rss@freeos"), "lazy": lazy,
             "lazily": bool((lazy >= LAZY_SHARE * rise).any()),
             "how": [release.release_cause(tl) for tl in tls.values()][:1],
             "without": [release.release_cause(tl) for tl in release.timelines(derived.run, without).values()][:1]}
    # RSS that stayed up where LazyFree was not read (the slow tier missed the cell) cannot tell MADV_FREE's
    # hand-back from a kept heap: that cell decides nothing.
    known = back.where(~((back < HANDED_BACK) & lazy.isna()))
    facts["unread"] = int(back.notna().sum() - known.notna().sum())
    if back.dropna().empty:
        return decision("inconclusive", "missing", **facts)
    if not known.dropna().empty:
        facts["back"] = known.dropna()   # the share said is the one the runs that decide show
    handed = either(known.dropna() >= HANDED_BACK)
    why = {} if handed is not None else {PARTS[0]: "RSS stayed up where LazyFree was not read" if known.dropna().empty
                                         else f"repeats disagree around the {pct(HANDED_BACK)} mark"}
    # The untouched slice is a note, not a part: a fresh large pointer-free span is not cleared
    # (runtime/mheap.go mheap.alloc, allocNeedsZero), so its pages are never written and
    # never resident on any Go version; nothing there could come out the other way.
    if not untouched.empty:
        rise = col(untouched, "peak_rss") - col(untouched, "rss@baseline")
        touched_rise = (col(touched, "peak_rss") - col(touched, "rss@baseline")).median()
        facts["rise"] = rise
        facts["never_resident"] = bool((rise < NEVER_RESIDENT * touched_rise).all())
    case = "disagree" if handed is None else "handed-back" if handed else "kept"
    return judged(case, {PARTS[0]: handed}, why, untouched_ran=not untouched.empty, **facts)


def lazyfree_after(t: pd.DataFrame) -> pd.Series:
    """LazyFree right after FreeOSMemory; where the slow tier had no reading there, the idle phase's
    (nothing writes those pages in between, so they stay lazily freed)."""
    lazy = col(t, "lazyfree@freeos")
    return lazy.where(lazy.notna(), col(t, "lazyfree@idle"))


def _how(d: Decision) -> str:
    """What returned the touched slice with FreeOSMemory, and what happened without it."""
    text = "".join(f" Returned by {how}." for how in d.how)
    return text + "".join(f" Without FreeOSMemory, after the same GC: {how}." for how in d.without)


def evidence(d: Decision) -> str:
    if d.case == "no-touched":
        return "No touched cell with FreeOSMemory completed."
    if d.case == "missing":
        return "RSS after FreeOSMemory (rss@freeos) is missing."
    lazily = (f", of which LazyFree {span(d.lazy)}: the pages went back with MADV_FREE and stay counted in RSS until "
              "the kernel needs them (runtime/mem_linux.go sysUnused: MADV_FREE unless GODEBUG madvdontneed=1, the "
              "default only since Go 1.16)" if d.lazily else "")
    touched = (f"touched: RSS {span(d.baseline)} → peak {span(d.peak)} → {span(d.after)} after FreeOSMemory"
               f"{lazily} ({span(d.back, pct)} handed back{', LazyFree counted as handed back' if d.lazily else ''})")
    unread = (f" In {d.unread} run(s) RSS stayed up and LazyFree was not read (no smaps_rollup reading): "
              "they decide nothing." if d.unread else "")
    text = {"disagree": f"{touched}; repeats disagree around the {pct(HANDED_BACK)} mark.",
            "kept": f"{touched}: less than {pct(HANDED_BACK)} handed back.",
            "handed-back": f"{touched}."}[d.case] + unread
    if not d.untouched_ran:
        text += " The snippet as written (untouched) was not run."
    elif d.never_resident:
        text += (f" Note: the snippet as written never made RSS rise (+{span(d.rise)} at peak): a fresh large "
                 "pointer-free span is not cleared (runtime/mheap.go mheap.alloc clears only a span with needzero "
                 "set; pages fresh from the OS are zero, mheap.allocNeedsZero), so its pages are never written nor "
                 "resident and there is nothing to hand back, on any Go version.")
    else:
        text += f" The untouched snippet's RSS rose by {span(d.rise)} at peak."
    return text[0].upper() + text[1:] + _how(d)


CLAIM = Claim(
    "C2", "1 (code)",
    "`data := make([]byte, 1<<30); data = nil; runtime.GC(); FreeOSMemory()` hands the 1 GiB back to the OS.",
    "The snippet as written (the slice is never written to) and a variant that touches every page; RSS "
    "before, at peak and after. The article's `runtime.Debug.FreeOSMemory()` does not compile; the real "
    "call is `runtime/debug.FreeOSMemory()`.",
    plain="The article's snippet (allocate 1 GiB, drop it, GC, FreeOSMemory) gives the 1 GiB back.",
    scenarios=("alloc_release",),
    metrics=("rss@baseline", "peak_rss", "rss@freeos", "lazyfree@freeos", "final_rss"),
    figure=FigureSpec("rss-over-time", "alloc_release", "alloc_release_rss"),
    decide=decide, evidence=evidence, parts=PARTS, version_metric="rss@freeos",
    mechanism=("The article's `runtime.Debug.FreeOSMemory()` does not compile; runtime/debug.FreeOSMemory runs "
               "runtime.GC() and then mheap.scavengeAll, which scavenges every free page with force "
               "(runtime/mheap.go runtime_debug_freeOSMemory, pages.scavenge(^uintptr(0), nil, true)), ignoring "
               "the Go 1.21+ dense-chunk rule (golang/go#59960) that makes a GC alone wait for a later GC. Pages "
               "never written are never resident, so the snippet as written has nothing to hand back (a note, not a "
               "part: it cannot come out otherwise). In Go 1.12–1.15 the forced scavenge used MADV_FREE "
               "(runtime/mem_linux.go sysUnused: adviseUnused = _MADV_FREE unless debug.madvdontneed; Go 1.16 "
               "made madvdontneed=1 the Linux default, runtime/runtime1.go), so RSS stays up as LazyFree: the "
               "pages are handed back all the same (the kernel takes them without swap), and the verdict counts "
               "LazyFree as handed back on every version."))
