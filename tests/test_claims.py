"""Each claim flips between verdicts on hand-made summaries; plus the not-run and spread rules."""

import json

import numpy as np
import pandas as pd
import pytest

from harness.analyse import claims
from harness.analyse import summary as analysis
from tests.frames import CellSpec, MiB, run_frames
from tests.test_claims_release import OUTCOMES as RELEASE_OUTCOMES

OLD, NEW = "1.15.15", "1.27.3"
CELL_KEYS = {"cell_id", "scenario", "workload", "go_version", "status", "repeat", "memory_limit_bytes",
             "touch", "freeos", "gcs", "madvdontneed", "gomemlimit", "gogc", "every", "policy", "pointers",
             "memory"}


def inputs(rows, events=None, samples=None):
    """Rows mixing cells.csv fields and summary values → claims.Inputs."""
    rows = [{"status": "ok", "go_version": NEW, "repeat": 0, **r} for r in rows]
    for i, r in enumerate(rows):
        r.setdefault("cell_id", f"{r['scenario']}-{i}")
    frame = pd.DataFrame(rows)
    cell_cols = [c for c in frame.columns if c in CELL_KEYS]
    cells = frame[cell_cols]
    summary = frame.drop(columns=[c for c in cell_cols if c != "cell_id"]).set_index("cell_id")
    return claims.Inputs(cells, summary,
                         events if events is not None else pd.DataFrame(columns=analysis.EVENT_COLUMNS),
                         samples if samples is not None else pd.DataFrame(columns=analysis.SAMPLE_COLUMNS))


def verdicts(claim, inp):
    return {v.go_version: v.verdict for v in claims.evaluate_claim(claim, inp)}


def one(claim, inp):
    rows = claims.evaluate_claim(claim, inp)
    assert len(rows) == 1, rows
    return rows[0]


# ---- generic rules ---------------------------------------------------------------------------------

def test_claim_without_cells_is_not_tested_not_run():
    inp = inputs([{"scenario": "alloc_release", "touch": "true", "freeos": "true"}])
    row = one("C4", inp)
    assert (row.verdict, row.evidence, row.go_version) == ("not-tested", "not run", "")
    assert row.figure == ""  # nothing was drawn


def test_only_skipped_cells_are_inconclusive_with_statuses():
    inp = inputs([{"scenario": "oom_pressure", "madvdontneed": "0", "status": "skipped"}])
    row = one("C4", inp)
    assert row.verdict == "inconclusive" and "skipped×1" in row.evidence


def test_one_row_per_go_version():
    rows = [{"scenario": "oom_pressure", "madvdontneed": m, "go_version": g, "oom_killed": k}
            for g, k0 in ((OLD, 1), (NEW, 0)) for m, k in (("0", k0), ("1", 0))]
    assert verdicts("C4", inputs(rows)) == {OLD: "supported", NEW: "refuted"}


def test_compare_spread_rule():
    assert claims.compare([1, 2], [1.5, 3]) == "unclear"
    assert claims.compare([1.0, 1.01], [1.0, 1.02]) == "same"
    assert claims.compare([1.0], [2.0]) == "lower"
    assert claims.compare([3.0], [2.0]) == "higher"


def test_evaluate_lists_every_claim_and_the_non_go_ones():
    table = claims.evaluate_inputs(inputs([{"scenario": "alloc_release", "touch": "true", "freeos": "true"}]))
    assert list(table.columns) == ["claim", "go_version", "verdict", "evidence", "figure"]
    assert set(table["claim"]) == set(claims.CLAIMS) | {"J1", "J2", "J3", "J4"}
    assert (table[table["claim"].str.startswith("J")]["verdict"] == "not-tested").all()
    assert set(table["verdict"]) <= set(claims.VERDICTS)


# ---- C1 --------------------------------------------------------------------------------------------
# C1 and C7 read release timelines from raw frames: tests/test_claims_release.py.


# ---- C2 --------------------------------------------------------------------------------------------

def c2_rows(touched_after, untouched_peak):
    base = {"scenario": "alloc_release", "freeos": "true", "rss@baseline": 10 * MiB}
    return [{**base, "touch": "true", "peak_rss": 1034 * MiB, "rss@freeos": touched_after * MiB},
            {**base, "touch": "false", "peak_rss": untouched_peak * MiB, "rss@freeos": 12 * MiB}]


