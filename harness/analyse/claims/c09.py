"""C9: debug.FreeOSMemory() lowers RSS but costs CPU and latency; called often it causes page faults."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    col,
    combine,
    compare,
    decision,
    duration,
    seconds2,
    span,
)
from harness.analyse.claims.registry import Claim
from harness.define.units import UNITS

PARTS = ("lower RSS", "CPU/throughput cost", "more page faults")


def decide(t: pd.DataFrame, derived) -> Decision:
    every = axis(t, "every").map(duration)
    none = t[every == 0]
    calls = every[every > 0]
    if none.empty or calls.empty:
        return decision("inconclusive", "missing")
    fastest = t[every == calls.min()]
    lower_rss = compare(col(fastest, "mean_rss"), col(none, "mean_rss"))
    cost = [compare(col(fastest, "throughput"), col(none, "throughput")),
            compare(col(fastest, "cpu_s"), col(none, "cpu_s"))]
    faults = compare(col(fastest, "minflt"), col(none, "minflt"))
    parts = [None if lower_rss == "unclear" else lower_rss == "lower",
             None if cost == ["unclear", "unclear"] else (cost[0] == "lower" or cost[1] == "higher"),
             None if faults == "unclear" else faults == "higher"]
    metrics = ("mean_rss", "throughput", "cpu_s", "minflt", "freeos_p50_ns")
    return decision(combine(parts), "judged", label=f"every={axis(fastest, 'every').iloc[0]}",
                    fastest={m: col(fastest, m) for m in metrics}, none={m: col(none, m) for m in metrics},
                    failed=[n for n, p in zip(PARTS, parts) if p is False])


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "Needs a cell without calls (every=0s) and one with periodic calls."
    f, n = d.fastest, d.none

    def rate(v: float) -> str:
        return f"{v:.3g}/s"

    def count(v: float) -> str:
        return f"{v:.0f}"

    text = (f"{d.label} vs none: mean RSS {span(f['mean_rss'])} vs {span(n['mean_rss'])}; "
            f"throughput {span(f['throughput'], rate)} vs {span(n['throughput'], rate)}; "
            f"CPU {span(f['cpu_s'], seconds2)} vs {span(n['cpu_s'], seconds2)}; "
            f"minor faults {span(f['minflt'], count)} vs {span(n['minflt'], count)}; "
            f"each call p50 {span(f['freeos_p50_ns'], UNITS['ns'].format)}")
    if d.verdict == "partly":
        text += ". Did not hold: " + ", ".join(d.failed)
    return text + "."


CLAIM = Claim(
    "C9", "4.2",
    "`debug.FreeOSMemory()` lowers RSS a lot but costs CPU and latency; called often it causes repeated "
    "mapping and page faults.",
    "Periodic calls at several rates under a steady load: call duration, page faults, CPU, RSS and work "
    "done, against no calls.",
    scenarios=("freeos_periodic",),
    metrics=("freeos_calls", "freeos_p50_ns", "minflt", "cpu_s", "throughput", "mean_rss"),
    figure="figures/freeos_periodic.png",
    decide=decide, evidence=evidence)
