"""C5, C12, C13 and C14 on hand-made runs: each flips between verdicts, and its evidence states the
numbers it was decided on; plus the residency quantities they are computed from."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness.analyse import claims, release, residency
from harness.analyse import summary as analysis
from harness.studies.article import ARTICLE
from tests.frames import CellSpec, MiB, run_frames


def one(claim, inp):
    rows = claims.evaluate_claim(ARTICLE.by_id[claim], inp)
    assert len(rows) == 1, rows
    return rows[0]


def curve(cell_id: str, source: str, metric: str, points, end_s: float, period: float = 0.1,
          scale: float = MiB) -> pd.DataFrame:
    """Sample rows of a piecewise-linear curve (values in MiB unless `scale` says otherwise)."""
    t = np.round(np.arange(0.0, end_s + 1e-9, period), 6)
    xs, ys = zip(*points, strict=False)
    v = np.interp(t, xs, ys) * scale
    if scale == 1:
        v = np.floor(v + 1e-9)   # counts step, they do not slide
    return pd.DataFrame({"cell_id": cell_id, "t_s": t, "source": source, "metric": metric, "value": v})


def build(specs: list[CellSpec], extra: list[pd.DataFrame] = (), events: list[tuple] = ()) -> claims.Inputs:
    cells, samples, ev = run_frames(specs)
    samples = pd.concat([samples, *extra], ignore_index=True)
    if events:
        ev = pd.concat([ev, pd.DataFrame(list(events), columns=list(analysis.EVENT_COLUMNS))], ignore_index=True)
    return claims.Inputs(cells, analysis.summarize(cells, samples, ev), ev, samples)


# ---- C13 -------------------------------------------------------------------------------------------

LARGE_PHASES = [("baseline", 0.0), ("churn", 0.5), ("release", 5.0), ("idle", 5.1)]


def large_cell(gcs: str, returned_at: float | None, end_s: float = 160.0):
    """Churn to a 600 MiB RSS over 300 MiB in use; the drop at 5 s keeps 50 MiB of long-lived objects.
    `gcs` forced GCs at the drop; with one, the periodic GC 120 s later; RSS falls to 60 MiB at
    `returned_at` (never if None)."""
    cid = f"large_churn[release-gcs={gcs},r0]"
    fall = [(returned_at - 0.5, 600), (returned_at, 60), (end_s, 60)] if returned_at else [(end_s, 600)]
    spec = CellSpec(cid, LARGE_PHASES, end_s, scenario="large_churn", workload="large-churn",
                    axes={"release-gcs": gcs},
                    curves={"rss": [(0, 5), (0.5, 5), (1, 600), *fall],
                            "heap_inuse": [(0, 1), (1, 300), (5.0, 300), (5.1, 50), (end_s, 50)],
                            "heap_goal": [(0, 4), (1, 580), (5.0, 580), (5.1, 100), (end_s, 100)]})
    after_gc = 21 if gcs == "1" else 22
    periodic = [(125.0, after_gc), (125.1, after_gc + 1)] if gcs == "1" else []
    num = [(0, 0), (5.0, 20), (5.1, after_gc), *periodic, (end_s, after_gc + (1 if periodic else 0))]
    released_to = 540 if returned_at else 0
    at = returned_at or end_s
    extra = [curve(cid, "runtime", "num_gc", num, end_s, scale=1),
             curve(cid, "runtime", "gc_forced", [(0, 0), (5.0, 0), (5.1, int(gcs)), (end_s, int(gcs))], end_s,
                   scale=1),
             curve(cid, "runtime", "live_bytes", [(0, 0), (1, 300), (5.0, 300), (5.1, 50), (end_s, 50)], end_s),
             curve(cid, "runtime", "heap_idle", [(0, 0), (5.0, 0), (5.1, 550), (end_s, 550)], end_s),
             curve(cid, "runtime", "heap_released", [(0, 0), (at - 0.5, 0), (at, released_to), (end_s, released_to)],
                   end_s)]
    return spec, extra


def frag_cell(free_frac: float, freeos: bool, rss_end: float):
    cid = f"small_frag[free-frac={free_frac},freeos={str(freeos).lower()},r0]"
    phases = [("baseline", 0.0), ("allocate", 0.5), ("free", 2.0), ("release", 2.1)]
    phases += [("freeos", 2.2)] if freeos else []
    phases += [("idle", 2.3)]
    live = 256 * (1 - free_frac)
    inuse = 280 if free_frac < 1 else 0.5
    spec = CellSpec(cid, phases, 8.0, scenario="small_frag", workload="small-frag",
                    axes={"free-frac": str(free_frac), "freeos": str(freeos).lower()},
                    curves={"rss": [(0, 4), (0.5, 4), (2.0, 300), (2.3, 300), (2.5, rss_end), (8, rss_end)],
                            "heap_inuse": [(0, 1), (2.0, 290), (2.1, inuse), (8, inuse)]})
    gc_n = 3 if freeos else 2
    extra = [curve(cid, "runtime", "num_gc", [(0, 0), (2.0, 4), (2.1, 4), (2.25, 4 + gc_n), (8, 4 + gc_n)], 8.0,
                   scale=1),
             curve(cid, "runtime", "live_bytes", [(0, 0), (2.0, 256), (2.05, live), (8, live)], 8.0)]
    return spec, extra


def c13_inputs(large_returned: bool = True, with_small: bool = True):
    specs, extra = [], []
    for gcs, at in (("1", 127.0), ("2", 7.0)):
        s, e = large_cell(gcs, at if large_returned else None)
        specs.append(s)
        extra += e
    if with_small:
        for frac, freeos, end in ((0.9, True, 290), (1.0, True, 6)):
            s, e = frag_cell(frac, freeos, end)
            specs.append(s)
            extra += e
    return build(specs, extra)


def test_c13_large_objects_returned_is_refuted_and_says_what_returned_them_when():
    row = one("C13", c13_inputs())
    assert row.verdict == "refuted", row.evidence
    for text in ("1 GC at the drop: live 50 MiB, RSS 600 MiB at the peak → 60 MiB at the end",
                 "RSS was still 600 MiB (7.7× the bound) just before the periodic GC 22 (120 s after the drop): kept "
                 "resident that long by the dense-chunk rule",
                 "not by fragmentation; after it the scavenger brought RSS within the bound (122 s after the drop)",
                 "2 GCs at the drop", "within it 2 s after the drop, returned by the scavenger after GC 22 "
                                       "(runtime.GC, 0.1 s after the drop)",
                 "90% freed, after 2 runtime.GCs and FreeOSMemory: RSS 290 MiB = 11.33× the 26 MiB live, "
                 "heap in use 280 MiB",
                 "all freed, after 2 runtime.GCs and FreeOSMemory: RSS 6 MiB",
                 "one-more-GC rule", "The data show the small-object case"):
        assert text in row.evidence, (text, row.evidence)


def test_c13_large_memory_kept_past_two_gcs_supports_the_claim():
    row = one("C13", c13_inputs(large_returned=False))
    assert row.verdict == "supported", row.evidence
    assert "still above it after 2 GCs incl. the periodic one" in row.evidence
    assert "RSS 600 MiB at the peak → 600 MiB at the end (bound baseline + 1.1 × heap in use = 78 MiB)" in row.evidence


def test_c13_still_returning_at_the_end_is_inconclusive():
    spec, extra = large_cell("2", None, end_s=20.0)
    extra[-1] = curve(spec.cell_id, "runtime", "heap_released", [(0, 0), (15, 0), (20, 100)], 20.0)
    row = one("C13", build([spec], extra))
    assert row.verdict == "inconclusive" and "still being returned when the window ended" in row.evidence
    assert "small_frag did not run" in row.evidence


def test_c13_one_gc_and_no_periodic_one_is_waiting_not_kept():
    spec, extra = large_cell("2", None, end_s=20.0)
    extra[0] = curve(spec.cell_id, "runtime", "num_gc", [(0, 0), (5.0, 20), (5.1, 21), (20, 21)], 20.0,
                     scale=1)
    extra[1] = curve(spec.cell_id, "runtime", "gc_forced", [(0, 0), (5.0, 0), (5.1, 1), (20, 1)], 20.0,
                     scale=1)
    row = one("C13", build([spec], extra))
    assert row.verdict == "inconclusive" and "only 1 GC after the drop" in row.evidence


# ---- residency -------------------------------------------------------------------------------------

def test_gcs_tell_forced_from_periodic():
    inp = c13_inputs()
    gcs = release.gc_cycles(inp.derived.run, "large_churn[release-gcs=1,r0]")
    assert [g.n for g in gcs][-2:] == [21, 22]
    assert gcs[-2].requested and not gcs[-2].periodic
    assert not gcs[-1].requested and gcs[-1].periodic


def test_gcs_without_the_forced_counter_go_by_phase():
    spec, extra = large_cell("1", 127.0)
    inp = build([spec], [e for e in extra if not (e["metric"] == "gc_forced").all()])
    gcs = release.gc_cycles(inp.derived.run, spec.cell_id)
    assert gcs[-2].requested and gcs[-1].periodic and not gcs[0].requested


def test_retention_bound_and_moment():
    inp = c13_inputs()
    r = residency.retention(inp.derived.run, "large_churn[release-gcs=2,r0]")
    assert r.bound == pytest.approx(5 * MiB + 1.1 * 50 * MiB + 0.03 * 600 * MiB)
    assert r.within_s == pytest.approx(1.99, abs=0.02) and r.gcs_after == 2 and r.live == 50 * MiB
    assert r.heap_free == pytest.approx(10 * MiB)
    assert residency.retention(inp.derived.run, "no-such-cell") is None


# ---- C12 -------------------------------------------------------------------------------------------

CG_PHASES = [("baseline", 0.0), ("pagecache", 0.5), ("allocate", 1.5), ("hold", 2.0), ("release", 3.0),
             ("freeos", 3.05), ("idle", 3.1)]


def cg_cell(memory: int, madv: str, page_cache: float = 256):
    """A 512 MiB allocation after `page_cache` MiB of page cache; in a 256 MiB limit it is killed
    at 1.8 s once the page cache is reclaimed."""
    cid = f"cgroup_limit[madvdontneed={madv},memory={memory}MiB,r0]"
    pc = page_cache
    if memory < 512:
        spec = CellSpec(cid, CG_PHASES[:3], 1.8, scenario="cgroup_limit", workload="alloc-release",
                        status="oom_killed", oom_killed=True, memory_limit_bytes=memory * MiB,
                        axes={"memory": f"{memory}MiB", "madvdontneed": madv},
                        curves={"rss": [(0, 5), (1.5, 5), (1.8, 250)],
                                "usage": [(0, 5), (1.5, 5 + min(pc, 245)), (1.8, 256)]})
        file_ = [(0, 0), (1.5, min(pc, 245)), (1.6, min(pc, 245)), (1.8, 2 if pc else 0)]
        return spec, [curve(cid, "cgroup", "file", file_, 1.8, 0.01),
                      curve(cid, "cgroup", "inactive_file", file_, 1.8, 0.01)]
    lazy = madv == "0"
    rss_after = 517 if lazy else 5
    spec = CellSpec(cid, CG_PHASES, 5.0, scenario="cgroup_limit", workload="alloc-release",
                    memory_limit_bytes=memory * MiB, axes={"memory": f"{memory}MiB", "madvdontneed": madv},
                    curves={"rss": [(0, 5), (1.5, 5), (2.0, 517), (3.05, 517), (3.1, rss_after), (5, rss_after)],
                            "usage": [(0, 5), (1.5, 5 + pc), (2.0, 517 + pc), (3.05, 517 + pc),
                                      (3.1, rss_after + pc), (5, rss_after + pc)],
                            "working_set": [(0, 5), (1.5, 5), (2.0, 517), (3.05, 517), (3.1, 5), (5, 5)],
                            "lazyfree": [(0, 0), (3.05, 0), (3.1, 512 if lazy else 0), (5, 512 if lazy else 0)]})
    inactive = [(0, 0), (1.5, pc), (3.05, pc), (3.1, pc + (512 if lazy else 0)), (5, pc + (512 if lazy else 0))]
    return spec, [curve(cid, "cgroup", "file", [(0, 0), (1.5, pc), (5, pc)], 5.0, 0.01),
                  curve(cid, "cgroup", "inactive_file", inactive, 5.0, 0.01)]


def c12_inputs(page_cache: float = 256, small_killed: bool = True):
    specs, extra = [], []
    for memory, madv in ((256, "unset"), (1024, "unset"), (1024, "0")):
        s, e = cg_cell(memory, madv, page_cache)
        if memory == 256 and not small_killed:
            s.status, s.oom_killed = "ok", False
        specs.append(s)
        extra += e
    return build(specs, extra)


def test_c12_page_cache_makes_usage_more_than_rss():
    row = one("C12", c12_inputs())
    assert row.verdict == "partly", row.evidence
    for text in ("page cache (256 MiB) resident: cgroup usage 773 MiB vs RSS 517 MiB, usage / RSS 1.50",
                 "so it is not the container's RSS",
                 "After FreeOSMemory (madvdontneed=0): RSS 517 MiB, LazyFree 512 MiB, usage 773 MiB, working set 5 MiB",
                 "After FreeOSMemory (madvdontneed unset): RSS 5 MiB, LazyFree 0 MiB, usage 261 MiB, working set 5 MiB",
                 "docker stats, kubectl top and kubelet eviction",
                 "At the 256 MiB limit: OOM-killed 1/1, peak usage 256 MiB",
                 "the page cache went from 245 MiB to 2 MiB before the end (reclaimed first)"):
        assert text in row.evidence, (text, row.evidence)


def test_c12_without_page_cache_usage_is_rss_and_the_kill_supports():
    row = one("C12", c12_inputs(page_cache=0))
    assert row.verdict == "supported", row.evidence
    assert "usage / RSS 1.00" in row.evidence and "usage is RSS here" in row.evidence


def test_c12_not_killed_and_page_cache_refutes():
    row = one("C12", c12_inputs(small_killed=False))
    assert row.verdict == "refuted", row.evidence
    assert "OOM-killed 0/1" in row.evidence


# ---- C14 -------------------------------------------------------------------------------------------

def cache_cell(policy: str, keyspace: str, end_rss: float, plateau_at: float | None = None):
    cid = f"cache_growth[keyspace={keyspace},policy={policy},r0]"
    start = [(0, 5), (0.5, 5), (1.5, 30)]
    rss = start + ([(plateau_at, end_rss)] if plateau_at else []) + [(8.5, end_rss)]
    heap = [(x, max(y - 5, 0.5)) for x, y in rss] + [(8.6, 3), (10.5, 3)]
    spec = CellSpec(cid, [("baseline", 0), ("serve", 0.5), ("drain", 8.5), ("idle", 8.6)], 10.5,
                    scenario="cache_growth", workload="cache-growth", axes={"policy": policy, "keyspace": keyspace},
                    curves={"rss": rss + [(10.5, end_rss)], "heap_inuse": heap})
    entries = curve(cid, "runtime", "cache_entries", [(0, 0), (8.5, 1000), (8.6, 0), (10.5, 0)], 10.5, scale=1)
    return spec, [entries]


def c14_inputs(repeat_grows: bool = False, unbounded_grows: bool = True):
    specs, extra = [], []
    for policy, ks, end, plateau in (("unbounded", "0", 180 if unbounded_grows else 30, None),
                                     ("unbounded", "40000", 60 if not repeat_grows else 180,
                                      None if repeat_grows else 2.5),
                                     ("lru", "0", 30, 1.5), ("ttl", "0", 30, 1.5)):
        s, e = cache_cell(policy, ks, end, plateau)
        specs.append(s)
        extra += e
    return build(specs, extra)


def test_c14_judged_on_new_keys_with_the_repeating_keys_as_the_control():
    """The article's cache is keyed by a timestamp: every key new. The repeating-key stream must
    plateau; that it did validates the slope, and is no count against the claim."""
    row = one("C14", c14_inputs())
    assert row.verdict == "supported", row.evidence
    for text in ("unbounded 21.4 MiB/s", "unbounded (keyspace 40000) 0.0 MiB/s", "lru 0.0 MiB/s",
                 "bounded caches stayed flat (<20% of its slope)",
                 "the method's control, the same cache over a repeating key space (40000 keys), stopped growing",
                 "heap in use 175 MiB → 3 MiB with 0 entries (before serving 0 MiB)", "the map kept 2 MiB",
                 "maps do not shrink, golang/go#20135"):
        assert text in row.evidence, (text, row.evidence)


def test_c14_a_control_that_keeps_growing_leaves_growth_undecided():
    row = one("C14", c14_inputs(repeat_grows=True))
    assert row.verdict == "inconclusive", row.evidence
    assert "the method's control, a repeating key space, kept growing too" in row.evidence
    assert "grows with every new key undecided (the repeating-key control kept growing too" in row.evidence


def test_c14_no_growth_refutes():
    row = one("C14", c14_inputs(unbounded_grows=False))
    assert row.verdict == "refuted" and "the unbounded cache did not grow (threshold 1 MiB/s)" in row.evidence


def test_c14_without_a_repeating_key_space_leaves_that_part_out():
    specs, extra = [], []
    for policy, end, plateau in (("unbounded", 180, None), ("lru", 30, 1.5)):
        s, e = cache_cell(policy, "0", end, plateau)
        specs.append(s)
        extra += e
    row = one("C14", build(specs, extra))
    assert row.verdict == "supported" and "no repeating-key control ran" in row.evidence


# ---- C5 --------------------------------------------------------------------------------------------

SIZES = (8, 15, 16, 17, 1024, 32760, 32761, 32768, 33792)


def size_events(cell_id: str, boundary: int, pointers: bool, counters: str = "runtime/metrics",
                 shape: str = "bytes", sizes=SIZES, example_tiny: bool = False):
    out = []
    for size in sizes:
        if size < 16 and not pointers:
            cls = "tiny"
        else:
            cls = "small" if size <= boundary else "large"
        # As the runtime counts: of 8 B objects, two share a block and only the second counts as tiny;
        # a 15 B object never shares one, so its tiny count is 0 though the tiny path served it.
        tiny = 500 if (cls == "tiny" and size <= 8) or example_tiny else 0
        d = {"size": size, "ops": 1000, "ops_per_s": 1e7 / size, "tiny_allocs": tiny,
             "small_allocs": 1000 - tiny if cls != "large" else 0, "large_allocs": 1000 if cls == "large" else 0,
             "pointers": pointers, "shape": shape, "counters": counters}
        if counters == "memstats":
            d["tiny_allocs"] = -1
            if size > 19072 and cls == "small":   # BySize stops at 19072 B: Mallocs - Small looks large
                d["small_allocs"], d["large_allocs"] = 0, 1000
            if cls == "tiny":
                d["small_allocs"], d["large_allocs"] = 500, 500
        out.append((cell_id, 1.0, "sizes", str(size), d["ops_per_s"], json.dumps(d)))
    return out


def c5_inputs(go: str, boundary: int, counters: str = "runtime/metrics", example_tiny: bool = False,
              with_example: bool = True):
    rows, events = [], []
    for pointers in (False, True):
        cid = f"alloc_sizes[go={go},pointers={str(pointers).lower()},r0]"
        rows.append({"cell_id": cid, "scenario": "alloc_sizes", "workload": "small-churn", "go_version": go,
                     "pointers": str(pointers).lower(), "status": "ok", "repeat": 0})
        events += size_events(cid, boundary, pointers, counters)
    if with_example:
        cid = f"alloc_struct16[go={go},r0]"
        rows.append({"cell_id": cid, "scenario": "alloc_struct16", "workload": "small-churn", "go_version": go,
                     "status": "ok", "repeat": 0})
        events += size_events(cid, boundary, False, counters, shape="struct16", sizes=(16,),
                              example_tiny=example_tiny)
    cells = pd.DataFrame(rows)
    ev = pd.DataFrame(events, columns=list(analysis.EVENT_COLUMNS))
    return claims.Inputs(cells, pd.DataFrame(index=cells["cell_id"]), ev)


def test_c5_go_1_22_boundary_is_32760_and_the_example_is_a_note():
    row = one("C5", c5_inputs("1.22.10", 32760))
    assert row.verdict == "partly", row.evidence
    for text in ("Tiny: pointer-free 8 B objects packed two to a 16-byte block (counted by /gc/heap/tiny/allocs)",
                 "largest small object 32760 B, 32761 B already large: the boundary is 32760 B",
                 "maxSmallSize − mallocHeaderSize",
                 "counted as a small 16 B size-class object. Not a part: from the source it cannot be tiny",
                 "16 B 0.62 M/s, 32760 B 0.00 M/s", "not observable from outside"):
        assert text in row.evidence, (text, row.evidence)


def test_c5_go_1_21_boundary_is_32_kib():
    row = one("C5", c5_inputs("1.21.13", 32768))
    assert row.verdict == "supported"
    assert "largest small object 32 KiB, smallest large 33 KiB: 32 KiB as stated" in row.evidence


def test_c5_tiny_fails_when_pointer_free_8_b_objects_are_not_packed():
    inp = c5_inputs("1.21.13", 32768)
    ev = inp.events.copy()
    ev["detail"] = [d.replace('"tiny_allocs": 500', '"tiny_allocs": 0') for d in ev["detail"]]
    row = one("C5", claims.Inputs(inp.cells, inp.summary, ev))
    assert row.verdict == "partly" and "Tiny: 8 B counted small" in row.evidence


def test_c5_go_1_15_reads_tiny_from_mallocs_less_bysize():
    """No tiny counter before Go 1.16, but Mallocs counts tiny allocations and BySize does not: tiny
    is observable (not 'not observable' and 'not tiny' at once); the boundary is not (BySize ends)."""
    row = one("C5", c5_inputs("1.15.15", 32768, counters="memstats"))
    assert row.verdict == "inconclusive", row.evidence
    assert "counted by MemStats.Mallocs − Σ BySize.Mallocs" in row.evidence
    assert "tiny: pointer-free objects below 16 B packed into 16-byte blocks held" in row.evidence
    assert "MemStats.BySize ends at 19072 B" in row.evidence
    assert "counted as a small 16 B size-class object" in row.evidence


def test_c5_boundary_off_the_claim_is_named():
    inp = c5_inputs("1.27.3", 1024, with_example=False)   # 17 B-1 KiB small, 32760 B large: off
    row = one("C5", inp)
    assert row.verdict == "partly" and "Small/large boundary off: 32760 B counted large" in row.evidence


def test_c5_without_sizes_is_inconclusive():
    cells = pd.DataFrame([{"cell_id": "s", "scenario": "alloc_sizes", "status": "ok", "go_version": "1.27.3"}])
    row = one("C5", claims.Inputs(cells, pd.DataFrame(index=["s"])))
    assert row.verdict == "inconclusive" and "No `sizes` events" in row.evidence


def test_size_runs_mark_a_missing_tiny_counter():
    inp = c5_inputs("1.15.15", 32768, counters="memstats")
    runs = residency.size_runs(inp.events, inp.cells["cell_id"])
    assert runs["tiny_allocs"].isna().all() and set(runs["counters"]) == {"memstats"}
    assert list(runs["shape"]).count("struct16") == 1 and runs["pointers"].sum() == len(SIZES)


def test_every_claim_here_has_a_mechanism_with_a_reference():
    for cid in ("C5", "C12", "C13", "C14"):
        text = ARTICLE.by_id[cid].mechanism
        assert text and ("runtime/" in text or "golang/go#" in text), cid
    assert not math.isnan(residency.RETAIN_EXTRA)


# Both outcomes of every claim here with the numbers their evidence states; test_claims.py runs
# them with the other claims' (one list: every claim must have two outcomes).
EVIDENCE = [
    ("C5", lambda: c5_inputs("1.22.10", 32760), "partly", ["largest small object 32760 B", "16 B 0.62 M/s"]),
    ("C5", lambda: c5_inputs("1.21.13", 32768), "supported",
     ["largest small object 32 KiB, smallest large 33 KiB"]),
    ("C5", lambda: c5_inputs("1.15.15", 32768, counters="memstats"), "inconclusive", ["BySize ends at 19072 B"]),
    ("C12", lambda: c12_inputs(), "partly", ["usage 773 MiB vs RSS 517 MiB", "working set 5 MiB",
                                             "OOM-killed 1/1"]),
    ("C12", lambda: c12_inputs(page_cache=0), "supported", ["usage / RSS 1.00", "OOM-killed 1/1"]),
    ("C12", lambda: c12_inputs(small_killed=False), "refuted", ["usage / RSS 1.50", "OOM-killed 0/1"]),
    ("C13", lambda: c13_inputs(), "refuted", ["RSS 600 MiB at the peak → 60 MiB at the end",
                                              "RSS 290 MiB = 11.33× the 26 MiB live"]),
    ("C13", lambda: c13_inputs(large_returned=False), "supported", ["→ 600 MiB at the end", "still above it"]),
    ("C14", lambda: c14_inputs(), "supported", ["unbounded 21.4 MiB/s", "(40000 keys), stopped growing"]),
    ("C14", lambda: c14_inputs(unbounded_grows=False), "refuted", ["did not grow (threshold 1 MiB/s)"]),
]


def test_c13_a_window_too_short_after_the_last_gc_is_not_kept():
    spec, extra = large_cell("2", None, end_s=20.0)
    extra[0] = curve(spec.cell_id, "runtime", "num_gc", [(0, 0), (5.0, 20), (5.1, 22), (20, 22)], 20.0, scale=1)
    row = one("C13", build([spec], extra))
    assert row.verdict == "inconclusive" and "the window ended 15 s after the last GC, too soon to tell" in row.evidence
