"""Every exporter on a small hand-made run: the grammar of benchstat.txt, summary.json against summary.csv."""

import json
import math
import re

import pandas as pd
import pytest

from harness.present import report
from harness.present.exporters import EXPORTERS, exporter
from harness.present.exporters.benchstat import benchmark_name, camel, unit_name
from harness.studies.article import ARTICLE
from tests.frames import CellSpec, alloc_release_spec, run_frames

BENCH_LINE = re.compile(r"^Benchmark\S+ 1( \S+ \S+)+$")
CONFIG_LINE = re.compile(r"^[a-z][^:\s]*: .+$")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    specs = [alloc_release_spec(f"alloc_release[freeos={f},r{r}]", repeat=r, freeos=f,
                                axes={"freeos": str(f).lower()}) for f in (True, False) for r in (0, 1)]
    specs.append(CellSpec("cache_growth[policy=lru]", [("baseline", 0), ("serve", 0.5)], 3.0,
                          curves={"rss": [(0, 5), (3, 30)], "heap_inuse": [(0, 1), (3, 25)]},
                          scenario="cache_growth", workload="cache-growth", axes={"policy": "lru"},
                          totals={"ops": 1000, "utime_s": 1, "stime_s": 0.1}))
    specs.append(CellSpec("oom_pressure[madvdontneed=0]", [], 1.0, scenario="oom_pressure", workload="pressure",
                          status="skipped", axes={"madvdontneed": "0"}))
    cells, samples, events = run_frames(specs)
    path = tmp_path_factory.mktemp("run")
    cells.to_csv(path / "cells.csv", index=False)
    samples.to_parquet(path / "samples.parquet")
    events.to_parquet(path / "events.parquet")
    (path / "manifest.json").write_text(json.dumps({
        "run_id": "test-run", "complete": True, "backend": "docker", "thp": "madvise",
        "host": {"arch": "x86_64", "cpus": 2}, "kernel": {"release": "6.18.0", "version": "#1 SMP"},
        "cgroup": {"memory_version": 2}}))
    report.write_report(path, ARTICLE)
    return path


def test_every_exporter_writes_its_file(run_dir):
    assert {e.file_name for e in EXPORTERS} >= {"report.md", "report.html", "claims.csv", "summary.csv",
                                                "summary.json", "benchstat.txt"}
    for e in EXPORTERS:
        assert (run_dir / e.file_name).stat().st_size > 0, e.file_name
    assert exporter("summary.json").file_name == "summary.json"


def test_benchstat_grammar(run_dir):
    lines = (run_dir / "benchstat.txt").read_text().splitlines()
    for line in lines:
        assert line == "" or BENCH_LINE.match(line) or CONFIG_LINE.match(line), line
    config = dict(line.split(": ", 1) for line in lines if CONFIG_LINE.match(line))
    assert config["goos"] == "linux" and config["goarch"] == "amd64" and config["cgroup"] == "v2"
    assert config["kernel"] == "6.18.0" and config["run-id"] == "test-run" and config["go"] == "1.27.3"
    bench = [line for line in lines if line.startswith("Benchmark")]
    # The skipped cell has no line; the repeats are lines of the same name.
    assert len(bench) == 5
    names = [line.split()[0] for line in bench]
    assert names.count("BenchmarkAllocRelease/freeos=true") == 2
    assert "BenchmarkCacheGrowth" in names
    fields = bench[0].split()[2:]
    units = dict(zip(fields[1::2], map(float, fields[::2]), strict=False))
    assert "peak-rss-bytes" in units and "gc-cpu-source" not in units
    assert all(math.isfinite(v) for v in units.values())


def test_benchstat_values_are_the_summary_in_base_units(run_dir):
    summary = pd.read_csv(run_dir / "summary.csv", index_col="cell_id")
    line = next(line for line in (run_dir / "benchstat.txt").read_text().splitlines()
                if line.startswith("BenchmarkCacheGrowth"))
    fields = line.split()[2:]
    units = dict(zip(fields[1::2], map(float, fields[::2]), strict=False))
    row = summary.loc["cache_growth[policy=lru]"]
    assert units["peak-rss-bytes"] == row["peak_rss"]
    assert units["cpu-sec"] == pytest.approx(row["cpu_s"])
    assert units["throughput-ops/s"] == pytest.approx(row["throughput"])