def test_c2_partly_when_only_touched_hands_back():
    row = one("C2", inputs(c2_rows(14, 12)))
    assert row.verdict == "partly" and "never made RSS rise" in row.evidence


def test_c2_supported_when_both_rise_and_go_back():
    assert one("C2", inputs(c2_rows(14, 1034))).verdict == "supported"


def test_c2_refuted_when_touched_rss_stays():
    assert one("C2", inputs(c2_rows(1000, 12))).verdict == "refuted"


# ---- C3 --------------------------------------------------------------------------------------------

def c3_rows(unset_like):
    shapes = {"0": (1030, 1000), "1": (14, 0)}
    shapes["unset"] = shapes[unset_like]
    return [{"scenario": "madvdontneed", "madvdontneed": m, "peak_rss": 1034 * MiB,
             "rss@freeos": r * MiB, "lazyfree@freeos": lz * MiB} for m, (r, lz) in shapes.items()]


def test_c3_flips_with_what_unset_behaves_like():
    assert one("C3", inputs(c3_rows("0"))).verdict == "supported"
    # 0 and 1 still do what the article says; only "0 is the default" fails.
    row = one("C3", inputs(c3_rows("1")))
    assert row.verdict == "partly" and "not the default" in row.evidence


def test_c3_refuted_when_explicit_settings_behave_alike():
    rows = c3_rows("0")
    rows[1].update({"rss@freeos": 1030 * MiB, "lazyfree@freeos": 1000 * MiB})  # madvdontneed=1 kept them too
    assert one("C3", inputs(rows)).verdict == "refuted"


def test_c3_inconclusive_without_lazyfree():
    rows = c3_rows("0")
    for r in rows:
        r["lazyfree@freeos"] = np.nan
    row = one("C3", inputs(rows))
    assert row.verdict == "inconclusive" and "LazyFree" in row.evidence


# ---- C4 --------------------------------------------------------------------------------------------

def test_c4_refuted_when_neither_is_killed_and_inconclusive_when_repeats_disagree():
    rows = [{"scenario": "oom_pressure", "madvdontneed": m, "oom_killed": 0, "repeat": r}
            for m in ("0", "1") for r in (0, 1)]
    row = one("C4", inputs(rows))
    assert row.verdict == "refuted" and "reclaims lazily freed pages" in row.evidence
    rows[0]["oom_killed"] = 1
    assert one("C4", inputs(rows)).verdict == "inconclusive"
    rows[1]["oom_killed"] = 1
    assert one("C4", inputs(rows)).verdict == "supported"


# ---- C5 --------------------------------------------------------------------------------------------

def c5_inputs(large_at_32k=False, counters=True):
    events = []
    for size in (8, 15, 16, 17, 1024, 32768, 33792):
        cls = "tiny" if size < 16 else ("small" if size <= 32768 and not (large_at_32k and size == 32768)
                                        else "large")
        # As the runtime counts: of 8 B objects, two share a block and only the second counts as
        # tiny; a 15 B object never shares one, so its tiny count is 0 though the tiny path served it.
        tiny = 500 if size <= 8 else 0
        d = {"size": size, "ops": 1000, "ops_per_s": 1e7 / size,
             "tiny_allocs": tiny, "small_allocs": 1000 - tiny if cls != "large" else 0,
             "large_allocs": 1000 if cls == "large" else 0}
        if not counters:
            del d["tiny_allocs"], d["small_allocs"], d["large_allocs"]
        events.append(("s", 1.0, "sizes", str(size), d["ops_per_s"], json.dumps(d)))
    ev = pd.DataFrame(events, columns=analysis.EVENT_COLUMNS)
    return inputs([{"cell_id": "s", "scenario": "alloc_sizes", "pointers": "false"}], events=ev)


def test_c5_flips_when_a_size_lands_in_the_wrong_class():
    assert one("C5", c5_inputs()).verdict == "supported"
    row = one("C5", c5_inputs(large_at_32k=True))
    assert row.verdict == "partly" and "32 KiB: large not small" in row.evidence
    assert "malloc header" in row.evidence
    assert "15 B" not in row.evidence   # not judged: the counters cannot show tiny service at 9-15 B


