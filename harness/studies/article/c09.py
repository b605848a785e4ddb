"""C9: debug.FreeOSMemory() lowers RSS but costs CPU and latency; called often it causes repeated mapping and
page faults."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    change,
    col,
    compare,
    decision,
    duration,
    judged,
    signed_pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec
from harness.define.units import UNITS

LOAD_PHASE = "load"
MAPPING_CALLS = ("mmap", "munmap")
# Repeated mapping means more mmap/munmap calls with frequent FreeOSMemory than without: at least
# this many more, and more than twice as many (the runtime maps a little as the heap grows anyway).
MAPPING_MIN_EXTRA = 20
# Judged at the fastest call rate ("called often"); the slower rates are reported beside it.
PARTS = ("lower RSS", "latency/throughput cost", "more page faults", "repeated mapping (mmap/munmap)")
METRICS = ("mean_rss", "throughput", "unit_p50_ns", "unit_p99_ns", "minflt", "cpu_s", "freeos_p50_ns")


def _cost(tput: str, p99: str) -> bool | None:
    """Whether calls cost work: throughput lower or the p99 latency of a work unit higher."""
    if tput == "lower" or p99 == "higher":
        return True
    if "unclear" in (tput, p99):
        return None
    return False


def _mapping(derived, traced: pd.DataFrame) -> tuple[bool | None, dict]:
    """mmap/munmap against madvise during the load, with the fastest calls and with none (syscall trace)."""
    every = axis(traced, "every").map(duration)
    calls, none = traced[every == every.max()], traced[every == 0]
    if traced.empty or calls.empty or none.empty or every.max() <= 0:
        return None, {}
    counts: dict[str, Any] = {}
    for label, cells in (("calls", calls), ("none", none)):
        totals: dict[str, int] = {}
        for cell_id in cells.index:
            for name, (n, _) in derived.phase_syscalls(str(cell_id), LOAD_PHASE).items():
                totals[name] = totals.get(name, 0) + n
        counts[label] = totals
    counts["label"] = f"every={axis(calls, 'every').iloc[0]}"
    if not counts["calls"] and not counts["none"]:
        return None, counts
    mapped = [sum(c.get(n, 0) for n in MAPPING_CALLS) for c in (counts["calls"], counts["none"])]
    return mapped[0] >= max(2 * mapped[1], mapped[1] + MAPPING_MIN_EXTRA), counts


def decide(t: pd.DataFrame, derived) -> Decision:
    runs = t[t["scenario"] == "freeos_periodic"]
    every = axis(runs, "every").map(duration)
    none = runs[every == 0]
    periods = sorted(every[every > 0].unique(), reverse=True)
    if none.empty or not periods:
        return decision("inconclusive", "missing")
    base = {m: col(none, m) for m in METRICS}
    rates = []
    for period in periods:
        cells = runs[every == period]
        rates.append((axis(cells, "every").iloc[0], {m: col(cells, m) for m in METRICS}))
    label, fastest = rates[-1]
    rss = compare(fastest["mean_rss"], base["mean_rss"])
    faults = compare(fastest["minflt"], base["minflt"])
    mapping, counts = _mapping(derived, t[t["scenario"] == "freeos_syscalls"])
    parts = {PARTS[0]: None if rss == "unclear" else rss == "lower",
             PARTS[1]: _cost(compare(fastest["throughput"], base["throughput"]),
                             compare(fastest["unit_p99_ns"], base["unit_p99_ns"])),
             PARTS[2]: None if faults == "unclear" else faults == "higher",
             PARTS[3]: mapping}
    why = {} if counts else {PARTS[3]: "no syscall trace"}
    return judged("judged", parts, why, rates=rates, none=base, counts=counts, fastest=label)


def _latency(v: float) -> str:
    return UNITS["ns"].format(v) if v >= 1e6 else f"{v / 1e3:.1f} µs"


def _rate(v: float) -> str:
    return f"{v:.3g}/s"


def _count(v: float) -> str:
    return f"{v:.0f}"


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "Needs a cell without calls (every=0s) and one with periodic calls."
    n = d.none
    text = [(f"No calls: mean RSS {span(n['mean_rss'])}, work unit p50 {span(n['unit_p50_ns'], _latency)} / p99 "
             f"{span(n['unit_p99_ns'], _latency)}, throughput {span(n['throughput'], _rate)}, minor faults "
             f"{span(n['minflt'], _count)}")]
    for label, g in d.rates:
        text.append(f"every={label}: mean RSS {span(g['mean_rss'])} "
                    f"({signed_pct(change(g['mean_rss'], n['mean_rss']))}), "
                    f"unit p50 {span(g['unit_p50_ns'], _latency)} / p99 {span(g['unit_p99_ns'], _latency)} "
                    f"({signed_pct(change(g['unit_p99_ns'], n['unit_p99_ns']))}), throughput "
                    f"{span(g['throughput'], _rate)} ({signed_pct(change(g['throughput'], n['throughput']))}), "
                    f"minor faults {span(g['minflt'], _count)}, each call p50 {span(g['freeos_p50_ns'], _latency)}")
    out = ("; ".join(text) + ". Each call is a full blocking GC plus a forced scavenge of every free page "
           "(runtime/mheap.go runtime_debug_freeOSMemory → scavengeAll), so the load re-faults the pages it "
           "hands back")
    c = d.counts
    if c:
        def listing(totals: dict) -> str:
            return ", ".join(f"{name} {totals.get(name, 0)}×" for name in ("madvise",) + MAPPING_CALLS)
        out += (f". System calls during the load ({c['label']} vs none): {listing(c['calls'])} vs "
                f"{listing(c['none'])}; memory goes back with madvise, the heap is never unmapped "
                "(runtime/mem_linux.go sysUnusedOS; golang/go#45000)")
    return f"{out}. The parts are judged at the fastest rate, every={d.fastest}."


CLAIM = Claim(
    "C9", "4.2",
    "`debug.FreeOSMemory()` lowers RSS a lot but costs CPU and latency; called often it causes repeated "
    "mapping and page faults.",
    "Periodic calls every 1 s, 100 ms and 10 ms under a steady load, each against no calls over three repeats: "
    "mean RSS, latency of each unit of work (p50/p99), throughput, page faults, the time each call takes; a "
    "syscall trace for mmap/munmap against madvise. On a saturated machine CPU time cannot show the cost: "
    "latency and throughput do.",
    plain="debug.FreeOSMemory() lowers RSS a lot, but costs CPU, latency and page faults when called often.",
    scenarios=("freeos_periodic", "freeos_syscalls"),
    metrics=("freeos_calls", "freeos_p50_ns", "unit_p50_ns", "unit_p99_ns", "throughput", "minflt", "mean_rss"),
    figure=FigureSpec("bars", "freeos_periodic", "freeos_periodic",
                      metrics=("freeos_p50_ns", "unit_p99_ns", "minflt", "throughput", "mean_rss"), x="every"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism="debug.FreeOSMemory runs a blocking GC and then scavenges every free page, bypassing the "
              "scavenger's pacing and density rule (runtime/mheap.go runtime_debug_freeOSMemory = GC() + "
              "mheap_.scavengeAll(), pages.scavenge(force=true)); pages go back with madvise, never munmap "
              "(runtime/mem_linux.go sysUnusedOS; golang/go#45000, #35890), so the cost is re-faulting them.")
