import dataclasses
import json
import math

import pandas as pd
import pytest

from harness.define.axes import contributions
from harness.define.cell import Cell
from harness.run.backends.base import RunResult
from harness.store.provenance import collect_manifest
from harness.store.rundir import MANIFEST_VERSION, RunStore, StoreError, cells_row, load_run, result_frames

T0 = 10_000_000_000


def _result(n: int, status: str = "ok", **kw) -> RunResult:
    cell = Cell(
        cell_id=f"alloc_release[gogc={50 * n},madvdontneed=1,r0]", scenario="alloc_release",
        workload="alloc-release", args=("--size=1GiB", "--touch=true"), **contributions(
            {"gogc": str(50 * n), "madvdontneed": "1", **({"memory": "2GiB", "cpus": "1.5"} if n == 1 else {})}),
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


def test_reopen_keeps_finished_cells_and_runs_an_interrupted_one_again(tmp_path):
    store = RunStore.create(tmp_path, {"advise": {"argv": ["x"]}}, run_id="again")
    store.save_cell(_result(1))
    store.save_cell(_result(2, status="interrupted"))
    store.finish(False)
    store = RunStore.reopen(tmp_path / "again")
    assert store.finished() == {_result(1).cell.cell_id: "ok"}
    # The merged files held the interrupted cell: a reader of the run in progress reads the cells instead.
    assert not (tmp_path / "again" / "samples.parquet").exists() and len(load_run(tmp_path / "again").samples) == 52
    assert store.manifest["advise"] == {"argv": ["x"]} and store.manifest["complete"] is False
    store.save_cell(_result(2))
    store.finish(True)
    run = load_run(tmp_path / "again")
    assert list(run.cells["status"]) == ["ok", "ok"]
    assert sorted(d.name[:4] for d in (tmp_path / "again" / "cells").iterdir()) == ["0001", "0002"]
    # The interrupted cell's samples are gone with it, not merged into the new run of that cell.
    assert len(run.samples) == 104


@pytest.mark.parametrize("cut", ["save cut off", "no cell.json", "half a cell.json", "interrupted"])
def test_reopen_removes_a_cell_cut_short_and_its_row(tmp_path, cut):
    """A kill leaves a cell whichever way it fell: each is run again whole, and cells.csv forgets it at once."""
    store = RunStore.create(tmp_path, {}, run_id="killed")
    store.save_cell(_result(1))
    cells = tmp_path / "killed" / "cells"
    if cut == "interrupted":
        short = store.save_cell(_result(2, status="interrupted"))
    else:
        short = store.save_cell(_result(2))
        if cut == "save cut off":  # killed inside save_cell, before the rename
            short = short.rename(cells / f".{short.name}.tmp")
        elif cut == "no cell.json":
            (short / "cell.json").unlink()
        else:
            (short / "cell.json").write_text((short / "cell.json").read_text()[:40])
    store = RunStore.reopen(tmp_path / "killed")
    assert not short.exists()
    assert store.finished() == {_result(1).cell.cell_id: "ok"}
    assert list(load_run(tmp_path / "killed").cells["cell_id"]) == [_result(1).cell.cell_id]
    assert store.save_cell(_result(2)).name.startswith("0002-")


def test_reopen_needs_a_current_run_directory(tmp_path):
    with pytest.raises(StoreError, match="manifest.json: missing"):
        RunStore.reopen(tmp_path)


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


# ---------------------------------------------------------------------------------------------- format 2


def _gomemlimit_result(written: str | None, resolved: str | None) -> RunResult:
    result = _result(1)
    axes = (("gogc", "50"),) + ((("gomemlimit", written),) if written is not None else ())
    recorded = (("gomemlimit", written), ("gomemlimit_bytes", int(resolved) if resolved.isdigit() else None)) \
        if resolved is not None else ()
    cell = dataclasses.replace(result.cell, columns=result.cell.columns + recorded, axes=axes,
                               cell_id=f"alloc_release[gomemlimit={written},r0]")
    return dataclasses.replace(result, cell=cell)


@pytest.mark.parametrize(
    "written, resolved, column, column_bytes",
    [("90%", "1932735283", "90%", 1932735283), ("300MiB", "314572800", "300MiB", 314572800),
     ("off", "off", "off", None), ("unset", None, "", None), (None, None, "", None)],
)
def test_cells_csv_keeps_gomemlimit_as_written_and_resolved(tmp_path, written, resolved, column, column_bytes):
    store = RunStore.create(tmp_path, {}, run_id="v2")
    store.save_cell(_gomemlimit_result(written, resolved))
    run = load_run(tmp_path / "v2")
    assert run.manifest["manifest_version"] == MANIFEST_VERSION == 2
    cells = run.cells
    assert list(cells.columns).index("gomemlimit_bytes") == list(cells.columns).index("gomemlimit") + 1
    assert cells["gomemlimit"].iloc[0] == column and str(cells["gomemlimit_bytes"].dtype) == "Int64"
    value = cells["gomemlimit_bytes"].iloc[0]
    assert (pd.isna(value) if column_bytes is None else value == column_bytes)


def _as_version_1(run_dir, drop_version: bool = False) -> None:
    """Rewrite a run directory as version 1 wrote it: GOMEMLIMIT only as bytes, in `gomemlimit`."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if drop_version:
        del manifest["manifest_version"]
    else:
        manifest["manifest_version"] = 1
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    csv = pd.read_csv(run_dir / "cells.csv", dtype=str, keep_default_na=False)
    csv["gomemlimit"] = csv["gomemlimit_bytes"].where(csv["gomemlimit_bytes"] != "", csv["gomemlimit"])
    csv.drop(columns=["gomemlimit_bytes"]).to_csv(run_dir / "cells.csv", index=False)


@pytest.mark.parametrize("drop_version", [False, True])
def test_version_1_is_upgraded_on_load(tmp_path, drop_version):
    store = RunStore.create(tmp_path, {}, run_id="v1")
    for written, resolved in (("80%", "1288490188"), ("off", "off"), (None, None)):
        store.save_cell(_gomemlimit_result(written, resolved))
    store.finish(True)
    current = load_run(tmp_path / "v1").cells
    _as_version_1(tmp_path / "v1", drop_version)
    assert "gomemlimit_bytes" not in (tmp_path / "v1" / "cells.csv").read_text()
    assert "1288490188" in (tmp_path / "v1" / "cells.csv").read_text()

    upgraded = load_run(tmp_path / "v1").cells
    assert upgraded["gomemlimit"].tolist() == ["1.2GiB", "off", ""]  # the size the v1 report displayed
    assert upgraded["gomemlimit_bytes"].tolist()[0] == 1288490188
    assert upgraded["gomemlimit_bytes"].isna().tolist() == [False, True, True]
    assert list(upgraded.columns) == list(current.columns)
    pd.testing.assert_frame_equal(upgraded.drop(columns=["gomemlimit"]), current.drop(columns=["gomemlimit"]))


def test_version_1_interrupted_run_is_upgraded_from_cell_files(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="v1cut")
    store.save_cell(_gomemlimit_result("80%", "1288490188"))
    run_dir = tmp_path / "v1cut"
    (run_dir / "cells.csv").unlink()
    cell_json = next((run_dir / "cells").iterdir()) / "cell.json"
    data = json.loads(cell_json.read_text())
    data["row"]["gomemlimit"] = data["row"].pop("gomemlimit_bytes")
    cell_json.write_text(json.dumps(data))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["manifest_version"] = 1
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    cells = load_run(run_dir).cells
    assert cells["gomemlimit"].tolist() == ["1.2GiB"] and cells["gomemlimit_bytes"].tolist() == [1288490188]


def test_reference_run_keeps_gomemlimit_as_written_and_resolved():
    from harness.define.project import REPO_ROOT

    cells = load_run(REPO_ROOT / "results" / "reference").cells
    limited = cells[cells["cell_id"] == "gomemlimit[go=default,gomemlimit=90%,r0]"].iloc[0]
    assert limited["gomemlimit"] == "90%" and limited["gomemlimit_bytes"] == 483183820  # 90% of 512 MiB


# ---------------------------------------------------------------------------------------------- damage


@pytest.fixture
def finished(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="done")
    store.save_cell(_result(1))
    store.save_cell(_result(2))
    store.finish(True)
    return tmp_path / "done"


def _one_line_error(run_dir) -> str:
    with pytest.raises(StoreError) as info:
        load_run(run_dir)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    return message


def test_corrupt_parquet(finished):
    path = finished / "samples.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = _one_line_error(finished)
    assert message.startswith(f"{path}: not a readable Parquet file (") and "damaged or truncated" in message


def test_garbage_parquet_in_a_cell_directory(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="cut")
    cell_dir = store.save_cell(_result(1))
    (cell_dir / "events.parquet").write_text("not parquet")
    assert _one_line_error(tmp_path / "cut").startswith(f"{cell_dir / 'events.parquet'}: not a readable Parquet")


def test_parquet_without_the_columns(finished):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), finished / "events.parquet")
    assert _one_line_error(finished) == (f"{finished / 'events.parquet'}: missing column(s) cell_id, t_s, kind, "
                                         "name, value, detail; not a goreclaim events.parquet")


def test_truncated_cells_csv(finished):
    path = finished / "cells.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])
    message = _one_line_error(finished)
    assert message.startswith(f"{path}: line 3 has ") and "damaged or truncated" in message


def test_cells_csv_cut_inside_a_quoted_field(finished):
    path = finished / "cells.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex('"alloc_release[') + 5])
    assert _one_line_error(finished).startswith(f"{path}: ")


def test_cells_csv_with_a_bad_number(finished):
    path = finished / "cells.csv"
    path.write_text(path.read_text().replace(",ok,0,False", ",ok,zero,False"))
    assert _one_line_error(finished) == f"{path}: column 'exit_code' holds 'zero', not a number"


def test_cells_csv_without_its_columns(finished):
    path = finished / "cells.csv"
    path.write_text("a,b\n1,2\n")
    assert _one_line_error(finished) == (f"{path}: missing column(s) cell_id, scenario, workload, repeat, status; "
                                         "not a goreclaim cells.csv")


def test_bad_json_manifest(finished):
    path = finished / "manifest.json"
    path.write_text(path.read_text()[:30])
    message = _one_line_error(finished)
    assert message.startswith(f"{path}: not valid JSON (") and "damaged or truncated" in message


def test_bad_cell_json(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="cut")
    cell_dir = store.save_cell(_result(1))
    (tmp_path / "cut" / "cells.csv").unlink()
    (cell_dir / "cell.json").write_text("[1, 2]")
    assert _one_line_error(tmp_path / "cut") == f"{cell_dir / 'cell.json'}: expected a JSON object, found list"


@pytest.mark.parametrize("version", [7, "2", True, 0])
def test_unknown_version(finished, version):
    path = finished / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["manifest_version"] = version
    path.write_text(json.dumps(manifest))
    assert _one_line_error(finished) == (f"{path}: manifest_version {version} is not one this goreclaim "
                                         "reads (1, 2)")


@pytest.mark.parametrize("name", ["samples.parquet", "events.parquet", "cells.csv"])
def test_complete_run_missing_a_file(finished, name):
    (finished / name).unlink()
    assert _one_line_error(finished) == f"{finished / name}: missing, though the manifest says the run is complete"


def test_results_directory_under_a_file(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(StoreError) as info:
        RunStore.create(tmp_path / "file" / "results", {})
    assert str(info.value) == f"{tmp_path / 'file' / 'results'}: cannot create the results directory: Not a directory"


def test_results_directory_is_a_file(tmp_path):
    (tmp_path / "results").write_text("in the way")
    with pytest.raises(StoreError, match="cannot create the results directory"):
        RunStore.create(tmp_path / "results", {})


def test_cell_directory_missing_a_file(tmp_path):
    store = RunStore.create(tmp_path, {}, run_id="cut")
    cell_dir = store.save_cell(_result(1))
    (cell_dir / "samples.parquet").unlink()
    assert _one_line_error(tmp_path / "cut").startswith(f"{cell_dir / 'samples.parquet'}: missing; ")
