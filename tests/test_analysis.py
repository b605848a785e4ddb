import json
import math

import numpy as np
import pandas as pd
import pytest

from harness.analyse import summary as analysis
from harness.define.metrics import slope
from tests.frames import CellSpec, MiB, alloc_release_spec, run_frames


def test_metric_names_match_the_architecture_document():
    assert {"peak_rss", "release_s", "freeos_p99_ns", "oom_killed"} <= set(analysis.METRICS)
    assert {"rss", "lazyfree", "cgroup_usage", "working_set", "heap_inuse", "heap_idle", "heap_released",
            "heap_goal", "vm_size"} <= set(analysis.PHASE_METRICS)


def test_phases_end_each_phase_where_the_next_starts_and_the_last_at_end():
    _, _, events = run_frames([alloc_release_spec("a")])
    table = analysis.split_by_cell(None, events).phases
    assert table["phase"].tolist() == ["baseline", "allocate", "hold", "release", "freeos", "idle"]
    assert table["end_s"].tolist() == [0.5, 1.5, 3.0, 3.5, 4.0, 8.0]


def test_phases_without_end_event_end_at_the_last_sample():
    events = pd.DataFrame([("c", 0.0, "phase", "load", np.nan, ""), ("c", 1.0, "phase", "idle", np.nan, "")],
                          columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", 0.5, "proc", "vm_rss", 1.0), ("c", 2.5, "proc", "vm_rss", 1.0)],
                           columns=analysis.SAMPLE_COLUMNS)
    assert analysis.split_by_cell(samples, events).phases["end_s"].tolist() == [1.0, 2.5]
    assert math.isnan(analysis.split_by_cell(None, events).phases["end_s"].iloc[-1])


def test_summarize_reads_phase_ends_peaks_and_totals():
    spec = alloc_release_spec("a", stays=True, freeos_ns=[1e6, 2e6, 3e6])
    cells, samples, events = run_frames([spec])
    s = analysis.summarize(cells, samples, events).loc["a"]
    assert s["peak_rss"] == pytest.approx(1034 * MiB)
    assert s["rss@baseline"] == pytest.approx(10 * MiB)
    assert s["rss@hold"] == pytest.approx(1034 * MiB)
    assert s["heap_inuse@release"] == pytest.approx(1 * MiB, rel=0.2)
    assert s["lazyfree@hold"] == pytest.approx(0)
    assert s["lazyfree@freeos"] == pytest.approx(1000 * MiB)
    assert s["lazyfree@idle"] == pytest.approx(1000 * MiB)
    assert s["gc_cycles"] == 2 and s["cpu_s"] == pytest.approx(0.75) and s["minflt"] == 262000
    assert s["freeos_calls"] == 3 and s["freeos_p50_ns"] == pytest.approx(2e6)
    assert s["final_vm_size"] == s["max_vm_size"] == pytest.approx(1900 * MiB)
    assert s["oom_killed"] == 0 and s["wall_s"] == 8.0
    assert math.isnan(s["release_s"])  # RSS stays: never falls to half


def test_release_s_and_mean_rss():
    cells, samples, events = run_frames([alloc_release_spec("a")])
    s = analysis.summarize(cells, samples, events).loc["a"]
    # release starts at 3.0 s with 1034 MiB; the drop below half happens between 3.5 and 3.6 s.
    assert 0.5 < s["release_s"] <= 0.6
    assert s["final_rss"] == pytest.approx(14 * MiB)
    assert 10 * MiB < s["mean_rss"] < 1034 * MiB


def test_peak_rss_takes_the_kernel_mark_when_it_exceeds_samples():
    spec = alloc_release_spec("a", peak_rss_bytes=2000 * MiB)
    cells, samples, events = run_frames([spec])
    assert analysis.summarize(cells, samples, events).loc["a", "peak_rss"] == 2000 * MiB


