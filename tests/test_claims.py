"""Each claim flips between verdicts on hand-made summaries; plus the not-run and spread rules."""

import json

import numpy as np
import pandas as pd
import pytest
from test_claims_release import OUTCOMES as RELEASE_OUTCOMES
from test_claims_residency import EVIDENCE as RESIDENCY_EVIDENCE
from test_claims_x4 import EVIDENCE as X4_EVIDENCE

from harness.analyse import claims
from harness.analyse import summary as analysis
from harness.studies.article import ARTICLE
from tests.frames import CellSpec, MiB, run_frames

OLD, NEW = "1.15.15", "1.27.3"
CELL_KEYS = {"cell_id", "scenario", "workload", "go_version", "status", "repeat", "memory_limit_bytes",
             "touch", "freeos", "gcs", "madvdontneed", "gomemlimit", "gogc", "every", "policy", "pointers",
             "memory", "accel", "cgroup_version", "kernel"}


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
    return {v.go_version: v.verdict for v in claims.evaluate_claim(ARTICLE.by_id[claim], inp)}


def one(claim, inp):
    rows = claims.evaluate_claim(ARTICLE.by_id[claim], inp)
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


def test_a_claim_on_timing_measured_only_under_tcg_is_inconclusive_naming_it():
    scenario = ARTICLE.by_id["C5"].scenarios[0]
    row = one("C5", inputs([{"scenario": scenario, "accel": "tcg", "throughput": 1e6}]))
    assert row.verdict == "inconclusive" and "tcg" in row.evidence and "throughput" in row.evidence
    # memory physics holds under emulation: a claim on OOM kills is judged there
    rows = [{"scenario": "oom_pressure", "madvdontneed": m, "oom_killed": k, "accel": "tcg"}
            for m, k in (("0", 1), ("1", 0))]
    assert verdicts("C4", inputs(rows)) == {NEW: "supported"}


def test_one_row_per_go_version():
    rows = [{"scenario": "oom_pressure", "madvdontneed": m, "go_version": g, "oom_killed": k}
            for g, k0 in ((OLD, 1), (NEW, 0)) for m, k in (("0", k0), ("1", 0))]
    assert verdicts("C4", inputs(rows)) == {OLD: "supported", NEW: "refuted"}


def c4_rows(host: dict, madvfree_killed: int, go: str = NEW) -> list[dict]:
    """C4's two cells on one host: madvdontneed=0 killed or not, madvdontneed=1 never."""
    return [{"scenario": "oom_pressure", "madvdontneed": m, "go_version": go, "oom_killed": k, **host}
            for m, k in (("0", madvfree_killed), ("1", 0))]


V1 = {"cgroup_version": "v1", "kernel": "6.18.44", "accel": "none"}
V2 = {"cgroup_version": "v2", "kernel": "6.1.0-57-amd64", "accel": "tcg"}
V2_612 = {"cgroup_version": "v2", "kernel": "6.12.48-amd64", "accel": "tcg"}


@pytest.mark.parametrize("rows, expected", [
    # one host: judged per Go version as before, the host it ran on carried
    (c4_rows(V1, 1), {(NEW, "v1", "6.18.44"): "supported"}),
    (c4_rows(V1, 1, OLD) + c4_rows(V1, 0), {(OLD, "v1", "6.18.44"): "supported", (NEW, "v1", "6.18.44"): "refuted"}),
    # v1 on the host, v2 in a guest with its own kernel: split by cgroup version, each row its own kernel
    (c4_rows(V1, 1) + c4_rows(V2, 0), {(NEW, "v1", "6.18.44"): "supported", (NEW, "v2", "6.1.0-57-amd64"): "refuted"}),
    (c4_rows(V1, 0) + c4_rows(V2, 1) + c4_rows(V1, 1, OLD) + c4_rows(V2, 1, OLD),
     {(OLD, "v1", "6.18.44"): "supported", (OLD, "v2", "6.1.0-57-amd64"): "supported",
      (NEW, "v1", "6.18.44"): "refuted", (NEW, "v2", "6.1.0-57-amd64"): "supported"}),
    # two guest kernels on v2: split by kernel as well
    (c4_rows(V1, 1) + c4_rows(V2, 1) + c4_rows(V2_612, 0),
     {(NEW, "v1", "6.18.44"): "supported", (NEW, "v2", "6.1.0-57-amd64"): "supported",
      (NEW, "v2", "6.12.48-amd64"): "refuted"}),
    # cells.csv without the host columns (runs before they existed): per Go version, no host said
    ([{k: v for k, v in r.items() if k not in V1} for r in c4_rows(V1, 1)], {(NEW, "", ""): "supported"}),
])
def test_verdicts_per_cgroup_version_and_kernel_where_the_cells_ran_on_several(rows, expected):
    got = {(v.go_version, v.cgroup_version, v.kernel): v.verdict
           for v in claims.evaluate_claim(ARTICLE.by_id["C4"], inputs(rows))}
    assert got == expected


@pytest.mark.parametrize("rows, host_columns", [
    (c4_rows(V1, 1), []),                                    # one host: claims.csv as before
    (c4_rows(V1, 1) + c4_rows(V2, 0), ["cgroup_version"]),   # the kernel follows the cgroup version
    (c4_rows(V2, 1) + c4_rows(V2_612, 0), ["kernel"]),
    (c4_rows(V1, 1) + c4_rows(V2, 1) + c4_rows(V2_612, 0), ["cgroup_version", "kernel"]),
])
def test_claims_csv_has_a_host_column_only_where_verdicts_differ_in_it(rows, host_columns):
    table = claims.evaluate_inputs(inputs(rows), ARTICLE)
    assert list(table.columns) == ["claim", "go_version", *host_columns, "verdict", "evidence", "figure"]