def test_benchstat_names():
    assert camel("alloc_release") == "AllocRelease"
    assert unit_name("peak_rss") == "peak-rss-bytes"
    assert unit_name("gc_cycles") == "gc-cycles"
    assert unit_name("gc_cpu_s") == "gc-cpu-sec"
    assert unit_name("throughput") == "throughput-ops/s"
    assert unit_name("freeos_p50_ns") == "freeos-p50-ns"
    assert unit_name("rss@release") == "rss-at-release-bytes"
    assert unit_name("gc_cpu_source") is None
    assert benchmark_name("gogc_sweep", "gogc=50, go_version=1.21.0, gomemlimit=off") == \
        "BenchmarkGogcSweep/gogc=50/gomemlimit=off"
    assert benchmark_name("idle_scavenger", "default") == "BenchmarkIdleScavenger"
    assert " " not in benchmark_name("s", "a=x y")


def test_summary_json_matches_summary_csv(run_dir):
    doc = json.loads((run_dir / "summary.json").read_text())
    summary = pd.read_csv(run_dir / "summary.csv", index_col="cell_id", keep_default_na=True)
    assert doc["provenance"]["run_id"] == "test-run"
    assert doc["units"]["peak_rss"] == "bytes" and doc["units"]["wall_s"] == "s"
    assert doc["units"]["rss@release"] == "bytes"
    assert [c["cell_id"] for c in doc["cells"]] == list(summary.index)
    for cell in doc["cells"]:
        row = summary.loc[cell["cell_id"]]
        assert set(cell["metrics"]) == set(summary.columns)
        for metric, value in cell["metrics"].items():
            expected = row[metric]
            if isinstance(expected, str):
                assert value == expected
            elif value is None or value == "":  # csv writes both as an empty field
                assert pd.isna(expected), (cell["cell_id"], metric)
            else:
                assert value == pytest.approx(float(expected), rel=1e-12), (cell["cell_id"], metric)
    skipped = next(c for c in doc["cells"] if c["cell_id"] == "oom_pressure[madvdontneed=0]")
    assert skipped["status"] == "skipped" and skipped["scenario"] == "oom_pressure"
    assert skipped["configuration"]["madvdontneed"] == "0"
    assert "repeat" in skipped["outcome"] and "cell_id" not in skipped["outcome"]


def test_summary_json_is_deterministic(run_dir):
    first = (run_dir / "summary.json").read_bytes()
    report.write_report(run_dir, ARTICLE)
    assert (run_dir / "summary.json").read_bytes() == first
    assert b"NaN" not in first


def test_benchstat_carries_a_program_benchmarks_own_metrics():
    from pathlib import Path

    from harness.present.exporters.benchstat import benchmark_lines
    from harness.present.results import Results
    from harness.store.rundir import Run

    cells = pd.DataFrame({"cell_id": ["json[go=a,r0]", "json[go=b,r0]"], "scenario": ["json", "json"],
                          "go_version": ["1.21.13", "1.27.3"], "status": ["ok", "ok"]})
    summary = pd.DataFrame({"ns_per_op": [2.0e7, 1.0e7], "benchmark": ["BenchmarkCodeDecoder"] * 2},
                           index=cells["cell_id"])
    detail = [json.dumps({"metrics": {"ns/op": v, "frames/op": f}}) for v, f in ((2.0e7, 3.0), (1.0e7, 4.0))]
    events = pd.DataFrame({"cell_id": list(cells["cell_id"]) + ["json[go=a,r0]"], "kind": ["bench", "bench", "phase"],
                           "detail": detail + ["{}"]})
    lines = benchmark_lines(Results(Run(Path("json"), {}, cells, pd.DataFrame(), events), summary, pd.DataFrame()))
    bench = [line for line in lines if line.startswith("Benchmark")]
    assert bench == ["BenchmarkCodeDecoder 1 20000000.0 ns/op 3.0 frames/op",
                     "BenchmarkCodeDecoder 1 10000000.0 ns/op 4.0 frames/op"]
    assert lines.index("go: 1.21.13") < lines.index(bench[0]) < lines.index("go: 1.27.3") < lines.index(bench[1])