def test_gc_cpu_falls_back_to_fraction_times_wall_and_says_so():
    spec = CellSpec("old", [("load", 0.0)], 10.0, curves={"gc_cpu_fraction": [(0, 0.1), (10, 0.1)]},
                    workload="freeos-periodic", go_version="1.15.15",
                    totals={"ops": 500, "wall_s": 10.0})
    new = CellSpec("new", [("load", 0.0)], 10.0, curves={"gc_cpu_s": [(0, 0), (10, 0.4)]},
                   workload="freeos-periodic", totals={"ops": 500})
    cells, samples, events = run_frames([spec, new])
    s = analysis.summarize(cells, samples, events)
    assert s.loc["old", "gc_cpu_s"] == pytest.approx(1.0)
    assert s.loc["old", "gc_cpu_source"] == "gc_cpu_fraction*wall*gomaxprocs"
    assert s.loc["new", "gc_cpu_s"] == pytest.approx(0.4)
    assert s.loc["new", "gc_cpu_source"] == "runtime/metrics"
    assert s.loc["new", "throughput"] == pytest.approx(50.0)
    # The fraction is of GOMAXPROCS × wall time: with 2 Ps, 10% of 10 s is 2 CPU-seconds.
    start = pd.DataFrame([("old", 0.0, "start", "freeos-periodic", np.nan, '{"gomaxprocs": 2}')],
                         columns=analysis.EVENT_COLUMNS)
    two = analysis.summarize(cells, samples, pd.concat([start, events], ignore_index=True))
    assert two.loc["old", "gc_cpu_s"] == pytest.approx(2.0)


def test_missing_inputs_give_nan_not_errors():
    empty = analysis.summarize(None, None, None)
    assert empty.empty and "peak_rss" in empty.columns
    cells = pd.DataFrame([{"cell_id": "x", "workload": "pressure", "status": "skipped"}])
    s = analysis.summarize(cells, None, None).loc["x"]
    assert math.isnan(s["peak_rss"]) and math.isnan(s["gc_cycles"]) and math.isnan(s["throughput"])
    assert s["freeos_calls"] == 0


def test_gc_cycles_fallback_to_runtime_num_gc():
    spec = alloc_release_spec("a", status="oom_killed")
    cells, samples, events = run_frames([spec])
    assert analysis.summarize(cells, samples, events).loc["a", "gc_cycles"] == 1


def test_by_config_pools_repeats_only():
    specs = [alloc_release_spec(f"t{r}", repeat=r, freeos=True) for r in range(2)]
    specs += [alloc_release_spec(f"s{r}", repeat=r, freeos=True, stays=True,
                                 axes={"touch": "true", "freeos": "false"}) for r in range(3)]
    cells, samples, events = run_frames(specs)
    summary = analysis.summarize(cells, samples, events)
    summary.loc["s2", "final_rss"] = 500 * MiB
    table = analysis.by_config(summary, cells, ["final_rss"]).set_index("freeos")
    assert table.loc["true", "n"] == 2 and table.loc["false", "n"] == 3
    assert table.loc["false", "final_rss_min"] == 500 * MiB
    assert table.loc["false", "final_rss_max"] == pytest.approx(1034 * MiB)
    assert table.loc["false", "config"] == "freeos=false"


def test_slope_and_retained_fraction():
    s = pd.Series([0.0, 10.0, 20.0, 30.0], index=[0.0, 1.0, 2.0, 3.0])
    assert slope(s) == pytest.approx(10.0)
    assert slope(s, 2.0, 3.0) == pytest.approx(10.0)
    assert math.isnan(slope(s, 5.0, 6.0))
    assert analysis.retained_fraction(55, 110, 10) == pytest.approx(0.45)
    assert math.isnan(analysis.retained_fraction(1, 0, 0))


def test_end_totals_accepts_wrapped_totals():
    events = pd.DataFrame([("c", 1.0, "end", "w", np.nan, json.dumps({"totals": {"ops": 3}}))],
                          columns=analysis.EVENT_COLUMNS)
    assert analysis.end_totals(events) == {"c": {"ops": 3}}