def test_compare_spread_rule():
    assert claims.compare([1, 2], [1.5, 3]) == "unclear"
    assert claims.compare([1.0, 1.01], [1.0, 1.02]) == "same"
    assert claims.compare([1.0], [2.0]) == "lower"
    assert claims.compare([3.0], [2.0]) == "higher"
    # GOGC 100 vs 300 throughput in two reproduce runs: a gap smaller than the spread between
    # repeats is within the spread, not "same" (which would read as no effect).
    assert claims.compare([1.26e6, 1.35e6], [1.36e6, 1.36e6]) == "unclear"
    assert claims.compare([1.55e6, 1.59e6], [1.87e6, 1.98e6]) == "lower"


def test_compare_one_stray_repeat_does_not_hide_an_effect_far_beyond_it():
    """A reference run's gogc_sweep on Go 1.27.3, GOGC 300 against 50 (M ops/s): the host slowed one
    GOGC=300 repeat for its whole run, so the ranges touch; 7 of the 9 pairs still differ by more than
    the tolerance (half the widest range), three quarters of them: higher."""
    assert claims.compare([1.95, 1.88, 1.32], [1.30, 0.86, 1.15]) == "higher"
    assert claims.compare([1.30, 0.86, 1.15], [1.95, 1.88, 1.32]) == "lower"
    # Two strays (5 of 9 pairs beyond the tolerance) are within the noise.
    assert claims.compare([1.95, 1.25, 1.32], [1.30, 0.86, 1.15]) == "unclear"
    # Every pair beyond the tolerance, as the old rule required, is still a difference.
    assert claims.compare([1.95, 1.88, 1.82], [1.30, 1.10, 1.15]) == "higher"


def test_exceeds_fails_a_one_sided_part_where_the_pairs_are_not_above_at_all():
    """Green Tea's steady RSS (MiB) in two reference runs, 4% and 3% below the build without it: neither
    is `same` by compare's strict 5% rule in both runs, but both are simply not above."""
    assert claims.common.exceeds([455, 462, 470], [476, 485, 497]) is False
    assert claims.common.exceeds([466, 467, 469], [479, 481, 484]) is False
    assert claims.common.exceeds([530, 545, 560], [455, 462, 470]) is True
    # A 10% gap inside a 30% spread between repeats: pairs on both sides, within the noise.
    assert claims.common.exceeds([0.85, 1.0, 1.15], [0.94, 1.1, 1.26]) is None
    assert claims.common.exceeds([], [1.0]) is None


def test_combine_never_counts_an_undecided_part_against_the_claim():
    assert claims.combine([True, True]) == "supported"
    assert claims.combine([False, False]) == "refuted"
    assert claims.combine([True, False]) == "partly"
    assert claims.combine([True, None]) == "inconclusive"
    assert claims.combine([False, None]) == "inconclusive"
    assert claims.combine([True, False, None]) == "partly"
    assert claims.combine([]) == "inconclusive"


def test_parts_text_names_failed_and_undecided_parts():
    from harness.analyse.claims.common import parts_text

    text = parts_text({"a": True, "b": False, "c": None, "d": None}, {"d": "no trace"})
    assert text == "Did not hold: b. Inconclusive for c (within the spread between repeats); d (no trace)."
    assert parts_text({"a": True}) == ""


def test_go_before():
    from harness.analyse.claims.common import go_before

    assert go_before("1.15.15", (1, 19)) and go_before("go1.18", (1, 19))
    assert not go_before("1.19.8", (1, 19)) and not go_before("1.27.3", (1, 19))
    assert not go_before("default", (1, 19))


def test_evaluate_lists_every_claim_and_the_non_go_ones():
    table = claims.evaluate_inputs(inputs([{"scenario": "alloc_release", "touch": "true", "freeos": "true"}]), ARTICLE)
    assert list(table.columns) == ["claim", "go_version", "verdict", "evidence", "figure"]
    assert set(table["claim"]) == set(ARTICLE.by_id) | {"J1", "J2", "J3", "J4"}
    assert (table[table["claim"].str.startswith("J")]["verdict"] == "not-tested").all()
    assert set(table["verdict"]) <= set(claims.VERDICTS)


# ---- C1 --------------------------------------------------------------------------------------------
# C1 and C7 read release timelines from raw frames: tests/test_claims_release.py.


# ---- C2 --------------------------------------------------------------------------------------------

def c2_rows(touched_after, untouched_peak, lazy=0):
    base = {"scenario": "alloc_release", "freeos": "true", "rss@baseline": 10 * MiB}
    return [{**base, "touch": "true", "peak_rss": 1034 * MiB, "rss@freeos": touched_after * MiB,
             "lazyfree@freeos": lazy * MiB},
            {**base, "touch": "false", "peak_rss": untouched_peak * MiB, "rss@freeos": 12 * MiB,
             "lazyfree@freeos": 0}]


def test_c2_counts_lazyfree_as_handed_back():
    """Go 1.12-1.15: FreeOSMemory's MADV_FREE leaves RSS up with the pages LazyFree; they are handed back."""
    row = one("C2", inputs(c2_rows(1030, 12, lazy=1020)))
    assert row.verdict == "supported", row.evidence
    assert "of which LazyFree 1020 MiB: the pages went back with MADV_FREE" in row.evidence