def test_c5_tiny_counter_at_zero_for_8_bytes_is_a_miss():
    ev = c5_inputs().events
    ev.loc[ev["name"] == "8", "detail"] = json.dumps(
        {"size": 8, "ops": 1000, "ops_per_s": 1.0, "tiny_allocs": 0, "small_allocs": 1000, "large_allocs": 0})
    row = one("C5", inputs([{"cell_id": "s", "scenario": "alloc_sizes", "pointers": "false"}], events=ev))
    assert row.verdict == "partly" and "8 B: small not tiny" in row.evidence


def test_c5_inconclusive_without_counters():
    assert one("C5", c5_inputs(counters=False)).verdict == "inconclusive"


# ---- C6 --------------------------------------------------------------------------------------------

def c6_inputs(final_vm, munmap_bytes=0):
    ev = [("sc", 1.0, "syscall", "madvise", 1024 * MiB, "MADV_DONTNEED")]
    if munmap_bytes:
        ev.append(("sc", 1.0, "syscall", "munmap", munmap_bytes, ""))
    return inputs([{"cell_id": "sc", "scenario": "syscalls", "max_vm_size": 1900 * MiB,
                    "final_vm_size": final_vm * MiB, "peak_rss": 1034 * MiB, "final_rss": 14 * MiB}],
                  events=pd.DataFrame(ev, columns=analysis.EVENT_COLUMNS))


def test_c6_refuted_when_vm_size_never_shrinks_and_only_madvise_is_seen():
    row = one("C6", c6_inputs(1900))
    assert row.verdict == "refuted" and "madvise 1×" in row.evidence


def test_c6_supported_when_address_space_is_unmapped():
    assert one("C6", c6_inputs(900, munmap_bytes=1000 * MiB)).verdict == "supported"


def test_c6_inconclusive_without_vm_size():
    inp = inputs([{"cell_id": "sc", "scenario": "syscalls", "max_vm_size": np.nan, "final_vm_size": np.nan}])
    assert one("C6", inp).verdict == "inconclusive"


# ---- C8 --------------------------------------------------------------------------------------------

def c8_rows(reverse_peak=False):
    out = []
    for i, g in enumerate(("50", "100", "300")):
        peak = (300 - 100 * i) if reverse_peak else (100 + 100 * i)
        out.append({"scenario": "gogc_sweep", "gogc": g, "gomemlimit": "off", "gc_cycles": 100 / (i + 1),
                    "gc_cpu_s": 3.0 / (i + 1), "peak_rss": peak * MiB, "throughput": 1000 * (i + 1)})
    out.append({"scenario": "gogc_sweep", "gogc": "off", "gomemlimit": "80%", "gc_cycles": 5})
    return out


def test_c8_supported_then_partly_when_peak_is_not_monotone():
    assert one("C8", inputs(c8_rows())).verdict == "supported"
    row = one("C8", inputs(c8_rows(reverse_peak=True)))
    assert row.verdict == "partly" and "peak_rss" in row.evidence


# ---- C9 --------------------------------------------------------------------------------------------

def c9_rows(costly=True):
    rows = []
    for every, rss, tput, flt in (("0s", 300, 1000, 1e4), ("1s", 250, 990, 2e4), ("10ms", 140,
                                                                                  600 if costly else 1000,
                                                                                  9e5 if costly else 1e4)):
        rows.append({"scenario": "freeos_periodic", "every": every, "mean_rss": rss * MiB, "throughput": tput,
                     "cpu_s": 20.0 if costly and every == "10ms" else 10.0, "minflt": flt, "freeos_p50_ns": 5e6})
    return rows


def test_c9_flips_when_frequent_calls_cost_nothing():
    assert one("C9", inputs(c9_rows(True))).verdict == "supported"
    row = one("C9", inputs(c9_rows(False)))
    assert row.verdict == "partly" and "more page faults" in row.evidence


# ---- C10 -------------------------------------------------------------------------------------------

def c10_rows(heap):
    return [{"scenario": "alloc_release", "touch": "true", "freeos": "false", "peak_rss": 1034 * MiB,
             "rss@release": 1030 * MiB, "heap_inuse@release": heap * MiB}]


def test_c10_flips_with_heap_in_use():
    assert one("C10", inputs(c10_rows(2))).verdict == "supported"
    assert one("C10", inputs(c10_rows(1000))).verdict == "refuted"
    assert one("C10", inputs(c10_rows(2))).figure == "figures/alloc_release_breakdown.png"


