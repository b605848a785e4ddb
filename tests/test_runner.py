"""The runner: saving before returning, progress lines, build failures as results, and Ctrl-C.

The SIGINT tests run a real two-cell session in a subprocess and interrupt it during the second cell.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from backend_helpers import alloc_release

from harness.define.units import MiB
from harness.drive.session import RunSession, run_cells

REPO = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "sigint_driver.py"


def test_unknown_go_version_is_a_skipped_cell_not_an_exception(tmp_path):
    with RunSession(tmp_path, backend="process", run_id="badgo", log=lambda s: None) as session:
        r = session.run_cell(alloc_release("badgo", "--size=1MiB", go_version="not-a-version"))
        assert r.status == "skipped" and "not-a-version" in r.reason
        assert session.cells_run == 1
    manifest = json.loads((session.close(True) / "manifest.json").read_text())
    assert manifest["complete"] is True


def test_cell_naming_an_unavailable_backend_is_skipped(tmp_path, monkeypatch):
    import harness.build.image

    monkeypatch.setattr(harness.build.image, "docker_unavailable", lambda client=None: "no daemon here")
    with RunSession(tmp_path, backend="process", run_id="nodocker", log=lambda s: None) as session:
        r = session.run_cell(alloc_release("needs-docker", backend="docker"))
    assert r.status == "skipped" and "no daemon here" in r.reason


def test_run_cells_progress_and_results(tmp_path, go_build):
    lines: list[str] = []
    cells = [alloc_release(f"c{i}", "--size=8MiB", "--hold=100ms", "--idle=100ms", "--baseline=100ms")
             for i in range(2)]
    run_dir = run_cells(cells, tmp_path, backend="process", progress=lines.append)
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 2, lines
    for i, line in enumerate(progress, 1):
        assert re.fullmatch(rf"\[{i}/2\] c{i - 1} ok \d+\.\d+s elapsed \d+:\d\d eta \d+:\d\d", line), line
    assert any(line.startswith("backend process:") for line in lines), lines
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["backend"] == "process"


def _leftover_containers(run_id: str) -> list:
    import docker

    return docker.from_env().containers.list(all=True, filters={"label": f"goreclaim.run={run_id}"})


def _second_cell_allocated(name: str, driver: subprocess.Popen, run_id: str) -> bool:
    """The second cell's workload is past its 64 MiB allocation (VmHWM): running, and sampled since it started."""
    import psutil

    if name == "docker":
        pids = [c.attrs["State"]["Pid"] for c in _leftover_containers(run_id)
                if c.labels.get("goreclaim.cell") == "second" and c.status == "running"]
    else:
        pids = [c.pid for c in psutil.Process(driver.pid).children(recursive=True)
                if "--idle=120s" in c.cmdline()]
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        if hwm_kib * 1024 >= 64 * MiB:
            return True
    return False


@pytest.mark.parametrize("name", ["docker", "cgroup"])
def test_sigint_stops_cleans_up_and_keeps_what_was_measured(name, tmp_path, backend_or_skip, go_build):
    backend_or_skip(name)
    run_id = f"sigint-{name}-{os.getpid()}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # Started with SIGINT ignored, as a shell starts a background job: the session must still
    # turn an interrupt into a clean stop.
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(tmp_path), name, run_id], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    run_dir = None
    first_saved = False
    try:
        for line in proc.stdout:
            if line.startswith("RUN_DIR "):
                run_dir = Path(line.split(" ", 1)[1].strip())
            if line.strip() == "FIRST_SAVED":
                first_saved = True
                break
        assert first_saved and run_dir is not None and (run_dir / "cells").is_dir(), \
            proc.stderr.read() if proc.poll() is not None else ""
        # Into the second cell, past its allocation, whatever its start took; the deadline bounds a hang only.
        deadline = time.monotonic() + 300
        while not _second_cell_allocated(name, proc, run_id) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the driver ended before it could be interrupted"
        assert _second_cell_allocated(name, proc, run_id), "the second cell's workload never allocated"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # RunInterrupted is the KeyboardInterrupt that carries the partial cell.
    assert proc.returncode != 0 and ("KeyboardInterrupt" in err or "RunInterrupted" in err), err

    if name == "docker":
        assert _leftover_containers(run_id) == []
    else:
        from harness.run.observe.cgroupfs import list_leftovers

        assert list_leftovers(f"goreclaim-{proc.pid}-") == []

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is False

    from harness.store.rundir import load_run

    data = load_run(run_dir)
    cells = data.cells.set_index("cell_id")
    assert cells.loc["first", "status"] == "ok"
    assert cells.loc["second", "status"] == "interrupted"
    first_rss = data.samples[(data.samples.cell_id == "first") & (data.samples.metric == "vm_rss")]
    assert first_rss.value.max() >= 32 * MiB
    second = data.samples[data.samples.cell_id == "second"]
    assert len(second) > 0, "what was measured of the interrupted cell was lost"
