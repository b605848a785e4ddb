"""C14: a cache with no bound grows memory without limit despite GC; a bounded (LRU/TTL) one stays flat."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import Decision, MiB, axis, decision, span
from harness.analyse.claims.registry import Claim

GROWS = MiB        # bytes/s: the unbounded cache's RSS slope must exceed this to count as growing
FLAT_SHARE = 0.2   # a bounded cache is flat when its slope is below this share of the unbounded one
PHASE = "serve"


def _rate(v: float) -> str:
    return f"{v / MiB:.1f} MiB/s"


def decide(t: pd.DataFrame, derived) -> Decision:
    policy = axis(t, "policy")
    rss = pd.Series({cid: derived.second_half_slope(cid, "proc", "vm_rss", PHASE) for cid in t.index}, dtype=float)
    heap = pd.Series({cid: derived.second_half_slope(cid, "runtime", "heap_inuse", PHASE) for cid in t.index},
                     dtype=float)
    unb, bounded = rss[policy == "unbounded"], rss[policy != "unbounded"]
    if unb.dropna().empty or bounded.dropna().empty:
        return decision("inconclusive", "missing")
    facts = {"by_policy": {p: rss[policy == p] for p in sorted(set(policy))}, "heap": heap[policy == "unbounded"]}
    if not (unb > GROWS).all():
        return decision("refuted", "no-growth", **facts)
    if (bounded.abs() < FLAT_SHARE * unb.min()).all():
        return decision("supported", "flat", **facts)
    return decision("partly", "bounded-grew", **facts)


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "Needs RSS over the serve phase for the unbounded cache and a bounded one."
    text = ("RSS slope over the second half of serving: "
            + ", ".join(f"{p} {span(v, _rate)}" for p, v in d.by_policy.items())
            + f"; heap in use unbounded {span(d.heap, _rate)}")
    return text + {
        "no-growth": f": the unbounded cache did not grow (threshold {GROWS / MiB:g} MiB/s).",
        "flat": f": bounded caches stayed flat (<{FLAT_SHARE:.0%} of the unbounded slope).",
        "bounded-grew": ": unbounded grows, but not every bounded cache stayed flat.",
    }[d.case]


CLAIM = Claim(
    "C14", "3.3",
    "A cache with no bound or expiry grows memory without limit despite GC; a bounded (LRU/TTL) cache keeps it "
    "flat.",
    "The same request stream into an unbounded and a bounded cache: RSS and live heap over time.",
    scenarios=("cache_growth",),
    metrics=("peak_rss", "final_rss", "heap_inuse@serve"),
    figure="figures/cache_growth_rss.png",
    decide=decide, evidence=evidence)
