"""C3: madvdontneed=0 (MADV_FREE) is the default; madvdontneed=1 (MADV_DONTNEED) frees at once."""

from __future__ import annotations

import pandas as pd

from harness.analyse import release
from harness.analyse.claims.common import Decision, axis, col, decision, judged, pct, span
from harness.analyse.claims.study import Claim, FigureSpec

# After FreeOSMemory, LazyFree at or above this share of the peak means the pages were lazily freed...
LAZY_SHARE = 0.25
# ...and LazyFree below this share with RSS below DONTNEED_RSS_SHARE of the peak means freed at once.
NO_LAZY_SHARE = 0.10
DONTNEED_RSS_SHARE = 0.25
SETTINGS = ("unset", "0", "1")
PARTS = ("madvdontneed=0 frees lazily (MADV_FREE)", "madvdontneed=1 frees at once (MADV_DONTNEED)",
         "madvdontneed=0 is the default")


def madv_class(t: pd.DataFrame) -> str | None:
    """free | dontneed | None (unclear) from LazyFree and RSS right after FreeOSMemory."""
    lazy = col(t, "lazyfree@freeos") / col(t, "peak_rss")
    rss = col(t, "rss@freeos") / col(t, "peak_rss")
    if lazy.dropna().empty:
        return None
    if (lazy >= LAZY_SHARE).all():
        return "free"
    if (lazy < NO_LAZY_SHARE).all() and (rss < DONTNEED_RSS_SHARE).all():
        return "dontneed"
    return None


def expected_default(version: str) -> str:
    """free | dontneed: what the Go source makes the default (runtime/runtime1.go parsedebugvars)."""
    minor = release.go_minor(version)
    return "free" if minor is not None and 12 <= minor <= 15 else "dontneed"


def decide(t: pd.DataFrame, derived) -> Decision:
    setting = axis(t, "madvdontneed")
    groups = {s: t[setting == s] for s in SETTINGS}
    version = str(t["go_version"].iloc[0]) if "go_version" in t.columns and len(t) else ""
    missing = [s for s, g in groups.items() if g.empty]
    if missing:
        return decision("inconclusive", "missing-setting", missing=missing, version=version)
    if col(t, "lazyfree@freeos").dropna().empty:
        return decision("inconclusive", "no-lazyfree", version=version)
    after = {s: (col(g, "rss@freeos"), col(g, "lazyfree@freeos")) for s, g in groups.items()}
    cls = {s: madv_class(g) for s, g in groups.items()}
    facts = {"after": after, "cls": cls, "version": version, "expected": expected_default(version)}
    unclear = (f"LazyFree neither ≥{pct(LAZY_SHARE)} nor <{pct(NO_LAZY_SHARE)} of the peak in every cell")
    parts = {PARTS[0]: None if cls["0"] is None else cls["0"] == "free",
             PARTS[1]: None if cls["1"] is None else cls["1"] == "dontneed",
             PARTS[2]: None if cls["unset"] is None or cls["0"] is None else cls["unset"] == cls["0"]}
    why = {name: unclear for name, p in parts.items() if p is None}
    return judged("judged", parts, why, **facts)


def _source(d: Decision) -> str:
    """The default the source gives this Go version, and whether the run agreed."""
    text = f" Go {d.version}: {release.madvise_default(d.version)}"
    measured = d.cls.get("unset")
    if measured is not None and measured != d.expected:
        return text + "; the unset run did not behave as that default."
    return text + "."


def evidence(d: Decision) -> str:
    if d.case == "missing-setting":
        return f"No completed cell for madvdontneed={', '.join(d.missing)}."
    if d.case == "no-lazyfree":
        return "LazyFree (smaps_rollup) was not read: lazyfree@freeos is missing."
    text = "After FreeOSMemory, " + "; ".join(f"{s}: RSS {span(rss)}, LazyFree {span(lazy)}"
                                              for s, (rss, lazy) in d.after.items()) + "."
    if d.cls["unset"] is not None:
        text += f" Unset behaves like {'MADV_FREE' if d.cls['unset'] == 'free' else 'MADV_DONTNEED'}."
    return text + _source(d)


CLAIM = Claim(
    "C3", "1 (table), 2.5",
    "`GODEBUG=madvdontneed=0` is the default and uses MADV_FREE (the kernel decides when); `madvdontneed=1` "
    "uses MADV_DONTNEED and frees physical memory at once.",
    "Which setting the default behaves like (unset vs explicit 0 and 1); RSS and LazyFree after release.",
    plain="By default Go frees with MADV_FREE (the kernel takes pages later); madvdontneed=1 frees at once.",
    scenarios=("madvdontneed",),
    metrics=("peak_rss", "rss@freeos", "lazyfree@freeos"),
    figure=FigureSpec("rss-over-time", "madvdontneed", "madvdontneed_rss", overlay="madvdontneed", max_panels=10,
                      title="madvdontneed: RSS over time, unset / 0 / 1 per Go version"),
    version_metric="rss@freeos",
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("runtime/mem_linux.go sysUnusedOS returns memory with madvise: MADV_DONTNEED when "
               "debug.madvdontneed is set, else MADV_FREE (falling back to DONTNEED before Linux 4.5). "
               "runtime/runtime1.go parsedebugvars sets madvdontneed=1 on Linux since Go 1.16 (golang/go#42330); "
               "Go 1.12–1.15 defaulted to MADV_FREE (CL 135395). MADV_FREE pages stay in RSS, counted as "
               "LazyFree, until the kernel needs them."))
