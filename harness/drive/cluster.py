"""Cells in parallel on a Dask cluster: `goreclaim run --workers N` (a local cluster on this host) or
`goreclaim run --scheduler tcp://HOST:8786` (an existing one; docs/CLUSTER.md).

One worker per host offers its CPUs, its memory (MiB) and one `exclusive` token as Dask resources;
each cell is a task asking for its needs (harness.define.cell.Needs), so the scheduler never starts a
cell beside an exclusive one, nor more cells on a host than it has CPUs or memory for. On the worker
the task pins the cell to CPUs of its own (disjoint from its neighbours') and runs it in a subprocess
(harness.drive.cell_worker), which builds what it needs and stops cleanly on SIGTERM. The RunResult
comes back to the client, which saves it exactly as `goreclaim run` does, in completion order.

A worker that dies mid-cell: the scheduler hands the task to another worker, which sees that it had
started before (a mark on the scheduler) and returns it as `lost`; the client records the cell as
`lost` and queues it again once. Ctrl-C on the client cancels every cell; each running one is
stopped by SIGTERM and cleans up after itself, and the client waits for that before it returns.

Only this module imports Dask: `goreclaim run` without a cluster never does.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from harness.define.cell import CPUS, EXCLUSIVE, MEMORY, Cell, MiB, Needs, needs
from harness.drive.cell_worker import CellTask, read_result, write_task
from harness.drive.session import Outcome, RunSession
from harness.run.backends.base import RunResult
from harness.run.backends.select import BackendUnavailable
from harness.run.placement import cpu_list

if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster, Worker

# How long Ctrl-C waits for the cells being stopped on the workers to clean up.
STOP_WAIT_S = 90.0
# How often a running cell's task checks whether it was cancelled.
POLL_S = 0.2
# Memory left to the host itself when a local cluster offers this host's memory to cells.
HOST_RESERVE_MIB = 512


class ClusterError(BackendUnavailable):
    """The cluster cannot run these cells (no worker offers the resources, or it cannot be reached):
    like a backend that is not available, a usage error of the command line (exit 2)."""


# What a cell's task answers the client (pickled by Dask).
@dataclass(frozen=True)
class Measured:
    """The cell ran (or failed, or was stopped) on a worker: its result, to be saved as it is."""

    result: RunResult


@dataclass(frozen=True)
class Lost:
    """The task had started before, on a worker that died while running it."""

    worker: str
    host: str


@dataclass(frozen=True)
class NotRun:
    """The task raised, or the cluster gave up on it (set on the client)."""

    error: str


TaskAnswer = Measured | Lost | NotRun


# ---------------------------------------------------------------------------------------------- placement


def worker_command(cpus: int, memory_mib: int) -> str:
    return f'dask worker tcp://SCHEDULER:8786 --nthreads {cpus} --resources "{CPUS}={cpus},{MEMORY}={memory_mib},' \
           f'{EXCLUSIVE}=1"'


def unplaceable(cells: list[Cell], offered: dict[str, dict[str, float]]) -> list[str]:
    """Why cells could never start: for each need no worker offers, one line (empty when all fit)."""
    if not offered:
        return ["the cluster has no worker"]
    lines = []
    for need, ids in _group_needs(cells).items():
        if not any(need.fits(resources) for resources in offered.values()):
            biggest = ", ".join(f"{w}: " + ",".join(f"{k}={v:g}" for k, v in sorted(r.items()))
                                for w, r in sorted(offered.items())) or "none"
            command = worker_command(need.cpus, max(need.memory_mib, 1024))
            lines.append(f"{len(ids)} cell(s) such as {ids[0]} need {_text(need)}; no worker offers that "
                         f"(workers: {biggest}). Start workers with: {command}")
    return lines


def _group_needs(cells: list[Cell]) -> dict[Needs, list[str]]:
    out: dict[Needs, list[str]] = {}
    for cell in cells:
        out.setdefault(needs(cell), []).append(cell.cell_id)
    return out


def _text(need: Needs) -> str:
    return (f"{need.cpus} CPU(s), {need.memory_mib} MiB" + (" and the host to itself" if need.exclusive else
                                                           " and a share of a host"))


def local_resources(n: int) -> dict[str, float]:
    """The resources of the one worker `--workers N` starts on this host."""
    usable = len(os.sched_getaffinity(0))
    if n > usable:
        raise ClusterError(f"--workers {n}: this host lets goreclaim use {usable} CPU(s); each cell that shares "
                           f"the host is pinned to CPUs of its own, so at most --workers {usable}")
    memory = max(psutil.virtual_memory().available // MiB - HOST_RESERVE_MIB, 0)
    return {CPUS: float(n), MEMORY: float(memory), EXCLUSIVE: 1.0}


# ---------------------------------------------------------------------------------------------- the worker side


class CpuPool:
    """The CPUs of one worker's host, handed to its running cells: disjoint sets, a whole host for an
    exclusive cell. Dask's resources already keep the sum of the cells' CPUs within the worker's; the
    pool only picks which ones (and waits if a worker offers more CPUs than it has)."""

    def __init__(self, cpus: Iterable[int]):
        self.cpus = sorted(set(cpus))
        self.free = set(self.cpus)
        self._cond = threading.Condition()

    def take(self, n: int, exclusive: bool) -> set[int]:
        want = len(self.cpus) if exclusive else min(max(n, 1), len(self.cpus))
        with self._cond:
            while len(self.free) < want:
                self._cond.wait()
            chosen = set(sorted(self.free)[:want])
            self.free -= chosen
        return chosen

    def give(self, cpus: set[int]) -> None:
        with self._cond:
            self.free |= cpus
            self._cond.notify_all()


_POOL: CpuPool | None = None
_POOL_LOCK = threading.Lock()
# The cell subprocesses this worker process runs now, by pid.
LIVE: dict[int, subprocess.Popen[bytes]] = {}


def _pool() -> CpuPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = CpuPool(os.sched_getaffinity(0))
        return _POOL


def live_cells() -> int:
    """How many cell subprocesses this worker process still runs (the client waits for 0 after Ctrl-C)."""
    return sum(1 for p in list(LIVE.values()) if p.poll() is None)


def _cancelled(worker: Worker, key: str) -> bool:
    ts = worker.state.tasks.get(key)
    return ts is None or ts.state not in ("executing", "long-running") or worker.status.name not in ("running",
                                                                                                    "paused")


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 60.0) -> None:
    """SIGTERM the cell's process group (the cell cleans up), SIGKILL it if it does not end in time."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue


