"""The workload as a plain child process: no memory limit, so only cells without one run here."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from harness.run.backends.base import RunResult
from harness.run.backends.common import (Observation, RunInterrupted, Supervised, classify, free_port, port_taken,
                                         remove_leftover_scratch, scratch_dir, supervise, with_port)
from harness.define.cell import Cell
from harness.run.env import child_env
from harness.run.placement import parse_cpu_list
from harness.define.build import Build

NEEDS_LIMIT = "needs a memory limit; the process backend has none: use --backend docker or cgroup"


def run_child(cell: Cell, build: Build, cgroup=None) -> RunResult:
    """Start the cell's binary as a child (inside `cgroup` from its first instruction, if given),
    sample it until it ends, and judge the outcome. Shared by the process and cgroup backends."""
    binary = build.binary(cell.workload)
    if not binary.is_file():
        return RunResult(cell=cell, status="failed", reason=f"workload binary missing: {binary}")
    moved = [m.text() for m in (cell.program.mounts if cell.program else ()) if m.target != m.source]
    if moved:
        # A program runs in place here: it sees the host's files at their own paths.
        return RunResult(cell=cell, status="skipped", reason=f"mounts {', '.join(moved)} move a path; only the "
                         "docker backend can, here a program sees the host's files in place (give SRC only)")
    taken = port_taken(cell)
    if taken:
        return RunResult(cell=cell, status="failed", reason=taken)
    with scratch_dir(cell) as scratch:
        return _run_child(cell, binary, scratch, cgroup, build.workdir)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # its own group: whatever it started goes too
    except ProcessLookupError:
        pass


def _run_child(cell: Cell, binary, scratch, cgroup, workdir: str = "") -> RunResult:
    env = child_env(cell, tmpdir=str(scratch))
    obs = Observation(cell)
    oom_before = cgroup.oom_kills() if cgroup is not None else 0

    preexec = None
    cpus = parse_cpu_list(cell.cpuset) if cell.cpuset else None
    if cgroup is not None or cpus:
        def preexec() -> None:  # runs in the forked child, before exec
            if cpus:  # a cell sharing its host has CPUs of its own, from its first instruction
                os.sched_setaffinity(0, cpus)
            if cgroup is not None:
                cgroup.add_process(os.getpid())

    proc = None
    interrupted = False
    supervised = Supervised()
    # A server listens on the cell's own free port, here on the host itself.
    port = free_port() if cell.program is not None and cell.program.uses_port else None
    try:
        obs.mark_start()
        proc = subprocess.Popen(
            [str(binary), *with_port(cell.args, port)], env=env, cwd=workdir or scratch, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec,
            # Own process group: a Ctrl-C in the terminal reaches the harness only, which
            # then stops the workload itself and keeps what was measured.
            process_group=0, bufsize=0,
        )
        obs.start_sampling(proc.pid, cgroup, port, scratch=Path(scratch))
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        obs.read_streams(iter(lambda: os.read(out_fd, 65536), b""), iter(lambda: os.read(err_fd, 65536), b""))

        def wait(seconds: float) -> bool:
            try:
                proc.wait(timeout=seconds)
                return True
            except subprocess.TimeoutExpired:
                return False

        supervised = supervise(cell, obs, wait, lambda: _signal_group(proc, signal.SIGTERM),
                               lambda: _signal_group(proc, signal.SIGKILL), port)
        if supervised.timed_out:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    except KeyboardInterrupt:
        interrupted = True
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    finally:
        if proc is not None and proc.poll() is None:  # any other exception: never leave it running
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        obs.end_ns = time.monotonic_ns()
        obs.stop()
        if proc is not None:
            proc.stdout.close()
            proc.stderr.close()

    exit_code = proc.returncode if proc is not None else None
    oom = cgroup is not None and cgroup.oom_kills() > oom_before
    peak_cgroup = None
    if cgroup is not None:
        try:
            peak_cgroup = cgroup.peak()
        except OSError:
            peak_cgroup = None
    status, reason = classify(
        exit_code=exit_code, oom_killed=oom, timed_out=supervised.timed_out, interrupted=interrupted,
        stderr_tail=obs.stderr_tail(), timeout_s=cell.timeout_s, program=cell.program is not None,
        stopped=supervised.stopped, failed_step=(supervised.status, supervised.reason),
        stuck=supervised.stuck,
    )
    result = obs.result(
        status=status, reason=reason, exit_code=exit_code, oom_killed=oom, peak_cgroup_bytes=peak_cgroup,
    )
    if interrupted:
        raise RunInterrupted(result)
    return result


class ProcessBackend:
    name = "process"

    def available(self) -> str | None:
        return None

    def cleanup(self, run_id: str) -> list[str]:
        return remove_leftover_scratch()  # a child is killed in run_child's finally

    def run(self, cell: Cell, build: Build) -> RunResult:
        if cell.memory_limit_bytes is not None:
            return RunResult(cell=cell, status="skipped", reason=NEEDS_LIMIT)
        return run_child(cell, build)