# ---- C11 -------------------------------------------------------------------------------------------

def c11_rows(lazy_after_pressure):
    rows = [{"scenario": "madvdontneed", "madvdontneed": m, "peak_rss": 1034 * MiB, "rss@freeos": r * MiB,
             "lazyfree@freeos": lz * MiB} for m, r, lz in (("0", 1030, 1000), ("1", 14, 0))]
    rows.append({"scenario": "oom_pressure", "madvdontneed": "0", "lazyfree@settle": 600 * MiB,
                 "lazyfree@hold": lazy_after_pressure * MiB, "oom_killed": 0})
    return rows


def test_c11_flips_when_lazyfree_survives_pressure():
    assert one("C11", inputs(c11_rows(10))).verdict == "supported"
    # As measured: the kernel takes back only what the new allocation needs (640 → 356 MiB).
    assert one("C11", inputs(c11_rows(340))).verdict == "supported"
    row = one("C11", inputs(c11_rows(600)))
    assert row.verdict == "partly" and "lazily freed pages were not given up" in row.evidence


def test_c11_inconclusive_without_pressure_scenario():
    rows = [r for r in c11_rows(10) if r["scenario"] == "madvdontneed"]
    assert one("C11", inputs(rows)).verdict == "inconclusive"


# ---- C12 -------------------------------------------------------------------------------------------

def c12_rows(cgroup_peak_big, small_killed):
    return [{"scenario": "cgroup_limit", "memory": "1GiB", "memory_limit_bytes": 1024 * MiB,
             "peak_rss": 520 * MiB, "peak_cgroup": cgroup_peak_big * MiB, "oom_killed": 0},
            {"scenario": "cgroup_limit", "memory": "256MiB", "memory_limit_bytes": 256 * MiB,
             "peak_rss": 250 * MiB, "peak_cgroup": 256 * MiB, "oom_killed": small_killed}]


def test_c12_flips():
    assert one("C12", inputs(c12_rows(525, 1))).verdict == "supported"
    assert one("C12", inputs(c12_rows(800, 1))).verdict == "partly"
    assert one("C12", inputs(c12_rows(800, 0))).verdict == "refuted"


# ---- C13 -------------------------------------------------------------------------------------------

def c13_inputs(idle_rss):
    specs = [CellSpec(f"lc{g}", [("baseline", 0), ("churn", 0.5), ("release", 5), ("idle", 5.5)], 8.0,
                      curves={"rss": [(0, 5), (1, 600), (5, 600), (5.5, idle_rss), (8, idle_rss)],
                              "heap_inuse": [(0, 1), (1, 300), (5, 300), (5.5, 1), (8, 1)]},
                      scenario="large_churn", workload="large-churn", axes={"gogc": g})
             for g in ("50", "100")]
    cells, samples, events = run_frames(specs)
    return claims.Inputs(cells, analysis.summarize(cells, samples, events), events, samples)


def test_c13_flips_with_what_stays_after_idle():
    row = one("C13", c13_inputs(550))
    assert row.verdict == "supported" and "heap in use 2.00" in row.evidence
    assert one("C13", c13_inputs(20)).verdict == "refuted"


# ---- C14 -------------------------------------------------------------------------------------------

def c14_inputs(lru_grows):
    specs = []
    for policy in ("unbounded", "lru", "ttl"):
        grows = policy == "unbounded" or (policy == "lru" and lru_grows)
        end_rss = 330 if grows else 30
        specs.append(CellSpec(f"cg-{policy}", [("baseline", 0), ("serve", 0.5)], 15.5,
                              curves={"rss": [(0, 5), (1.5, 30), (15.5, end_rss)],
                                      "heap_inuse": [(0, 1), (1.5, 25), (15.5, end_rss - 5)]},
                              scenario="cache_growth", workload="cache-growth", axes={"policy": policy}))
    cells, samples, events = run_frames(specs)
    return claims.Inputs(cells, analysis.summarize(cells, samples, events), events, samples)


def test_c14_flips_when_a_bounded_cache_grows():
    row = one("C14", c14_inputs(False))
    assert row.verdict == "supported" and "unbounded 21.4 MiB/s" in row.evidence
    assert one("C14", c14_inputs(True)).verdict == "partly"


# ---- X1 --------------------------------------------------------------------------------------------

