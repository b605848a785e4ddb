"""X1 (added): what a GOMEMLIMIT below the container limit costs, and what happens when the live heap exceeds it."""

from __future__ import annotations

import math
import re

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    capital,
    change,
    col,
    compare,
    decision,
    duration,
    either,
    go_before,
    judged,
    limit_bytes,
    mib,
    noise,
    peers,
    seconds2,
    signed_pct,
    size,
    span,
    unlimited,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("lower peak", "more GC CPU", "less throughput", "GC CPU limiter engaged below the live heap",
         "throughput kept above the limiter's floor below the live heap", "GOGC=off kept alive",
         "a live heap grown past the limit but within the container runs on",
         "a live heap grown past the container limit is OOM-killed")
# The GC CPU limiter caps GC at 50% of the CPU (runtime/mgclimit.go: a leaky bucket that fills with
# GC time and drains with mutator time, "a very conservative limit of 50%"), assists included. So
# with the limit below the live heap the mutator keeps at least half of GOMAXPROCS, where without a
# limit it had at most all of it: throughput must stay at or above half the no-limit throughput,
# less the run's measured noise. Below that floor the GC is stalling the program, not capped.
LIMITER_CAP = 0.5
# The axis the claim contrasts: a throughput is compared with the no-limit cells set as it is but for it.
CONTRASTED = ("gomemlimit",)


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


def _arg(args: str, flag: str) -> str:
    """A flag's value in a cell's command line as cells.csv records it ("--live=112MiB ...")."""
    m = re.search(rf"(?:^|\s)--{re.escape(flag)}=(\S+)", args)
    return m.group(1) if m else ""


def growth_cells(t: pd.DataFrame, derived) -> pd.DataFrame:
    """The gomemlimit_growth cells: the live heap each would reach (--live + --live-growth × --per-size), the
    largest it reached (the workload's live_bytes), the container limit, GOMEMLIMIT, and what became of it."""
    g = t[t["scenario"] == "gomemlimit_growth"]
    args = g["args"].astype(str) if "args" in g.columns else pd.Series("", index=g.index)
    planned = pd.Series([size(_arg(a, "live")) + size(_arg(a, "live-growth")) * duration(_arg(a, "per-size"))
                         for a in args], index=g.index, dtype=float)
    reached = pd.Series([float(derived.run.series(str(c), "runtime", "live_bytes").max()) for c in g.index],
                        index=g.index, dtype=float)
    return pd.DataFrame({"growth": axis(g, "live-growth"), "planned": planned, "reached": reached,
                         "container": col(g, "memory_limit_bytes"), "limit": limit_bytes(g),
                         "killed": col(g, "oom_killed").fillna(0) > 0, "peak": col(g, "peak_rss"),
                         "limiter": col(g, "limiter_engaged"), "share": col(g, "gc_cpu_share")})


def _growth_parts(grown: pd.DataFrame) -> tuple[dict[str, bool | None], dict[str, str]]:
    """Past GOMEMLIMIT but within the container the program must run on (the limit is soft, the GC CPU
    limiter caps what the GC takes); past the container limit the kernel must kill it (no swap). No parts
    where the scenario did not run."""
    parts: dict[str, bool | None] = {}
    why: dict[str, str] = {}
    if grown.empty:
        return parts, why
    parts = {PARTS[6]: None, PARTS[7]: None}
    within = grown[(grown["planned"] > grown["limit"]) & (grown["planned"] < grown["container"])]
    past = grown[grown["planned"] >= grown["container"]]
    if within.empty:
        why[PARTS[6]] = "no cell's live heap was set to grow past GOMEMLIMIT and stay within the container"
    else:
        parts[PARTS[6]] = either(~within["killed"])
        if parts[PARTS[6]] is None:
            why[PARTS[6]] = "killed in some repeats, not in others"
    if past.empty:
        why[PARTS[7]] = "no cell's live heap was set to grow past the container limit"
    else:
        parts[PARTS[7]] = either(past["killed"])
        if parts[PARTS[7]] is None:
            why[PARTS[7]] = "killed in some repeats, not in others"
    return parts, why


