"""X2 (added): with THP `always`, khugepaged puts memory the runtime returned back into huge pages."""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    decision,
    go_before,
    judged,
    pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

SCENARIOS = ("thp_collapse", "thp_disablethp", "thp_madvise")
PARTS = ("RSS kept up under always, in huge pages", "GODEBUG=disablethp=1 keeps it down",
         "madvise stays down like never")
# The refill is what came back into RSS between the release (rss@freeos) and the end, less what came
# back under `never` (khugepaged off), as a share of what the release took out of RSS (peak RSS less
# rss@freeos). Huge pages the release left whole are in neither, so they cannot pass for a refill.
# The workload keeps about 3% of its 32 KiB objects, so about 1 − 0.97^64 ≈ 86% of the 2 MiB ranges
# keep a resident page, and khugepaged collapses a range with at most max_ptes_none (511) empty PTEs
# (kernel Documentation/admin-guide/mm/transhuge.rst): a full collapse refills about 86%. Half of
# the released size leaves room for ranges khugepaged has not reached by the end of the idle phase.
REFILLED_SHARE = 0.5
# At or below this share RSS stayed down as under `never` (the survivors' pages and noise); between
# the two the verdict is undecided.
LIKE_NEVER_SHARE = 0.15
# The refill must be huge pages: AnonHugePages gained after the release, at least this share of it
# (the rest: the survivors' own 4 KiB pages).
HUGE_SHARE = 0.75
# GODEBUG=disablethp arrived in Go 1.21.6 (golang/go#64332; runtime/runtime1.go dbgvars has it in 1.21.13).
DISABLETHP_SINCE = (1, 21, 6)


def _version(go: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in str(go).strip().removeprefix("go").split("."))
    except ValueError:
        return None


def has_disablethp(go: str) -> bool:
    """Whether a Go version knows GODEBUG=disablethp (`default` and toolchain paths are new enough)."""
    v = _version(go)
    return v is None or v >= DISABLETHP_SINCE


def _huge(derived, cell_id: str) -> tuple[float, float]:
    """AnonHugePages (smaps_rollup) right after FreeOSMemory (the first reading at or after the end of
    phase freeos, as rss@freeos) and at the last reading; NaN where not sampled."""
    s = derived.run.series(cell_id, "smaps", "anon_huge_pages")
    if s.empty:
        return math.nan, math.nan
    end = derived.run.phase_span(cell_id, "freeos")[1]
    after = s[s.index >= end] if not math.isnan(end) else s.iloc[0:0]
    return (float(after.iloc[0]) if len(after) else math.nan), float(s.iloc[-1])


def _disablethp(t: pd.DataFrame) -> pd.Series:
    return axis(t, "godebug").str.contains("disablethp=1", regex=False)


def _group(t: pd.DataFrame, derived) -> dict:
    """Per cell of one THP mode: what the release took out of RSS and what came back by the end."""
    peak, after, final = col(t, "peak_rss"), col(t, "rss@freeos"), col(t, "final_rss")
    huge = [_huge(derived, str(c)) for c in t.index]
    return {"n": len(t), "peak": peak, "after": after, "final": final, "released": peak - after,
            "back": final - after,
            "huge_after": pd.Series([h[0] for h in huge], index=t.index, dtype=float),
            "huge": pd.Series([h[1] for h in huge], index=t.index, dtype=float),
            "killed": int(col(t, "oom_killed").fillna(0).sum())}


def _refill(g: dict, never: dict) -> tuple[float, float]:
    """(what came back into RSS after the release, beyond what came back under never, as a share of the
    released size; the share of that which AnonHugePages gained). Memory the release never took out
    (huge pages it left whole) is in neither."""
    released = float(g["released"].median())
    if not released > 0:
        return math.nan, math.nan
    gap = float(g["back"].median() - never["back"].median())
    huge = float((g["huge"] - g["huge_after"].fillna(0)).median())
    return gap / released, (huge / gap if gap > 0 else math.nan)


def _kept(share: float, huge: float) -> bool | None:
    """True: RSS came back in huge pages; False: it stayed down like never; None: in between or unread."""
    if math.isnan(share):
        return None
    if share <= LIKE_NEVER_SHARE:
        return False
    if share >= REFILLED_SHARE and not math.isnan(huge) and huge >= HUGE_SHARE:
        return True
    return None


def decide(t: pd.DataFrame, derived) -> Decision:
    cells = t[t["scenario"].isin(SCENARIOS)]
    if cells.empty:
        return decision("inconclusive", "not-run")
    mode = axis(cells, "thp")
    dthp = _disablethp(cells)
    plain = cells[~dthp]
    groups = {m: _group(plain[mode[~dthp] == m], derived) for m in ("always", "madvise", "never")}
    if not groups["never"]["n"] or not groups["always"]["n"]:
        return decision("inconclusive", "one-side", groups=groups)
    if groups["never"]["killed"] or groups["always"]["killed"]:
        return decision("inconclusive", "killed", groups=groups)
    go = str(cells["go_version"].iloc[0]) if "go_version" in cells.columns else ""
    never = groups["never"]
    shares = {m: _refill(g, never) for m, g in groups.items() if g["n"] and m != "never"}
    parts: dict[str, bool | None] = {PARTS[0]: _kept(*shares["always"])}
    why = {}
    if parts[PARTS[0]] is None:
        why[PARTS[0]] = "the refill fell between the two thresholds, or a reading is missing"
    off = cells[dthp & (mode == "always")]
    if not off.empty and has_disablethp(go):
        groups["disablethp"] = _group(off, derived)
        shares["disablethp"] = _refill(groups["disablethp"], never)
        kept = _kept(*shares["disablethp"])
        parts[PARTS[1]] = None if kept is None else not kept
        if kept is None:
            why[PARTS[1]] = "the refill with disablethp=1 fell between the two thresholds"
    if groups["madvise"]["n"]:
        kept = _kept(*shares["madvise"])
        parts[PARTS[2]] = None if kept is None else not kept
        if kept is None:
            why[PARTS[2]] = "the refill under madvise fell between the two thresholds"
    return judged("judged", parts, why, groups=groups, shares=shares, go=go)


