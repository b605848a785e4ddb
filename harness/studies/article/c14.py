"""C14: a cache with no bound grows memory without limit despite GC; a bounded (LRU/TTL) one stays flat.

The same stream with every key new and with a repeating key space: the unbounded cache must
stop growing on the second (it holds one value per distinct key), so the claim can fail. A
drain (delete every entry, two GCs) shows what an emptied map keeps.
"""

from __future__ import annotations

import pandas as pd

from harness.analyse import residency
from harness.analyse.claims.common import Decision, MiB, axis, combine, decision, mib, span
from harness.analyse.claims.study import Claim, FigureSpec

GROWS = MiB        # bytes/s: the unbounded cache's RSS slope must exceed this to count as growing
FLAT_SHARE = 0.2   # flat: slope below this share of the unbounded, every-key-new slope
PHASE = "serve"
NEW_KEYS = ("0", "unset")   # keyspace values meaning every request brings a new key


def _rate(v: float) -> str:
    return f"{round(v / MiB, 1) + 0.0:.1f} MiB/s"   # + 0.0: no "-0.0" for a flat slope


def decide(t: pd.DataFrame, derived) -> Decision:
    policy = axis(t, "policy")
    new = axis(t, "keyspace").isin(NEW_KEYS)
    rss = pd.Series({cid: derived.second_half_slope(cid, "proc", "vm_rss", PHASE) for cid in t.index}, dtype=float)
    heap = pd.Series({cid: derived.second_half_slope(cid, "runtime", "heap_inuse", PHASE) for cid in t.index},
                     dtype=float)
    unb = rss[(policy == "unbounded") & new].dropna()
    repeat = rss[(policy == "unbounded") & ~new].dropna()
    bounded = rss[policy != "unbounded"].dropna()
    if unb.empty:
        return decision("inconclusive", "missing")
    grows = bool((unb > GROWS).all())
    flat_below = FLAT_SHARE * unb.min()
    bounded_flat = None if bounded.empty else bool((bounded.abs() < flat_below).all())
    # The claim says "without limit": a repeating key space that plateaus shows the limit is the keys.
    unlimited = None if repeat.empty else not bool((repeat.abs() < flat_below).all())
    keyspaces = sorted(set(axis(t, "keyspace")[(policy == "unbounded") & ~new]), key=float)
    drains = {cid: residency.drain(derived.run, cid) for cid in t.index[(policy == "unbounded")]}
    keyspace = axis(t, "keyspace")
    configs = sorted(set(zip(policy, keyspace, strict=True)))
    facts = {"by_config": {f"{p}{'' if k in NEW_KEYS else f' (keyspace {k})'}": rss[(policy == p) & (keyspace == k)]
                           for p, k in configs},
             "heap": heap[(policy == "unbounded") & new], "keyspaces": keyspaces,
             "drains": {cid: d for cid, d in drains.items() if d is not None}, "grows": grows,
             "bounded_flat": bounded_flat, "unlimited": unlimited}
    if not grows:
        return decision("refuted", "no-growth", **facts)
    # Without a repeating key space the "without limit" part is left unjudged, and the evidence says so.
    return decision(combine([grows, bounded_flat] + ([] if unlimited is None else [unlimited])), "judged", **facts)


def _drain_text(d: Decision) -> str:
    if not d.drains:
        return ""
    parts = [f"heap in use {mib(x.heap_before)} → {mib(x.heap_after)} with {x.entries_after:.0f} entries "
             f"(before serving {mib(x.heap_baseline)})" for x in d.drains.values()]
    kept = [x.heap_after - x.heap_baseline for x in d.drains.values()]
    return (f" Unbounded map emptied by deletes and two GCs: {'; '.join(parts)}: the values went, the map kept "
            f"{span(kept)} of buckets (maps do not shrink, golang/go#20135).")


def evidence(d: Decision) -> str:
    if d.case == "missing":
        return "Needs RSS over the serve phase for the unbounded cache with every key new."
    text = ("RSS slope over the second half of serving: "
            + ", ".join(f"{name} {span(v, _rate)}" for name, v in d.by_config.items())
            + f"; heap in use unbounded {span(d.heap, _rate)}")
    if d.case == "no-growth":
        return text + f": the unbounded cache did not grow (threshold {GROWS / MiB:g} MiB/s)." + _drain_text(d)
    notes = [": the unbounded cache grows with every new key"]
    if d.bounded_flat is True:
        notes.append(f"bounded caches stayed flat (<{FLAT_SHARE:.0%} of its slope)")
    elif d.bounded_flat is False:
        notes.append("not every bounded cache stayed flat")
    else:
        notes.append("no bounded cache ran")
    if d.unlimited is False:
        notes.append(f"with a repeating key space ({', '.join(d.keyspaces)} keys) it stopped growing once every key "
                     f"was cached: it is bounded by the distinct keys, not without limit")
    elif d.unlimited is True:
        notes.append("with a repeating key space it kept growing too")
    else:
        notes.append("no repeating key space ran, so whether it grows without limit is not tested")
    return text + "; ".join(notes) + "." + _drain_text(d)


CLAIM = Claim(
    "C14", "3.3",
    "A cache with no bound or expiry grows memory without limit despite GC; a bounded (LRU/TTL) cache keeps it "
    "flat.",
    "The same request stream into an unbounded, an LRU and a TTL cache, with every key new and with a repeating "
    "key space (the unbounded cache must plateau there): RSS and live heap over time; then every entry deleted "
    "and two GCs: what the emptied map keeps.",
    plain="An unbounded cache grows without limit despite GC; an LRU or TTL cache stays flat.",
    scenarios=("cache_growth",),
    metrics=("peak_rss", "final_rss", "heap_inuse@serve", "heap_inuse@idle"),
    figure=FigureSpec("rss-over-time", "cache_growth", "cache_growth_rss"),
    decide=decide, evidence=evidence,
    mechanism=(
        "The GC frees only what is unreachable (runtime/mgc.go marks from the roots): a value still in the map is "
        "live however old, so a cache without eviction holds one value per distinct key it has seen; an LRU bound "
        "or a TTL makes old entries unreachable. A Go map never shrinks: deletes leave its buckets (runtime/map.go, "
        "Go ≤1.23) or groups (Swiss tables, internal/runtime/maps, Go 1.24+; tombstones cleared only on growth) "
        "allocated — golang/go#20135, open; only a new map frees them."),
)