def decide(t: pd.DataFrame, derived) -> Decision:
    grown = growth_cells(t, derived)
    grown_parts, grown_why = _growth_parts(grown)
    gm = t[t["scenario"] == "gomemlimit"].copy()
    if gm.empty:
        if grown.empty:
            return decision("inconclusive", "not-run")
        return judged("growth-only", grown_parts, grown_why, grown=grown)
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
    parts: dict[str, bool | None] = dict.fromkeys(PARTS[:5])
    why: dict[str, str] = {}
    # A limit above the no-limit peak should change nothing: the difference it made is the host's
    # noise, which an effect must exceed (with the spread between repeats, compare/noise).
    placebo = change(col(idle, "throughput"), base["tput"]) if not idle.empty else 0.0
    if binding.empty:
        for name in PARTS[:3]:
            why[name] = "no limit fell between the live heap and the no-limit peak"
    else:
        b = _group(binding)
        peak = compare(b["peak"], base["peak"])
        parts["lower peak"] = None if peak == "unclear" else (peak == "lower" and not b["killed"])
        gc = compare(b["gc"], base["gc"])
        parts["more GC CPU"] = None if gc == "unclear" else gc == "higher"
        tput = compare(b["tput"], base["tput"], placebo=placebo)
        parts["less throughput"] = None if tput == "unclear" else tput == "lower"
    floor = (math.nan, math.nan)
    if overload.empty:
        why[PARTS[3]] = why[PARTS[4]] = "no limit fell below the live heap"
    else:
        o = _group(overload)
        engaged = o["limiter"].dropna()
        if engaged.empty:
            why[PARTS[3]] = "the GC CPU limiter metric is missing"
        else:
            parts[PARTS[3]] = either(engaged == 1)
            if parts[PARTS[3]] is None:
                why[PARTS[3]] = "engaged in some repeats, not in others"
        tol = noise(base["tput"], col(idle, "throughput") if not idle.empty else base["tput"], placebo)
        # Each cell's floor from the no-limit cells set as it is but for GOMEMLIMIT (the same GOGC where a
        # run crossed GOGC in): half their throughput, less the noise.
        floors = pd.Series([(1 - LIMITER_CAP) * (1 - tol) * float(col(peers(row, off, CONTRASTED), "throughput")
                                                                     .median()) for _, row in overload.iterrows()],
                           index=overload.index, dtype=float)
        floor = (float(floors.min()), float(floors.max()))
        kept = [bool(k == 0 and v >= f) for k, v, f in zip(col(overload, "oom_killed").fillna(0), o["tput"], floors,
                                                             strict=True)]
        parts[PARTS[4]] = either(kept)
        if parts[PARTS[4]] is None:
            why[PARTS[4]] = "above the floor in some repeats, below in others"
    gs = t[(t["scenario"] == "gogc_sweep") & (axis(t, "gogc") == "off")]
    gogc_off = None
    if not gs.empty and not gs[unlimited(gs)].empty and not gs[~unlimited(gs)].empty:
        gogc_off = (_group(gs[unlimited(gs)]), _group(gs[~unlimited(gs)]))
        parts[PARTS[5]] = bool(gogc_off[0]["killed"] == gogc_off[0]["n"] and not gogc_off[1]["killed"])
    groups = {"binding": _group(binding), "overload": _group(overload), "idle": _group(idle)}
    parts.update(grown_parts)
    why.update(grown_why)
    return judged("judged", parts, why, off=base, gogc_off=gogc_off, floor=floor, placebo=placebo, grown=grown,
                  **groups)


def _floor_text(floor: tuple[float, float]) -> str:
    low, high = floor
    return _rate(low) if math.isclose(low, high, rel_tol=1e-9) else f"{_rate(low)}–{_rate(high)} (per setting)"


def _limits(g: dict) -> str:
    return ", ".join(mib(v) for v in sorted(set(g["limit"].dropna())))


def _costs(g: dict, base: dict) -> str:
    return (f"peak RSS {span(g['peak'])} ({signed_pct(change(g['peak'], base['peak']))}), "
            f"GC CPU {span(g['gc'], seconds2)} ({signed_pct(change(g['gc'], base['gc']))}), "
            f"scavenger CPU {span(g['scav'], seconds2)}, "
            f"throughput {span(g['tput'], _rate)} ({signed_pct(change(g['tput'], base['tput']))})")


