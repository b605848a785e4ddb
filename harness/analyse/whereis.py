"""Where is a watched process's memory? Its RSS split at each slow-tier sample, and the study's findings
that apply to it given its Go version, runtime settings and kernel, each sentence with its numbers.

The kernel's split (smaps_rollup and /proc/PID/status): RSS = anonymous + file-backed (+ shmem); LazyFree
(pages freed with MADV_FREE, still counted until the kernel needs memory); AnonHugePages. Where the
runtime's own numbers were read (its expvar or Prometheus page), the runtime's side of RSS:

    live heap            HeapAlloc: objects allocated and not yet freed (live, or dead and not yet swept)
    heap fragmentation   HeapInuse − HeapAlloc: the unused part of spans in use
    free heap, unreleased  HeapIdle − HeapReleased: the runtime holds it; the scavenger returns it
    stacks               StackSys: goroutine and OS thread stacks
    other runtime        Sys − HeapSys − StackSys: span and GC metadata, profiling buckets, the rest
    not Go's             RSS − (Sys − HeapReleased): cgo, mmaps of its own, the binary's file pages
    released, re-faulted   the falls of HeapReleased summed since the watch began: released heap the runtime
                         took back into use, each page faulted in again on its first touch

Sys counts memory the runtime mapped, not only what is resident, so "not Go's" is a lower bound and can
read below zero when runtime memory was mapped but never touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness.analyse.summary import RunData
from harness.define.metrics import value_at
from harness.define.units import format_size

NAN = float("nan")
MiB = 1 << 20

# The runtime's side of RSS, bottom to top of the figure: (column, label).
GO_PARTS = (("heap_live", "live heap"), ("heap_fragmentation", "heap fragmentation"),
            ("heap_free", "free heap, not released"), ("stacks", "stacks"), ("runtime_other", "other runtime"),
            ("not_go", "not Go's (cgo, mmaps, file pages)"))
KERNEL_PARTS = (("rss_anon", "anonymous"), ("rss_file", "file-backed"))
LINES = (("rss", "RSS"), ("lazyfree", "LazyFree"), ("anon_huge_pages", "AnonHugePages"))

# runtime/proc.go forcegcperiod: a GC is forced when none ran for 2 minutes.
FORCED_GC_PERIOD_S = 120.0
# runtime/mgcscavenge.go retainExtraPercent: the background scavenger keeps retained heap at ~110% of the goal.
RETAIN_EXTRA = 0.10
# GODEBUG madvdontneed's default: 0 (MADV_FREE) in Go 1.12 to 1.15, 1 (MADV_DONTNEED) from Go 1.16.
MADVDONTNEED_DEFAULT_FROM = (1, 16)
MADV_FREE_FROM = (1, 12)
GOMEMLIMIT_FROM = (1, 19)


def _version(text: str) -> tuple[int, int] | None:
    parts = str(text or "").removeprefix("go").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def breakdown(data: RunData, cell_id: str) -> pd.DataFrame:
    """One row per slow-tier sample (t_s): the kernel's split, and the runtime's where it was read (NaN else)."""
    rss = data.series(cell_id, "smaps", "rss")
    rows = []
    for t, value in zip(rss.index.astype(float), rss.to_numpy(), strict=True):   # indexed by t_s

        def at(source: str, metric: str, t: float = t) -> float:
            return value_at(data.series(cell_id, source, metric), t)

        row: dict[str, float] = {"t_s": t, "rss": float(value), "lazyfree": at("smaps", "lazyfree"),
                                 "anon_huge_pages": at("smaps", "anon_huge_pages"),
                                 "rss_anon": at("proc", "rss_anon"), "rss_file": at("proc", "rss_file")}
        alloc, inuse, idle, released = (at("runtime", m) for m in ("heap_alloc", "heap_inuse", "heap_idle",
                                                                     "heap_released"))
        heap_sys, sys, stacks = at("runtime", "heap_sys"), at("runtime", "sys"), at("runtime", "stack_sys")
        row.update(heap_live=alloc, heap_fragmentation=inuse - alloc, heap_free=idle - released,
                   heap_released=released, stacks=stacks, runtime_other=sys - heap_sys - stacks,
                   runtime_total=sys - released, heap_goal=at("runtime", "next_gc"), num_gc=at("runtime", "num_gc"))
        row["not_go"] = row["rss"] - row["runtime_total"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        released_heap = frame["heap_released"]
        frame["heap_refaulted"] = (-released_heap.diff()).clip(lower=0).fillna(0).cumsum().where(
            released_heap.notna())
    return frame


def _mib(v: float) -> str:
    return "?" if v != v else format_size(int(v))


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole and whole == whole and part == part else "?"


def findings(frame: pd.DataFrame, watch: Mapping[str, Any], kernel: str, thp: str, watched_s: float) -> list[str]:
    """Plain sentences, each naming the numbers it rests on, about what applies to this process."""
    out: list[str] = []
    if frame.empty:
        return ["No slow-tier sample was taken (the process exited before its first smaps_rollup read): nothing "
                "to explain."]
    last = frame.iloc[-1]
    env = dict(watch.get("env") or {})
    go = str(watch.get("go_version") or "")
    version = _version(go)
    limit = (watch.get("limits") or {}).get("memory_max")
    high = (watch.get("limits") or {}).get("memory_high")
    rss = float(last["rss"])
    runtime = not math.isnan(float(last["heap_live"]))
    out.append(f"RSS at the last sample ({last['t_s']:.1f}s): {_mib(rss)} = {_mib(last['rss_anon'])} anonymous + "
               f"{_mib(last['rss_file'])} file-backed (the binary's pages and files it maps, which the kernel "
               f"drops first under pressure); peak over the watch {_mib(frame['rss'].max())}.")
    if not version:
        out.append("No Go build information in its binary: the runtime findings below do not apply to it.")
        return out
    godebug = dict(p.partition("=")[::2] for p in env.get("GODEBUG", "").split(",") if "=" in p)
    madv = godebug.get("madvdontneed")
    default_madv = "1" if version >= MADVDONTNEED_DEFAULT_FROM else "0"
    lazy = float(last["lazyfree"])
    if version < MADV_FREE_FROM:
        out.append(f"Go {go} frees with MADV_DONTNEED only (MADV_FREE came in Go 1.12): released memory leaves RSS "
                   f"at once; LazyFree reads {_mib(lazy)}.")
    else:
        used = madv or default_madv
        how = "as set in GODEBUG" if madv else f"the default of Go {go}" + (
            " (since Go 1.16)" if default_madv == "1" else " (Go 1.12 to 1.15)")
        if used == "1":
            out.append(f"madvdontneed={used}, {how}: released heap leaves RSS at once (MADV_DONTNEED), so no "
                       f"LazyFree is expected; LazyFree reads {_mib(lazy)}"
                       + (" (something else in the process frees with MADV_FREE)." if lazy > 0 else "."))
        else:
            out.append(f"madvdontneed={used}, {how}, on kernel {kernel}: released heap is freed with MADV_FREE and "
                       f"stays in RSS until the kernel needs the memory; LazyFree reads {_mib(lazy)} = "
                       f"{_share(lazy, rss)} of RSS, memory the kernel takes back without a write.")
    if runtime:
        total = float(last["runtime_total"])
        out.append(f"The runtime accounts for {_mib(total)} (Sys {_mib(total + last['heap_released'])} − released "
                   f"{_mib(last['heap_released'])}): live heap {_mib(last['heap_live'])} "
                   f"({_share(last['heap_live'], rss)} of RSS), fragmentation {_mib(last['heap_fragmentation'])}, "
                   f"free heap not yet released {_mib(last['heap_free'])}, stacks {_mib(last['stacks'])}, other "
                   f"runtime memory {_mib(last['runtime_other'])}; RSS − runtime = {_mib(last['not_go'])} is not "
                   f"Go's (cgo, its own mmaps, file pages)" + (" — below zero: the runtime has mapped memory it "
                                                              "never touched" if last["not_go"] < 0 else "") + ".")
        refaulted = float(frame["heap_refaulted"].max()) if "heap_refaulted" in frame.columns else NAN
        if refaulted > 0:
            out.append(f"{_mib(refaulted)} of heap the scavenger had released was taken back into use during the "
                       f"watch (HeapReleased fell by that much in all, from {_mib(frame['heap_released'].max())} at "
                       "most): each such page is faulted in again, the price of returning memory the program "
                       "needs again soon.")
        free = float(last["heap_free"])
        if free > 0:
            out.append(f"The {_mib(free)} of free heap is the runtime's to give back: the background scavenger "
                       f"returns it gradually, keeping about {RETAIN_EXTRA:.0%} over the heap goal "
                       f"({_mib(last['heap_goal'])}) (runtime/mgcscavenge.go retainExtraPercent); debug.FreeOSMemory "
                       "returns it at once.")
        cycles = frame["num_gc"].dropna()
        if len(cycles):
            ran = int(cycles.iloc[-1] - cycles.iloc[0])
            out.append(f"{ran} GC cycles ran during the {watched_s:.0f}s watch (NumGC {int(cycles.iloc[0])} → "
                       f"{int(cycles.iloc[-1])}); a GC is forced when none ran for {FORCED_GC_PERIOD_S:.0f}s "
                       "(runtime/proc.go forcegcperiod), so an idle process's heap goal and free heap are recomputed "
                       "at least every 2 minutes.")
    else:
        out.append("The runtime's own numbers were not read: give --metrics-url (expvar /debug/vars or a Prometheus "
                   "page) to split RSS into live heap, free heap, stacks and what is not Go's.")
    gomemlimit = env.get("GOMEMLIMIT", "")
    gogc = env.get("GOGC", "") or "100"
    if limit:
        peak = float(frame["rss"].max())
        if version < GOMEMLIMIT_FROM:
            out.append(f"Go {go} has no GOMEMLIMIT (it came in Go 1.19): in its cgroup limited to {_mib(limit)} only "
                       f"GOGC={gogc} paces the heap; peak RSS {_mib(peak)} = {_share(peak, limit)} of the limit.")
        elif not gomemlimit or gomemlimit == "off":
            goal = float(last["heap_goal"]) if runtime else NAN
            sentence = (f"GOMEMLIMIT is unset in a cgroup limited to {_mib(limit)}: the heap is paced by GOGC={gogc} "
                        f"alone; peak RSS {_mib(peak)} = {_share(peak, limit)} of the limit")
            if goal == goal:
                sentence += (f"; heap goal {_mib(goal)} (NextGC: the heap marked live at the last GC × "
                             f"(1 + GOGC/100))"
                             + (" exceeds the limit: the kernel can OOM-kill it before the next GC"
                                if goal > limit else f" = {_share(goal, limit)} of the limit"))
            out.append(sentence + f". Setting GOMEMLIMIT to about 90% of the limit ({_mib(0.9 * limit)}) lets the "
                                  "GC run harder before the kernel steps in.")
        else:
            out.append(f"GOMEMLIMIT={gomemlimit} in a cgroup limited to {_mib(limit)}; peak RSS {_mib(peak)} = "
                       f"{_share(peak, limit)} of the limit.")
        if high:
            out.append(f"memory.high is {_mib(high)}: above it the kernel reclaims and throttles the cgroup before "
                       "the limit is reached.")
    elif gomemlimit and gomemlimit != "off":
        out.append(f"GOMEMLIMIT={gomemlimit} with no memory limit on its cgroup: the runtime's soft limit is the only "
                   "bound.")
    else:
        out.append(f"No memory limit applies to its cgroup and GOMEMLIMIT is unset: GOGC={gogc} alone sets how far "
                   "the heap grows past the live heap.")
    huge = float(last["anon_huge_pages"])
    if huge > 0:
        out.append(f"AnonHugePages {_mib(huge)} ({_share(huge, rss)} of RSS) with transparent huge pages '{thp}': a "
                   "huge page stays resident while any of its 2 MiB is in use, and the scavenger returns memory in "
                   "smaller pieces.")
    return out