def test_c2_rss_up_without_a_lazyfree_reading_decides_nothing():
    rows = c2_rows(1030, 12)
    rows[0]["lazyfree@freeos"] = float("nan")
    row = one("C2", inputs(rows))
    assert row.verdict == "inconclusive", row.evidence
    assert "In 1 run(s) RSS stayed up and LazyFree was not read" in row.evidence


def test_c2_the_untouched_slice_is_a_note_not_a_part():
    """A fresh large pointer-free span is never written, so the snippet as written can never show
    RSS handed back on any Go version: it is said, not judged."""
    row = one("C2", inputs(c2_rows(14, 12)))
    assert row.verdict == "supported" and "Note: the snippet as written never made RSS rise" in row.evidence


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
    assert row.verdict == "partly" and "madvdontneed=0 is the default did not hold" in row.evidence


def test_c3_each_setting_is_a_part():
    rows = c3_rows("0")
    rows[1].update({"rss@freeos": 1030 * MiB, "lazyfree@freeos": 1000 * MiB})  # madvdontneed=1 kept them too
    row = one("C3", inputs(rows))
    assert row.verdict == "partly" and "madvdontneed=1 frees at once (MADV_DONTNEED) did not hold" in row.evidence
    swapped = c3_rows("1")   # 0 frees at once, 1 lazily, unset like 1: every part fails
    swapped[0].update({"rss@freeos": 14 * MiB, "lazyfree@freeos": 0})
    swapped[1].update({"rss@freeos": 1030 * MiB, "lazyfree@freeos": 1000 * MiB})
    swapped[2].update({"rss@freeos": 1030 * MiB, "lazyfree@freeos": 1000 * MiB})
    assert one("C3", inputs(swapped)).verdict == "refuted"


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


# ---- C6 --------------------------------------------------------------------------------------------

def c6_inputs(final_vm, munmap_bytes=0, advice="MADV_DONTNEED"):
    ev = [("sc", 1.0, "syscall", "madvise", 1024 * MiB, json.dumps({"advice": advice}))]
    if munmap_bytes:
        ev.append(("sc", 1.0, "syscall", "munmap", munmap_bytes, ""))
    return inputs([{"cell_id": "sc", "scenario": "syscalls", "max_vm_size": 1900 * MiB,
                    "final_vm_size": final_vm * MiB, "peak_rss": 1034 * MiB, "final_rss": 14 * MiB}],
                  events=pd.DataFrame(ev, columns=analysis.EVENT_COLUMNS))


def test_c6_refuted_when_vm_size_never_shrinks_and_only_madvise_is_seen():
    row = one("C6", c6_inputs(1900))
    assert row.verdict == "refuted" and "madvise 1×" in row.evidence


def test_c6_supported_when_address_space_is_unmapped_and_madvise_frees_lazily():
    assert one("C6", c6_inputs(900, munmap_bytes=1000 * MiB, advice="MADV_FREE")).verdict == "supported"
    row = one("C6", c6_inputs(900, munmap_bytes=1000 * MiB))
    assert row.verdict == "partly" and "released with madvise(MADV_FREE) did not hold" in row.evidence


def test_c6_partly_when_only_madvise_free_is_traced():
    row = one("C6", c6_inputs(1900, advice="MADV_FREE"))
    assert row.verdict == "partly", row.evidence
    assert "munmap (address space shrinks) did not hold; released with madvise(MADV_FREE) held" in row.evidence


def test_c6_inconclusive_without_vm_size():
    inp = inputs([{"cell_id": "sc", "scenario": "syscalls", "max_vm_size": np.nan, "final_vm_size": np.nan}])
    assert one("C6", inp).verdict == "inconclusive"


# ---- C8 --------------------------------------------------------------------------------------------

def c8_rows(reverse_peak=False, throughput=None, repeats=1):
    """Three GOGC values; `throughput` replaces the per-value throughput lists (one value per repeat)."""
    out = []
    for i, g in enumerate(("50", "100", "300")):
        peak = (300 - 100 * i) if reverse_peak else (100 + 100 * i)
        tputs = throughput[i] if throughput else [1000 * (i + 1)] * repeats
        out += [{"scenario": "gogc_sweep", "gogc": g, "gomemlimit": "off", "gc_cycles": 100 / (i + 1),
                 "gc_cpu_s": 3.0 / (i + 1), "peak_rss": peak * MiB, "throughput": tp, "repeat": r}
                for r, tp in enumerate(tputs)]
    out.append({"scenario": "gogc_sweep", "gogc": "off", "gomemlimit": "80%", "gc_cycles": 5})
    return out


def test_c8_supported_then_partly_when_peak_is_not_monotone():
    assert one("C8", inputs(c8_rows())).verdict == "supported"
    row = one("C8", inputs(c8_rows(reverse_peak=True)))
    assert row.verdict == "partly" and "peak_rss higher as GOGC rises did not hold" in row.evidence


def test_c8_a_step_within_the_spread_is_no_contradiction():
    """Neighbouring GOGC values whose repeats overlap (GOGC 100: 1.16-1.35 M/s against 50 and 300): the
    steps decide nothing and the lowest-to-highest comparison carries the part."""
    rows = c8_rows(throughput=[[1.10e6, 1.20e6, 1.15e6], [1.16e6, 1.35e6, 1.21e6], [1.36e6, 1.36e6, 1.37e6]])
    row = one("C8", inputs(rows))
    assert row.verdict == "supported", row.evidence
    assert "steps within the spread between repeats (they decide nothing): throughput 50→100, 100→300" in row.evidence


