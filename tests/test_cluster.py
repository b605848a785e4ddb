"""Cells on a Dask cluster: needs as resources (pure), the scheduler keeping exclusive cells alone (a real
local cluster, no cells), and real cells through `goreclaim run --scheduler` on a `dask scheduler` and two
`dask worker` processes on localhost: a quick matrix, a worker killed mid-cell (lost, queued again, the run
completes), Ctrl-C leaving nothing behind, and parallel cells measuring what they measure alone."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.define.axes import contributions
from harness.define.cell import EXCLUSIVE, SHARED_SLICE, Cell, Needs, needs
from harness.define.errors import ScenarioError
from harness.define.scenario import discover, load
from harness.drive import plan as planning
from harness.drive.cluster import CpuPool, unplaceable
from harness.run.placement import cpu_list, parse_cpu_list

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def cell(cell_id="c", memory_limit_bytes=None, cpus=None, **kw) -> Cell:
    limits = {name: str(v) for name, v in (("memory", memory_limit_bytes), ("cpus", cpus)) if v is not None}
    return Cell(cell_id=cell_id, scenario="s", workload="alloc-release", args=(), **contributions(limits), **kw)


# ---------------------------------------------------------------------------------------------- needs (pure)


def test_needs_of_a_shared_and_an_exclusive_cell():
    shared = needs(cell(memory_limit_bytes=300 * MiB + 1, cpus=1.5))
    assert shared == Needs(cpus=2, memory_mib=301, exclusive=False)
    assert shared.resources() == {"cpus": 2.0, "memory": 301.0, EXCLUSIVE: SHARED_SLICE}
    alone = needs(cell(memory_limit_bytes=256 * MiB, exclusive=True))
    assert alone == Needs(cpus=1, memory_mib=256, exclusive=True)
    assert alone.resources()[EXCLUSIVE] == 1.0


def test_a_cell_without_a_memory_limit_has_the_host_to_itself():
    assert needs(cell()).exclusive and needs(cell()).memory_mib == 0


def test_shared_slices_add_up_exactly_so_an_exclusive_cell_can_follow():
    # The worker subtracts and adds the slices back as cells start and end: the token must come back whole.
    total = 1.0
    for _ in range(700):
        total -= SHARED_SLICE
    for _ in range(700):
        total += SHARED_SLICE
    assert total == 1.0 and int(1 / SHARED_SLICE) >= 1024


def test_fits_and_unplaceable():
    small = {"cpus": 1.0, "memory": 512.0, EXCLUSIVE: 1.0}
    assert needs(cell(memory_limit_bytes=512 * MiB)).fits(small)
    assert not needs(cell(memory_limit_bytes=513 * MiB)).fits(small)
    assert not needs(cell(memory_limit_bytes=MiB)).fits({"cpus": 1.0, "memory": 512.0})  # no token
    cells = [cell("a", memory_limit_bytes=256 * MiB), cell("big", memory_limit_bytes=4096 * MiB, cpus=2)]
    lines = unplaceable(cells, {"tcp://w1": small})
    assert len(lines) == 1 and "big" in lines[0] and "2 CPU(s), 4096 MiB" in lines[0]
    assert 'dask worker' in lines[0] and "exclusive=1" in lines[0]
    assert unplaceable(cells, {}) == ["the cluster has no worker"]
    assert unplaceable(cells[:1], {"tcp://w1": small}) == []


def test_cpu_pool_hands_out_disjoint_cpus_and_the_whole_host_to_an_exclusive_cell():
    pool = CpuPool([0, 1, 2, 3])
    a, b = pool.take(1, False), pool.take(2, False)
    assert len(a) == 1 and len(b) == 2 and not a & b
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.take(1, True)))
    waiter.start()
    waiter.join(0.2)  # a chance to take what it must not; a slow host only makes that less likely
    assert not got  # an exclusive cell waits for every CPU
    pool.give(a)
    pool.give(b)
    waiter.join(120)  # bounds a hang only
    assert got == [{0, 1, 2, 3}]
    pool.give(got[0])
    assert pool.take(8, False) == {0, 1, 2, 3}  # never more than the pool has


def test_cpu_lists():
    assert cpu_list({3, 0, 1, 2, 7}) == "0-3,7"
    assert parse_cpu_list("0-2,5") == {0, 1, 2, 5}
    with pytest.raises(ValueError):
        parse_cpu_list("3-1")


# ---------------------------------------------------------------------------------------------- exclusive (pure)


def test_the_reference_scenarios_that_run_alone():
    alone = {s.name for s in (planning.load_scenario(p) for p in discover()) if planning.exclusive(s)}
    assert alone == {"gogc_sweep", "freeos_periodic", "alloc_sizes", "large_churn", "gomemlimit", "cache_growth",
                     "gomemlimit_growth", "greentea"}  # X1 and X4 read GC CPU and throughput


def test_exclusive_is_derived_from_timing_metrics_and_can_be_overridden(tmp_path):
    base = textwrap.dedent("""
        description = "x"
        workload = "alloc-release"
        [limits]
        memory = "2GiB"
        {run}
        {expect}
    """)

    def scenario(name, run="", expect=""):
        """A scenario named like one the claims read: C2 reads alloc_release, C8 gogc_sweep."""
        path = tmp_path / f"{name}.toml"
        path.write_text(base.format(run=run, expect=expect))
        return load(path)

    assert not planning.exclusive(scenario("alloc_release"))                  # C2: memory only
    assert planning.exclusive(scenario("gogc_sweep"))                         # C8: gc_cpu_s, throughput
    assert planning.timing_reads(scenario("gogc_sweep"))[0].startswith("C8: ")
    assert planning.exclusive(scenario("alloc_release", expect='[[expect]]\nmetric = "cpu_s"\nop = ">"\nvalue = 0'))
    assert not planning.exclusive(scenario("gogc_sweep", run="[run]\nexclusive = false"))
    assert planning.exclusive(scenario("alloc_release", run="[run]\nexclusive = true"))
    _, cells = planning.plan([str(tmp_path / "alloc_release.toml")], [])
    assert all(c.exclusive for c in cells)


def test_a_bad_exclusive_value_is_a_clear_error(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('description = "x"\nworkload = "alloc-release"\n[run]\nexclusive = "yes"\n')
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert any("run.exclusive: 'yes' is not a boolean" in e for e in info.value.errors), info.value.errors


def test_a_foreign_program_runs_alone(tmp_path):
    from harness.define.scenario import RunSettings, parse_program, program_scenario

    program, errors = parse_program({"binary": sys.executable, "args": ["-c", "pass"]}, tmp_path, str)
    assert not errors
    assert planning.exclusive(program_scenario(program, RunSettings()))


def test_the_report_shows_hosts_only_when_cells_ran_on_more_than_one():
    import pandas as pd

    from harness.present.report import with_host

    one = pd.DataFrame({"cell_id": ["a", "b"], "host": ["h1", "h1"]})
    two = pd.DataFrame({"cell_id": ["a", "b"], "host": ["h1", "h2"]})
    old = pd.DataFrame({"cell_id": ["a"]})
    assert with_host(one, ["cell_id", "status"]) == ["cell_id", "status"]
    assert with_host(two, ["cell_id", "status"]) == ["cell_id", "host", "status"]
    assert with_host(old, ["cell_id"]) == ["cell_id"]


def test_a_cell_worker_stuck_past_its_timeout_gives_up_saying_where(tmp_path):
    """A call that never returns (here a sleep standing in for a daemon that stopped answering) cannot hold
    a guest or a cluster slot forever: the watchdog writes a failed result naming the frame it was stuck in."""
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from harness.drive import cell_worker
        from tests.test_cluster import cell

        def never_returns():
            time.sleep(3600)

        cell_worker.Watchdog(Path({str(tmp_path)!r}), cell("stuck"), 0.5)
        never_returns()
        """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=120)
    from harness.drive.cell_worker import HANG_EXIT, read_result

    assert out.returncode == HANG_EXIT, out.stderr
    result = read_result(tmp_path)
    assert result is not None and result.status == "failed" and result.cell.cell_id == "stuck"
    assert "stuck" in result.reason and "never_returns" in result.reason, result.reason
    assert "most recent call first" in out.stderr   # every thread's stack, for whoever reads the console


