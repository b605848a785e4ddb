"""C6: the runtime gives memory back with munmap past a threshold; the scavenger uses madvise or munmap."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import Decision, MiB, col, decision, mib, pct, span
from harness.analyse.claims.study import Claim, FigureSpec

SHRANK = 0.10        # VmSize fell by more than this share of its maximum: address space given back
NEVER_SHRANK = 0.02  # ...by less than this share in every cell: it never shrank
# munmap'ed bytes above this share of madvise'd bytes (and at least UNMAPPED_MIN) also count.
UNMAPPED_SHARE = 0.1
UNMAPPED_MIN = MiB
RSS_FELL = 0.5       # final RSS below this share of the peak: memory went back somehow


def decide(t: pd.DataFrame, derived) -> Decision:
    primary = t[t["scenario"] == "syscalls"] if (t["scenario"] == "syscalls").any() else t
    max_vm, final_vm = col(primary, "max_vm_size"), col(primary, "final_vm_size")
    if max_vm.dropna().empty or final_vm.dropna().empty:
        return decision("inconclusive", "no-vm-size")
    shrink = (max_vm - final_vm) / max_vm
    rss_fell = col(primary, "final_rss") < RSS_FELL * col(primary, "peak_rss")
    calls = derived.syscalls(primary.index)
    madvise, munmap = calls.get("madvise", (0, 0.0)), calls.get("munmap", (0, 0.0))
    facts = {"max_vm": max_vm, "final_vm": final_vm, "peak": col(primary, "peak_rss"),
             "final": col(primary, "final_rss"),
                 "traced": bool(calls), "madvise": madvise, "munmap": munmap, "shrink": shrink}
    if (shrink > SHRANK).any() or (munmap[1] > UNMAPPED_SHARE * max(madvise[1], 1.0) and munmap[1] >= UNMAPPED_MIN):
        return decision("supported", "unmapped", **facts)
    if not rss_fell.any():
        return decision("inconclusive", "rss-stayed", **facts)
    if (shrink < NEVER_SHRANK).all():
        return decision("refuted", "never-shrank", **facts)
    return decision("inconclusive", "shrank-a-little", **facts)


def evidence(d: Decision) -> str:
    if d.case == "no-vm-size":
        return "VmSize was not sampled."
    text = (f"VmSize max {span(d.max_vm)}, final {span(d.final_vm)} while RSS went {span(d.peak)} → "
            f"{span(d.final)}")
    text += (f"; traced madvise {d.madvise[0]}× ({mib(d.madvise[1])}), munmap {d.munmap[0]}× ({mib(d.munmap[1])})"
             if d.traced else "; no syscall trace")
    if d.case == "unmapped":
        return f"{text}: address space was given back."
    if d.case == "rss-stayed":
        return f"{text}: RSS never fell, so nothing shows how memory goes back."
    if d.case == "never-shrank":
        how = ("memory goes back by madvise (runtime/mem_linux.go sysUnusedOS), not munmap" if d.madvise[0]
               else "no munmap of the heap")
        return (f"{text}: VmSize never shrank — {how}; the runtime never unmaps heap memory (sysFreeOS/munmap "
                f"only carves aligned reservations or backs out of a failed allocation; golang/go#45000, #35890).")
    return f"{text}: VmSize shrank a little ({span(d.shrink, pct)})."


CLAIM = Claim(
    "C6", "2.3, 2.4",
    "The runtime gives memory back with `munmap` when idle pages pass a threshold; the background scavenger "
    "uses `madvise(MADV_FREE)` or `munmap`.",
    "Whether VmSize ever shrinks while RSS falls; which system calls release memory (syscall trace).",
    plain="The runtime gives idle memory back with munmap; the scavenger with madvise or munmap.",
    scenarios=("syscalls", "idle_scavenger"),
    metrics=("max_vm_size", "final_vm_size", "peak_rss", "final_rss"),
    figure=FigureSpec("rss-over-time", "syscalls", "syscalls_vm_size", series=("proc", "vm_size"),
                      title="syscalls: address space (VmSize) over time"),
    decide=decide, evidence=evidence,
    mechanism=("The Go runtime never unmaps heap memory on Linux: the scavenger and debug.FreeOSMemory return "
               "pages with madvise (runtime/mem_linux.go sysUnusedOS: MADV_DONTNEED, or MADV_FREE with "
               "madvdontneed=0), so RSS falls while VmSize and HeapSys stay; munmap (sysFreeOS) is used only to "
               "trim aligned reservations or after an out-of-memory error mid-allocation (runtime/mem.go sysFree; "
               "maintainer statements in golang/go#45000 and #35890)."))
