"""The workload as a plain child process: no memory limit, so only cells without one run here."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from harness.define.build import Build
from harness.define.cell import Cell
from harness.run.backends.base import Status
from harness.run.backends.loop import Launcher, LaunchingBackend, Signal
from harness.run.env import child_env
from harness.run.observation import Observation
from harness.run.observe.cgroupfs import MemoryCgroup
from harness.run.placement import parse_cpu_list
from harness.run.ports import with_port
from harness.run.scratch import remove_leftover_scratch

SIGNALS = {"terminate": signal.SIGTERM, "kill": signal.SIGKILL}


class ProcessBackend(LaunchingBackend):
    name = "process"
    unconfined = frozenset({"cpus"})  # it runs on the CPUs of its cpuset, unthrottled

    def available(self) -> str | None:
        return None

    def cleanup(self, run_id: str) -> list[str]:
        return remove_leftover_scratch()  # a child is killed when its cell ends

    def unfit(self, cell: Cell, build: Build) -> tuple[Status, str] | None:
        binary = build.binary(cell.workload)
        if not binary.is_file():
            return "failed", f"workload binary missing: {binary}"
        moved = [m.text() for m in (cell.program.mounts if cell.program else ()) if m.target != m.source]
        if moved:
            # A program runs in place here: it sees the host's files at their own paths.
            return "skipped", (f"mounts {', '.join(moved)} move a path; only the docker backend can, here a "
                               "program sees the host's files in place (give SRC only)")
        return None

    def launcher(self, cell: Cell, build: Build, scratch: Path, port: int | None) -> Launcher:
        return ChildLauncher(cell, build, scratch, port)


class ChildLauncher:
    """The cell's binary as a child of the harness in a process group of its own, inside the cgroup
    `make_cgroup` creates (from its first instruction) when given one; the cgroup is removed with it."""

    def __init__(self, cell: Cell, build: Build, scratch: Path, port: int | None,
                 make_cgroup: Callable[[], MemoryCgroup] | None = None):
        self.cell, self.scratch, self.port, self.make_cgroup = cell, scratch, port, make_cgroup
        self.binary, self.workdir = build.binary(cell.workload), build.workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.cgroup: MemoryCgroup | None = None
        self._oom_before = 0
        self._oom = False
        self._peak: int | None = None

    def start(self, obs: Observation) -> tuple[int | None, MemoryCgroup | None]:
        env = child_env(self.cell, tmpdir=str(self.scratch))
        if self.make_cgroup is not None:
            self.cgroup = self.make_cgroup()
            self._oom_before = self.cgroup.oom_kills()
        cgroup = self.cgroup
        cpus = parse_cpu_list(self.cell.cpuset) if self.cell.cpuset else None
        preexec = None
        if cgroup is not None or cpus:
            def preexec() -> None:  # runs in the forked child, before exec
                if cpus:  # a cell sharing its host has CPUs of its own, from its first instruction
                    os.sched_setaffinity(0, cpus)
                if cgroup is not None:
                    cgroup.add_process(os.getpid())

        obs.mark_start()
        self.proc = subprocess.Popen(
            [str(self.binary), *with_port(self.cell.args, self.port)], env=env, cwd=self.workdir or self.scratch,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec,
            # Own process group: a Ctrl-C in the terminal reaches the harness only, which
            # then stops the workload itself and keeps what was measured.
            process_group=0, bufsize=0,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None  # both are pipes
        obs.read_streams(_chunks(self.proc.stdout), _chunks(self.proc.stderr))
        return self.proc.pid, cgroup

    def wait(self, seconds: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def signal(self, which: Signal) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, SIGNALS[which])  # its own group: whatever it started goes too
        except ProcessLookupError:
            pass

    def remove(self) -> dict[str, str]:
        if self.proc is not None and self.proc.poll() is None:  # never leave it running
            self.signal("kill")
            self.proc.wait()
        if self.cgroup is not None:
            try:
                self._oom = self.cgroup.oom_kills() > self._oom_before
                try:
                    self._peak = self.cgroup.peak()
                except OSError:
                    self._peak = None
            finally:
                self.cgroup.remove()
        return {}

    def exit_code(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def oom_killed(self) -> bool:
        return self._oom

    def peak(self) -> int | None:
        return self._peak


def _chunks(pipe: IO[bytes]) -> Iterator[bytes]:
    """What a child writes to a pipe, as it comes, until it closes it; the pipe is closed then."""
    with pipe:
        fd = pipe.fileno()
        yield from iter(lambda: os.read(fd, 65536), b"")
