"""X3 (added): a heap goal above cgroup v2 memory.high is throttled, not killed; GOMEMLIMIT below it avoids that."""

from __future__ import annotations

import math

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    col,
    decision,
    go_before,
    judged,
    limit_bytes,
    mib,
    seconds2,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("throttled above memory.high, not killed", "GOMEMLIMIT below memory.high avoids the throttling")
# A cell whose memory.high the heap goal crossed counts as throttled once memory.events `high` rose at
# all: the kernel counts one event each time it had to reclaim or throttle because usage was over
# memory.high (Documentation/admin-guide/cgroup-v2.rst, memory.events), never without that.
THROTTLED_EVENTS = 1
# With GOMEMLIMIT below memory.high the runtime keeps its memory under the limit, but memory outside
# the Go heap (stacks, page tables, the binary) and the limit's soft overshoot may still touch the line
# now and then: "avoided" is at most this share of the events the same cells had without GOMEMLIMIT,
# "not avoided" at least AVOID_FAILED_SHARE of them; in between the part is undecided.
AVOIDED_SHARE = 0.05
AVOID_FAILED_SHARE = 0.5


def _rate(v: float) -> str:
    return f"{v:,.0f} objects/s"


def _share(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:.0f}%"


def _group(t: pd.DataFrame) -> dict:
    return {"n": len(t), "events": col(t, "memory_high_events"), "peak": col(t, "peak_cgroup"),
            "high": col(t, "memory_high_bytes"), "limit": limit_bytes(t),
            "killed": int((col(t, "oom_killed").fillna(0) + col(t, "oom_kill_events").fillna(0) > 0).sum()),
            # Context only: timing under software emulation is not the host's (the engine judges no
            # timing metric there), so these are reported, never judged.
            "tput": col(t, "throughput"), "psi": col(t, "psi_some_avg10"), "stall": col(t, "memory_stall_some_s")}


def decide(t: pd.DataFrame, derived) -> Decision:
    cells = t[t["scenario"] == "memory_high_throttle"]
    if cells.empty:
        return decision("inconclusive", "not-run")
    high, memory = col(cells, "memory_high_bytes"), col(cells, "memory_limit_bytes")
    if high.isna().all():
        return decision("inconclusive", "no-high")
    below = high < memory            # memory.high under memory.max: it can throttle
    limit = limit_bytes(cells)
    without = cells[below & limit.isna()]
    with_limit = cells[below & (limit < high)]
    baseline = _group(cells[~below & limit.isna()])
    facts = {"without": _group(without), "with_limit": _group(with_limit), "baseline": baseline}
    w = facts["without"]
    if not w["n"]:
        return decision("inconclusive", "one-side", **facts)
    if not (w["peak"] > w["high"]).any() and not w["killed"]:
        # The premise did not hold: the heap never reached memory.high, so nothing could be throttled.
        return decision("inconclusive", "not-crossed", **facts)
    parts: dict[str, bool | None] = {}
    why: dict[str, str] = {}
    throttled = [bool(e >= THROTTLED_EVENTS) for e in w["events"].dropna()]
    if not throttled:
        parts[PARTS[0]] = None
        why[PARTS[0]] = "memory.events high was not read (cgroup v1?)"
    elif w["killed"]:
        parts[PARTS[0]] = False
    else:
        parts[PARTS[0]] = True if all(throttled) else False if not any(throttled) else None
    lw = facts["with_limit"]
    if not lw["n"]:
        why[PARTS[1]] = "no cell set GOMEMLIMIT below memory.high"
        parts[PARTS[1]] = None
    else:
        ref = float(w["events"].median())
        got = lw["events"].dropna()
        if got.empty or math.isnan(ref) or ref < THROTTLED_EVENTS:
            parts[PARTS[1]] = None
            why[PARTS[1]] = "no throttling without GOMEMLIMIT to avoid, or events not read"
        elif lw["killed"] or (got >= AVOID_FAILED_SHARE * ref).all():
            parts[PARTS[1]] = False
        elif (got <= AVOIDED_SHARE * ref).all():
            parts[PARTS[1]] = True
        else:
            parts[PARTS[1]] = None
            why[PARTS[1]] = (f"events between {_share(AVOIDED_SHARE)} and {_share(AVOID_FAILED_SHARE)} of those "
                             "without GOMEMLIMIT")
    return judged("judged", parts, why, **facts)


