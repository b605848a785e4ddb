"""C6: the runtime gives memory back with munmap past a threshold; the scavenger uses madvise or munmap."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import Decision, MiB, axis, col, decision, judged, mib, pct, span
from harness.analyse.claims.study import Claim, FigureSpec
from harness.analyse.summary import parse_detail

PARTS = ("memory given back with munmap (address space shrinks)", "released with madvise(MADV_FREE)")
SHRANK = 0.10        # VmSize fell by more than this share of its maximum: address space given back
NEVER_SHRANK = 0.02  # ...by less than this share in every cell: it never shrank
# munmap'ed bytes above this share of madvise'd bytes (and at least UNMAPPED_MIN) also count.
UNMAPPED_SHARE = 0.1
UNMAPPED_MIN = MiB
RSS_FELL = 0.5       # final RSS below this share of the peak: memory went back somehow


def advice(events: pd.DataFrame | None, cell_ids) -> dict[str, tuple[int, float]]:
    """madvise advice (MADV_FREE, MADV_DONTNEED, ...) -> (calls, bytes) over the traced calls of some cells."""
    if events is None or events.empty:
        return {}
    ev = events[(events["kind"].astype(str) == "syscall") & (events["name"].astype(str) == "madvise")
                & events["cell_id"].astype(str).isin({str(c) for c in cell_ids})]
    out: dict[str, tuple[int, float]] = {}
    for detail, value in zip(ev["detail"], pd.to_numeric(ev["value"], errors="coerce"), strict=True):
        d = parse_detail(detail)
        name = str(d.get("advice", detail if isinstance(detail, str) and detail.startswith("MADV") else "?"))
        n, b = out.get(name, (0, 0.0))
        out[name] = (n + 1, b + (0.0 if pd.isna(value) else float(value)))
    return out


def decide(t: pd.DataFrame, derived) -> Decision:
    primary = t[t["scenario"] == "syscalls"] if (t["scenario"] == "syscalls").any() else t
    max_vm, final_vm = col(primary, "max_vm_size"), col(primary, "final_vm_size")
    if max_vm.dropna().empty or final_vm.dropna().empty:
        return decision("inconclusive", "no-vm-size")
    shrink = (max_vm - final_vm) / max_vm
    rss_fell = col(primary, "final_rss") < RSS_FELL * col(primary, "peak_rss")
    calls = derived.syscalls(primary.index)
    madvise, munmap = calls.get("madvise", (0, 0.0)), calls.get("munmap", (0, 0.0))
    setting = axis(primary, "madvdontneed")
    by_setting = {s: advice(derived.events, primary.index[setting == s]) for s in sorted(set(setting))}
    facts = {"max_vm": max_vm, "final_vm": final_vm, "peak": col(primary, "peak_rss"),
             "final": col(primary, "final_rss"), "traced": bool(calls), "madvise": madvise, "munmap": munmap,
             "shrink": shrink, "by_setting": by_setting}
    why = {}
    unmapped = bool((shrink > SHRANK).any()
                    or (munmap[1] > UNMAPPED_SHARE * max(madvise[1], 1.0) and munmap[1] >= UNMAPPED_MIN))
    munmap_part: bool | None = True if unmapped else None
    if not unmapped:
        if not rss_fell.any():
            why[PARTS[0]] = "RSS never fell, so nothing shows how memory goes back"
        elif (shrink < NEVER_SHRANK).all():
            munmap_part = False
        else:
            why[PARTS[0]] = f"VmSize shrank a little ({span(shrink, pct)})"
    # The advice of the traced madvise calls: MADV_FREE in any setting the run traced (the default
    # of Go 1.12–1.15, madvdontneed=0 since) holds; only MADV_DONTNEED fails; no trace decides nothing.
    advised = {a for calls_ in by_setting.values() for a, (n, _) in calls_.items() if n}
    if not advised:
        free: bool | None = None
        why[PARTS[1]] = "no traced madvise call"
    else:
        free = "MADV_FREE" in advised
    case = "unmapped" if unmapped else "never-shrank" if munmap_part is False else "open"
    return judged(case, {PARTS[0]: munmap_part, PARTS[1]: free}, why, **facts)


def evidence(d: Decision) -> str:
    if d.case == "no-vm-size":
        return "VmSize was not sampled."
    text = (f"VmSize max {span(d.max_vm)}, final {span(d.final_vm)} while RSS went {span(d.peak)} → "
            f"{span(d.final)}")
    text += (f"; traced madvise {d.madvise[0]}× ({mib(d.madvise[1])}), munmap {d.munmap[0]}× ({mib(d.munmap[1])})"
             if d.traced else "; no syscall trace")
    if d.by_setting and any(d.by_setting.values()):
        text += "; madvise advice by madvdontneed setting: " + "; ".join(
            f"{s}: " + ", ".join(f"{a} {n}× ({mib(b)})" for a, (n, b) in sorted(calls.items()))
            for s, calls in d.by_setting.items() if calls)
    if d.case == "unmapped":
        text += ": address space was given back"
    elif d.case == "never-shrank":
        how = ("memory goes back by madvise (runtime/mem_linux.go sysUnusedOS), not munmap" if d.madvise[0]
               else "no munmap of the heap")
        text += (f": VmSize never shrank — {how}; the runtime never unmaps heap memory (sysFreeOS/munmap "
                 f"only carves aligned reservations or backs out of a failed allocation; golang/go#45000, #35890)")
    free = d.parts[PARTS[1]]
    if free is True:
        text += (". MADV_FREE is what sysUnusedOS uses unless debug.madvdontneed is set: the default in Go "
                 "1.12–1.15, and with GODEBUG=madvdontneed=0 since Go 1.16 (runtime/runtime1.go parsedebugvars)")
    elif free is False:
        text += ". Only MADV_DONTNEED was traced: MADV_FREE needs madvdontneed=0 (or Go 1.12–1.15)"
    return text + "."


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
    decide=decide, evidence=evidence, parts=PARTS,
    mechanism=("The Go runtime never unmaps heap memory on Linux: the scavenger and debug.FreeOSMemory return "
               "pages with madvise (runtime/mem_linux.go sysUnusedOS: MADV_DONTNEED, or MADV_FREE with "
               "madvdontneed=0), so RSS falls while VmSize and HeapSys stay; munmap (sysFreeOS) is used only to "
               "trim aligned reservations or after an out-of-memory error mid-allocation (runtime/mem.go sysFree; "
               "maintainer statements in golang/go#45000 and #35890)."))