def test_c8_inconclusive_for_a_part_within_the_spread_end_to_end():
    rows = c8_rows(throughput=[[1.2e6, 1.5e6], [1.3e6, 1.4e6], [1.35e6, 1.45e6]])
    row = one("C8", inputs(rows))
    assert row.verdict == "inconclusive"
    assert "throughput higher as GOGC rises undecided (within the spread between repeats)" in row.evidence


def test_c8_a_clear_reversal_is_a_contradiction():
    rows = c8_rows(throughput=[[1.0e6, 1.02e6], [2.0e6, 2.02e6], [1.5e6, 1.52e6]])
    row = one("C8", inputs(rows))
    assert row.verdict == "partly" and "throughput higher as GOGC rises did not hold" in row.evidence


# ---- C9 --------------------------------------------------------------------------------------------

def c9_rows(costly=True, repeats=2):
    """No calls, every 1 s and every 10 ms; only 10 ms lowers RSS; `costly` sets whether it costs work."""
    rows = []
    for every, rss, tput, p99, flt in (("0s", 300, 1000, 2e5, 1e4), ("1s", 298, 995, 2e5, 1.1e4),
                                       ("10ms", 140, 600 if costly else 1000, 9e6 if costly else 2e5,
                                        9e5 if costly else 1e4)):
        rows += [{"scenario": "freeos_periodic", "every": every, "mean_rss": rss * MiB, "throughput": tput + r,
                  "unit_p50_ns": 2e4, "unit_p99_ns": p99, "cpu_s": 10.0, "minflt": flt, "repeat": r,
                  "freeos_p50_ns": 5e6 if every != "0s" else np.nan} for r in range(repeats)]
    return rows


def c9_trace(munmaps=0):
    """The traced scenario: madvise per call with calls every 10 ms, and `munmaps` munmap calls."""
    specs = []
    for every, madvise, unmaps in (("0s", 2, 0), ("10ms", 300, munmaps)):
        cid = f"freeos_syscalls[every={every},r0]"
        ev = [(0.6 + 0.001 * i, "syscall", "madvise", 65536.0, "") for i in range(madvise)]
        ev += [(0.7 + 0.001 * i, "syscall", "munmap", 65536.0, "") for i in range(unmaps)]
        ev += [(0.55, "syscall", "mmap", 1 << 26, "")]
        specs.append(CellSpec(cell_id=cid, phases=[("baseline", 0.0), ("load", 0.5)], end_s=4.0,
                              scenario="freeos_syscalls", workload="freeos-periodic", axes={"every": every},
                              curves={"rss": [(0, 10), (4, 100)]}, extra_events=ev,
                              totals={"freeos_calls": 0 if every == "0s" else 300}))
    cells, samples, events = run_frames(specs)
    rows = [{"scenario": "freeos_syscalls", "every": every, "cell_id": cid}
            for every, cid in zip(cells["every"], cells["cell_id"], strict=False)]
    return rows, events, samples


def c9_inputs(costly=True, munmaps=0, repeats=2, rates=("0s", "1s", "10ms")):
    trace_rows, events, samples = c9_trace(munmaps)
    rows = [r for r in c9_rows(costly, repeats) if r["every"] in rates]
    return inputs(rows + trace_rows, events=events, samples=samples)


def test_c9_mapping_is_refuted_by_the_trace_and_costs_decide_per_rate():
    row = one("C9", c9_inputs(True))
    assert row.verdict == "partly", row.evidence
    assert "madvise 300×, mmap 1×, munmap 0× vs madvise 2×, mmap 1×, munmap 0×" in row.evidence
    # Judged at the fastest rate (10 ms); the slower ones are reported.
    assert "Parts: lower RSS held; latency/throughput cost held; more page faults held; repeated mapping " \
           "(mmap/munmap) did not hold." in row.evidence


def test_c9_supported_when_every_part_holds():
    row = one("C9", c9_inputs(True, munmaps=300, rates=("0s", "10ms")))
    assert row.verdict == "supported", row.evidence


def test_c9_free_calls_fail_their_cost_and_missing_trace_is_named():
    row = one("C9", inputs(c9_rows(False)))
    assert row.verdict == "partly"
    assert "latency/throughput cost did not hold" in row.evidence and "more page faults did not hold" in row.evidence
    assert "repeated mapping (mmap/munmap) undecided (no syscall trace)" in row.evidence


# ---- C10 -------------------------------------------------------------------------------------------

def c10_rows(heap, lazy=0, pprof=None, usage=None):
    """The released spike (a heap profile of `pprof` MiB, cgroup usage `usage` MiB at the same instant), and a
    madvdontneed=0 cell whose RSS after FreeOSMemory holds `lazy` MiB LazyFree."""
    spike = {"scenario": "alloc_release", "touch": "true", "freeos": "false", "peak_rss": 1034 * MiB,
             "rss@release": 1030 * MiB, "heap_inuse@release": heap * MiB}
    if pprof is not None:
        spike["pprof_inuse_space"] = pprof * MiB
    if usage is not None:
        spike.update({"cgroup_usage@release": usage * MiB, "working_set@release": usage * MiB})
    return [spike, {"scenario": "madvdontneed", "madvdontneed": "0", "peak_rss": 1034 * MiB,
                    "rss@freeos": (14 + lazy) * MiB, "lazyfree@freeos": lazy * MiB}]


