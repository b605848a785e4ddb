"""Release timelines (harness.analyse.release) and the claims judged with them (C1, C2, C3, C7, C10),
on hand-made frames shaped like the measured runs: a touched spike released by one or more GCs,
then an idle window that may cross the periodic GC."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harness.analyse import claims, release
from harness.analyse.summary import RunData, summarize
from harness.studies.article import ARTICLE
from tests.frames import CellSpec, MiB, run_frames

GO119, GO121, GO115, NEW = "1.19.8", "1.21.13", "1.15.15", "1.27.3"
RELEASE_AT = 2.0


def gc_event(cell_id: str, n: int, t: float, forced: bool, heap_end_mib: float, goal_mib: float):
    detail = {"num_gc": n, "forced": forced, "heap_end_bytes": int(heap_end_mib * MiB),
              "goal_bytes": int(goal_mib * MiB),
              "line": f"gc {n} @{t}s 0%: ... {heap_end_mib:.0f} MB, {goal_mib:.0f} MB goal, 2 P"
                      + (" (forced)" if forced else "")}
    return (t, "gc", f"gc{n}", heap_end_mib * MiB, json.dumps(detail))


def scav_event(t: float, bg_mib: float = 0, eager_mib: float = 0):
    detail = {"released_bytes": int((bg_mib + eager_mib) * MiB), "released_bg_bytes": int(bg_mib * MiB),
              "released_eager_bytes": int(eager_mib * MiB)}
    return (t, "scav", "scav", (bg_mib + eager_mib) * MiB, json.dumps(detail))


def spike(cell_id: str, *, scenario: str = "idle_scavenger", go: str = NEW, gcs: int = 1, window: float = 140.0,
          back_at: float | None = None, periodic_at: float | None = None, lazy: bool = False, freeos: bool = False,
          live: float = 0.0, size: float = 1024.0, kept: float | None = None, limit: str = "",
          eager: bool = False, touch: bool = True, gc_trace: bool = True, drop_s: float = 0.5):
    """A spike of `size` MiB over `live` MiB, dropped at RELEASE_AT and GC'd `gcs` times (then FreeOSMemory
    if `freeos`); the runtime returns all but `kept` MiB of free heap `back_at` seconds after the drop (with
    MADV_FREE if `lazy`: RSS keeps it), and the periodic GC comes `periodic_at` seconds after it."""
    rel = RELEASE_AT
    end = rel + window
    peak = 5 + live + (size if touch else 0)
    kept = 0.0 if kept is None else kept
    floor = 5 + live + kept
    phases = [("baseline", 0.0), ("allocate", 0.5), ("hold", 1.0), ("release", rel)]
    if freeos:
        phases.append(("freeos", rel + 0.02))
    phases.append(("idle", rel + 0.04))
    rss = [(0, 5), (0.5, 5 + live), (1.0, peak), (rel, peak)]
    released = [(0, 3), (rel, 3)]
    lazyfree = [(0, 0), (rel, 0)]
    if back_at is not None:
        t = rel + back_at
        rss += [(t, peak), (t + drop_s, peak if lazy else floor)]
        released += [(t, 3), (t + drop_s, 3 + size - kept)]
        lazyfree += [(t, 0), (t + drop_s, size - kept if lazy else 0)]
    rss.append((end, rss[-1][1]))
    released.append((end, released[-1][1]))
    lazyfree.append((end, lazyfree[-1][1]))
    heap_before, heap_after = live + size + 0.5, live + 0.5
    goal_before, goal_after = 2 * (live + size), max(2 * live, 4)
    curves = {
        "rss": rss,
        "heap_inuse": [(0, 0.5), (0.5, live + 0.5), (1.0, heap_before), (rel, heap_before), (rel + 0.05, heap_after),
                       (end, heap_after)],
        "heap_released": released,
        "heap_goal": [(0, 4), (1.0, goal_before), (rel, goal_before), (rel + 0.05, goal_after), (end, goal_after)],
        "lazyfree": lazyfree,
    }
    events = []
    n = 2
    for i in range(gcs):
        events.append(gc_event(cell_id, n, rel + 0.005 + 0.001 * i, True, heap_before if i == 0 else heap_after,
                               goal_before if i == 0 else goal_after))
        n += 1
    if freeos:
        events.append(gc_event(cell_id, n, rel + 0.025, True, heap_after, goal_after))
        events.append(scav_event(rel + 0.03, eager_mib=size - kept))
        n += 1
    if eager:
        events.append(scav_event(rel + 0.03, eager_mib=size - kept))
    if periodic_at is not None:
        events.append(gc_event(cell_id, n, rel + periodic_at, False, heap_after, goal_after))
    if not gc_trace:
        events = [e for e in events if e[1] != "gc"]
        done = rel + 0.01 + (0.02 if freeos else 0)
        curves["num_gc"] = [(0, 1), (rel, 1), (done, 1 + gcs + freeos), (end, 1 + gcs + freeos)]
    axes = {"touch": "true" if touch else "false", "freeos": "true" if freeos else "false"}
    if limit:
        axes["gomemlimit"] = limit
    spec = CellSpec(cell_id=cell_id, phases=phases, end_s=end, curves=curves, scenario=scenario, go_version=go,
                    axes=axes, extra_events=events, totals={"num_gc": n - 1, "wall_s": end})
    extra = [(cell_id, 0.0, "runtime", "heap_sys", (live + size + 3) * MiB),
             (cell_id, end, "runtime", "heap_sys", (live + size + 3) * MiB),
             (cell_id, 0.0, "runtime", "heap_alloc", 0.0), (cell_id, 1.0, "runtime", "heap_alloc", (live + size) * MiB),
             (cell_id, rel + 0.05, "runtime", "heap_alloc", live * MiB),
             (cell_id, end, "runtime", "heap_alloc", live * MiB)]
    return spec, extra


def build(cells):
    specs = [c[0] for c in cells]
    frame_cells, samples, events = run_frames(specs)
    extra = pd.DataFrame([row for c in cells for row in c[1]], columns=["cell_id", "t_s", "source", "metric", "value"])
    samples = pd.concat([samples, extra], ignore_index=True)
    if "gomemlimit_bytes" not in frame_cells.columns:
        frame_cells["gomemlimit_bytes"] = frame_cells["gomemlimit"].map(
            lambda v: float(v[:-3]) * MiB if str(v).endswith("MiB") else np.nan)
    return frame_cells, samples, events


def inputs_of(cells):
    frame_cells, samples, events = build(cells)
    return claims.Inputs(frame_cells, summarize(frame_cells, samples, events), events, samples)


def run_of(cells):
    _, samples, events = build(cells)
    return RunData(samples, events)


def verdict(claim: str, cells, go: str | None = None):
    rows = claims.evaluate_claim(ARTICLE.by_id[claim], inputs_of(cells))
    if go is not None:
        rows = [r for r in rows if r.go_version == go]
    assert len(rows) == 1, rows
    return rows[0]


# ---- the timeline ----------------------------------------------------------------------------------

def test_periodic_gc_then_scavenger():
    run = run_of([spike("a", back_at=122.0, periodic_at=120.0)])
    tl = release.timeline(run, "a", NEW)
    assert tl.cause == "periodic" and tl.after.n == 3 and tl.after.periodic and not tl.after.requested
    assert [g.kind() for g in tl.gcs] == ["runtime.GC()", "the periodic GC"]
    assert tl.requested_gcs == 1 and tl.half_s == pytest.approx(122.26, abs=0.05)
    assert release.release_cause(tl) == ("the periodic GC 3 at 120 s (runtime/proc.go forcegcperiod), then the "
                                         "scavenger: RSS below half after 122 s")


def test_scavenger_after_the_requested_gc():
    run = run_of([spike("a", gcs=3, window=5.0, back_at=2.0)])
    tl = release.timeline(run, "a")
    assert tl.cause == "scavenger" and tl.after.n == 4 and tl.requested_gcs == 3
    assert release.release_cause(tl) == "the scavenger after GC 4 (runtime.GC() at 0.0 s): RSS below half after 2.3 s"


def test_nothing_within_a_short_window_and_never_resident():
    run = run_of([spike("a", window=30.0), spike("b", window=5.0, touch=False, freeos=True, back_at=0.03)])
    assert release.release_cause(release.timeline(run, "a")) == (
        "nothing within the 30 s window (RSS 1029 MiB → 1029 MiB)")
    tl = release.timeline(run, "b")
    assert tl.cause == "not-resident" and "1024 MiB freed were never resident" in release.release_cause(tl)


def test_freeos_and_madv_free():
    run = run_of([spike("a", freeos=True, window=3.0, back_at=0.03),
                  spike("b", freeos=True, window=3.0, back_at=0.03, lazy=True, go=GO115)])
    a, b = release.timeline(run, "a"), release.timeline(run, "b")
    assert a.cause == "freeos" and a.requested_gcs == 1 and not a.lazy
    assert release.release_cause(a).startswith("debug.FreeOSMemory at 0.0 s: RSS below half after 0.3 s")
    assert b.cause == "freeos" and b.lazy and np.isnan(b.half_s)
    assert "with MADV_FREE" in release.release_cause(b) and "LazyFree 1024 MiB" in release.release_cause(b)


def test_eager_scavenging_past_the_memory_limit():
    run = run_of([spike("a", scenario="release_threshold", live=128, size=512, window=15.0, back_at=0.03,
                        eager=True, kept=0, limit="300MiB")])
    tl = release.timeline(run, "a")
    assert tl.cause == "eager" and tl.eager_scavenged == 512 * MiB
    assert "the allocation-time scavenger (512 MiB of eager work" in release.release_cause(tl)


def test_gcs_without_gctrace_come_from_num_gc_and_phases():
    run = run_of([spike("a", gcs=2, window=5.0, back_at=1.0, gc_trace=False)])
    gcs = release.gc_cycles(run, "a")
    assert [g.n for g in gcs] == [2, 3] and all(g.requested for g in gcs)
    tl = release.timeline(run, "a")
    assert tl.cause == "scavenger" and tl.after.n == 3


def test_first_unrequested_gc_is_never_periodic():
    events = pd.DataFrame([("x", t, kind, name, np.nan, detail) for t, kind, name, _, detail in
                           [(0.0, "phase", "idle", 0, "")] + [gc_event("x", n, t, False, 1, 4)
                                                              for n, t in ((1, 130.0), (2, 140.0), (3, 250.0))]],
                          columns=["cell_id", "t_s", "kind", "name", "value", "detail"])
    assert [g.periodic for g in release.gc_cycles(RunData(None, events), "x")] == [False, False, True]


def test_retention_goal_follows_the_runtime_formula():
    # 128 MiB live, 512 MiB spike: one GC at 640.5 MiB with goal 1281 MiB, new goal 256 MiB.
    run = run_of([spike("one", scenario="release_threshold", live=128, size=512, window=15.0),
                  spike("two", scenario="release_threshold", live=128, size=512, window=15.0, gcs=2, back_at=2.0,
                        kept=13)])
    one, two = release.retention(run, "one"), release.retention(run, "two")
    assert one.goal / MiB == pytest.approx(1.1 * 640.5 * 256 / 1280, rel=1e-3)
    assert one.retained / MiB == pytest.approx(640.0, abs=0.1) and one.ratio > 4
    assert two.goal / MiB == pytest.approx(1.1 * 128.5, rel=1e-3)
    assert two.retained / MiB == pytest.approx(128 + 13, abs=0.1) and two.ratio == pytest.approx(141 / 141.35, rel=1e-2)
    assert np.isnan(two.limit_goal)
    assert release.retention(run, "two", 300 * MiB).limit_goal == pytest.approx(285 * MiB)


def test_version_rules():
    assert release.go_minor("1.27.3") == 27 and release.go_minor("go1.15.15") == 15 and release.go_minor("x") is None
    assert "Go 1.21+" in release.scavenger_rule(NEW) and "Go 1.19–1.20" in release.scavenger_rule(GO119)
    assert "MADV_FREE by default in Go 1.12–1.15" in release.madvise_default(GO115)
    assert "MADV_DONTNEED by default since Go 1.16" in release.madvise_default(NEW)


# ---- C1 --------------------------------------------------------------------------------------------

def c1_cells(go: str, one_gc_back_at: float | None, periodic_at: float | None = 120.0, three_back_at=2.0,
             lazy=False):
    cells = [spike(f"three-{go}", scenario="idle_three_gcs", go=go, gcs=3, window=5.0, back_at=three_back_at,
                   lazy=lazy),
             spike(f"long-{go}", go=go, back_at=one_gc_back_at, periodic_at=periodic_at, lazy=lazy)]
    return cells


def test_c1_kept_until_the_periodic_gc_on_go_1_21():
    row = verdict("C1", c1_cells(GO121, 122.0))
    assert row.verdict == "supported", row.evidence
    for text in ("Right after one runtime.GC() RSS was 100% of the peak (1029 MiB)",
                 ("1 GC, 140 s window: the periodic GC 3 at 120 s (runtime/proc.go forcegcperiod), then the scavenger: "
                 "RSS below half after 122 s"),
                 "3 GCs, 5 s window: the scavenger after GC 4 (runtime.GC() at 0.0 s): RSS below half after 2.3 s",
                 "Kept, as stated", "golang/go#59960"):
        assert text in row.evidence, (text, row.evidence)


def test_c1_scavenged_soon_on_go_1_19():
    row = verdict("C1", c1_cells(GO119, 4.0))
    assert row.verdict == "partly", row.evidence
    assert "1 GC, 140 s window: the scavenger after GC 2 (runtime.GC() at 0.0 s): RSS below half after 4.3 s" \
        in row.evidence
    assert "within 4.3 s, with no further GC" in row.evidence and "Go 1.19–1.20" in row.evidence


def test_c1_madv_free_keeps_rss_on_go_1_15():
    row = verdict("C1", c1_cells(GO115, 3.0, lazy=True))
    assert row.verdict == "partly" and "with MADV_FREE" in row.evidence and "Go 1.12–1.15" in row.evidence


def test_c1_refuted_when_rss_falls_at_once_and_inconclusive_in_a_short_window():
    cells = [spike("three", scenario="idle_three_gcs", gcs=3, window=5.0, back_at=0.0, drop_s=0.01),
             spike("one", back_at=0.0, drop_s=0.01)]
    row = verdict("C1", cells)
    assert row.verdict == "refuted" and "Memory went back at once" in row.evidence
    short = [spike("one", scenario="idle_one_gc", window=10.0), spike("three", scenario="idle_three_gcs", gcs=3,
                                                                       window=5.0, back_at=2.0)]
    row = verdict("C1", short)
    assert row.verdict == "inconclusive" and "under 25 s" in row.evidence


def test_c1_has_a_row_per_version_of_its_first_scenario():
    cells = c1_cells(GO119, 4.0) + c1_cells(NEW, 122.0)
    rows = {r.go_version: r.verdict for r in claims.evaluate_claim(ARTICLE.by_id["C1"], inputs_of(cells))}
    assert rows == {GO119: "partly", NEW: "supported"}


# ---- C7 --------------------------------------------------------------------------------------------

def c7_cells(go: str, one_back_at: float | None, two_kept: float = 13.0, one_kept: float = 13.0):
    base = {"scenario": "release_threshold", "go": go, "live": 128, "size": 512, "window": 15.0}
    return [spike(f"one-{go}", back_at=one_back_at, kept=one_kept, **base),
            spike(f"two-{go}", gcs=2, back_at=2.0, kept=two_kept, **base),
            spike(f"lim-{go}", gcs=1, back_at=0.03, kept=0, eager=True, limit="300MiB", **base)]


def test_c7_both_needed_on_go_1_21():
    row = verdict("C7", c7_cells(GO121, None))
    assert row.verdict == "partly", row.evidence
    for text in (("after 2 GCs the runtime kept 141.0 MiB of heap (HeapSys − HeapReleased) against its retention goal "
                 "141.4 MiB (1.00×): the scavenger after GC 3 (runtime.GC() at 0.0 s)"),
                 ("after 1 GC it kept 640.0 MiB of heap (HeapSys − HeapReleased) against its retention goal 140.9 MiB "
                 "(4.54×): nothing within the 15 s window"),
                 "With GOMEMLIMIT 300 MiB and 1 GC: kept 128.0 MiB, within 95% of the limit (285 MiB) — though in "
                 "this Go the scavenger's memory-limit goal was effectively 95× the limit, not 95%",
                 "golang/go#62449, fixed in Go 1.22), so the limit did not drive the background scavenger: the "
                 "allocation-time scavenger (512 MiB of eager work",
                 "Both are needed, not either"):
        assert text in row.evidence, (text, row.evidence)


def test_c7_the_share_alone_on_go_1_19():
    row = verdict("C7", c7_cells(GO119, 3.0))
    assert row.verdict == "supported", row.evidence
    assert "after 1 GC it kept 141.0 MiB" in row.evidence and "The share decides" in row.evidence


def test_c7_each_part_can_fail():
    row = verdict("C7", c7_cells(NEW, 3.0, two_kept=300, one_kept=300))
    assert row.verdict == "partly", row.evidence
    assert "kept 428.0 MiB of heap (HeapSys − HeapReleased) against its retention goal 141.4 MiB (3.03×)" \
        in row.evidence
    assert "released down to a share of the heap (the retention goal) did not hold" in row.evidence
    row = verdict("C7", c7_cells(NEW, None, two_kept=300))
    assert row.verdict == "refuted", row.evidence


def test_c7_cites_the_long_window():
    cells = c7_cells(NEW, None) + [spike("long", back_at=122.0, periodic_at=120.0)]
    row = verdict("C7", cells)
    assert "One GC and a 140 s idle window (no live heap): the periodic GC 3 at 120 s" in row.evidence


# ---- C10, C2, C3 -----------------------------------------------------------------------------------

def test_c10_names_what_closed_the_gap_across_the_periodic_gc():
    cells = [spike("ar", scenario="alloc_release", window=3.0),
             spike("long", back_at=122.0, periodic_at=120.0)]
    row = verdict("C10", cells)
    assert row.verdict == "inconclusive", row.evidence   # nothing here shows what the OS sees beside RSS
    assert "the live heap (HeapAlloc) right after runtime.GC() was 0 MiB while VmRSS was 1029 MiB" in row.evidence
    assert ("Released by one GC, then a 140 s idle window: the gap closed only when the runtime returned the pages "
            "(122 s): the periodic GC 3 at 120 s") in row.evidence


def test_c10_the_heap_gap_is_no_part():
    """HeapAlloc below RSS right after runtime.GC() holds on every Go version: without a heap profile it
    decides nothing."""
    for live in (0, 1000):
        cells = [spike("ar", scenario="alloc_release", window=3.0, live=live, size=24)]
        assert verdict("C10", cells).verdict == "inconclusive"


def test_c2_says_what_returned_the_touched_slice():
    cells = [spike("t", scenario="alloc_release", window=3.0, freeos=True, back_at=0.02, drop_s=0.01),
             spike("u", scenario="alloc_release", window=3.0, freeos=True, back_at=0.02, drop_s=0.01, touch=False),
             spike("n", scenario="alloc_release", window=3.0)]
    row = verdict("C2", cells)
    assert row.verdict == "supported", row.evidence
    assert "Returned by debug.FreeOSMemory at 0.0 s: RSS below half after 0.0 s." in row.evidence
    assert "Note: the snippet as written never made RSS rise" in row.evidence
    assert "Without FreeOSMemory, after the same GC: nothing within the 3.0 s window" in row.evidence


@pytest.mark.parametrize("go, unset_like, verdict_, text", [
    (GO115, "0", "supported", "Go 1.15.15: MADV_FREE by default in Go 1.12–1.15"),
    (GO119, "1", "partly", "Go 1.19.8: MADV_DONTNEED by default since Go 1.16"),
    (GO115, "1", "partly", "the unset run did not behave as that default"),
])
def test_c3_states_the_default_of_each_version(go, unset_like, verdict_, text):
    shapes = {"0": (1030, 1000), "1": (14, 0)}
    shapes["unset"] = shapes[unset_like]
    rows = [{"cell_id": f"m{m}", "scenario": "madvdontneed", "madvdontneed": m, "go_version": go, "status": "ok",
             "peak_rss": 1034 * MiB, "rss@freeos": r * MiB, "lazyfree@freeos": lz * MiB}
            for m, (r, lz) in shapes.items()]
    frame = pd.DataFrame(rows)
    cells = frame[["cell_id", "scenario", "madvdontneed", "go_version", "status"]]
    inp = claims.Inputs(cells, frame.drop(columns=["scenario", "madvdontneed", "go_version", "status"])
                        .set_index("cell_id"))
    row = claims.evaluate_claim(ARTICLE.by_id["C3"], inp)[0]
    assert row.verdict == verdict_ and text in row.evidence, row.evidence


# ---- mechanisms ------------------------------------------------------------------------------------

@pytest.mark.parametrize("claim, refs", [
    ("C1", ["scavChunkData.shouldScavenge", "golang/go#59960", "forcegcperiod"]),
    ("C2", ["does not compile", "scavengeAll", "golang/go#59960"]),
    ("C3", ["sysUnusedOS", "golang/go#42330"]),
    ("C4", ["LazyFree", "OOM"]),
    ("C6", ["sysUnusedOS", "golang/go#45000", "#35890"]),
    ("C7", ["gcPaceScavenger", "retainExtraPercent", "95%", "golang/go#62449"]),
    ("C10", ["inuse_space", "HeapIdle − HeapReleased"]),
    ("C11", ["LazyFree", "lru_lazyfree_fn"]),
])
def test_each_claim_names_its_mechanism(claim, refs):
    mechanism = ARTICLE.by_id[claim].mechanism
    for ref in refs:
        assert ref in mechanism, (ref, mechanism)


def test_c11_rows_follow_the_pressure_scenario():
    assert ARTICLE.by_id["C11"].scenarios[0] == "oom_pressure"
    assert ARTICLE.by_id["C1"].scenarios[0] == "idle_three_gcs"


# Both outcomes of each claim judged here, for tests/test_claims.py's completeness check.
OUTCOMES = {"C1": {"supported", "partly", "refuted", "inconclusive"}, "C7": {"supported", "partly", "refuted"},
            "C10": {"supported", "refuted"}}


def test_c1_pools_repeats_of_a_configuration():
    cells = [spike(f"three-r{r}", scenario="idle_three_gcs", gcs=3, window=10.0, back_at=b)
             for r, b in ((0, 2.0), (1, 4.0))]
    cells += [spike(f"long-r{r}", back_at=122.0, periodic_at=120.0) for r in (0, 1)]
    row = verdict("C1", cells)
    assert row.verdict == "supported"
    assert "3 GCs, 10 s window: the scavenger after GC 4 (runtime.GC() at 0.0 s): RSS below half after 2.3 s " \
           "(2 runs: back after 2.3 s–4.3 s)" in row.evidence