def test_smaps_phase_value_comes_only_from_inside_the_phase():
    events = pd.DataFrame([("c", 0.0, "phase", "hold", np.nan, ""), ("c", 1.0, "phase", "freeos", np.nan, ""),
                           ("c", 1.2, "phase", "idle", np.nan, ""), ("c", 3.0, "end", "w", np.nan, "{}")],
                          columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", t, "smaps", "lazyfree", v) for t, v in ((0.5, 0.0), (1.5, 7.0))]
                           + [("c", t, "proc", "vm_rss", 5.0) for t in (0.5, 1.1, 1.5)],
                           columns=analysis.SAMPLE_COLUMNS)
    s = analysis.summarize(pd.DataFrame([{"cell_id": "c"}]), samples, events).loc["c"]
    assert math.isnan(s["lazyfree@freeos"])  # no slow-tier reading between 1.0 and 1.2 s
    assert s["rss@freeos"] == 5.0
    assert s["lazyfree@idle"] == 7.0


def test_a_heap_profile_is_the_state_of_the_phase_it_was_written_in_only():
    # Written once, at the end of release: idle has no profile of its own, and release's is not carried over.
    events = pd.DataFrame([("c", 0.0, "phase", "release", np.nan, ""), ("c", 1.0, "phase", "idle", np.nan, ""),
                           ("c", 3.0, "end", "w", np.nan, "{}")], columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", 0.99, "runtime", "pprof_inuse_space", 8.0 * MiB),
                            ("c", 0.99, "runtime", "heap_alloc", 9.0 * MiB),
                            ("c", 2.9, "runtime", "heap_alloc", 9.0 * MiB)], columns=analysis.SAMPLE_COLUMNS)
    s = analysis.summarize(pd.DataFrame([{"cell_id": "c"}]), samples, events).loc["c"]
    assert s["pprof_inuse_space@release"] == 8.0 * MiB
    assert math.isnan(s["pprof_inuse_space@idle"]) and s["heap_alloc@idle"] == 9.0 * MiB


def test_phase_value_is_the_first_reading_just_after_the_phase_ends():
    # A FreeOSMemory phase shorter than one period: the reading taken on the phase change (at
    # 1.203 s) shows what the phase left behind; the last one before its end does not.
    events = pd.DataFrame([("c", 0.0, "phase", "hold", np.nan, ""), ("c", 1.2, "phase", "freeos", np.nan, ""),
                           ("c", 1.201, "phase", "idle", np.nan, ""), ("c", 3.0, "end", "w", np.nan, "{}")],
                          columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", 1.19, "proc", "vm_rss", 1024.0), ("c", 1.203, "proc", "vm_rss", 4.0),
                            ("c", 1.0, "smaps", "lazyfree", 0.0), ("c", 1.21, "smaps", "lazyfree", 1000.0),
                            ("c", 2.9, "proc", "vm_rss", 3.0)],
                           columns=analysis.SAMPLE_COLUMNS)
    s = analysis.summarize(pd.DataFrame([{"cell_id": "c"}]), samples, events).loc["c"]
    assert s["rss@hold"] == 1024.0       # nothing after hold's end within the window but the freeos reading
    assert s["rss@freeos"] == 4.0
    assert s["lazyfree@freeos"] == 1000.0
    assert s["rss@idle"] == 3.0          # the last phase: no reading after the end, the last before it


def test_runtime_phase_value_is_the_workloads_own_reading_at_the_phase_change():
    # The workload writes its runtime metrics just before each phase line (telemetry Run.Phase); its
    # next reading, 100 ms into the following phase, already shows that phase's allocation.
    events = pd.DataFrame([("c", 0.6, "phase", "pagecache", np.nan, ""), ("c", 0.8797, "phase", "allocate", np.nan, ""),
                           ("c", 2.0, "end", "w", np.nan, "{}")], columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", 0.72, "runtime", "heap_alloc", 0.3 * MiB),
                            ("c", 0.8796, "runtime", "heap_alloc", 0.4 * MiB),
                            ("c", 0.93, "runtime", "heap_alloc", 512 * MiB), ("c", 0.88, "proc", "vm_rss", 11 * MiB),
                            ("c", 0.95, "proc", "vm_rss", 300 * MiB)], columns=analysis.SAMPLE_COLUMNS)
    s = analysis.summarize(pd.DataFrame([{"cell_id": "c"}]), samples, events).loc["c"]
    assert s["heap_alloc@pagecache"] == 0.4 * MiB
    assert s["rss@pagecache"] == 11 * MiB    # the sampler's reading on the phase change, just after it