def test_c10_judges_rss_against_lazyfree():
    row = one("C10", inputs(c10_rows(2, lazy=1000, pprof=2)))
    assert row.verdict == "partly" and "RSS counts pages the kernel may take back" in row.evidence
    assert one("C10", inputs(c10_rows(2, pprof=2))).verdict == "supported"
    assert one("C10", inputs(c10_rows(2))).figure == "figures/alloc_release_breakdown.png"


def test_c10_the_heap_profile_against_rss_can_fail():
    """A profile that still shows most of what RSS shows fails part (a): it is a measurement, not a given."""
    row = one("C10", inputs(c10_rows(2, pprof=900)))
    assert row.verdict == "partly", row.evidence
    assert "inuse_space was 900 MiB" in row.evidence and "87% of RSS (little: below 25%)" in row.evidence
    returned = c10_rows(2, pprof=2)
    returned[0]["rss@release"], returned[0]["rss@baseline"] = 12 * MiB, 10 * MiB   # RSS already back: not "much"
    row = one("C10", inputs(returned))
    assert row.verdict == "partly" and "RSS still holding 0% of the freed spike (much: 50% or more)" in row.evidence
    no_profile = one("C10", inputs(c10_rows(2)))
    assert "undecided (no heap profile was read" in no_profile.evidence, no_profile.evidence


def test_c10_rss_against_cgroup_usage_at_the_same_instant():
    """cgroup usage well above RSS at the profile's instant: RSS misses what the cgroup charges."""
    row = one("C10", inputs(c10_rows(2, pprof=2, usage=1300)))
    assert row.verdict == "partly" and "cgroup usage 1300 MiB, working set 1300 MiB" in row.evidence
    assert one("C10", inputs(c10_rows(2, pprof=2, usage=1031))).verdict == "supported"


def test_c10_rss_against_the_working_set_after_madv_free():
    """Go 1.15's FreeOSMemory (MADV_FREE): RSS stays, the working set drops (lazily freed pages on the inactive
    file list): part (b) fails; with MADV_DONTNEED both drop and it holds."""
    def rows(rss, lazy, ws):
        return c10_rows(2, pprof=2)[:1] + [{"scenario": "alloc_release", "touch": "true", "freeos": "true",
                                            "peak_rss": 1034 * MiB, "rss@freeos": rss * MiB,
                                            "lazyfree@freeos": lazy * MiB, "working_set@freeos": ws * MiB}]
    row = one("C10", inputs(rows(1030, 1000, 30)))
    assert row.verdict == "partly" and "of which LazyFree 1000 MiB, working set 30 MiB" in row.evidence
    assert one("C10", inputs(rows(14, 0, 14))).verdict == "supported"


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
    assert row.verdict == "partly"
    assert "under pressure the lazily freed pages are given up without an OOM kill did not hold" in row.evidence


def test_c11_inconclusive_without_pressure_scenario():
    rows = [r for r in c11_rows(10) if r["scenario"] == "madvdontneed"]
    assert one("C11", inputs(rows)).verdict == "inconclusive"


# ---- X1 --------------------------------------------------------------------------------------------

def x1_rows(limited_killed=0, go="1.27.3", baseline_killed=0, limiter=1.0, gc_binding=(3.0, 3.01), overload_peak=200,
            overload_tput=4e6):
    """No limit (peak 400 MiB), a limit above it (90%), one below it (50%) and one below the live heap
    (25% of 512 MiB = 128 MiB, live heap 150 MiB); two repeats each."""
    rows = []
    for lim, peak, gc, tput, eng in (("off", 400, (2.0, 2.01), 7e6, 0.0), ("90%", 405, (2.02, 2.03), 6.9e6, 0.0),
                                     ("50%", 270, gc_binding, 3e6, 1.0),
                                     ("25%", overload_peak, (4.0, 4.01), overload_tput, limiter)):
        rows += [{"scenario": "gomemlimit", "gomemlimit": lim, "go_version": go, "repeat": r,
                  "cell_id": f"gomemlimit[go={go},gomemlimit={lim},r{r}]",
                  "peak_rss": (peak + r) * MiB, "gc_cpu_s": gc[r], "gc_cpu_share": gc[r] / 8,
                  "scavenge_cpu_s": 0.0 if lim == "off" else 0.2,
                  "throughput": tput + r, "limiter_engaged": eng,
                  "oom_killed": baseline_killed if lim == "off" else (limited_killed if lim == "50%" else 0)}
                 for r in range(2)]
    return rows


def x1_inputs(rows):
    """The limits resolved against a 512 MiB container, and a gctrace line per cell giving its live heap."""
    resolved = {"off": np.nan, "90%": 0.9 * 512 * MiB, "50%": 256 * MiB, "25%": 128 * MiB}
    for r in rows:
        if r["scenario"] == "gomemlimit":
            r["gomemlimit_bytes"] = resolved[r["gomemlimit"]]
    live = json.dumps({"heap_live_bytes": 150 * MiB, "forced": False})
    events = pd.DataFrame([(r["cell_id"], 1.0, "gc", "gc5", 160.0 * MiB, live) for r in rows
                           if r["scenario"] == "gomemlimit"], columns=analysis.EVENT_COLUMNS)
    CELL_KEYS.add("gomemlimit_bytes")
    try:
        return inputs(rows, events=events)
    finally:
        CELL_KEYS.discard("gomemlimit_bytes")