def _package_root() -> str:
    import harness

    return str(Path(harness.__file__).resolve().parent.parent)


def run_cell_task(cell: Cell, backend: str, run_id: str, mark: str) -> Measured | Lost:
    """The Dask task of one cell, on a worker: its result, or Lost when it had started before."""
    from distributed import get_client, get_worker

    worker = get_worker()
    key = str(worker.get_current_task())
    host = socket.gethostname()
    client = get_client()
    # Where each task started, kept on the scheduler (plain data: the scheduler stores msgpack).
    before = client.get_metadata(["goreclaim", run_id, mark], None)
    if before is not None:  # it started on a worker that died
        return Lost(worker=str(before.get("worker")), host=str(before.get("host", "")))
    client.set_metadata(["goreclaim", run_id, mark], {"worker": worker.address, "host": host})

    from harness.drive.guest_cells import asks_for_host, in_guest, met

    if asks_for_host(cell) and not in_guest(cell):  # this host is the one the cell asks for (cgroup=v1 on v1)
        cell = met(cell)
    need = needs(cell)
    pool = _pool()
    cpus = pool.take(need.cpus, need.exclusive)
    cell = dataclasses.replace(cell, cpuset=cpu_list(cpus))
    work = Path(tempfile.mkdtemp(prefix="goreclaim-cell-"))
    proc = None
    try:
        write_task(work, CellTask(cell, backend, run_id))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_package_root()] + [p for p in env.get("PYTHONPATH", "").split(
            os.pathsep) if p])
        with open(work / "stderr.txt", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "harness.drive.cell_worker", str(work)],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=env,
                                    process_group=0)
        LIVE[proc.pid] = proc
        while proc.poll() is None:
            try:
                proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                if _cancelled(worker, key):
                    _stop(proc)
        result = read_result(work)
        if result is not None:
            return Measured(result)
        tail = (work / "stderr.txt").read_text(errors="replace")[-2000:] if (work / "stderr.txt").exists() else ""
        from harness.run.placement import placement

        return Measured(RunResult(cell=cell, status="failed", placement=placement(cell.cpuset),
                                  reason=f"the cell's process on {host} exited with {proc.returncode} and no "
                                         f"result: {tail.strip()}"))
    finally:
        if proc is not None:
            _stop(proc)
            LIVE.pop(proc.pid, None)
        pool.give(cpus)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- the client side