def _line(name: str, g: dict, share: tuple[float, float] | None) -> str:
    text = (f"{name}: peak RSS {span(g['peak'])}, after FreeOSMemory {span(g['after'])}, at the end "
            f"{span(g['final'])}, AnonHugePages after FreeOSMemory {span(g['huge_after'])}, at the end "
            f"{span(g['huge'])}")
    if share is not None and not math.isnan(share[0]):
        gained = span(g["huge"] - g["huge_after"].fillna(0))
        text += (f" (back after the release, beyond never: {pct(share[0])} of the released size; AnonHugePages "
                 f"gained {gained})")
    return text


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "The thp_collapse scenario did not run."
    if d.case == "one-side":
        return "Needs cells with THP always and never (the thp axis) of the same Go version."
    if d.case == "killed":
        return "A cell was OOM-killed: no release to read."
    names = {"always": "THP always", "madvise": "THP madvise", "never": "THP never (the baseline)",
             "disablethp": "THP always with GODEBUG=disablethp=1"}
    text = [_line(names[m], g, d.shares.get(m)) for m, g in d.groups.items() if g["n"]]
    if "disablethp" not in d.groups and not has_disablethp(d.go):
        text.append(f"Go {d.go} has no GODEBUG=disablethp (from 1.21.6)")
    if go_before(d.go, (1, 21)):
        text.append("this Go marks the huge pages at the ends of each released range MADV_NOHUGEPAGE "
                    "(runtime/mem_linux.go sysUnusedOS up to 1.20), which khugepaged skips")
    return "; ".join(text) + (f". Kept up: at least {pct(REFILLED_SHARE)} of the released size back beyond never, "
                              f"{pct(HUGE_SHARE)} of it huge; down like never: at most {pct(LIKE_NEVER_SHARE)}.")


CLAIM = Claim(
    "X2", "(added)",
    "Not in the article: under transparent huge pages `always`, memory the runtime returned to the OS from a "
    "sparsely used heap comes back: khugepaged collapses each 2 MiB range that kept a resident page into a huge "
    "page, so RSS climbs back after the release; Go up to 1.20 prevented this by marking released ranges "
    "MADV_NOHUGEPAGE, Go 1.21 and later no longer do, and GODEBUG=disablethp=1 (1.21.6+) keeps the heap out of "
    "huge pages; `madvise` and `never` keep RSS down.",
    "A heap of 32 KiB objects of which about 3% survive at random (most 2 MiB ranges keep a page), released by "
    "two GCs and FreeOSMemory, then 35 s idle with khugepaged at ten times its default pace (pages_to_scan 4096 every "
    "1 s instead of 10 s, as every guest sets it and cells.csv `khugepaged_ms` records: at the default pace, "
    "shared by every process of the guest, it did not always reach the heap in that time, and a refill it had "
    "not made yet read as staying down; what it collapses, max_ptes_none 511, is the kernel's default); "
    "the same cells under THP always, madvise and never (never: "
    "the baseline), and under always with GODEBUG=disablethp=1, per Go version: RSS and AnonHugePages "
    "(smaps_rollup) at the end, the refill "
    "read as what came back into RSS after the release beyond what came back under never, as a share of what "
    "FreeOSMemory took out of RSS, and AnonHugePages gained after the release.",
    plain="Added: THP always puts memory Go released back into RSS (Go 1.21+).",
    scenarios=SCENARIOS,
    metrics=("peak_rss", "rss@freeos", "final_rss", "oom_killed"),
    figure=FigureSpec("huge-pages", "thp_collapse", "thp_collapse", overlay="thp",
                      title="thp_collapse: RSS (solid) and AnonHugePages (dashed) by THP mode"),
    version_metric="final_rss",
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism="khugepaged collapses a 2 MiB range into a huge page when at most max_ptes_none (default 511) of "
              "its 512 PTEs are empty, so one resident page brings the whole range back (kernel "
              "Documentation/admin-guide/mm/transhuge.rst). Up to Go 1.20 sysUnusedOS set MADV_NOHUGEPAGE on "
              "the huge pages at the ends of a released range (runtime/mem_linux.go, 1.19.8; golang/go#8832); "
              "Go 1.21 dropped that on purpose (golang/go#64332, where the runtime's maintainers advise "
              "max_ptes_none=0 or THP off instead; 1.21.13 sysUnusedOS only madvises DONTNEED/FREE), and "
              "GODEBUG=disablethp=1 maps the heap MADV_NOHUGEPAGE (runtime/mem_linux.go sysMapOS, "
              "runtime/extern.go, runtime1.go dbgvars; 1.21.13 and later).",
)