def x1_growth_inputs(within_killed=0, past_killed=1, with_base=True):
    """The gomemlimit cells, plus a live heap grown by 40 MiB/s (to 352 MiB: past the 256 MiB limit, within the
    512 MiB container) and by 90 MiB/s (to 652 MiB: past the container)."""
    rows = x1_rows() if with_base else []
    grown = []
    for rate, killed, reached in (("40MiB", within_killed, 352), ("90MiB", past_killed, 420)):
        cell = f"gomemlimit_growth[live-growth={rate},r0]"
        rows.append({"cell_id": cell, "scenario": "gomemlimit_growth", "live-growth": rate, "gomemlimit": "50%",
                     "gomemlimit_bytes": 256 * MiB, "memory_limit_bytes": 512 * MiB, "oom_killed": killed,
                     "args": f"--sizes=256B --live=112MiB --live-growth={rate} --per-size=6s",
                     "peak_rss": (reached + 30) * MiB, "limiter_engaged": 1.0, "gc_cpu_share": 0.45})
        grown += [(cell, t, "runtime", "live_bytes", (112 + (reached - 112) * t / 6) * MiB) for t in range(7)]
    inp = x1_inputs(rows)
    CELL_KEYS.update({"live-growth", "args", "gomemlimit_bytes"})
    try:
        return inputs(rows, events=inp.events, samples=pd.DataFrame(grown, columns=analysis.SAMPLE_COLUMNS))
    finally:
        CELL_KEYS.difference_update({"live-growth", "args", "gomemlimit_bytes"})


def test_x1_a_growing_live_heap_runs_on_within_the_container_and_is_killed_past_it():
    row = one("X1", x1_growth_inputs())
    assert row.verdict == "supported", row.evidence
    assert ("growing by 40MiB/s toward 352 MiB live (GOMEMLIMIT 256 MiB, container 512 MiB): live heap reached "
            "352 MiB, peak RSS 382 MiB, GC 45% of the CPU, GC CPU limiter on in 1/1, OOM-killed 0/1") in row.evidence
    assert "growing by 90MiB/s toward 652 MiB live" in row.evidence and "OOM-killed 1/1 at the container limit" \
        in row.evidence


@pytest.mark.parametrize("within_killed, past_killed, failed", [
    (1, 1, "a live heap grown past the limit but within the container runs on did not hold"),
    (0, 0, "a live heap grown past the container limit is OOM-killed did not hold"),
])
def test_x1_growth_parts_fail_either_way(within_killed, past_killed, failed):
    row = one("X1", x1_growth_inputs(within_killed, past_killed))
    assert row.verdict == "partly" and failed in row.evidence, row.evidence


def test_x1_judges_the_growth_cells_alone():
    assert one("X1", x1_growth_inputs(with_base=False)).verdict == "supported"
    assert one("X1", x1_growth_inputs(1, 0, with_base=False)).verdict == "refuted"


def test_x1_supported_when_the_limit_costs_and_the_limiter_lets_the_heap_pass():
    row = one("X1", x1_inputs(x1_rows()))
    assert row.verdict == "supported", row.evidence


def test_x1_flips_when_the_limited_cells_are_killed_or_throughput_falls_below_the_floor():
    assert one("X1", x1_inputs(x1_rows(limited_killed=1))).verdict == "partly"
    # Throughput -89% below the live heap: under the half a 50% GC cap leaves (1.27.3 in the reference).
    row = one("X1", x1_inputs(x1_rows(overload_tput=0.8e6)))
    assert row.verdict == "partly"
    assert "throughput kept above the limiter's floor below the live heap did not hold" in row.evidence
    assert "the floor a 50% GC cap leaves is 3.33 M/s" in row.evidence


def test_x1_a_limiter_that_never_engaged_fails_its_part():
    """Peak above the limit and throughput above zero are certain below the live heap; whether the
    limiter engaged is what can fail (0/3 on 1.27.3 in the reference)."""
    row = one("X1", x1_inputs(x1_rows(limiter=0.0)))
    assert row.verdict == "partly", row.evidence
    assert "on in 0/2 (it turns on only once GC time, assists plus a 25% background share" in row.evidence
    assert "GC CPU limiter engaged below the live heap did not hold" in row.evidence
    assert "GC 50% of GOMAXPROCS × wall time (idle-P marking included)" in row.evidence


def test_x1_a_placebo_limit_sets_the_tolerance():
    """A limit above the peak should change nothing; what it changed is noise an effect must exceed."""
    rows = x1_rows()
    for r in rows:
        if r["gomemlimit"] == "90%":
            r["throughput"] = 2.5e6 + r["repeat"]   # the placebo itself "cost" 64%, more than the 57% below it
    row = one("X1", x1_inputs(rows))
    assert "less throughput undecided" in row.evidence, row.evidence


def test_x1_without_a_surviving_baseline_decides_nothing():
    row = one("X1", x1_inputs(x1_rows(baseline_killed=1)))
    assert row.verdict == "inconclusive" and "no baseline" in row.evidence


def test_x1_cost_within_the_spread_is_inconclusive_for_that_part():
    row = one("X1", x1_inputs(x1_rows(gc_binding=(1.9, 2.4))))
    assert row.verdict == "inconclusive"
    assert "more GC CPU undecided (within the spread between repeats)" in row.evidence


def test_x1_not_applicable_before_go_1_19():
    rows = x1_rows(go="1.15.15") + x1_rows(go="1.19.8")
    assert verdicts("X1", x1_inputs(rows)) == {"1.15.15": "not-applicable", "1.19.8": "supported"}
    assert one("X1", x1_inputs(x1_rows(go="1.15.15"))).evidence == "GOMEMLIMIT arrived in Go 1.19"


