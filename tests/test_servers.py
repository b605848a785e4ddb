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


# ------------------------------------------------------------------------------------------ watch


def free_port() -> int:
    from harness.run.ports import free_port as free

    return free()


def caddy_config(tmp_path: Path, listen: str, admin: str) -> Path:
    """A caddy JSON config: a static response on `listen`, its admin API (/debug/vars, /metrics) on `admin`."""
    import json

    config = {"admin": {"listen": admin},
              "apps": {"http": {"servers": {"s": {"listen": [listen],
                                                  "routes": [{"handle": [{"handler": "static_response",
                                                                          "body": "hello from caddy"}]}]}}}}}
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    return path


def wait_answering(port: int, timeout_s: float = 20.0) -> None:
    import time

    from harness.run.ports import answers

    deadline = time.monotonic() + timeout_s
    while not answers(port):
        assert time.monotonic() < deadline, f"nothing answers on 127.0.0.1:{port}"
        time.sleep(0.05)


@pytest.fixture
def caddy_process(tmp_path):
    """caddy started as a user would, GOGC=200 in its environment; (its Popen, its port, its admin port)."""
    import os
    import subprocess

    tools = need("caddy")
    port, admin = free_port(), free_port()
    config = caddy_config(tmp_path, f"127.0.0.1:{port}", f"127.0.0.1:{admin}")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GOGC": "200", "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path)}
    process = subprocess.Popen([tools["caddy"], "run", "--config", str(config)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answering(port)
        wait_answering(admin)
        yield process, port, admin
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, 9)
                process.wait()


def test_watch_caddy_by_pid_under_hey(tmp_path, caddy_process):
    import json
    import subprocess

    hey = need("hey")["hey"]
    process, port, admin = caddy_process
    load = subprocess.Popen([hey, "-z", "4s", "-c", "2", "-q", "300", f"http://127.0.0.1:{port}/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        results = tmp_path / "results"
        code = main(["watch", str(process.pid), "--duration", "3s", "--results", str(results),
                     "--metrics-url", f"http://127.0.0.1:{admin}/debug/vars"])
    finally:
        load.wait(30)
    assert code == 0
    assert process.poll() is None, "watch never stops the process"
    run_dir = run_dir_of(results)
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "watched" and cell["reason"] == "watched for 3s"
    assert cell["go_version"] == "1.19.8" or cell["go_version"].startswith("1.")
    assert cell["gogc"] == "200"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["watch"]["env"] == {"GOGC": "200"} and manifest["watch"]["build_settings"]["GOOS"] == "linux"
    samples = pd.read_parquet(run_dir / "samples.parquet")
    have = set(zip(samples["source"], samples["metric"], strict=True))
    assert {("proc", "vm_rss"), ("smaps", "rss"), ("runtime", "heap_alloc"), ("runtime", "stack_sys")} <= have
    assert (run_dir / "figures" / "where_is_my_memory.png").stat().st_size > 0
    report = (run_dir / "report.md").read_text()
    assert "## Where is its memory?" in report and "## What applies to it" in report
    assert "GOGC=200" in report and "live heap" in report and "not Go's" in report
    assert (run_dir / "summary.json").exists() and (run_dir / "benchstat.txt").exists()
    # caddy shares the test's own memory cgroup: its usage is not caddy's alone, and the report says so.
    shared = json.loads((run_dir / "manifest.json").read_text())["watch"]["cgroup_processes"] - 1
    assert shared >= 1 and f"its memory cgroup holds {shared} other process" in report


def test_a_process_that_exits_during_the_watch_ends_it(tmp_path):
    import subprocess
    import sys

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(8 << 20); time.sleep(1.5)"])
    try:
        results = tmp_path / "results"
        code = main(["watch", str(sleeper.pid), "--duration", "60s", "--results", str(results)])
    finally:
        sleeper.wait(30)
    assert code == 0
    cell = cells_of(run_dir_of(results)).iloc[0]
    # The reason, not the wall time, shows the exit ended the watch before its 60 s: no speed is asserted.
    assert cell["status"] == "watched" and "exited during the watch" in cell["reason"]
    assert float(cell["peak_rss_bytes"]) > 8 << 20


def test_watch_says_why_it_cannot(tmp_path, capsys):
    import os
    import subprocess
    import sys

    for target, said in ((str(2 ** 22 + 12345), "no such process"),
                         ("goreclaim-no-such-container-xyz", "no such container"),
                         (str(tmp_path / "no-cgroup"), "no such cgroup directory"),
                         (str(tmp_path), "not a memory cgroup (no memory.current or memory.usage_in_bytes in it)")):
        code = main(["watch", target, "--results", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists()
    if os.geteuid() != 0:
        pytest.skip("not root: cannot run the watch as another user to show it may not read pid 1")
    # A user who may not read another user's /proc/PID: nobody watching pid 1.
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                          "harness", "watch", "1", "--results", str(tmp_path / "nobody")],
                         capture_output=True, text=True, env={**os.environ, "MPLCONFIGDIR": str(tmp_path)},
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 2, out.stderr
    assert "pid 1: cannot read /proc/1/environ: permission denied" in out.stderr


def test_watch_a_container_started_by_hand(tmp_path, backend_or_skip, capsys):
    import json

    tools = need("caddy", "hey")
    backend_or_skip("docker")
    from harness.build.docker_client import docker_client
    from harness.build.image import ensure_image
    from harness.build.program import build_program
    from harness.define.workloads import Program
    from harness.run.leftovers import owner_labels

    # caddy FROM scratch, as the docker backend builds a program's image; started as a user would.
    tag = ensure_image(build_program(Program(kind="binary", name="caddy", binary=tools["caddy"])))
    port, admin = free_port(), free_port()
    config = caddy_config(tmp_path, ":8080", "0.0.0.0:2019")
    client = docker_client()
    labels = {"goreclaim": "1", **owner_labels()}   # removed by `goreclaim clean` if this test is killed
    options = dict(entrypoint=[tools["caddy"]], command=["run", "--config", "/caddy.json"], detach=True,
                   volumes={str(config): {"bind": "/caddy.json", "mode": "ro"}}, tmpfs={"/tmp": ""},
                   environment={"HOME": "/tmp", "XDG_CONFIG_HOME": "/tmp", "XDG_DATA_HOME": "/tmp"},
                   mem_limit=256 << 20, labels=labels,
                   ports={"8080/tcp": ("127.0.0.1", port), "2019/tcp": ("127.0.0.1", admin)})
    name = f"goreclaim-watch-test-{port}"
    idle = client.containers.create(tag, name=f"{name}-idle", **{k: v for k, v in options.items()
                                                                  if k not in ("detach", "ports")})
    container = client.containers.run(tag, name=name, **options)
    try:
        code = main(["watch", idle.name, "--results", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 2 and f"container {idle.name} is not running (status created)" in err, err
        wait_answering(port)
        wait_answering(admin)
        results = tmp_path / "results"
        code = main(["watch", name, "--duration", "2s", "--results", str(results),
                     "--metrics-url", f"http://127.0.0.1:{admin}/metrics"])
        assert code == 0
        container.reload()
        assert container.status == "running", "watch never stops the container"
    finally:
        for c in (container, idle):
            c.remove(force=True)
    run_dir = run_dir_of(results)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["watch"]["named"].startswith(f"container {name} (")
    assert manifest["watch"]["limits"]["memory_max"] == 256 << 20
    cell = cells_of(run_dir).iloc[0]
    assert cell["status"] == "watched" and int(cell["memory_limit_bytes"]) == 256 << 20
    samples = pd.read_parquet(run_dir / "samples.parquet")
    assert {"proc", "cgroup", "smaps", "runtime"} <= set(samples["source"])   # the runtime from its Prometheus page
    report = (run_dir / "report.md").read_text()
    assert "GOMEMLIMIT is unset in a cgroup limited to 256MiB" in report


def test_ctrl_c_ends_the_watch_not_the_process(tmp_path, caddy_process):
    import os
    import signal
    import subprocess
    import sys

    process, _, _ = caddy_process
    results = tmp_path / "results"
    watcher = subprocess.Popen([sys.executable, "-m", "harness", "watch", str(process.pid), "--results", str(results)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=Path(__file__).parent.parent, env={**os.environ, "MPLCONFIGDIR": str(tmp_path)})
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        assert first.startswith(f"watching pid {process.pid}: "), first
        watcher.send_signal(signal.SIGINT)
        rest, _ = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, rest
    assert "stopped by Ctrl-C after" in rest and process.poll() is None
    cell = cells_of(run_dir_of(results)).iloc[0]
    assert cell["status"] == "watched" and "stopped by Ctrl-C" in cell["reason"]


def test_watch_a_cgroup_path_finds_its_process(tmp_path, backend_or_skip):
    import json
    import subprocess
    import sys

    backend_or_skip("cgroup")
    from harness.run.leftovers import CGROUP_PREFIX, owner_tag
    from harness.run.observe.cgroupfs import create_memory_cgroup

    # A memory cgroup named as the cgroup backend names its own (so `goreclaim clean` removes it if this test is
    # killed), limited to 128 MiB, holding a small process that holds 24 MiB.
    cgroup = create_memory_cgroup(f"{CGROUP_PREFIX}{owner_tag()}-90001", 128 << 20)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(24 << 20); "
                               "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        cgroup.add_process(holder.pid)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        results = tmp_path / "results"
        code = main(["watch", str(cgroup.path), "--duration", "1s", "--results", str(results)])
        assert code == 0
    finally:
        holder.kill()
        holder.wait()
        cgroup.remove()
    run_dir = run_dir_of(results)
    watch = json.loads((run_dir / "manifest.json").read_text())["watch"]
    assert watch["pid"] == holder.pid and watch["named"] == f"cgroup {cgroup.path}"
    assert watch["limits"]["memory_max"] == 128 << 20 and watch["go_version"] == ""
    assert watch["cgroup_processes"] == 1 and "other process" not in (run_dir / "report.md").read_text()
    cell = cells_of(run_dir).iloc[0]
    assert float(cell["peak_rss_bytes"]) > 24 << 20 and float(cell["peak_cgroup_bytes"]) > 24 << 20
    assert "No Go build information in its binary" in (run_dir / "report.md").read_text()