def _growth_text(grown: pd.DataFrame) -> str:
    """Per growth rate: the live heap set and reached, against GOMEMLIMIT and the container, and its fate."""
    out = []
    for rate, g in grown.groupby("growth", sort=False):
        fate = (f"OOM-killed {int(g['killed'].sum())}/{len(g)}" + (" at the container limit" if g["killed"].all()
                                                                   else ""))
        engaged = g["limiter"].dropna()
        limiter = f"on in {int((engaged == 1).sum())}/{len(engaged)}" if not engaged.empty else "metric missing"
        out.append(f"growing by {rate}/s toward {span(g['planned'])} live (GOMEMLIMIT {span(g['limit'])}, container "
                   f"{span(g['container'])}): live heap reached {span(g['reached'])}, peak RSS {span(g['peak'])}, GC "
                   f"{span(g['share'], _share)} of the CPU, GC CPU limiter {limiter}, {fate}")
    return "; ".join(out)


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "The gomemlimit scenario did not run."
    grown = getattr(d, "grown", None)
    growth = _growth_text(grown) if grown is not None and not grown.empty else ""
    if d.case == "growth-only":
        return capital(growth) + "."
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
        text.append(f"a limit above that peak ({_limits(d.idle)}), which should change nothing: {_costs(d.idle, off)}"
                    f" — the host's noise, which with the spread between repeats sets the tolerance an effect must "
                    f"exceed")
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
                        "mutator's by a CPU-second per P: mgclimit.go updateLocked)")
        text.append(f"a limit below the live heap ({_limits(o)}): GC CPU limiter "
                    f"(mgclimit.go gcCPULimiter) {limiter}, GC {span(o['share'], _share)} of GOMAXPROCS × wall time "
                    f"(idle-P marking included), peak RSS {span(o['peak'])}, GC CPU "
                    f"{span(o['gc'], seconds2)}, throughput {span(o['tput'], _rate)} "
                    f"({signed_pct(change(o['tput'], off['tput']))}; the floor a 50% GC cap leaves is "
                    f"{_floor_text(d.floor)}), OOM-killed {o['killed']}/{o['n']}: {fate}")
    if d.gogc_off is not None:
        without, with_limit = d.gogc_off
        text.append(f"GOGC=off: OOM-killed {without['killed']}/{without['n']} without a limit (peak "
                    f"{span(without['peak'])}), {with_limit['killed']}/{with_limit['n']} with one "
                    f"({_limits(with_limit)}, peak {span(with_limit['peak'])})")
    if growth:
        text.append(f"a live heap that keeps growing: {growth}")
    return "; ".join(text) + "."


CLAIM = Claim(
    "X1", "(added)",
    "Not in the article: a `GOMEMLIMIT` below the container limit holds the peak near the limit at the cost of "
    "more GC CPU and less throughput; it is soft: when the live heap exceeds it, the heap passes the limit and the "
    "program runs on, the GC CPU limiter (Go 1.19+) keeping GC to about half the CPU instead of stalling it, until "
    "the live heap reaches the container limit, where the kernel kills it; and GOGC=off is safe only with a limit.",
    "A steady load of pointer-holding objects in a 512 MiB container with no limit (the baseline must survive), a "
    "limit above the no-limit peak (a placebo: the noise), one below it and one below the live heap, per Go "
    "version: peak RSS, GC and scavenger CPU, throughput, OOM kills; below the live heap, whether the GC CPU "
    "limiter engaged (/gc/limiter/last-enabled) and whether throughput stayed above the floor a 50% GC cap leaves "
    "(half the no-limit throughput, less the noise); GOGC=off with and without a limit; a live heap that grows "
    "past a 50% limit, to below the container limit and past it (gomemlimit_growth): runs on, or OOM-killed.",
    plain="Added: GOMEMLIMIT below the container limit caps the peak at some GC CPU, and is soft.",
    scenarios=("gomemlimit", "gogc_sweep", "gomemlimit_growth"),
    metrics=("peak_rss", "gc_cpu_s", "scavenge_cpu_s", "throughput", "limiter_engaged", "oom_killed"),
    figure=FigureSpec("bars", "gomemlimit", "gomemlimit",
                      metrics=("peak_rss", "gc_cpu_share", "throughput", "limiter_engaged"), x="gomemlimit",
                      title="gomemlimit: peak, GC share, throughput, GC CPU limiter by GOMEMLIMIT"),
    more_figures=(FigureSpec("breakdown", "gomemlimit_growth", "gomemlimit_growth",
                             title="gomemlimit_growth: a live heap growing past GOMEMLIMIT, below the container "
                                   "limit or past it"),),
    version_metric="peak_rss",
    decide=decide, evidence=evidence, parts=PARTS,
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