# ---- the numbers in the evidence, for both outcomes of every claim ---------------------------------

def c4_rows(k0, k1):
    return [{"scenario": "oom_pressure", "madvdontneed": m, "oom_killed": k, "lazyfree@settle": 640 * MiB,
             "peak_cgroup": 1029 * MiB} for m, k in (("0", k0), ("1", k1))]


# Imported here, not at the top: it builds its inputs with `inputs` and `one` above.
from test_claims_thp_high import EVIDENCE as THP_HIGH_EVIDENCE  # noqa: E402

EVIDENCE = [
    ("C2", lambda: inputs(c2_rows(14, 1034)), "supported", ["10 MiB → peak 1034 MiB → 14 MiB", "rose by 1024 MiB"]),
    ("C2", lambda: inputs(c2_rows(1000, 12)), "refuted", ["→ 1000 MiB after FreeOSMemory (3% handed back)",
                                                          "less than 75%"]),
    ("C3", lambda: inputs(c3_rows("0")), "supported",
     ["1: RSS 14 MiB, LazyFree 0 MiB", "0: RSS 1030 MiB, LazyFree 1000 MiB"]),
    ("C3", lambda: inputs(c3_rows("1")), "partly", ["unset: RSS 14 MiB, LazyFree 0 MiB",
                                                    "madvdontneed=0 is the default did not hold"]),
    ("C4", lambda: inputs(c4_rows(1, 0)), "supported", ["madvdontneed=0 1/1, madvdontneed=1 0/1", "with 0: 640 MiB",
                                                        "peak cgroup usage 1029 MiB"]),
    ("C4", lambda: inputs(c4_rows(0, 0)), "refuted", ["madvdontneed=0 0/1, madvdontneed=1 0/1", "neither was killed"]),
    ("C6", lambda: c6_inputs(1900), "refuted", ["VmSize max 1900 MiB, final 1900 MiB", "1034 MiB → 14 MiB",
                                                "madvise 1× (1024 MiB), munmap 0× (0 MiB)"]),
    ("C6", lambda: c6_inputs(900, munmap_bytes=1000 * MiB, advice="MADV_FREE"), "supported",
     ["final 900 MiB", "munmap 1× (1000 MiB)", "unset: MADV_FREE 1× (1024 MiB)"]),
    ("C8", lambda: inputs(c8_rows()), "supported", ["GOGC 50 / 100 / 300", "peak_rss 100 MiB / 200 MiB / 300 MiB",
                                                    "live heap + (live heap + goroutine stacks + globals) × "
                                                    "GOGC/100 (runtime/mgcpacer.go heapGoal"]),
    ("C8", lambda: inputs(c8_rows(reverse_peak=True)), "partly", ["peak_rss 300 MiB / 200 MiB / 100 MiB",
                                                                   "peak_rss higher as GOGC rises did not hold"]),
    ("C9", lambda: c9_inputs(True), "partly", [
        "No calls: mean RSS 300 MiB, work unit p50 20.0 µs / p99 200.0 µs, throughput 1e+03/s, minor faults 10000",
        "every=10ms: mean RSS 140 MiB (-53%), unit p50 20.0 µs / p99 9.00 ms (+4400%), throughput 600/s–601/s (-40%)",
        "minor faults 900000, each call p50 5.00 ms", "runtime_debug_freeOSMemory"]),
    ("C9", lambda: c9_inputs(True, munmaps=300, rates=("0s", "10ms")), "supported",
     ["madvise 300×, mmap 1×, munmap 300×"]),
    ("C10", lambda: inputs(c10_rows(2, pprof=3)), "supported", [
        "heap profile's inuse_space was 3 MiB (HeapAlloc 2 MiB) while VmRSS was 1030 MiB",
        "0% of RSS (little: below 25%)",
        "RSS matched what the kernel accounts"]),
    ("C10", lambda: inputs(c10_rows(2, lazy=1000, pprof=900)), "refuted", [
        "RSS 1014 MiB of which LazyFree 1000 MiB", "RSS shows what the OS sees did not hold",
        "87% of RSS (little: below 25%)"]),

    ("C11", lambda: inputs(c11_rows(10)), "supported", ["100% of peak with 0, 1% with 1", "LazyFree 600 MiB → 10 MiB"]),
    ("C11", lambda: inputs(c11_rows(600)), "partly", ["LazyFree 600 MiB → 600 MiB", "OOM-killed 0/1"]),
    ("X1", lambda: x1_inputs(x1_rows()), "supported", [
        "Without GOMEMLIMIT: peak RSS 400 MiB–401 MiB, live heap (marked at each GC, gctrace) 150 MiB, GC CPU 2.00 s",
        "a limit above that peak (461 MiB), which should change nothing: peak RSS 405 MiB–406 MiB (+1%)",
        ("a limit below it (256 MiB): peak RSS 270 MiB–271 MiB (-32%), GC CPU 3.00 s–3.01 s (+50%), scavenger CPU "
         "0.20 s, throughput 3.00 M/s (-57%), OOM-killed 0/2 (the scavenger hands memory back"),
        ("a limit below the live heap (128 MiB): GC CPU limiter (mgclimit.go gcCPULimiter) on in 2/2, "
         "GC 50% of GOMAXPROCS × wall time (idle-P marking included), peak RSS 200 MiB–201 MiB"),
        "(-43%; the floor a 50% GC cap leaves is 3.33 M/s), OOM-killed 0/2: the heap passed the limit"]),
    ("X1", lambda: x1_inputs(x1_rows(limited_killed=1)), "partly", ["OOM-killed 2/2", "lower peak did not hold"]),
] + RESIDENCY_EVIDENCE + THP_HIGH_EVIDENCE + X4_EVIDENCE  # C5, C12, C13, C14; X2, X3; X4


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
    assert set(outcomes) == set(ARTICLE.by_id)
    assert all(len(v) >= 2 for v in outcomes.values()), outcomes