def test_last_phase_value_is_read_before_the_workload_exits():
    # After the end line the process exits and its cgroup uncharges page by page: 888 MiB, then 6 MiB.
    events = pd.DataFrame([("c", 6.16, "phase", "idle", np.nan, ""), ("c", 9.1657, "end", "w", np.nan, "{}")],
                          columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", 9.1655, "cgroup", "usage", 1030 * MiB), ("c", 9.1755, "cgroup", "usage", 888 * MiB),
                            ("c", 9.2466, "cgroup", "usage", 6 * MiB)], columns=analysis.SAMPLE_COLUMNS)
    s = analysis.summarize(pd.DataFrame([{"cell_id": "c"}]), samples, events).loc["c"]
    assert s["cgroup_usage@idle"] == 1030 * MiB


def test_by_config_keeps_the_order_configurations_ran_in():
    cells = pd.DataFrame({"cell_id": ["a", "b", "c", "d"], "gogc": ["50", "100", "300", "50"],
                          "repeat": [0, 0, 0, 1]})
    summary = pd.DataFrame({"peak_rss": [1.0, 2.0, 3.0, 5.0]}, index=["a", "b", "c", "d"])
    table = analysis.by_config(summary, cells, ["peak_rss"])
    assert list(table["gogc"]) == ["50", "100", "300"]
    assert list(table["peak_rss_median"]) == [3.0, 2.0, 3.0]


def test_summarize_accepts_categorical_key_columns():
    cells, samples, events = run_frames([alloc_release_spec("a"), alloc_release_spec("b", stays=True)])
    plain = analysis.summarize(cells, samples, events)
    cat = analysis.summarize(cells.astype({"cell_id": "category"}),
                             samples.astype(dict.fromkeys(("cell_id", "source", "metric"), "category")),
                             events.astype(dict.fromkeys(("cell_id", "kind", "name"), "category")))
    pd.testing.assert_frame_equal(plain, cat)
    assert plain.loc["b", "rss@freeos"] == pytest.approx(1034 * MiB)
    pd.testing.assert_frame_equal(
        analysis.split_by_cell(None, events.astype({"kind": "category", "cell_id": "category"})).phases,
        analysis.split_by_cell(None, events).phases)


def test_split_by_cell_gives_each_cells_series_events_and_phases():
    cells, samples, events = run_frames([alloc_release_spec("a"), alloc_release_spec("b", freeos_ns=[5e6])])
    run = analysis.split_by_cell(samples, events)
    assert run.cell_ids() == ["a", "b"]
    rss = run.series("b", "proc", "vm_rss")
    assert rss.index.is_monotonic_increasing and rss.max() == pytest.approx(1034 * MiB)
    assert run.series("b", "proc", "nope").empty
    assert list(run.events("b", "freeos")["value"]) == [5e6] and run.events("a", "freeos").empty
    assert set(run.samples("a")["cell_id"]) == {"a"} and len(run.samples("a")) == (samples["cell_id"] == "a").sum()
    assert run.phase_span("a", "release") == (3.0, 3.5)
    assert run.phase_duration("a", "hold") == pytest.approx(1.5)
    assert list(dict.fromkeys(run.phases["cell_id"])) == ["a", "b"]
    # The same run split once summarises as the frames do.
    pd.testing.assert_frame_equal(analysis.summarize(cells, run), analysis.summarize(cells, samples, events))


def test_columns_are_the_metric_registry_in_order():
    from harness.define.metrics import METRICS

    cells, samples, events = run_frames([alloc_release_spec("a")])
    columns = list(analysis.summarize(cells, samples, events).columns)
    plain = [c for c in columns if "@" not in c]
    text = sorted(n for n, m in METRICS.items() if m.unit == "text")  # gc_cpu_source, benchmark
    assert plain == sorted(set(METRICS) - set(text)) + text
    assert [c for c in columns if "@" in c] == sorted(c for c in columns if "@" in c)