def x1_rows(limited_killed):
    rows = [{"scenario": "gomemlimit", "gomemlimit": "off", "peak_rss": 512 * MiB, "oom_killed": 1,
             "gc_cpu_s": 0.5}]
    rows += [{"scenario": "gomemlimit", "gomemlimit": lim, "peak_rss": p * MiB, "oom_killed": limited_killed,
              "gc_cpu_s": 1.5} for lim, p in (("90%", 470), ("70%", 370))]
    return rows


def test_x1_flips_when_limited_cells_are_killed():
    assert one("X1", inputs(x1_rows(0))).verdict == "supported"
    assert one("X1", inputs(x1_rows(1))).verdict == "partly"


# ---- the numbers in the evidence, for both outcomes of every claim ---------------------------------

def c4_rows(k0, k1):
    return [{"scenario": "oom_pressure", "madvdontneed": m, "oom_killed": k, "lazyfree@settle": 640 * MiB,
             "peak_cgroup": 1029 * MiB} for m, k in (("0", k0), ("1", k1))]


EVIDENCE = [
    ("C2", lambda: inputs(c2_rows(14, 1034)), "supported", ["10 MiB → peak 1034 MiB → 14 MiB", "rose by 1024 MiB"]),
    ("C2", lambda: inputs(c2_rows(1000, 12)), "refuted", ["→ 1000 MiB after FreeOSMemory (3% handed back)",
                                                          "less than 75%"]),
    ("C3", lambda: inputs(c3_rows("0")), "supported", ["1: RSS 14 MiB, LazyFree 0 MiB", "0: RSS 1030 MiB, LazyFree 1000 MiB"]),
    ("C3", lambda: inputs(c3_rows("1")), "partly", ["unset: RSS 14 MiB, LazyFree 0 MiB", "not the default"]),
    ("C4", lambda: inputs(c4_rows(1, 0)), "supported", ["madvdontneed=0 1/1, madvdontneed=1 0/1", "with 0: 640 MiB",
                                                        "peak cgroup usage 1029 MiB"]),
    ("C4", lambda: inputs(c4_rows(0, 0)), "refuted", ["madvdontneed=0 0/1, madvdontneed=1 0/1", "neither was killed"]),
    ("C5", lambda: c5_inputs(), "supported", ["6 of 6 size runs", "16 B 0.62 M/s"]),
    ("C5", lambda: c5_inputs(large_at_32k=True), "partly", ["5 of 6 size runs", "32 KiB: large not small"]),
    ("C6", lambda: c6_inputs(1900), "refuted", ["VmSize max 1900 MiB, final 1900 MiB", "1034 MiB → 14 MiB",
                                                "madvise 1× (1024 MiB), munmap 0× (0 MiB)"]),
    ("C6", lambda: c6_inputs(900, munmap_bytes=1000 * MiB), "supported", ["final 900 MiB", "munmap 1× (1000 MiB)"]),
    ("C8", lambda: inputs(c8_rows()), "supported", ["GOGC 50 / 100 / 300", "peak_rss 100 MiB / 200 MiB / 300 MiB"]),
    ("C8", lambda: inputs(c8_rows(reverse_peak=True)), "partly", ["peak_rss 300 MiB / 200 MiB / 100 MiB",
                                                                   "Not monotone as claimed: peak_rss"]),
    ("C9", lambda: inputs(c9_rows(True)), "supported", ["mean RSS 140 MiB vs 300 MiB", "CPU 20.00 s vs 10.00 s",
                                                        "minor faults 900000 vs 10000", "p50 5.00 ms"]),
    ("C9", lambda: inputs(c9_rows(False)), "partly", ["minor faults 10000 vs 10000",
                                                       "Did not hold: CPU/throughput cost, more page faults"]),
    ("C10", lambda: inputs(c10_rows(2)), "supported", ["live heap (HeapAlloc, what inuse_space counts) was 2 MiB while "
                                                       "VmRSS was 1030 MiB (peak 1034 MiB)"]),
    ("C10", lambda: inputs(c10_rows(1000)), "refuted", ["was 1000 MiB", "heap/RSS 97%"]),
    ("C11", lambda: inputs(c11_rows(10)), "supported", ["100% of peak with 0, 1% with 1", "LazyFree 600 MiB → 10 MiB"]),
    ("C11", lambda: inputs(c11_rows(600)), "partly", ["LazyFree 600 MiB → 600 MiB", "OOM-killed 0/1"]),
    ("C12", lambda: inputs(c12_rows(525, 1)), "supported", ["peak RSS 1.01", "at the 256 MiB limit: OOM-killed 1/1"]),
    ("C12", lambda: inputs(c12_rows(800, 0)), "refuted", ["peak RSS 1.02–1.54", "OOM-killed 0/1"]),
    ("C13", lambda: c13_inputs(550), "supported", ["heap in use 2.00", "RSS 550 MiB = 92% of peak (GOGC 100, 50)"]),
    ("C13", lambda: c13_inputs(20), "refuted", ["RSS 20 MiB = 3% of peak", "went back to the OS"]),
    ("C14", lambda: c14_inputs(False), "supported", ["lru 0.0 MiB/s, ttl 0.0 MiB/s, unbounded 21.4 MiB/s",
                                                     "(<20% of the unbounded slope)"]),
    ("C14", lambda: c14_inputs(True), "partly", ["lru 21.4 MiB/s", "not every bounded cache stayed flat"]),
    ("X1", lambda: inputs(x1_rows(0)), "supported", ["off: peak RSS 512 MiB, GC CPU 0.50 s, OOM-killed 1/1",
                                                     "(70%, 90%): peak RSS 370 MiB–470 MiB, GC CPU 1.50 s, OOM-killed 0/2"]),
    ("X1", lambda: inputs(x1_rows(1)), "partly", ["OOM-killed 2/2"]),
]


