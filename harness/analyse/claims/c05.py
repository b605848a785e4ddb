"""C5: tiny (<16 B) and small (16 B–32 KiB) objects come from the per-P mcache; larger ones from the heap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.analyse.claims.common import Decision, axis, decision
from harness.analyse.claims.registry import Claim

TINY_BELOW = 16            # bytes: pointer-free objects below this are tiny
TINY_COUNTED_UP_TO = 8     # bytes: the largest tiny size the runtime's counters can show
SMALL_UP_TO = 32 * 1024    # bytes: the largest small object, as the article states
# A size run lands in a class when that counter holds this share of its allocations.
TINY_SHARE = 0.25          # packing two 8 B objects per block counts half of them as tiny
CLASS_SHARE = 0.5
# Sizes whose throughput the evidence quotes: the tiny/small and small/large boundaries.
QUOTED_SIZES = (16, 32768, 33792)


def size_class(size: float, pointers: bool) -> str | None:
    """The class the article expects; None where the runtime's counters cannot show it.

    The tiny counter counts only objects packed into an already open 16-byte block: an object of
    9-15 B never shares a block, so it is served by the tiny allocator but counted as a 16 B
    small allocation. Only sizes up to 8 B show tiny allocation in the counters.
    """
    if size < TINY_BELOW and not pointers:
        return "tiny" if size <= TINY_COUNTED_UP_TO else None
    return "small" if size <= SMALL_UP_TO else "large"


def observed_class(row) -> str | None:
    counts = [row.tiny_allocs, row.small_allocs, row.large_allocs]
    if all(math.isnan(c) for c in counts):
        return None
    total = row.ops if row.ops > 0 else np.nansum(counts)
    if not total > 0:
        return None
    if not math.isnan(row.tiny_allocs) and row.tiny_allocs / total >= TINY_SHARE:
        return "tiny"
    if not math.isnan(row.large_allocs) and row.large_allocs / total >= CLASS_SHARE:
        return "large"
    if not math.isnan(row.small_allocs) and row.small_allocs / total >= CLASS_SHARE:
        return "small"
    return None


def size_label(size: float) -> str:
    return f"{size / 1024:g} KiB" if size >= 1024 else f"{size:g} B"


def decide(t: pd.DataFrame, derived) -> Decision:
    rows = derived.sizes(t.index)
    if rows.empty:
        return decision("inconclusive", "no-sizes")
    rows["pointers"] = axis(t, "pointers").reindex(rows["cell_id"]).to_numpy() == "true"
    rows["expected"] = [size_class(s, p) for s, p in zip(rows["size"], rows["pointers"])]
    rows["observed"] = [observed_class(r) for r in rows.itertuples(index=False)]
    if rows["observed"].isna().all() or rows["tiny_allocs"].isna().all():
        return decision("inconclusive", "no-counters")
    judged = rows[rows["observed"].notna() & rows["expected"].notna()]
    wrong = judged[judged["observed"] != judged["expected"]]
    rate = judged[~judged["pointers"]].groupby("size")["ops_per_s"].median()
    facts = {"judged": len(judged), "right": len(judged) - len(wrong),
                 "rates": {s: v for s, v in rate.items() if s in QUOTED_SIZES},
                 "misses": [(r.size, r.pointers, r.observed, r.expected)
                         for r in wrong.drop_duplicates(["size", "pointers"]).itertuples()],
                 "header_boundary": bool((wrong["size"] == SMALL_UP_TO).all() and (wrong["observed"] == "large").all())}
    if wrong.empty:
        return decision("supported", "all-right", **facts)
    return decision("refuted" if len(wrong) == len(judged) else "partly", "some-wrong", **facts)


def evidence(d: Decision) -> str:
    if d.case == "no-sizes":
        return "No `sizes` events: allocation counters by size are missing."
    if d.case == "no-counters":
        return "The runtime's tiny/small/large counters are missing (tiny needs Go 1.17+)."
    text = f"{d.right} of {d.judged} size runs landed in the expected class"
    if d.rates:
        text += "; throughput " + ", ".join(f"{size_label(s)} {v / 1e6:.2f} M/s" for s, v in d.rates.items())
    if d.case == "all-right":
        return (f"{text}: tiny below 16 B pointer-free, small up to 32 KiB, large above. (Lock-free "
                f"mcache service itself is not observable here.)")
    misses = "; ".join(f"{size_label(size)}{' ptr' if pointers else ''}: {observed} not {expected}"
                       for size, pointers, observed, expected in d.misses)
    if d.header_boundary:
        misses += (" — the small/large boundary lies just below 32 KiB: since Go 1.22 a small object must"
                   " leave room for an 8-byte malloc header, so above 32760 B it is large")
    return f"{text}. Off: {misses}."


CLAIM = Claim(
    "C5", "2.1",
    "Tiny objects (<16 B) and small ones (16 B–32 KiB) are served from the per-P mcache without locks; larger "
    "ones come straight from the heap.",
    "Allocation-size sweeps around 16 B and 32 KiB; the runtime's counters by size; throughput per size.",
    scenarios=("alloc_sizes",),
    metrics=("throughput", "ops"),
    figure="figures/alloc_sizes_throughput.png",
    decide=decide, evidence=evidence)