def _offered(client: Client) -> dict[str, dict[str, float]]:
    return {address: dict(info.get("resources") or {})
            for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}


def _connect(workers: int | None, scheduler: str | None,
             log: Callable[[str], None]) -> tuple[Client, LocalCluster | None]:
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    if workers is None:
        raise ClusterError("neither --workers N nor --scheduler ADDRESS says where to run the cells")
    resources = local_resources(workers)
    cluster = LocalCluster(n_workers=1, threads_per_worker=workers, processes=True, resources=resources,
                           memory_limit=0, dashboard_address=None, silence_logs=logging.ERROR)
    log(f"local Dask cluster: one worker with {resources}")
    return Client(cluster), cluster


def measure_on_cluster(session: RunSession, cells: list[Cell], workers: int | None = None,
                       scheduler: str | None = None,
                       log: Callable[[str], None] = print) -> Generator[Outcome, None, None]:
    """Run the cells on a cluster, saving each to the session's run directory as it finishes;
    yields each saved cell's Outcome (a `lost` one has `requeued` set when it was queued again)."""
    from distributed import as_completed

    client, cluster = _connect(workers, scheduler, log)
    pending: dict[Future[Measured | Lost], tuple[Cell, int, int]] = {}   # future -> (cell, attempt, priority)
    done = False
    try:
        if scheduler:
            client.wait_for_workers(1, timeout=60)
        problems = unplaceable(cells, _offered(client))
        if problems:
            raise ClusterError("\n".join(problems))
        serial = iter(range(1, 1 << 62))

        def submit(cell: Cell, attempt: int, priority: int) -> Future[Measured | Lost]:
            mark = f"{next(serial)}"
            # Each worker picks its own backend for `auto`, as `goreclaim run` does on its host.
            future = client.submit(run_cell_task, cell, cell.backend or "auto", session.run_id, mark,
                                   key=f"goreclaim-{session.run_id}-{mark}", resources=needs(cell).resources(),
                                   pure=False, priority=priority, retries=0)
            pending[future] = (cell, attempt, priority)
            return future

        # Plan order first (a higher priority runs earlier), whatever order they finish in.
        futures = as_completed([submit(cell, 0, -i) for i, cell in enumerate(cells)])
        for future in futures:
            cell, attempt, priority = pending.pop(future)
            answer: TaskAnswer
            try:
                answer = future.result()
            except Exception as exc:  # noqa: BLE001 - the task raised or the cluster gave up on it
                answer = NotRun(f"{type(exc).__name__}: {exc}")
            future.release()
            if isinstance(answer, Measured):
                session.save(answer.result)
                yield session.check(answer.result)
                continue
            placement: dict[str, str]
            if isinstance(answer, Lost):
                reason = f"worker {answer.worker} on {answer.host} died while running it"
                placement = {"host": answer.host}
            else:
                reason, placement = f"the cluster could not run it: {answer.error}", {}
            again = attempt == 0
            result = RunResult(cell=cell, status="lost", placement=placement,
                               reason=reason + ("; queued again" if again else "; lost twice, not queued again"))
            session.save(result)
            outcome = Outcome(result, [], requeued=again)
            if again:
                futures.add(submit(cell, 1, priority))
            yield outcome
        done = True
    finally:
        if not done:
            _cancel(client, list(pending), log)
        client.close()
        if cluster is not None:
            cluster.close()


def _cancel(client: Client, futures: list[Future[Any]], log: Callable[[str], None]) -> None:
    """Cancel every cell still queued or running, and wait until the workers' cell processes have
    stopped and cleaned up (a second Ctrl-C stops waiting)."""
    if not futures:
        return
    log(f"stopping {len(futures)} cell(s) on the cluster")
    try:
        client.cancel(futures, force=True)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            running = sum(client.run(live_cells).values())
            if not running:
                return
            time.sleep(0.5)
        log(f"cells still stopping on the cluster after {STOP_WAIT_S:g}s")
    except KeyboardInterrupt:
        log("not waiting for the cluster's cells to stop")
    except Exception as exc:  # noqa: BLE001 - best effort while stopping
        log(f"cancelling the cluster's cells: {type(exc).__name__}: {exc}")