def test_config_label_ignores_the_resolved_limit_of_cells_v2():
    v2 = pd.DataFrame({"cell_id": ["a", "b"], "scenario": ["s", "s"], "gomemlimit": ["off", "1.2GiB"],
                       "gomemlimit_bytes": [np.nan, 1288490188]})
    v1 = pd.DataFrame({"cell_id": ["a", "b"], "scenario": ["s", "s"], "gomemlimit": ["off", "1288490188"]})
    assert list(analysis.config_label(v2)) == list(analysis.config_label(v1)) == ["gomemlimit=off",
                                                                                  "gomemlimit=1.2GiB"]
    assert "gomemlimit_bytes" not in analysis.config_columns(v2)
    limits = pd.DataFrame({"cell_id": ["a", "b"], "scenario": "s", "memory": ["128MiB", "512MiB"],
                           "memory_limit_bytes": [128 << 20, 512 << 20]})
    assert list(analysis.config_label(limits)) == ["memory=128MiB", "memory=512MiB"]
    table = analysis.by_config(pd.DataFrame({"peak_rss": [1.0, 2.0]}, index=["a", "b"]), v2, ["peak_rss"])
    assert list(table["config"]) == ["gomemlimit=off", "gomemlimit=1.2GiB"]


def test_derived_quantities_claims_read():
    from harness.analyse import derived

    spec = CellSpec("lc", [("baseline", 0), ("churn", 0.5), ("idle", 5.0)], 8.0,
                    curves={"rss": [(0, 600), (8, 600)], "heap_inuse": [(0, 300), (8, 300)]},
                    workload="large-churn",
                    extra_events=[(1.0, "syscall", "madvise", 2 * MiB, ""), (2.0, "syscall", "madvise", MiB, ""),
                                  (1.0, "sizes", "16", 1e6, json.dumps({"size": 16, "ops": 10, "tiny_allocs": 0}))])
    _, samples, events = run_frames([spec])
    run = analysis.split_by_cell(samples, events)
    assert derived.phase_mean(run, "lc", "proc", "vm_rss", "churn") == pytest.approx(600 * MiB)
    assert math.isnan(derived.phase_mean(run, "lc", "proc", "vm_rss", "serve"))
    assert derived.syscall_totals(events, ["lc"]) == {"madvise": (2, 3.0 * MiB)}
    assert derived.syscall_totals(events, ["other"]) == {}
    sizes = derived.sizes_table(events, ["lc"])
    assert list(sizes["size"]) == [16.0] and sizes["ops_per_s"].iloc[0] == 1e6 and sizes["tiny_allocs"].iloc[0] == 0
    assert derived.second_half_slope(run, "lc", "proc", "vm_rss", "churn") == pytest.approx(0.0, abs=1e-3)


def test_limiter_scavenger_and_work_unit_metrics():
    """limiter_engaged is 1/0 where the Go version reports the limiter and NaN where it does not;
    scavenge_cpu_s is the largest reading; unit latencies come from the end totals."""
    specs = [(CellSpec(cid, [("baseline", 0.0), ("load", 0.5)], 2.0, curves={"rss": [(0, 10), (2, 20)]},
                       workload="freeos-periodic",
                       totals={"lat_p50_ns": 2000, "lat_p99_ns": 90000, "units": 10} if cid == "on" else {}),
              limiter)
             for cid, limiter in (("on", [0, 0, 7]), ("off", [0, 0, 0]), ("old", None))]
    cells, samples, events = run_frames([s for s, _ in specs])
    rows = [(s.cell_id, t, "runtime", "limiter_last_enabled", float(v))
            for s, lim in specs if lim is not None for t, v in zip((0.5, 1.0, 1.5), lim, strict=True)]
    rows += [("on", t, "runtime", "scavenge_cpu_s", v) for t, v in ((0.5, 0.01), (1.5, 0.25))]
    samples = pd.concat([samples, pd.DataFrame(rows, columns=analysis.SAMPLE_COLUMNS)], ignore_index=True)
    s = analysis.summarize(cells, samples, events)
    assert s.loc["on", "limiter_engaged"] == 1 and s.loc["off", "limiter_engaged"] == 0
    assert math.isnan(s.loc["old", "limiter_engaged"])
    assert s.loc["on", "scavenge_cpu_s"] == pytest.approx(0.25) and math.isnan(s.loc["off", "scavenge_cpu_s"])
    assert s.loc["on", "unit_p50_ns"] == 2000 and s.loc["on", "unit_p99_ns"] == 90000
    assert math.isnan(s.loc["off", "unit_p99_ns"])


