"""C14: a cache with no bound grows memory without limit despite GC; a bounded (LRU/TTL) one stays flat.

Judged on the stream with every key new, as the article's cache (keyed by a timestamp) sees it.
The same stream over a repeating key space is the method's control: there the unbounded cache
must stop growing (it holds one value per distinct key), so a slope that grows shows new keys,
not the harness; a control that keeps growing leaves the growth part undecided. A drain
(delete every entry, two GCs) shows what an emptied map keeps.
"""

from __future__ import annotations

import pandas as pd

from harness.analyse import residency
from harness.analyse.claims.common import Decision, MiB, axis, decision, judged, mib, span
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("an unbounded cache grows with every new key", "a bounded (LRU/TTL) cache stays flat")
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
    grows_seen = bool((unb > GROWS).all())
    flat_below = FLAT_SHARE * unb.min()
    bounded_flat = None if bounded.empty else bool((bounded.abs() < flat_below).all())
    # The control: with a repeating key space the same cache must plateau; None when it did not run.
    control = None if repeat.empty else bool((repeat.abs() < max(flat_below, GROWS)).all())
    keyspaces = sorted(set(axis(t, "keyspace")[(policy == "unbounded") & ~new]), key=float)
    drains = {cid: residency.drain(derived.run, cid) for cid in t.index[(policy == "unbounded")]}
    keyspace = axis(t, "keyspace")
    configs = sorted(set(zip(policy, keyspace, strict=True)))
    facts = {"by_config": {f"{p}{'' if k in NEW_KEYS else f' (keyspace {k})'}": rss[(policy == p) & (keyspace == k)]
                           for p, k in configs},
             "heap": heap[(policy == "unbounded") & new], "keyspaces": keyspaces,
             "drains": {cid: d for cid, d in drains.items() if d is not None}, "control": control}
    why = {}
    grows: bool | None = grows_seen
    if grows_seen and control is False:
        grows = None
        why[PARTS[0]] = "the repeating-key control kept growing too, so the slope does not show new keys"
    if bounded_flat is None:
        why[PARTS[1]] = "no bounded cache ran"
    case = "judged" if grows_seen else "no-growth"
    return judged(case, {PARTS[0]: grows, PARTS[1]: bounded_flat}, why, **facts)


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
    flat = d.parts[PARTS[1]]
    if flat is True:
        notes.append(f"bounded caches stayed flat (<{FLAT_SHARE:.0%} of its slope)")
    elif flat is False:
        notes.append("not every bounded cache stayed flat")
    if d.control is True:
        notes.append(f"the method's control, the same cache over a repeating key space ({', '.join(d.keyspaces)} "
                     f"keys), stopped growing once every key was cached, as it must: the slope measures new keys")
    elif d.control is False:
        notes.append("the method's control, a repeating key space, kept growing too")
    else:
        notes.append("no repeating-key control ran")
    return text + "; ".join(notes) + "." + _drain_text(d)


CLAIM = Claim(
    "C14", "3.3",
    "A cache with no bound or expiry grows memory without limit despite GC; a bounded (LRU/TTL) cache keeps it "
    "flat.",
    "The same request stream into an unbounded, an LRU and a TTL cache with every key new, as the article's "
    "timestamp-keyed cache sees it: RSS and live heap over time. The same stream over a repeating key space is "
    "the method's control (the unbounded cache must plateau there). Then every entry deleted and two GCs: what "
    "the emptied map keeps.",
    plain="An unbounded cache grows without limit despite GC; an LRU or TTL cache stays flat.",
    scenarios=("cache_growth",),
    metrics=("peak_rss", "final_rss", "heap_inuse@serve", "heap_inuse@idle"),
    figure=FigureSpec("rss-over-time", "cache_growth", "cache_growth_rss"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=(
        "The GC frees only what is unreachable (runtime/mgc.go marks from the roots): a value still in the map is "
        "live however old, so a cache without eviction holds one value per distinct key it has seen; an LRU bound "
        "or a TTL makes old entries unreachable. A Go map never shrinks: deletes leave its buckets (runtime/map.go, "
        "Go ≤1.23) or groups (Swiss tables, internal/runtime/maps, Go 1.24+; tombstones cleared only on growth) "
        "allocated — golang/go#20135, open; only a new map frees them."),
)