@pytest.mark.parametrize("claim, make, verdict, numbers", EVIDENCE, ids=[f"{c}-{v}" for c, _, v, _ in EVIDENCE])
def test_evidence_states_the_numbers_behind_the_verdict(claim, make, verdict, numbers):
    row = one(claim, make())
    assert row.verdict == verdict, row.evidence
    for text in numbers:
        assert text in row.evidence, (text, row.evidence)


def test_every_claim_has_both_outcomes_above():
    outcomes = {claim: set(verdicts) for claim, verdicts in RELEASE_OUTCOMES.items()}
    for claim, _, verdict, _ in EVIDENCE:
        outcomes.setdefault(claim, set()).add(verdict)
    assert set(outcomes) == set(claims.CLAIMS)
    assert all(len(v) >= 2 for v in outcomes.values()), outcomes


def test_decision_carries_the_facts_the_evidence_is_written_from():
    claim = claims.CLAIMS["C10"]
    inp = inputs(c10_rows(2))
    decided = claim.decide(inp.table(), inp.derived)
    assert decided.verdict == "supported" and decided.case == "gap"
    assert decided.heap.iloc[0] == 2 * MiB and decided.rss.iloc[0] == 1030 * MiB
    assert "2 MiB" in claim.evidence(decided)


def test_registry_orders_claims_and_keeps_the_report_metrics():
    from harness.analyse.claims.registry import ids

    assert ids() == [f"C{i}" for i in range(1, 15)] + ["X1", "J1", "J2", "J3", "J4"]
    assert claims.CLAIMS["C1"].metrics == ("peak_rss", "rss@release", "final_rss", "release_s")
    assert claims.CLAIMS["C1"].scenarios[0] == "idle_three_gcs"


# ---- cells.csv version 2: gomemlimit as written plus gomemlimit_bytes ----------------------------

GIB_1_2 = 1288490188  # 1.2GiB


def x1_limit_rows(v2: bool):
    rows = x1_rows(0)
    for r, written in zip(rows[1:], ("1.2GiB", "90%")):
        resolved = GIB_1_2 if written == "1.2GiB" else 966367641
        r["gomemlimit"] = written if v2 else str(resolved)
        if v2:
            r["gomemlimit_bytes"] = resolved
    if v2:
        rows[0]["gomemlimit_bytes"] = np.nan
    return rows


def test_x1_limits_read_resolved_bytes_in_both_cells_shapes():
    CELL_KEYS.add("gomemlimit_bytes")
    try:
        v1 = one("X1", inputs(x1_limit_rows(False)))
        v2 = one("X1", inputs(x1_limit_rows(True)))
    finally:
        CELL_KEYS.discard("gomemlimit_bytes")
    assert "with a limit (922 MiB, 1229 MiB)" in v1.evidence
    assert v2.evidence == v1.evidence and v2.verdict == v1.verdict == "supported"