def test_decision_carries_the_facts_the_evidence_is_written_from():
    claim = ARTICLE.by_id["C10"]
    inp = inputs(c10_rows(2, lazy=1000, pprof=2))
    decided = claim.decide(inp.table(), inp.derived)
    assert decided.verdict == "partly" and decided.counts_lazy and not decided.misses_cache
    assert decided.parts == {"pprof shows little while RSS shows much right after runtime.GC()": True,
                             "RSS shows what the OS sees": False}
    assert decided.heap.iloc[0] == 2 * MiB and decided.rss.iloc[0] == 1030 * MiB
    assert "2 MiB" in claim.evidence(decided)


def test_registry_orders_claims_and_keeps_the_report_metrics():
    assert ARTICLE.ids() == [f"C{i}" for i in range(1, 15)] + ["X1", "X2", "X3", "X4", "J1", "J2", "J3", "J4"]
    assert ARTICLE.by_id["C1"].metrics == ("peak_rss", "rss@release", "final_rss", "release_s")
    assert ARTICLE.by_id["C1"].scenarios[0] == "idle_three_gcs"


# ---- cells.csv version 2: gomemlimit as written plus gomemlimit_bytes ----------------------------

GIB_1_2 = 1288490188  # 1.2GiB


def x1_limit_rows(v2: bool):
    """The 50% limit written as a size in the v1 cells shape (plain bytes), and as written plus resolved in v2."""
    rows = x1_rows()
    for r in rows:
        resolved = {"off": np.nan, "90%": 966367641, "50%": 256 * MiB, "25%": 128 * MiB}[r["gomemlimit"]]
        if v2:
            r["gomemlimit_bytes"] = resolved
        elif r["gomemlimit"] != "off":
            r["gomemlimit"] = str(int(resolved))
    return rows


def test_x1_limits_read_resolved_bytes_in_both_cells_shapes():
    live = json.dumps({"heap_live_bytes": 150 * MiB, "forced": False})
    verdicts_ = []
    for v2 in (False, True):
        rows = x1_limit_rows(v2)
        events = pd.DataFrame([(r["cell_id"], 1.0, "gc", "gc5", 0.0, live) for r in rows],
                              columns=analysis.EVENT_COLUMNS)
        CELL_KEYS.add("gomemlimit_bytes")
        try:
            verdicts_.append(one("X1", inputs(rows, events=events)))
        finally:
            CELL_KEYS.discard("gomemlimit_bytes")
    v1, v2 = verdicts_
    assert "a limit above that peak (922 MiB)" in v1.evidence and "a limit below it (256 MiB)" in v1.evidence
    assert v2.evidence == v1.evidence and v2.verdict == v1.verdict == "supported"


# ---- a part over several cells -------------------------------------------------------------------

@pytest.mark.parametrize("held, expected", [
    ([True, True, True], True), ([True, True, False], None), ([True, False, False], None),
    ([False, False, False], False), ([True, False], None), ([True, True, False, False], None),
    ([True, True, True, False], True), ([True, False, False, False], False), ([True], True), ([False], False),
    ([], None),
])
def test_a_part_over_cells_holds_by_three_quarters_and_a_closer_split_stays_undecided(held, expected):
    from harness.analyse.claims.common import either

    assert either(held) is expected


def test_c4_one_stray_repeat_of_four_does_not_leave_it_inconclusive():
    rows = [{"scenario": "oom_pressure", "madvdontneed": m, "oom_killed": int(m == "0"), "repeat": r}
            for m in ("0", "1") for r in (0, 1, 2, 3)]
    assert one("C4", inputs(rows)).verdict == "supported"
    rows[0]["oom_killed"] = 0   # one madvdontneed=0 repeat of four survived: still killed in three
    row = one("C4", inputs(rows))
    assert row.verdict == "supported" and "madvdontneed=0 3/4" in row.evidence
    rows[1]["oom_killed"] = 0   # killed in two of four: undecided
    assert one("C4", inputs(rows)).verdict == "inconclusive"
    rows[2]["oom_killed"] = 0   # killed in one of four: the part fails
    assert one("C4", inputs(rows)).verdict == "refuted"


def test_a_cell_is_compared_with_the_cells_set_alike_but_for_the_axis_the_claim_contrasts():
    from harness.analyse.claims.common import peers

    pool = pd.DataFrame({"gogc": ["50", "100", "300", "100"], "gomemlimit": ["off"] * 4,
                         "throughput": [1.0, 2.0, 3.0, 2.2]}, index=["a", "b", "c", "d"])
    cell = pd.Series({"gogc": "100", "gomemlimit": "10MiB", "throughput": 0.5})
    assert list(peers(cell, pool, ("gomemlimit",)).index) == ["b", "d"]
    # where no cell is set alike, the whole pool
    assert list(peers(pd.Series({"gogc": "200", "gomemlimit": "10MiB"}), pool, ("gomemlimit",)).index) == list("abcd")