def test_live_heap_reads_automatic_gcs_only_and_phase_syscalls_the_phase_only():
    from harness.analyse import derived

    gc = [("a", 1.0 + i, "gc", f"gc{i}", 0.0, json.dumps({"heap_live_bytes": v * MiB, "forced": f}))
          for i, (v, f) in enumerate(((100, False), (120, False), (140, False), (1, True)))]
    sys = [("a", t, "syscall", "madvise", 4096.0, "") for t in (0.2, 1.5, 1.6)]
    phases = [("a", 0.0, "phase", "baseline", np.nan, ""), ("a", 1.0, "phase", "load", np.nan, ""),
              ("a", 3.0, "end", "w", np.nan, "{}")]
    events = pd.DataFrame(gc + sys + phases, columns=analysis.EVENT_COLUMNS)
    assert derived.live_heap(events, ["a", "b"]) == {"a": 120 * MiB}
    run = analysis.RunData(pd.DataFrame(columns=analysis.SAMPLE_COLUMNS), events)
    assert derived.phase_syscalls(run, events, "a", "load") == {"madvise": (2, 8192.0)}
    assert derived.phase_syscalls(run, events, "a", "idle") == {}


def test_huge_pages_swap_and_lazyfree_counts_read_what_was_sampled_and_nan_otherwise():
    cells, samples, events = run_frames([alloc_release_spec("v2"), alloc_release_spec("v1")])
    extra = [("v2", t, source, metric, value) for t, source, metric, value in (
        (1.0, "cgroup", "anon_thp", 0.0), (2.0, "cgroup", "anon_thp", 512 * MiB), (7.9, "cgroup", "anon_thp", 64 * MiB),
        (1.0, "smaps", "anon_huge_pages", 0.0), (2.0, "smaps", "anon_huge_pages", 510 * MiB),
        (7.9, "smaps", "anon_huge_pages", 62 * MiB),
        (1.0, "cgroup", "swap", 0.0), (3.0, "cgroup", "swap", 8 * MiB), (7.9, "cgroup", "swap", 2 * MiB),
        (1.0, "proc", "vm_swap", 0.0), (3.0, "proc", "vm_swap", 6 * MiB),
        # cumulative counters that already counted 100 / 10 before the cell began
        (0.5, "cgroup", "pglazyfree", 100.0), (4.0, "cgroup", "pglazyfree", 100.0 + 131072),
        (0.5, "cgroup", "pglazyfreed", 10.0), (7.9, "cgroup", "pglazyfreed", 10.0 + 4096))]
    samples = pd.concat([samples, pd.DataFrame(extra, columns=analysis.SAMPLE_COLUMNS)], ignore_index=True)
    s = analysis.summarize(cells, samples, events)
    v2, v1 = s.loc["v2"], s.loc["v1"]
    assert v2["peak_anon_thp"] == 512 * MiB and v2["peak_anon_huge_pages"] == 510 * MiB
    assert v2["final_anon_huge_pages"] == 62 * MiB
    assert v2["final_anon_thp"] == 64 * MiB   # the reading at the last VmRSS one (7.9 s or before)
    assert v2["peak_swap"] == 8 * MiB and v2["peak_vm_swap"] == 6 * MiB
    assert (v2["pglazyfree"], v2["pglazyfreed"]) == (131072, 4096)
    # A cell whose host has none of these files (v1: no pglazyfree, no swap accounting): NaN, not 0.
    for name in ("peak_anon_thp", "final_anon_thp", "peak_anon_huge_pages", "peak_swap", "peak_vm_swap",
                 "pglazyfree", "pglazyfreed"):
        assert math.isnan(v1[name]), name