def test_a_watchdog_that_stands_down_writes_nothing(tmp_path):
    from harness.drive.cell_worker import Watchdog, read_result

    watchdog = Watchdog(tmp_path, cell("quick"), 0.2)
    assert watchdog.finish()
    time.sleep(0.4)
    assert read_result(tmp_path) is None and not watchdog.timer.is_alive()


def test_goreclaim_run_without_a_cluster_never_imports_dask(tmp_path):
    code = ("import sys\nfrom harness.drive import cli, session, plan\n"
            "assert cli.main(['list']) == 0\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')], 'dask imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr


def test_options_reach_only_goreclaim_run(tmp_path):
    from harness.drive.cli import main

    assert main(["run", "--workers", "1", "--scheduler", "tcp://127.0.0.1:1", "--results", str(tmp_path)]) == 2


# ---------------------------------------------------------------------------------------------- the scheduler


# The tasks running now in this process's in-process cluster, and the most ever at once: concurrency as the
# tasks see it, not inferred from their clocks.
_LIVE = threading.Condition()
_running: set[str] = set()
_most = [0]
_gave_up = [False]


def _record(name: str, exclusive: bool, hold_s: float) -> tuple[str, bool, set[str]]:
    """Runs for hold_s; returns the tasks that were running when it started or ended. A shared one first waits
    until a second task runs (the deadline only bounds a hang), so that shared cells did share does not
    depend on how soon the worker starts the next one."""
    with _LIVE:
        _running.add(name)
        _most[0] = max(_most[0], len(_running))
        beside = _running - {name}
        _LIVE.notify_all()
        if not exclusive and not _LIVE.wait_for(lambda: _most[0] >= 2 or _gave_up[0], timeout=120):
            _gave_up[0] = True  # the others need not wait as well: the test fails anyway
    time.sleep(hold_s)  # a window for a wrongly placed task to start beside it
    with _LIVE:
        beside |= _running - {name}
        _running.discard(name)
    return name, exclusive, beside


def test_the_scheduler_never_runs_a_cell_beside_an_exclusive_one_nor_more_than_the_cpus():
    distributed = pytest.importorskip("distributed")
    import logging

    _running.clear()
    _most[0], _gave_up[0] = 0, False
    with distributed.LocalCluster(n_workers=1, threads_per_worker=3, processes=False, dashboard_address=None,
                                  resources={"cpus": 3, "memory": 1024, EXCLUSIVE: 1},
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        kinds = [False, False, True, False, False, False, True, False, False]
        futures = []
        for i, alone in enumerate(kinds):
            need = needs(cell(f"c{i}", memory_limit_bytes=256 * MiB, exclusive=alone))
            futures.append(client.submit(_record, f"c{i}", alone, 0.3, resources=need.resources(), pure=False,
                                         priority=-i))
        seen = client.gather(futures)
    # Two tasks overlapped if either saw the other running at its start or its end.
    overlapped = {(name, other) for name, _, beside in seen for other in beside}
    overlapped |= {(b, a) for a, b in overlapped}
    for name, alone, _ in seen:
        if alone:
            assert not {b for a, b in overlapped if a == name}, f"{name} (exclusive) overlapped another cell"
    assert _most[0] <= 3 and 256 * _most[0] <= 1024  # the worker's cpus and memory
    assert _most[0] >= 2  # shared ones did share


# ---------------------------------------------------------------------------------------------- real cells

SPIKE = """
description = "A touched spike handed back with FreeOSMemory: memory only."
workload = "alloc-release"
[params]
baseline = "200ms"
hold = "{hold}"
idle = "500ms"
freeos = true
touch = true
[limits]
memory = "256MiB"
[matrix]
size = [{sizes}]
[run]
repeats = {repeats}
timeout = "1m"
"""


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scenario(tmp_path: Path, name: str, hold="300ms", sizes='"32MiB", "64MiB"', repeats=1) -> Path:
    path = tmp_path / "scenarios" / f"{name}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(SPIKE.format(hold=hold, sizes=sizes, repeats=repeats))
    return path


def _goreclaim(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)


def _cells(run_dir: Path) -> list[dict]:
    with open(run_dir / "cells.csv", newline="") as f:
        return list(csv.DictReader(f))


def _run_dir(out: str) -> Path:
    return Path(out.strip().splitlines()[-1])


@pytest.fixture
def runnable(limiting_backend, go_build):
    """Cells can run here (a backend that limits memory, a Go build), and `dask` is installed."""
    pytest.importorskip("distributed")
    return limiting_backend


class Cluster:
    """`dask scheduler` and two `dask worker` processes on localhost, each worker pinned to CPUs of its
    own (on one machine two workers would otherwise both hand out the same CPUs)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp / "workers-tmp"  # the workers' TMPDIR: every scratch and cell directory lands here
        self.tmp.mkdir()
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = _env() | {"TMPDIR": str(self.tmp)}
        log = open(tmp / "cluster.log", "wb")
        self.log_path = tmp / "cluster.log"
        self.scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                           "--port", str(port), "--no-dashboard"], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=tmp, process_group=0)
        cpus = sorted(os.sched_getaffinity(0))
        self.workers = []
        for i in range(2):
            mine = {cpus[i % len(cpus)]}
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                 "--resources", f"cpus=1,memory=4096,{EXCLUSIVE}=1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, process_group=0,
                preexec_fn=lambda mine=mine: os.sched_setaffinity(0, mine)))
        self._wait_for_workers(2)

    def _wait_for_workers(self, n: int, timeout_s: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=timeout_s)

    def cell_processes(self) -> list:
        import psutil

        out = []
        for w in self.workers:
            try:
                out += [c for c in psutil.Process(w.pid).children(recursive=True)
                        if "harness.drive.cell_worker" in " ".join(c.cmdline())]
            except psutil.NoSuchProcess:
                pass
        return out

    def running_workloads(self) -> list[str]:
        """The cells whose alloc-release runs now: a child of the cell's process (cgroup backend), or a running
        container labelled with that process's pid (docker backend)."""
        import psutil

        cells = self.cell_processes()
        found = []
        for c in cells:
            try:
                found += [f"process {w.pid}" for w in c.children(recursive=True) if w.name() == "alloc-release"]
            except psutil.NoSuchProcess:
                pass
        pids = {str(c.pid) for c in cells}
        try:
            from harness.build.docker_client import docker_client

            for c in docker_client(timeout_s=10).containers.list(filters={"label": ["goreclaim=1"]}):
                if c.labels.get("goreclaim.run", "").rpartition(".")[2] in pids:
                    found.append(f"container {c.id[:12]}")
        except Exception:  # noqa: BLE001 - no Docker: the cgroup backend runs the cells
            pass
        return found

    def close(self) -> None:
        for proc in self.workers + [self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers + [self.scheduler]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def cluster(runnable, tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def _leftovers(cluster: Cluster, run_dir: Path) -> list[str]:
    """What the run left on the workers: cell processes, scratch and cell directories, containers."""
    return [f"process {p.pid}" for p in cluster.cell_processes()] + _left_behind(cluster, run_dir)


def _left_behind(cluster: Cluster, run_dir: Path) -> list[str]:
    """Scratch and cell directories and containers of the run still there."""
    left = [str(p) for p in cluster.tmp.iterdir() if p.name.startswith("goreclaim-")]
    try:
        from harness.build.docker_client import docker_client

        run_id = run_dir.name
        client = docker_client(timeout_s=10)
        for c in client.containers.list(all=True, filters={"label": ["goreclaim=1"]}):
            if c.labels.get("goreclaim.run", "").startswith(run_id):
                left.append(f"container {c.id[:12]}")
    except Exception:  # noqa: BLE001 - no Docker: the cgroup backend left no container
        pass
    return left


def test_a_quick_matrix_through_a_scheduler(cluster, tmp_path):
    path = _scenario(tmp_path, "par_spike", sizes='"16MiB", "32MiB", "48MiB", "64MiB"')
    out = _goreclaim("run", str(path), "--scheduler", cluster.address, "--results", str(tmp_path / "results"))
    assert out.returncode == 0, out.stdout + out.stderr + cluster.log_path.read_text()
    run_dir = _run_dir(out.stdout)
    rows = _cells(run_dir)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert all(r["host"] == socket.gethostname() and r["kernel"] and r["cgroup_version"] in ("v1", "v2")
               for r in rows)
    # Each worker pinned its cells to its one CPU: both CPUs were used, one per cell.
    assert all(len(parse_cpu_list(r["cpuset"])) == 1 for r in rows)
    if len(os.sched_getaffinity(0)) > 1:
        assert len({r["cpuset"] for r in rows}) == 2
    # ... and the workload saw only that CPU from its first instruction: GOMAXPROCS follows the affinity.
    import json

    from harness.store.rundir import load_run

    starts = load_run(run_dir).events.query("kind == 'start'")
    assert len(starts) == 4 and all(json.loads(d)["gomaxprocs"] == 1 for d in starts["detail"])
    assert (run_dir / "report.md").exists()
    assert not _leftovers(cluster, run_dir)


def _run_on(cluster, path, tmp_path) -> subprocess.Popen:
    """goreclaim run of one scenario file through the cluster's scheduler, in the background."""
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(path), "--scheduler", cluster.address,
                             "--results", str(tmp_path / "results")], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_worker_killed_mid_cell_is_lost_queued_again_and_the_run_completes(cluster, tmp_path):
    run = _run_on(cluster, _scenario(tmp_path, "lost_spike", hold="20s", sizes='"32MiB"'), tmp_path)
    try:
        import psutil

        victim = None
        deadline = time.monotonic() + 300  # bounds a hang only
        # Mid-cell: its workload runs (20 s of hold left), not merely its process starting up.
        while victim is None and time.monotonic() < deadline:
            if cluster.running_workloads():
                for w in cluster.workers:
                    if any("harness.drive.cell_worker" in " ".join(c.cmdline())
                           for c in psutil.Process(w.pid).children(recursive=True)):
                        victim = w
            time.sleep(0.05)
        assert victim is not None, "no cell's workload started on a worker"
        victim.kill()
        out, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out + cluster.log_path.read_text()
    run_dir = _run_dir(out)
    rows = _cells(run_dir)
    assert [r["status"] for r in rows] == ["lost", "ok"], rows
    assert rows[0]["cell_id"] == rows[1]["cell_id"]
    assert "died while running it; queued again" in rows[0]["reason"]
    # The killed worker's cell stopped by itself and cleaned up (its parent was gone); nothing waits for that,
    # so it is polled for, the deadline bounding a hang only.
    deadline = time.monotonic() + 180
    while _leftovers(cluster, run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _leftovers(cluster, run_dir)


def test_ctrl_c_cancels_the_clusters_cells_and_leaves_nothing(cluster, tmp_path):
    run = _run_on(cluster, _scenario(tmp_path, "stop_spike", hold="20s", sizes='"16MiB", "32MiB", "48MiB"'), tmp_path)
    try:
        # Interrupted while the cells' workloads run, not while their processes start up.
        deadline = time.monotonic() + 300  # bounds a hang only
        while len(cluster.running_workloads()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cluster.running_workloads(), "no cell's workload started"
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, out
    assert "stopping" in out and "interrupted" in out
    run_dir = _run_dir(out)
    # The client returns once the cells' processes have ended, each having removed its container and scratch;
    # the worker removes the cell's own directory just after, which a loaded host may not have done yet.
    assert not cluster.cell_processes(), out
    deadline = time.monotonic() + 120
    while _left_behind(cluster, run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _leftovers(cluster, run_dir), out


# ---------------------------------------------------------------------------------------------- same results


def _summary(run_dir: Path) -> dict[str, dict[str, float]]:
    import pandas as pd

    summary = pd.read_csv(run_dir / "summary.csv").set_index("cell_id")
    return {cid: {m: float(summary.loc[cid, m]) for m in ("peak_working_set", "final_rss", "peak_rss")}
            for cid in summary.index}


def test_cells_in_parallel_measure_what_they_measure_alone(runnable, tmp_path):
    """The same memory-only cells one at a time and two at a time (each pinned to a CPU of its own): their
    peak working set, peak RSS and final RSS agree within 5% or 4 MiB, whichever is larger (seen here: within
    1 MiB, about the spread between repeats of these cells)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: cells cannot run in parallel on it")
    path = _scenario(tmp_path, "same_spike", sizes='"32MiB", "96MiB"', repeats=2)
    alone = _goreclaim("run", str(path), "--results", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stdout + alone.stderr
    both = _goreclaim("run", str(path), "--workers", "2", "--results", str(tmp_path / "parallel"))
    assert both.returncode == 0, both.stdout + both.stderr
    run_dir = _run_dir(both.stdout)
    assert len({r["cpuset"] for r in _cells(run_dir)}) == 2
    a, b = _summary(_run_dir(alone.stdout)), _summary(run_dir)
    assert a.keys() == b.keys()
    off = []
    for cid in a:
        for metric, x in a[cid].items():
            y = b[cid][metric]
            tolerance = max(0.05 * max(abs(x), abs(y)), 4 * MiB)
            print(f"{cid} {metric}: alone {x / MiB:.1f} MiB, parallel {y / MiB:.1f} MiB")
            if abs(x - y) > tolerance:
                off.append(f"{cid} {metric}: alone {x / MiB:.1f} MiB, parallel {y / MiB:.1f} MiB")
    assert not off, off


def test_with_workers_the_cells_that_need_a_guest_kernel_run_here_after_the_clusters(runnable, tmp_path):
    """A cluster's workers boot no guest: with --workers the cells of the other cgroup version still run,
    in a guest booted here once the cluster's cells are done, into the same run directory."""
    from tests.guests import require_guest

    require_guest("a run with --workers and a guest cell")
    path = _scenario(tmp_path, "both_hosts", sizes='"32MiB"')
    out = _goreclaim("run", str(path), "--workers", "2", "--matrix", "cgroup=v1,v2", "--backend", "cgroup",
                     "--results", str(tmp_path / "results"), timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = _cells(_run_dir(out.stdout))
    assert sorted(r["cgroup_version"] for r in rows) == ["v1", "v2"], rows
    assert {r["status"] for r in rows} == {"ok"}, [(r["cell_id"], r["status"], r["reason"]) for r in rows]
    accel = {r["cgroup_version"]: r["accel"] for r in rows}
    assert sorted(accel.values())[0] == "native" and set(accel.values()) - {"native"} <= {"kvm", "tcg"}
    assert "booting for 1 cell" in out.stdout + out.stderr

