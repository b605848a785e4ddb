"""Programs nobody here wrote, under the matrix: a binary (Go or not), a Go package, a package's
benchmarks. Bad input is one line and exit 2 with nothing left behind; real runs use programs that
come with the Go toolchain goreclaim installs, and skip with the reason where that, Docker or a
memory cgroup is missing."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from harness.define.errors import ScenarioError
from harness.define.matrix import expand
from harness.define.scenario import load, parse_program, program_scenario
from harness.define.workloads import NOT_GO
from harness.drive.cli import main
from harness.run.observe.telemetry import parse_bench, parse_gctrace
from harness.run.outcome import classify

# The system's python3: a dynamically linked program that is not Go (a pyenv shim would be a script).
PYTHON = os.path.realpath("/usr/bin/python3") if os.path.exists("/usr/bin/python3") else None


def goroot() -> Path:
    from harness.build import toolchain

    try:
        return toolchain.resolve().goroot
    except toolchain.ToolchainError as e:
        pytest.skip(f"no Go toolchain: {e}")


def leftovers(run_ids: set[str]) -> list[str]:
    """Scratch directories and cgroups of this process, and goreclaim containers of these runs (not
    those of another process's run on the same daemon)."""
    found = [str(p) for p in Path(tempfile.gettempdir()).glob(f"goreclaim-scratch-{os.getpid()}-*")]
    from harness.run.observe.cgroupfs import list_leftovers

    try:
        found += [str(getattr(c, "path", c)) for c in list_leftovers(f"goreclaim-{os.getpid()}-")]
    except OSError:
        pass
    try:
        import docker

        client = docker.from_env(timeout=10)
        found += [c.id for c in client.containers.list(all=True, filters={"label": "goreclaim=1"})
                  if c.labels.get("goreclaim.run") in run_ids]
    except Exception:  # noqa: BLE001 - no Docker here: no containers either
        pass
    return found


def run_program(tmp_path: Path, *argv: str) -> tuple[int, Path | None]:
    """goreclaim run in this process; (exit status, the run directory or None)."""
    results = tmp_path / "results"
    code = main(["run", "--results", str(results), *argv])
    runs = sorted(results.iterdir()) if results.is_dir() else []
    assert not leftovers({run.name for run in runs})
    return code, (runs[-1] if runs else None)


def cells_of(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "cells.csv", dtype=str, keep_default_na=False)


def summary_of(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "summary.csv").set_index("cell_id")


# ------------------------------------------------------------------------------------ bad input


def check_usage_error(tmp_path, capsys, argv, *fragments):
    code, run_dir = run_program(tmp_path, *argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert run_dir is None, "nothing is written for bad input"
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    return err


def test_missing_binary(tmp_path, capsys):
    check_usage_error(tmp_path, capsys, ["--program", str(tmp_path / "nope")],
                      "--program:", "no such file", "valid: a path to an executable file")


def test_binary_that_is_not_executable(tmp_path, capsys):
    data = tmp_path / "data.txt"
    data.write_text("x")
    data.chmod(0o644)
    check_usage_error(tmp_path, capsys, ["--program", str(data)], "--program:", "not executable")


def test_bad_mount_and_idle_are_named(tmp_path, capsys):
    err = check_usage_error(tmp_path, capsys, ["--program", "/bin/true", "--mount", str(tmp_path / "gone") + ":ro",
                                               "--idle", "soon"], "--mount:", "does not exist", "--idle:")
    assert len(err.strip().splitlines()) == 2  # every error at once, one line each


def test_go_axis_does_not_apply_to_a_binary(tmp_path, capsys):
    check_usage_error(tmp_path, capsys, ["--program", "/bin/true", "--matrix", "go=1.21.13"],
                      "go axis does not apply to a binary")


def test_program_options_need_program(tmp_path, capsys):
    check_usage_error(tmp_path, capsys, ["--idle", "1s", "alloc_release"], "--idle: only with --program")


def test_package_outside_any_module(tmp_path, capsys):
    pkg = tmp_path / "cmd" / "x"
    pkg.mkdir(parents=True)
    (pkg / "main.go").write_text("package main\nfunc main() {}\n")
    scenario = tmp_path / "prog_outside.toml"
    scenario.write_text('description = "a package outside any module"\n[program]\npackage = "./cmd/x"\n')
    check_usage_error(tmp_path, capsys, [str(scenario)], f"{scenario}: program.package:",
                      "outside any Go module (no go.mod")


def test_program_table_errors_together(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_text(tmp_path, '[program]\nbench = "encoding/json"\nbenchtime = "often"\nwho = 1\n')
    text = "\n".join(info.value.errors)
    assert "program.run: required with bench" in text
    assert "program.benchtime: 'often' is not a benchtime" in text
    assert "program.who: unknown key" in text
    assert "description: required" in text


def test_workload_and_program_are_exclusive(tmp_path):
    with pytest.raises(ScenarioError, match="either a built-in `workload` or a \\[program\\]"):
        load_text(tmp_path, 'description = "x"\nworkload = "alloc-release"\n[program]\nbinary = "/bin/true"\n')


def load_text(tmp_path: Path, text: str):
    path = tmp_path / "prog_case.toml"
    path.write_text(text)
    return load(path)


# ------------------------------------------------------------------------------------ descriptors


def test_binary_cells_carry_the_program_and_its_arguments():
    program, errors = parse_program({"binary": "/bin/true", "args": ["-x", "y"]}, Path("/"), str)
    assert not errors
    cells = expand(program_scenario(program), {"gogc": ["50", "200"], "memory": ["256MiB"]})
    assert [c.cell_id for c in cells] == ["true[gogc=50,r0]", "true[gogc=200,r0]"]
    assert all(c.program == program and c.args == ("-x", "y") for c in cells)
    assert cells[0].memory_limit_bytes == 256 << 20


def test_package_and_bench_take_the_go_axis(tmp_path):
    (tmp_path / "go.mod").write_text("module example.com/m\n")
    (tmp_path / "cmd").mkdir()
    scenario = load_text(tmp_path, 'description = "x"\n[program]\nbench = "./cmd"\nrun = "BenchmarkA"\n'
                                   'benchtime = "3x"\n[matrix]\ngo = ["1.21.13", "default"]\n')
    program = scenario.program
    assert program.kind == "bench" and program.module == str(tmp_path) and program.versioned
    cells = expand(scenario)
    assert [c.go_version for c in cells][0] == "1.21.13"
    assert cells[0].args == ("-test.run=^$", "-test.bench=BenchmarkA", "-test.benchmem", "-test.benchtime=3x")


def test_mount_defaults_to_its_own_path(tmp_path):
    program, errors = parse_program({"binary": "/bin/true", "mounts": [f"{tmp_path}:ro", f"{tmp_path}:/data"]},
                                    Path("/"), str)
    assert not errors
    assert [m.text() for m in program.mounts] == [f"{tmp_path}:{tmp_path}:ro", f"{tmp_path}:/data"]


def test_a_program_that_exits_non_zero_is_exited_not_failed():
    status, reason = classify(exit_code=2, oom_killed=False, timed_out=False, interrupted=False,
                              stderr_tail="bad.go:2:6: expected 'IDENT'", timeout_s=60, program=True)
    assert status == "exited" and "status 2" in reason and "expected 'IDENT'" in reason
    assert classify(exit_code=-15, oom_killed=False, timed_out=False, interrupted=False, stderr_tail="",
                    timeout_s=60, program=True, stopped="stopped with SIGTERM")[0] == "ok"
    # A built-in workload's non-zero exit stays a failure.
    assert classify(exit_code=2, oom_killed=False, timed_out=False, interrupted=False, stderr_tail="",
                    timeout_s=60)[0] == "failed"


def test_benchmark_and_gctrace_lines():
    bench = parse_bench("BenchmarkCodeDecoder-2   \t     100\t  12279593 ns/op\t 158.02 MB/s\t 2385164 B/op\t"
                        "   77620 allocs/op\t 3.5 widgets/op")
    assert bench == {"name": "BenchmarkCodeDecoder", "procs": 2, "iterations": 100,
                     "metrics": {"ns/op": 12279593.0, "MB/s": 158.02, "B/op": 2385164.0, "allocs/op": 77620.0,
                                 "widgets/op": 3.5}}
    assert parse_bench("BenchmarkX is fast") is None
    gc = parse_gctrace("gc 7 @0.5s 2%: 0.01+0.4+0.003 ms clock, 0.02+0.1/0.3/0+0.006 ms cpu, 4->4->0 MB, "
                       "5 MB goal, 2 P")
    assert gc["cpu_s"] == pytest.approx(0.426e-3)


# ------------------------------------------------------------------------------------ the build stage


def test_go_version_and_elf_closure_of_binaries():
    from harness.build.elf import elf_closure
    from harness.build.program import go_version_of_binary

    gofmt = goroot() / "bin" / "gofmt"
    assert go_version_of_binary(gofmt)  # "1.27.3": read from its build information
    assert elf_closure(gofmt) == []      # static: nothing besides it
    if not PYTHON:
        pytest.skip("no python3 on PATH for a dynamically linked non-Go program")
    assert go_version_of_binary(PYTHON) is None
    closure = {inside: host for host, inside in elf_closure(PYTHON)}
    from harness.build.elf import Elf

    assert Elf(PYTHON).interpreter() in closure
    assert any(Path(inside).name.startswith("libc.so") for inside in closure)


# ------------------------------------------------------------------------------------ real runs


def test_gofmt_under_gogc_with_a_limit(tmp_path, limiting_backend):
    root = goroot()
    tree = root / "src" / "cmd" / "vendor"  # enough parsing for GC cycles at GOGC=200 too
    code, run_dir = run_program(tmp_path, "--backend", limiting_backend, "--program", str(root / "bin" / "gofmt"),
                                "--matrix", "gogc=50,200", "--matrix", "memory=256MiB",
                                "--mount", f"{tree}:ro", "--", "-l", str(tree))
    assert code == 0
    cells = cells_of(run_dir)
    assert list(cells["status"]) == ["ok", "ok"]
    assert set(cells["go_version"]) != {NOT_GO}
    summary = summary_of(run_dir)
    assert (summary["gc_cycles"] > 0).all() and (summary["peak_rss"] > 0).all()
    report = (run_dir / "report.md").read_text()
    assert "GC cycles" in report and "peak RSS" in report and "in plain words" not in report  # not the claims report
    assert json.loads((run_dir / "manifest.json").read_text())["programs"][0]["kind"] == "binary"


def test_batch_program_exiting_non_zero_is_recorded_as_exited(tmp_path, limiting_backend):
    bad = tmp_path / "tree"
    bad.mkdir()
    (bad / "bad.go").write_text("package x\nfunc {\n")
    code, run_dir = run_program(tmp_path, "--backend", limiting_backend, "--program",
                                str(goroot() / "bin" / "gofmt"), "--matrix", "memory=128MiB",
                                "--mount", f"{bad}:ro", "--", "-l", str(bad))
    assert code == 0  # the program's outcome, not a harness error
    cell = cells_of(run_dir).iloc[0]
    assert (cell["status"], cell["exit_code"]) == ("exited", "2")
    assert "expected 'IDENT'" in cell["reason"]
    (stderr,) = run_dir.glob("cells/*/stderr.txt")
    assert "expected 'IDENT'" in stderr.read_text()
    assert "expected 'IDENT'" in (run_dir / "report.md").read_text()


def test_dynamically_linked_non_go_program_in_a_scratch_image(tmp_path, backend_or_skip):
    backend_or_skip("docker")
    if not PYTHON:
        pytest.skip("no python3 on PATH")
    stdlib = Path("/usr/lib") / Path(PYTHON).name  # /usr/lib/python3.11 for /usr/bin/python3.11
    if not stdlib.is_dir():
        pytest.skip(f"no {stdlib} to mount for {PYTHON}")
    code, run_dir = run_program(tmp_path, "--backend", "docker", "--program", PYTHON, "--matrix", "memory=256MiB",
                                "--mount", f"{stdlib}:ro", "--", "-c",
                                "x = [bytearray(1 << 20) for _ in range(64)]; del x; print('freed')")
    assert code == 0
    cell = cells_of(run_dir).iloc[0]
    assert (cell["status"], cell["go_version"]) == ("ok", NOT_GO), cell["reason"]
    assert int(cell["peak_rss_bytes"]) > 64 << 20
    (stdout,) = run_dir.glob("cells/*/stdout.txt")
    assert stdout.read_text() == "freed\n"


def test_idle_then_stop_and_a_program_that_ignores_sigterm(tmp_path, backend_or_skip):
    # The cgroup backend runs a shell script in place (in a scratch image `sleep` would be missing).
    backend_or_skip("cgroup")
    code, run_dir = run_program(tmp_path, "--backend", "cgroup", "--program", "/bin/sh",
                                "--matrix", "memory=64MiB", "--idle", "300ms", "--grace", "300ms",
                                "--", "-c", "trap '' TERM; sleep 30")
    assert code == 0
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "ok" and "killed with SIGKILL" in cell["reason"]
    events = pd.read_parquet(run_dir / "events.parquet")
    phases = events[events["kind"] == "phase"]["name"].astype(str).tolist()
    assert phases == ["start", "idle", "stop"]


def test_package_built_per_go_version_and_a_build_failure(tmp_path, limiting_backend):
    root = goroot()
    module = tmp_path / "mod"
    (module / "cmd" / "ok").mkdir(parents=True)
    (module / "cmd" / "broken").mkdir(parents=True)
    (module / "go.mod").write_text("module example.com/m\n\ngo 1.21\n")
    (module / "cmd" / "ok" / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() {\n\tb := make([]byte, 8<<20)\n\tfmt.Println(len(b))\n}\n')
    (module / "cmd" / "broken" / "main.go").write_text("package main\n\nfunc main() { undefined() }\n")
    for name in ("ok", "broken"):
        (tmp_path / f"prog_{name}.toml").write_text(
            f'description = "a main package"\n[program]\npackage = "./mod/cmd/{name}"\n'
            f'[limits]\nmemory = "64MiB"\n[matrix]\ngo = ["{root}"]\n')
    code, run_dir = run_program(tmp_path, "--backend", limiting_backend, str(tmp_path / "prog_ok.toml"),
                                str(tmp_path / "prog_broken.toml"))
    assert code == 1  # a build failure fails the run; the other cells ran
    cells = cells_of(run_dir).set_index("scenario")
    assert cells.at["prog_ok", "status"] == "ok"
    assert cells.at["prog_broken", "status"] == "build_failed"
    assert "undefined: undefined" in cells.at["prog_broken", "reason"]
    (stdout,) = [p for p in run_dir.glob("cells/*/stdout.txt") if "prog_ok" in p.parent.name]
    assert stdout.read_text().strip() == str(8 << 20)


def test_unknown_benchmark_is_a_build_failure_naming_the_benchmarks(tmp_path, limiting_backend):
    scenario = tmp_path / "prog_nobench.toml"
    scenario.write_text('description = "x"\n[program]\nbench = "unicode/utf8"\nrun = "BenchmarkNoSuchThing"\n'
                        '[limits]\nmemory = "64MiB"\n')
    code, run_dir = run_program(tmp_path, "--backend", limiting_backend, str(scenario))
    assert code == 1
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "build_failed"
    assert "no benchmark of unicode/utf8 matches run='BenchmarkNoSuchThing'" in cell["reason"]
    assert "BenchmarkRuneCountTenASCIIChars" in cell["reason"]


def test_benchmarks_over_two_go_versions(tmp_path, limiting_backend):
    from harness.build import toolchain

    try:
        toolchain.resolve("1.21.13")
    except toolchain.ToolchainError as e:
        pytest.skip(f"Go 1.21.13 is not available here: {e}")
    scenario = tmp_path / "prog_utf8.toml"
    scenario.write_text('description = "a standard library benchmark on two Go versions"\n[program]\n'
                        'bench = "unicode/utf8"\nrun = "BenchmarkRuneCountTenASCIIChars$"\nbenchtime = "300ms"\n'
                        '[limits]\nmemory = "128MiB"\n[matrix]\ngo = ["1.21.13", "default"]\n')
    code, run_dir = run_program(tmp_path, "--backend", limiting_backend, str(scenario))
    assert code == 0
    cells = cells_of(run_dir)
    assert list(cells["status"]) == ["ok", "ok"]
    assert cells["go_version"].iloc[0] == "1.21.13"
    summary = summary_of(run_dir)
    assert (summary["ns_per_op"] > 0).all() and (summary["peak_rss"] > 0).all()
    assert set(summary["benchmark"]) == {"BenchmarkRuneCountTenASCIIChars"}
    bench = (run_dir / "benchstat.txt").read_text()
    assert "go: 1.21.13" in bench and f"go: {cells['go_version'].iloc[1]}" in bench
    lines = [ln for ln in bench.splitlines() if ln.startswith("BenchmarkRuneCountTenASCIIChars ")]
    assert len(lines) == 2 and all(" ns/op" in ln and " peak-rss-bytes" in ln for ln in lines)
    assert "time per op" in (run_dir / "report.md").read_text()


def test_ctrl_c_during_a_program_leaves_nothing_behind(tmp_path, backend_or_skip):
    import signal
    import subprocess
    import sys
    import time

    from harness.run.observe.cgroupfs import list_leftovers

    backend_or_skip("cgroup")
    marker = "61.4321"  # a sleep nobody else runs: found in /proc after the run if it survived
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    harness = subprocess.Popen([sys.executable, "-m", "harness", "run", "--results", str(tmp_path / "results"),
                                "--backend", "cgroup", "--program", "/bin/sh", "--matrix", "memory=64MiB",
                                "--idle", "60s", "--", "-c", f"sleep {marker}"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def sleeping() -> bool:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                data = cmdline.read_bytes()
                if marker.encode() in data and b"harness" not in data:  # the program, not the harness
                    return True
            except OSError:
                continue
        return False

    try:
        deadline = time.monotonic() + 300  # until the program runs (or the harness has given up); bounds a hang
        while not sleeping() and harness.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeping(), harness.communicate()[0] if harness.poll() is not None else "program never started"
        harness.send_signal(signal.SIGINT)
        out, _ = harness.communicate(timeout=300)
    finally:
        if harness.poll() is None:
            harness.kill()
    assert harness.returncode == 130, out
    assert "Traceback" not in out
    assert not sleeping()
    assert not list_leftovers(f"goreclaim-{harness.pid}-")
    assert not list(Path(tempfile.gettempdir()).glob(f"goreclaim-scratch-{harness.pid}-*"))
    (run_dir,) = (tmp_path / "results").iterdir()
    assert cells_of(run_dir)["status"].tolist() == ["interrupted"]


def test_gc_figures_of_a_program_come_from_gctrace():
    from harness.analyse.summary import summarize

    cells = pd.DataFrame({"cell_id": ["go", "quiet", "c"], "workload": ["p", "p", "p"]})
    start = json.dumps({"env": {"GODEBUG": "madvdontneed=1,gctrace=1,scavtrace=1"}})
    line = "gc 3 @0.5s 2%: 0.01+0.4+0.003 ms clock, 1+2/3/0+4 ms cpu, 4->4->0 MB, 5 MB goal, 2 P"
    events = pd.DataFrame([
        ("go", 0.0, "start", "p", float("nan"), start),
        ("go", 0.5, "gc", "gc3", 4.0 * 2**20, json.dumps({"line": line, **parse_gctrace(line)})),
        ("quiet", 0.0, "start", "p", float("nan"), start),   # a Go program that never collected
        ("c", 0.0, "start", "p", float("nan"), json.dumps({"env": {"GODEBUG": ""}})),  # not Go: unknown
    ], columns=["cell_id", "t_s", "kind", "name", "value", "detail"])
    summary = summarize(cells, None, events)
    assert summary.at["go", "gc_cycles"] == 3 and summary.at["go", "gc_cpu_s"] == pytest.approx(0.010)
    assert summary.at["quiet", "gc_cycles"] == 0 and summary.at["quiet", "gc_cpu_s"] == 0
    assert pd.isna(summary.at["c", "gc_cycles"]) and pd.isna(summary.at["c", "gc_cpu_s"])


# ------------------------------------------------------------------------------------ servers

SERVER = Path(__file__).resolve().parent / "data" / "httpserver"
# A number of requests, not a length of time: each one happens however slow the host.
LOAD = ("import urllib.request as u\n"
        "for _ in range(20): u.urlopen('http://127.0.0.1:{port}/alloc?mb=16', timeout=300).read()")


def server_scenario(tmp_path: Path, backend: str, name: str, **program: str) -> Path:
    import sys

    # Inside a container the server listens on every interface of its own network namespace;
    # docker publishes the port on the host's 127.0.0.1 only. On the host it listens on 127.0.0.1.
    addr = ":{port}" if backend == "docker" else "127.0.0.1:{port}"
    # The test server leaves at once on SIGTERM: the grace and the ready timeout only bound a hang.
    table = {"package": str(SERVER), "args": ["-addr", addr], "ready": "tcp", "ready_timeout": "5m", "idle": "500ms",
             "grace": "2m",
             "metrics_url": "http://127.0.0.1:{port}/debug/vars", "load": {"command": [sys.executable, "-c", LOAD]},
             **program}
    table = {k: v for k, v in table.items() if v is not None}  # None: leave that key out
    lines = [f'description = "the test server: {name}"', "[program]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items() if not isinstance(v, dict)]
    if "load" in table:
        lines += ["[program.load]", f"command = {json.dumps(table['load']['command'])}"]
    lines += ["[limits]", 'memory = "128MiB"']
    path = tmp_path / f"prog_{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_docker_server_is_published_on_loopback_only_and_stopped(tmp_path, backend_or_skip, monkeypatch):
    """Docker's userland proxy stands between the host and the server; this checks what docker is
    asked for and the phases, without a load (the load's own test runs without the proxy)."""
    goroot()
    backend_or_skip("docker")
    from docker.models.containers import ContainerCollection

    created: list[dict] = []
    create = ContainerCollection.create

    def recording(self, *args, **kwargs):
        created.append(kwargs)
        return create(self, *args, **kwargs)

    monkeypatch.setattr(ContainerCollection, "create", recording)
    scenario = server_scenario(tmp_path, "docker", "published", load=None, metrics_url=None)
    code, run_dir = run_program(tmp_path, "--backend", "docker", str(scenario))
    assert created
    for kwargs in created:  # the port is published on the host's loopback only
        assert kwargs["ports"] and all(host == "127.0.0.1" for host, _ in kwargs["ports"].values())
    cell = cells_of(run_dir).iloc[0]
    assert code == 0 and cell["status"] == "ok", cell["reason"]
    events = pd.read_parquet(run_dir / "events.parquet")
    assert events[events["kind"] == "phase"]["name"].astype(str).tolist() == ["start", "ready", "idle", "stop"]


def test_a_server_goes_through_ready_load_idle_and_stop(tmp_path, backend_or_skip):
    goroot()
    backend_or_skip("cgroup")
    code, run_dir = run_program(tmp_path, "--backend", "cgroup", str(server_scenario(tmp_path, "cgroup", "phases")))
    cell = cells_of(run_dir).iloc[0]
    assert code == 0, cell["reason"]
    assert cell["status"] == "ok" and "stopped with SIGTERM after the idle phase" in cell["reason"]
    events = pd.read_parquet(run_dir / "events.parquet")
    assert events[events["kind"] == "phase"]["name"].astype(str).tolist() == ["start", "ready", "load", "idle",
                                                                              "stop"]
    summary = summary_of(run_dir)
    assert summary["gc_cycles"].iloc[0] > 0 and summary["peak_rss"].iloc[0] > 16 << 20
    samples = pd.read_parquet(run_dir / "samples.parquet")
    heap = samples[(samples["source"] == "runtime") & (samples["metric"] == "heap_alloc")]
    assert len(heap) > 0 and summary["heap_alloc@load"].iloc[0] > 0  # from its expvar page
    report = (run_dir / "report.md").read_text()
    assert "What each tool shows" in report and "Go HeapAlloc" in report   # from its expvar page
    (stderr,) = run_dir.glob("cells/*/stderr.txt")
    assert "SIGTERM: exiting" in stderr.read_text()


def test_a_server_that_never_gets_ready_and_a_load_that_fails(tmp_path, backend_or_skip):
    import sys

    goroot()
    backend_or_skip("cgroup")
    never = server_scenario(tmp_path, "cgroup", "never", ready="log:never printed", ready_timeout="500ms")
    broken = server_scenario(tmp_path, "cgroup", "broken")
    text = broken.read_text().replace(json.dumps([sys.executable, "-c", LOAD]),
                                      json.dumps([sys.executable, "-c", "print('no route to it'); exit(3)"]))
    broken.write_text(text)
    code, run_dir = run_program(tmp_path, "--backend", "cgroup", str(never), str(broken))
    assert code == 1
    cells = cells_of(run_dir).set_index("scenario")
    assert cells.at["prog_never", "status"] == "not_ready"
    assert "not ready (log:never printed) within 0.5s" in cells.at["prog_never", "reason"]
    assert cells.at["prog_broken", "status"] == "load_failed"
    assert "exited with status 3; output: no route to it" in cells.at["prog_broken", "reason"]


def test_bad_ready_and_load_are_named(tmp_path, capsys):
    err = check_usage_error(tmp_path, capsys, ["--program", "/bin/true", "--ready", "http:80", "--load", "'open"],
                            "--ready: 'http:80' is not a readiness check (valid: tcp", "--load:")
    assert len(err.strip().splitlines()) == 2


def test_program_figure_draws_the_gctrace_heap():
    from harness.analyse.summary import split_by_cell
    from harness.present import plots

    line = "gc 1 @0.1s 1%: 0.01+0.4+0.003 ms clock, 0.02+0.1/0.3/0+0.006 ms cpu, 8->9->4 MB, 9 MB goal, 2 P"
    events = pd.DataFrame([("c", 0.1, "gc", "gc1", 9.0 * 2**20, json.dumps({"line": line, **parse_gctrace(line)}))],
                          columns=["cell_id", "t_s", "kind", "name", "value", "detail"])
    samples = pd.DataFrame([("c", t, "proc", "vm_rss", 20.0 * 2**20) for t in (0.0, 0.2)],
                           columns=["cell_id", "t_s", "source", "metric", "value"])
    data = split_by_cell(samples, events)
    assert plots.gctrace_heap(data, "c")["heap goal (gctrace)"].tolist() == [9.0 * 2**20]
    fig = plots.memory_breakdown(data, pd.DataFrame({"cell_id": ["c"], "scenario": ["p"]}), "p",
                                 series=plots.PROGRAM_SERIES, gctrace=True)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"VmRSS", "live heap (gctrace)", "heap goal (gctrace)"} <= set(labels)


def test_a_port_already_taken_is_a_failed_cell(tmp_path, backend_or_skip):
    import socket

    backend_or_skip("cgroup")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, run_dir = run_program(tmp_path, "--backend", "cgroup", "--program", "/bin/true",
                                    "--matrix", "memory=64MiB", "--ready", f"tcp:{port}")
    assert code == 1
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "failed"
    assert f"port {port} on 127.0.0.1 is already taken by another process" in cell["reason"]


def test_metrics_pages_expvar_and_prometheus():
    from harness.run.observe.probes import parse_metrics_page

    assert parse_metrics_page('{"cmdline": [], "memstats": {"HeapAlloc": 10, "NumGC": 3, "BySize": []}}') == \
        {"heap_alloc": 10.0, "num_gc": 3.0}
    page = ("# HELP go_memstats_heap_alloc_bytes x\n# TYPE go_memstats_heap_alloc_bytes gauge\n"
            "go_memstats_heap_alloc_bytes 1.5e+06\ngo_gc_duration_seconds{quantile=\"0.5\"} 1e-05\n"
            "go_gc_duration_seconds_count 7\nprocess_resident_memory_bytes 9e+06\n")
    assert parse_metrics_page(page) == {"heap_alloc": 1.5e6, "num_gc": 7.0}
    assert parse_metrics_page("<html>") == {}


def test_a_script_on_docker_is_a_clear_failed_cell(tmp_path, backend_or_skip):
    backend_or_skip("docker")
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    code, run_dir = run_program(tmp_path, "--backend", "docker", "--program", str(script))
    assert code == 1
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "failed" and "is not an ELF executable (a script?)" in cell["reason"]


def test_a_program_that_exits_during_its_load(tmp_path, backend_or_skip):
    backend_or_skip("cgroup")
    marker = "7.6543"  # the load's sleep: it must not outlive the cell
    started = tmp_path / "load-started"
    # The program gives up once the load has started (2 min at most), so it exits during its load however
    # long the harness takes to get there.
    program = (f"i=0; while [ ! -e {started} ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done; "
               "echo giving up >&2; exit 4")
    code, run_dir = run_program(tmp_path, "--backend", "cgroup", "--program", "/bin/sh", "--matrix", "memory=64MiB",
                                "--ready", "delay:100ms", "--load", f"sh -c 'touch {started}; exec sleep {marker}'",
                                "--", "-c", program)
    assert code == 0
    cell = cells_of(run_dir).iloc[0]
    assert (cell["status"], cell["exit_code"]) == ("exited", "4") and "giving up" in cell["reason"]
    events = pd.read_parquet(run_dir / "events.parquet")
    assert events[events["kind"] == "phase"]["name"].astype(str).tolist() == ["start", "ready", "load"]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            data = cmdline.read_bytes()
        except OSError:
            continue
        assert not (marker.encode() in data and b"harness" not in data and b"pytest" not in data)


def test_a_batch_program_past_its_timeout(tmp_path, backend_or_skip, capsys):
    backend_or_skip("cgroup")
    code, run_dir = run_program(tmp_path, "--backend", "cgroup", "--program", "/bin/sh", "--matrix", "memory=64MiB",
                                "--timeout", "300ms", "--", "-c", "sleep 9.8765")
    assert code == 1
    assert cells_of(run_dir).iloc[0]["status"] == "timeout"
    check_usage_error(tmp_path / "bad", capsys, ["--program", "/bin/true", "--timeout", "0s"],
                      "--timeout: must be longer than 0s")


def test_ready_tcp_wants_a_connection_held_open(monkeypatch):
    import select
    import socket
    import threading

    from harness.run.ports import answers

    done = threading.Event()

    def serve(listener: socket.socket, hold: bool) -> None:
        conn, _ = listener.accept()
        if hold:
            done.wait(300)  # held open until answers() has judged it
        conn.close()  # at once, without hold: what docker's proxy does on a published port nothing listens behind

    connect = socket.create_connection

    def connected_once_closed(*args, **kwargs):
        # answers() sees a connection the server closed only once the close has arrived: which thread runs
        # first on a loaded host does not decide the verdict.
        conn = connect(*args, **kwargs)
        if not hold:
            select.select([conn], [], [], 300)
        return conn

    monkeypatch.setattr(socket, "create_connection", connected_once_closed)
    for hold in (True, False):
        done.clear()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            threading.Thread(target=serve, args=(listener, hold), daemon=True).start()
            assert answers(port) is hold
            done.set()
    assert answers(port) is False  # nothing listens any more
