import json
import math

import pandas as pd
import pytest

from harness.run.backends.base import RunResult
from harness.define.cell import Cell
from harness.store.rundir import (RunStore, StoreError, cells_row, collect_manifest, load_run, result_frames)

T0 = 10_000_000_000


def _result(n: int, status: str = "ok", **kw) -> RunResult:
    cell = Cell(
        cell_id=f"alloc_release[gogc={50 * n},madvdontneed=1,r0]", scenario="alloc_release",
        workload="alloc-release", args=("--size=1GiB", "--touch=true"), gogc=str(50 * n),
        madvdontneed="1", memory_limit_bytes=2 << 30 if n == 1 else None, cpus=1.5 if n == 1 else None,
        go_version="1.27.3", backend="cgroup", repeat=0, axes=(("gogc", str(50 * n)), ("size", "1GiB")),
    )
    samples = [(T0 + i * 10_000_000, "proc", "vm_rss", float(1_073_741_824 + i * 4096 + n)) for i in range(50)]
    samples += [(T0 + 5_000_000, "cgroup", "usage", 123456789.0), (T0 + 7, "runtime", "gc_cpu_fraction", 0.0123)]
    events = [(T0, "start", "alloc-release", math.nan, json.dumps({"ev": "start"})),
              (T0 + 1_500_000_000, "phase", "release", math.nan, "{}"),
              (T0 + 2_000_000_000, "gc", "gc3", float(64 << 20), json.dumps({"line": "gc 3 ..."}))]
    return RunResult(cell=cell, status=status, exit_code=0 if status == "ok" else 137,
                     oom_killed=status == "oom_killed", wall_s=2.5, t0_ns=T0, samples=samples, events=events,
                     peak_rss_bytes=1_100_000_000, peak_cgroup_bytes=None if n == 2 else 1_200_000_000,
                     stderr_tail="last words", sampler_stats={"fast_hz_achieved": 99.7}, **kw)


def test_save_two_cells_reload_schemas(tmp_path):
    store = RunStore.create(tmp_path, {"purpose": "test"}, run_id="r1")
    store.save_cell(_result(1))
    store.save_cell(_result(2, status="oom_killed", reason="killed by the OOM killer"))
    assert store.finish(True) == tmp_path / "r1"
    run = load_run(tmp_path / "r1")
    assert run.manifest["complete"] is True and run.manifest["purpose"] == "test"
    assert list(run.samples.columns) == ["cell_id", "t_s", "source", "metric", "value"]
    assert list(run.events.columns) == ["cell_id", "t_s", "kind", "name", "value", "detail"]
    assert run.samples["t_s"].dtype == "float64" and run.samples["value"].dtype == "float64"
    assert run.events["value"].dtype == "float64"
    assert len(run.samples) == 2 * 52 and len(run.events) == 6
    assert run.samples["t_s"].min() == 0.0
    phase = run.events[run.events["kind"] == "phase"].iloc[0]
    assert phase["t_s"] == 1.5 and phase["name"] == "release"

    cells = run.cells
    # Axes follow workload; an axis that is also a knob column (gogc) appears once, as the knob.
    assert list(cells.columns[:4]) == ["cell_id", "scenario", "workload", "size"]
    assert list(cells.columns).count("gogc") == 1
    assert cells["cell_id"].tolist() == [_result(1).cell.cell_id, _result(2).cell.cell_id]
    assert cells["gogc"].tolist() == ["50", "100"] and cells["size"].tolist() == ["1GiB", "1GiB"]
    assert cells["gomemlimit"].tolist() == ["", ""]
    assert str(cells["memory_limit_bytes"].dtype) == "Int64"
    assert cells["memory_limit_bytes"].iloc[0] == 2 << 30 and pd.isna(cells["memory_limit_bytes"].iloc[1])
    assert cells["oom_killed"].tolist() == [False, True] and cells["exit_code"].tolist() == [0, 137]
    assert cells["status"].tolist() == ["ok", "oom_killed"]
    assert cells["reason"].tolist() == ["", "killed by the OOM killer"]
    assert cells["args"].iloc[0] == "--size=1GiB --touch=true"
    assert pd.isna(cells["peak_cgroup_bytes"].iloc[1])

    cell_dirs = sorted((tmp_path / "r1" / "cells").iterdir())
    assert [d.name[:5] for d in cell_dirs] == ["0001-", "0002-"]
    cell_json = json.loads((cell_dirs[1] / "cell.json").read_text())
    assert cell_json["stderr_tail"] == "last words" and cell_json["sampler_stats"]["fast_hz_achieved"] == 99.7


