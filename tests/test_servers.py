"""A real Go server from Debian, `caddy`, on 127.0.0.1 under Debian's `hey` and `wrk`: through
`run --program`, `watch` (a process the test starts, attached by PID, and on Docker by container) and
`advise --objective latency`. Request counts and durations are bounded; each test skips with the
reason where a program it needs is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.drive.cli import main


def need(*programs: str) -> dict[str, str]:
    found = {p: shutil.which(p) for p in programs}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})")
    return {p: str(path) for p, path in found.items()}


def run_dir_of(results: Path) -> Path:
    (run,) = sorted(results.iterdir())
    return run


def summary_of(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "summary.csv").set_index("cell_id")


def cells_of(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "cells.csv", dtype=str, keep_default_na=False)


CADDY_ARGS = ["--", "respond", "--listen", "127.0.0.1:{port}", "--body", "hello from caddy"]


@pytest.mark.parametrize("load", ["hey -n 2000 -c 4 http://127.0.0.1:{port}/",
                                  "wrk --latency -t1 -c4 -d1s http://127.0.0.1:{port}/"])
def test_run_program_caddy_under_a_load_generator(tmp_path, load):
    tools = need("caddy", load.split()[0])
    results = tmp_path / "results"
    code = main(["run", "--results", str(results), "--backend", "process", "--program", tools["caddy"],
                 "--ready", "tcp", "--load", load, "--idle", "200ms", "--grace", "3s", *CADDY_ARGS])
    assert code == 0
    run_dir = run_dir_of(results)
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "ok" and "not parsed" not in cell["reason"]
    summary = summary_of(run_dir).iloc[0]
    assert summary["load_rps"] > 0 and summary["load_errors"] == 0
    assert 0 < summary["load_p50_ns"] <= summary["load_p90_ns"] <= summary["load_p99_ns"] <= summary["load_max_ns"]
    (load_txt,) = run_dir.glob("cells/*/load.txt")
    assert "Requests/sec:" in load_txt.read_text()
    assert (run_dir / "figures" / "caddy_latency.png").stat().st_size > 0
    assert "load-p99-ns" in (run_dir / "benchstat.txt").read_text()
    report = (run_dir / "report.md").read_text()
    assert "latency p99" in report and "requests/s" in report


def test_a_load_whose_output_is_not_a_summary_is_run_kept_and_said(tmp_path):
    tools = need("caddy")
    results = tmp_path / "results"
    code = main(["run", "--results", str(results), "--backend", "process", "--program", tools["caddy"],
                 "--ready", "tcp", "--load", "sh -c 'echo made 3 requests'", "--grace", "3s", *CADDY_ARGS])
    assert code == 0
    run_dir = run_dir_of(results)
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "ok"
    assert "neither hey's summary nor wrk --latency's" in cell["reason"]
    (load_txt,) = run_dir.glob("cells/*/load.txt")
    assert load_txt.read_text().strip() == "made 3 requests"
    assert pd.isna(summary_of(run_dir).iloc[0]["load_p99_ns"])


def test_advise_a_server_by_its_latency(tmp_path, backend_or_skip):
    import json

    tools = need("caddy", "hey")
    backend_or_skip("cgroup")   # a memory limit, and caddy listening on the host's 127.0.0.1 as written
    results = tmp_path / "results"
    code = main(["advise", "--results", str(results), "--backend", "cgroup", "--program", tools["caddy"],
                 "--memory", "256MiB", "--gogc", "50,400", "--gomemlimit", "off", "--repeats", "2",
                 "--objective", "latency", "--budget", "10m", "--ready", "tcp",
                 "--load", "hey -n 1500 -c 4 http://127.0.0.1:{port}/", *CADDY_ARGS])
    assert code == 0
    run_dir = run_dir_of(results)
    doc = json.loads((run_dir / "advice.json").read_text())
    assert doc["performance"] == "load_p99_ns" and doc["objective"] == "latency"
    (rec,) = doc["recommendations"]
    assert rec["status"] in ("recommended", "inconclusive")
    assert rec["performance"] > 0 and rec["load_rps"] > 0   # p99 (ns) and requests/s of the choice
    configs = {(c["gogc"], c["gomemlimit"]): c for c in doc["configurations"]}
    assert set(configs) == {("50", "off"), ("400", "off")}
    assert all(c["class"] == "healthy" and c["perf_median"] > 0 and c["rps_median"] > 0 for c in configs.values())
    text = (run_dir / "advice.md").read_text()
    assert "latency p99" in text and "requests/s" in text and "objective *latency*" in text


def test_latency_objective_needs_a_load(tmp_path, capsys):
    tools = need("caddy")
    code = main(["advise", "--results", str(tmp_path / "results"), "--program", tools["caddy"], "--memory", "256MiB",
                 "--objective", "latency", "--ready", "tcp", "--idle", "1s", *CADDY_ARGS])
    err = capsys.readouterr().err
    assert code == 2 and "--objective latency: judges a server by its load generator" in err
    assert "Traceback" not in err and not (tmp_path / "results").exists()
