"""C5: tiny (<16 B) and small (16 B–32 KiB) objects come from the per-P mcache; larger ones from the heap.

Judged per Go version from the runtime's own counters for each size run, in two parts: the tiny
allocator (pointer-free 8 B objects packed into 16-byte blocks, the same size with pointers not)
and the small/large boundary (where the size-class counters stop and the large counter starts;
32 KiB as stated, 32760 B since Go 1.22). The article's own example, a 16-byte struct of an
int64 and a bool that it calls a tiny object, is settled by the source, not measured: the tiny
path takes only noscan sizes below maxTinySize = 16 (runtime/malloc.go mallocgc), so 16 B goes
to the 16-byte size class (runtime/sizeclasses.go class 2); and /gc/heap/tiny/allocs counts only
objects packed into an existing block, so no 16 B object could ever show as tiny. Whether a
path takes a lock is not observable from outside.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.analyse import residency
from harness.analyse.claims.common import Decision, decision, judged
from harness.analyse.claims.study import Claim, FigureSpec

PARTS = ("tiny: pointer-free objects below 16 B packed into 16-byte blocks",
         "small up to 32 KiB, larger ones straight from the heap")
TINY_BELOW = 16            # bytes: pointer-free objects below this are tiny (runtime/malloc.go maxTinySize)
TINY_COUNTED_UP_TO = 8     # bytes: the largest tiny size the counters can show (9-15 B never share a block)
SMALL_UP_TO = 32 * 1024    # bytes: the largest small object, as the article states (maxSmallSize)
HEADER_BOUNDARY = SMALL_UP_TO - 8   # 32760: the largest small object since Go 1.22 (mallocHeaderSize = 8)
# A size run lands in a class when that counter holds this share of its allocations.
TINY_SHARE = 0.25          # packing two 8 B objects per block counts half of them as tiny
CLASS_SHARE = 0.5
# MemStats.BySize (all Go 1.15 offers) ends at this size class: larger small objects look large.
BYSIZE_LAST = 19072
# Sizes whose throughput the evidence quotes: the tiny/small and small/large boundaries.
QUOTED_SIZES = (16, HEADER_BOUNDARY, SMALL_UP_TO, 33792)


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
    if size >= 1024 and size % 1024 == 0:
        return f"{size / 1024:g} KiB"
    return f"{size:g} B"


def tiny_from_memstats(runs: pd.DataFrame) -> pd.DataFrame:
    """Before Go 1.16 there is no tiny counter, but MemStats.Mallocs counts tiny allocations and
    BySize does not, so the workload's large count (Mallocs − Σ BySize.Mallocs) of a run below
    16 B, which cannot hold a large object, is its tiny allocations."""
    runs = runs.copy()
    below = (runs["counters"] == "memstats") & (runs["size"] < TINY_BELOW) & runs["tiny_allocs"].isna()
    runs.loc[below, "tiny_allocs"] = runs.loc[below, "large_allocs"]
    runs.loc[below, "large_allocs"] = 0.0
    return runs


def _tiny_part(bytes_runs: pd.DataFrame) -> tuple[bool | None, list]:
    """Pointer-free runs up to 8 B must count as tiny; the same size with pointers must not."""
    small_sizes = bytes_runs[bytes_runs["size"] <= TINY_COUNTED_UP_TO]
    if small_sizes.empty:
        return None, []
    wrong = small_sizes[(small_sizes["observed"] == "tiny") == small_sizes["pointers"]]
    return wrong.empty, [(r.size, r.pointers, r.observed) for r in wrong.itertuples()]


def _boundary_part(bytes_runs: pd.DataFrame, bysize_only: bool) -> tuple[bool | None, float, float, list]:
    """Sizes from 16 B to 32760 B small, above 32 KiB large; 32761-32768 B tell which boundary the
    runtime has. Returns (holds, largest small size, smallest large size, runs off the claim)."""
    judged = bytes_runs[(bytes_runs["size"] >= TINY_BELOW) & bytes_runs["observed"].isin(["small", "large"])]
    if bysize_only:
        judged = judged[judged["size"] <= BYSIZE_LAST]
    if judged.empty or not (judged["size"] > HEADER_BOUNDARY).any():
        return None, math.nan, math.nan, []
    small = judged[judged["observed"] == "small"]["size"]
    large = judged[judged["observed"] == "large"]["size"]
    # The claim puts everything up to 32 KiB in the small classes: 32761-32768 B counted large (Go
    # 1.22+) fail it by those 8 bytes.
    off = judged[((judged["size"] <= SMALL_UP_TO) & (judged["observed"] != "small"))
                 | ((judged["size"] > SMALL_UP_TO) & (judged["observed"] != "large"))]
    return off.empty, float(small.max()) if len(small) else math.nan, float(large.min()) if len(large) else math.nan, \
        [(r.size, r.pointers, r.observed) for r in off.itertuples()]


def decide(t: pd.DataFrame, derived) -> Decision:
    runs = residency.size_runs(derived.events, t.index)
    if runs.empty:
        return decision("inconclusive", "no-sizes")
    has_tiny = bool(runs["tiny_allocs"].notna().any())   # the runtime's own tiny counter (Go 1.16+)
    runs = tiny_from_memstats(runs)
    runs["observed"] = [observed_class(r) for r in runs.itertuples(index=False)]
    if runs["observed"].isna().all():
        return decision("inconclusive", "no-counters")
    counters = sorted(set(runs["counters"]) - {""})
    bysize_only = counters == ["memstats"]
    bytes_runs = runs[runs["shape"] == "bytes"]
    tiny, tiny_off = _tiny_part(bytes_runs)
    boundary, largest_small, smallest_large, boundary_off = _boundary_part(bytes_runs, bysize_only)
    example = runs[runs["shape"] == "struct16"]
    example_class = example["observed"].dropna()
    why = {}
    if tiny is None:
        why[PARTS[0]] = "no pointer-free run of 8 B or less"
    if boundary is None:
        why[PARTS[1]] = ("MemStats.BySize ends at 19072 B, so larger size-class objects cannot be told from large "
                         "ones" if bysize_only else "no run above 32760 B")
    rate = bytes_runs[~bytes_runs["pointers"]].groupby("size")["ops_per_s"].median()
    return judged("judged", {PARTS[0]: tiny, PARTS[1]: boundary}, why, tiny_off=tiny_off,
                  largest_small=largest_small, smallest_large=smallest_large, boundary_off=boundary_off,
                  example=None if example_class.empty else example_class.iloc[0], example_ran=not example.empty,
                  bysize_only=bysize_only, has_tiny=has_tiny,
                  rates={s: v for s, v in rate.items() if s in QUOTED_SIZES})


def _off(runs: list) -> str:
    return ", ".join(f"{size_label(s)}{' with pointers' if p else ''} counted {o}" for s, p, o in runs)


def evidence(d: Decision) -> str:
    if d.case == "no-sizes":
        return "No `sizes` events: allocation counters by size are missing."
    if d.case == "no-counters":
        return "The runtime's allocation counters by size are missing."
    text = []
    tiny, boundary = d.parts[PARTS[0]], d.parts[PARTS[1]]
    counter = ("/gc/heap/tiny/allocs" if d.has_tiny
               else "MemStats.Mallocs − Σ BySize.Mallocs (no tiny counter before Go 1.16; BySize leaves tiny out)")
    if tiny is True:
        text.append(f"Tiny: pointer-free 8 B objects packed two to a 16-byte block (counted by {counter}), with "
                    "pointers as 8 B size-class objects — tiny needs pointer-free and < 16 B (maxTinySize)")
    elif tiny is False:
        text.append(f"Tiny: {_off(d.tiny_off)}")
    if boundary is True:
        if d.largest_small >= SMALL_UP_TO:
            where = (f"largest small object {size_label(d.largest_small)}, smallest large "
                     f"{size_label(d.smallest_large)}: 32 KiB as stated (maxSmallSize = 32768)")
        else:
            where = f"largest small object {size_label(d.largest_small)}"
        text.append(f"Small/large boundary: {where}")
    elif boundary is False:
        if d.boundary_off and all(s > HEADER_BOUNDARY and s <= SMALL_UP_TO for s, _, _ in d.boundary_off):
            text.append(f"Small/large boundary: largest small object {size_label(d.largest_small)}, "
                        f"{size_label(d.smallest_large)} already large: the boundary is 32760 B, 8 B below the "
                        f"stated 32 KiB, for every object (since Go 1.22 mallocgc takes the small path only for "
                        f"size ≤ maxSmallSize − mallocHeaderSize)")
        else:
            text.append(f"Small/large boundary off: {_off(d.boundary_off)}")
    if d.example_ran:
        text.append("The article's 16-byte struct {int64; bool}, which it calls tiny: " + (
            "not counted (no counters)" if d.example is None else
            f"counted as a {d.example} 16 B size-class object. Not a part: from the source it cannot be tiny (the "
            "tiny path takes pointer-free sizes below maxTinySize = 16, runtime/malloc.go mallocgc; 16 B is "
            "size class 2, runtime/sizeclasses.go), and the tiny counter counts only objects packed into an "
            "existing block (c.tinyAllocs++), so no 16 B object could show as tiny"))
    if d.rates:
        text.append("throughput " + ", ".join(f"{size_label(s)} {v / 1e6:.2f} M/s" for s, v in d.rates.items()))
    text.append("Whether a path takes a lock is not observable from outside")
    return ". ".join(text) + "."


CLAIM = Claim(
    "C5", "2.1",
    "Tiny objects (<16 B) and small ones (16 B–32 KiB) are served from the per-P mcache without locks; larger "
    "ones come straight from the heap.",
    "Allocation-size sweeps around 16 B and around 32760/32768 B, pointer-free and with pointers, per Go version; "
    "the article's 16-byte struct example; the runtime's counters by size; throughput per size.",
    plain="Objects up to 32 KiB come from a per-P cache without locks; larger ones straight from the heap.",
    scenarios=("alloc_sizes", "alloc_struct16"),
    metrics=("throughput", "ops"),
    figure=FigureSpec("sizes", "alloc_sizes", "alloc_sizes_throughput", hue="pointers",
                      markers=((16, "16 B"), (32 * 1024, "32 KiB")),  # the tiny and the large allocator's edges
                      title="alloc_sizes: throughput and allocator class by object size"),
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=(
        "runtime/malloc.go mallocgc: pointer-free objects below maxTinySize (16 B) are packed into 16-byte blocks "
        "of the per-P mcache (the tiny allocator); objects up to the largest size class come from the mcache span "
        "of their class (runtime/sizeclasses.go, maxSmallSize = 32768), refilled from mcentral under its lock; "
        "larger ones get their own span from the page heap (mheap.allocSpan, which takes spans under 16 pages "
        "from a per-P page cache without the heap lock, Go 1.14+). Since Go 1.22 the small path takes only "
        "size ≤ maxSmallSize − mallocHeaderSize = 32760 B, for every object (the 8-byte malloc header of "
        "pointerful objects above 512 B, runtime/mbitmap.go). Counters: runtime/metrics /gc/heap/tiny/allocs and "
        "/gc/heap/allocs-by-size (Go 1.16+); MemStats.BySize stops at 19072 B."),
)