def test_parquet_round_trip_is_exact(tmp_path):
    result = _result(1)
    store = RunStore.create(tmp_path, {}, run_id="exact")
    store.save_cell(result)
    store.finish(True)
    run = load_run(tmp_path / "exact")
    values = sorted(run.samples["value"].tolist())
    assert values == sorted(float(r[3]) for r in result.samples)
    expected_t = sorted((r[0] - T0) / 1e9 for r in result.samples)
    assert sorted(run.samples["t_s"].tolist()) == expected_t
    _, samples, events = result_frames(result)
    pd.testing.assert_frame_equal(samples, run.samples)
    pd.testing.assert_frame_equal(events, run.events)


def test_result_frames_match_loaded_cells(tmp_path):
    result = _result(1)
    store = RunStore.create(tmp_path, {}, run_id="same")
    store.save_cell(result)
    cells, _, _ = result_frames(result)
    pd.testing.assert_frame_equal(cells, load_run(tmp_path / "same").cells)
    assert cells_row(result)["peak_rss_bytes"] == 1_100_000_000


def test_run_dir_is_never_reused(tmp_path):
    RunStore.create(tmp_path, {}, run_id="taken")
    (tmp_path / "taken" / "marker").write_text("keep")
    with pytest.raises(StoreError, match="never reused"):
        RunStore.create(tmp_path, {}, run_id="taken")
    assert (tmp_path / "taken" / "marker").read_text() == "keep"
    a, b = RunStore.create(tmp_path, {}), RunStore.create(tmp_path, {})
    assert a.run_dir != b.run_dir


def test_interrupted_run_loads_from_cell_files(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="cut")
    store.save_cell(_result(1))
    store.save_cell(_result(2))
    # A crash between cells: no finish(), and not even a cells.csv.
    (tmp_path / "cut" / "cells.csv").unlink()
    run = load_run(tmp_path / "cut")
    assert run.manifest["complete"] is False
    assert len(run.cells) == 2 and len(run.samples) == 104 and len(run.events) == 6
    assert set(run.samples["cell_id"]) == set(run.cells["cell_id"])


def test_finish_twice_and_incomplete(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="twice")
    store.save_cell(_result(1))
    store.finish(False, {"cells_run": 1})
    store.save_cell(_result(2))
    store.finish(False, {"cells_run": 2})
    run = load_run(tmp_path / "twice")
    assert run.manifest["complete"] is False and run.manifest["cells_run"] == 2
    assert len(run.samples) == 104


def test_empty_run(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="empty")
    store.finish(False)
    run = load_run(tmp_path / "empty")
    assert len(run.cells) == 0 and len(run.samples) == 0
    assert list(run.events.columns) == ["cell_id", "t_s", "kind", "name", "value", "detail"]


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="manifest.json"):
        load_run(tmp_path)


def test_collect_manifest_describes_this_host():
    m = collect_manifest(run_id="x")
    assert m["run_id"] == "x"
    assert m["kernel"]["release"] == __import__("os").uname().release
    assert m["thp"] in ("always", "madvise", "never")
    assert isinstance(m["host"]["swap_total_bytes"], int)
    assert m["harness"]["version"]
    assert m["python"]["version"].count(".") == 2
    json.dumps(m)