def _line(name: str, g: dict) -> str:
    highs = ", ".join(mib(v) for v in sorted(set(g["high"].dropna())))
    text = (f"{name} (memory.high {highs}"
            + (f", GOMEMLIMIT {', '.join(mib(v) for v in sorted(set(g['limit'].dropna())))}" if g["limit"].notna().any()
               else "")
            + f"): memory.high events {span(g['events'], lambda v: f'{v:.0f}')}, peak cgroup usage {span(g['peak'])}, "
            f"OOM-killed {g['killed']}/{g['n']}")
    if g["tput"].notna().any() or g["psi"].notna().any():
        text += (f"; context, not judged: throughput {span(g['tput'], _rate)}, PSI some avg10 at most "
                 f"{span(g['psi'], _share)}, stalled (some) {span(g['stall'], seconds2)}")
    return text


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "The memory_high_throttle scenario did not run."
    if d.case == "no-high":
        return "No cell set memory.high (the memory_high axis, cgroup v2)."
    if d.case == "one-side":
        return "Needs cells with memory.high below the memory limit and no GOMEMLIMIT."
    text = []
    if d.baseline["n"]:
        text.append(_line("memory.high at the limit (the baseline)", d.baseline))
    text.append(_line("memory.high below the heap goal, no GOMEMLIMIT", d.without))
    if d.with_limit["n"]:
        text.append(_line("with GOMEMLIMIT below memory.high", d.with_limit))
    body = "; ".join(text) + "."
    if d.case == "not-crossed":
        return body + " Peak usage stayed under memory.high: the heap goal never crossed it, nothing to throttle."
    return body + (f" Throttled: memory.events high ≥ {THROTTLED_EVENTS} with no OOM kill; avoided: at most "
                   f"{_share(AVOIDED_SHARE)} of the events without GOMEMLIMIT.")


CLAIM = Claim(
    "X3", "(added)",
    "Not in the article: under cgroup v2, a Go program whose heap goal crosses `memory.high` is throttled and "
    "reclaimed, not killed (memory.events `high` rises, the program stalls), and a `GOMEMLIMIT` set below "
    "`memory.high` keeps the heap under it, so the throttling does not happen.",
    "A 160 MiB live heap churned at GOGC 100 (heap goal about 320 MiB) in a 512 MiB cgroup, memory.high at the "
    "limit (the baseline), at half of it without GOMEMLIMIT, and at half of it with GOMEMLIMIT 217 MiB (85% of "
    "memory.high, the fix one report used), per Go version: memory.high events, peak cgroup usage and OOM kills "
    "judged; throughput and PSI reported as context (timing under qemu's software emulation is not the host's).",
    plain="Added: memory.high throttles, never kills; GOMEMLIMIT below it avoids that.",
    scenarios=("memory_high_throttle",),
    metrics=("memory_high_events", "peak_cgroup", "oom_killed", "oom_kill_events"),
    figure=FigureSpec("memory-high", "memory_high_throttle", "memory_high_throttle", overlay="gomemlimit",
                      title="memory_high_throttle: cgroup usage against memory.high (dotted), by GOMEMLIMIT"),
    version_metric="memory_high_events",
    decide=decide, evidence=evidence, parts=PARTS,
    not_applicable=lambda go: "GOMEMLIMIT arrived in Go 1.19" if go_before(go, (1, 19)) else None,
    mechanism="memory.high is the cgroup's throttle limit: when hit it throttles allocations by forcing them "
              "into direct reclaim to work off the excess, but never invokes the OOM killer, which only "
              "memory.max does (Documentation/admin-guide/cgroup-v2.rst, memory.high); memory.events `high` "
              "counts each time tasks were throttled and routed to direct reclaim. Since Linux 5.4 allocators "
              "that fail to reclaim enough over memory.high also sleep a penalty of up to 2 s (commit 0e4b01df8659 "
              "\"mm, memcg: throttle allocators when failing reclaim over memory.high\", mm/memcontrol.c "
              "mem_cgroup_handle_over_high). Without swap an anonymous Go heap cannot be reclaimed, so the "
              "program stalls. GOMEMLIMIT gives the GC a heap goal that keeps the runtime's memory under the "
              "limit (runtime/mgcpacer.go gcControllerState.memoryLimit, memoryLimitHeapGoal), below memory.high.",
)
