"""X1 (added): what a GOMEMLIMIT below the container limit costs, and what happens when the live heap exceeds it."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    change,
    col,
    combine,
    compare,
    decision,
    go_before,
    limit_bytes,
    mib,
    parts_text,
    seconds2,
    signed_pct,
    span,
    unlimited,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("lower peak", "more GC CPU", "less throughput", "soft above the live heap", "GOGC=off kept alive")


def _rate(v: float) -> str:
    return f"{v / 1e6:.2f} M/s"


def _share(v: float) -> str:
    return f"{100 * v:.0f}%"


def _group(t: pd.DataFrame) -> dict:
    """The numbers the evidence gives for one group of cells."""
    return {"peak": col(t, "peak_rss"), "gc": col(t, "gc_cpu_s"), "scav": col(t, "scavenge_cpu_s"),
            "tput": col(t, "throughput"), "killed": int(col(t, "oom_killed").fillna(0).sum()), "n": len(t),
            "limiter": col(t, "limiter_engaged"), "limit": limit_bytes(t), "live": col(t, "live_heap"),
            "share": col(t, "gc_cpu_share")}


def decide(t: pd.DataFrame, derived) -> Decision:
    gm = t[t["scenario"] == "gomemlimit"].copy()
    if gm.empty:
        return decision("inconclusive", "not-run")
    gm["live_heap"] = gm.index.map(derived.live_heap(gm.index)).astype(float)
    off, on = gm[unlimited(gm)], gm[~unlimited(gm)]
    if off.empty or on.empty:
        return decision("inconclusive", "one-side")
    base = _group(off)
    if base["killed"]:
        return decision("inconclusive", "no-baseline", off=base)
    # Each limited cell by where its limit falls: below the heap the GC marks live without a limit
    # (overload: the GC can never reach its goal), below the peak the program reaches without a
    # limit (binding), or above it (idle). The live heap is read without a limit because a limit
    # changes it: a GC running back to back leaves less garbage floating.
    limit = limit_bytes(on)
    below_live = limit < base["live"].median()   # False where the live heap is unknown (no gctrace)
    overload = on[below_live]
    binding = on[~below_live & (limit < base["peak"].median())]
    idle = on[limit >= base["peak"].median()]
    parts: dict[str, bool | None] = dict.fromkeys(PARTS[:4])
    why: dict[str, str] = {}
    if binding.empty:
        for name in PARTS[:3]:
            why[name] = "no limit fell between the live heap and the no-limit peak"
    else:
        b = _group(binding)
        peak = compare(b["peak"], base["peak"])
        parts["lower peak"] = None if peak == "unclear" else (peak == "lower" and not b["killed"])
        gc = compare(b["gc"], base["gc"])
        parts["more GC CPU"] = None if gc == "unclear" else gc == "higher"
        tput = compare(b["tput"], base["tput"])
        parts["less throughput"] = None if tput == "unclear" else tput == "lower"
    if overload.empty:
        why[PARTS[3]] = "no limit fell below the live heap"
    elif col(overload, "limiter_engaged").isna().all():
        why[PARTS[3]] = "the GC CPU limiter metric is missing"
    else:
        # Soft is what a container sees: the heap passed the limit and the program ran on. Whether
        # the limiter had to act is the mechanism, reported, not judged: it acts only when GC time
        # would outweigh the mutator's, and a GC that stays near half the CPU never fills its bucket.
        o = _group(overload)
        parts[PARTS[3]] = bool(not o["killed"] and (o["peak"] > o["limit"]).all() and (o["tput"] > 0).all())
    gs = t[(t["scenario"] == "gogc_sweep") & (axis(t, "gogc") == "off")]
    gogc_off = None
    if not gs.empty and not gs[unlimited(gs)].empty and not gs[~unlimited(gs)].empty:
        gogc_off = (_group(gs[unlimited(gs)]), _group(gs[~unlimited(gs)]))
        parts[PARTS[4]] = bool(gogc_off[0]["killed"] == gogc_off[0]["n"] and not gogc_off[1]["killed"])
    groups = {"binding": _group(binding), "overload": _group(overload), "idle": _group(idle)}
    return decision(combine(list(parts.values())), "judged", off=base, parts=parts, why=why, gogc_off=gogc_off,
                    **groups)


def _limits(g: dict) -> str:
    return ", ".join(mib(v) for v in sorted(set(g["limit"].dropna())))


def _costs(g: dict, base: dict) -> str:
    return (f"peak RSS {span(g['peak'])} ({signed_pct(change(g['peak'], base['peak']))}), "
            f"GC CPU {span(g['gc'], seconds2)} ({signed_pct(change(g['gc'], base['gc']))}), "
            f"scavenger CPU {span(g['scav'], seconds2)}, "
            f"throughput {span(g['tput'], _rate)} ({signed_pct(change(g['tput'], base['tput']))})")


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "The gomemlimit scenario did not run."
    if d.case == "one-side":
        return "Needs cells with and without GOMEMLIMIT."
    off = d.off
    if d.case == "no-baseline":
        return (f"Without GOMEMLIMIT the program was OOM-killed ({off['killed']}/{off['n']}, peak RSS "
                f"{span(off['peak'])}): no baseline to read the cost of a limit against.")
    text = [(f"Without GOMEMLIMIT: peak RSS {span(off['peak'])}, live heap (marked at each GC, gctrace) "
             f"{span(off['live'])}, GC CPU {span(off['gc'], seconds2)}, scavenger CPU {span(off['scav'], seconds2)}, "
             f"throughput {span(off['tput'], _rate)}, OOM-killed {off['killed']}/{off['n']}")]
    if d.idle["n"]:
        text.append(f"a limit above that peak ({_limits(d.idle)}): {_costs(d.idle, off)}")
    b = d.binding
    if b["n"]:
        text.append(f"a limit below it ({_limits(b)}): {_costs(b, off)}, OOM-killed {b['killed']}/{b['n']}")
        if compare(b["scav"], off["scav"]) == "higher":
            text[-1] += (" (the scavenger hands memory back while the program runs, to keep the runtime's "
                         "mapped memory under 95% of the limit: mgcscavenge.go gcPaceScavenger, mheap.go allocSpan)")
    o = d.overload
    if o["n"]:
        engaged = o["limiter"].dropna()
        limiter = ("metric missing" if engaged.empty else f"on in {int((engaged == 1).sum())}/{len(engaged)}")
        if o["killed"]:
            fate = "the program was killed"
        elif (o["peak"] > o["limit"]).all():
            fate = ("the heap passed the limit (it is soft: the heap goal never drops below the live heap, "
                    "mgcpacer.go memoryLimitHeapGoal) and the program ran on, slowed by GC")
        else:
            fate = "RSS stayed at the limit while the GC ran back to back"
        if (engaged == 0).any():
            limiter += (" (it turns on only once GC time, assists plus a 25% background share, has outweighed the "
                        "mutator's by a CPU-second per P: mgclimit.go updateLocked; a GC near half the CPU may "
                        "never get there)")
        text.append(f"a limit below the live heap ({_limits(o)}): GC CPU limiter "
                    f"(mgclimit.go gcCPULimiter) {limiter}, GC {span(o['share'], _share)} of GOMAXPROCS × wall time "
                    f"(idle-P marking included), peak RSS {span(o['peak'])}, GC CPU "
                    f"{span(o['gc'], seconds2)}, throughput {span(o['tput'], _rate)} "
                    f"({signed_pct(change(o['tput'], off['tput']))}), OOM-killed {o['killed']}/{o['n']}: {fate}")
    if d.gogc_off is not None:
        without, with_limit = d.gogc_off
        text.append(f"GOGC=off: OOM-killed {without['killed']}/{without['n']} without a limit (peak "
                    f"{span(without['peak'])}), {with_limit['killed']}/{with_limit['n']} with one "
                    f"({_limits(with_limit)}, peak {span(with_limit['peak'])})")
    out = "; ".join(text) + "."
    rest = parts_text(d.parts, d.why)
    return f"{out} {rest}" if rest else out


CLAIM = Claim(
    "X1", "(added)",
    "Not in the article: a `GOMEMLIMIT` below the container limit holds the peak near the limit at the cost of "
    "more GC CPU and less throughput; it is soft: when the live heap exceeds it, the heap passes the limit and the "
    "program runs on, the GC CPU limiter (Go 1.19+) keeping GC to about half the CPU instead of stalling it; and "
    "GOGC=off is safe only with a limit.",
    "A steady load of pointer-holding objects in a 512 MiB container with no limit (the baseline must survive), a "
    "limit above the no-limit peak, one below it and one below the live heap, per Go version: peak RSS, GC and "
    "scavenger CPU, throughput, the limiter metric, OOM kills; GOGC=off with and without a limit.",
    plain="Added: GOMEMLIMIT below the container limit caps the peak at some GC CPU, and is soft.",
    scenarios=("gomemlimit", "gogc_sweep"),
    metrics=("peak_rss", "gc_cpu_s", "scavenge_cpu_s", "throughput", "limiter_engaged", "oom_killed"),
    figure=FigureSpec("bars", "gomemlimit", "gomemlimit", metrics=("peak_rss", "gc_cpu_s", "throughput", "oom_killed"),
                      x="gomemlimit"),
    version_metric="peak_rss",
    decide=decide, evidence=evidence,
    not_applicable=lambda go: "GOMEMLIMIT arrived in Go 1.19" if go_before(go, (1, 19)) else None,
    mechanism="The memory limit sets its own heap goal next to GOGC's (runtime/mgcpacer.go "
              "gcControllerState.memoryLimit, memoryLimitHeapGoal), and the scavenger returns memory while "
              "mappedReady exceeds 95% of it (runtime/mgcscavenge.go gcPaceScavenger memoryLimitGoal, "
              "reduceExtraPercent=5; a wrong ×95 factor in early versions, golang/go#62449) or at allocation when a "
              "span would pass it (runtime/mheap.go allocSpan); the GC CPU limiter caps GC at about 50% of CPU and "
              "lets the heap overshoot (runtime/mgclimit.go gcCPULimiter, /gc/limiter/last-enabled:gc-cycle; Go 1.19 "
              "release notes, golang/go#48409); the limit's heap goal never drops below the live heap "
              "(runtime/mgcpacer.go memoryLimitHeapGoal), so the heap grows past the limit when the live heap does; "
              "no allocation fails for the limit.")
