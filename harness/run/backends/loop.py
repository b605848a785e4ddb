"""The one run loop of every backend.

A backend only starts, signals and removes its workload (a `Launcher`) and says which of a cell's
limits and host settings it can give it. This loop does the rest alike for all of them: refuses a
cell the backend cannot run as asked, observes the workload's output, samples it, supervises its
timeline, kills it at the timeout, stops it on Ctrl-C (RunInterrupted with what was measured),
judges the outcome and returns the RunResult.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from harness.define.build import Build
from harness.define.cell import Cell
from harness.run.backends.base import RunInterrupted, RunResult, Status
from harness.run.observation import Observation
from harness.run.outcome import classify
from harness.run.ports import cell_port, port_taken
from harness.run.scratch import scratch_dir
from harness.run.supervise import Supervised, supervise

if TYPE_CHECKING:
    from harness.run.observe.cgroupfs import MemoryCgroup

Signal = Literal["terminate", "kill"]
# How long a killed workload is waited for before its removal (a process in uninterruptible sleep).
KILL_WAIT_S = 30.0


class Launcher(Protocol):
    """One cell's workload as one backend runs it."""

    def start(self, obs: Observation) -> tuple[int | None, MemoryCgroup | None]:
        """Start the workload with its output going to `obs`, calling obs.mark_start() as it starts;
        (its pid, its memory cgroup), None for what it has not (got)."""

    def wait(self, seconds: float) -> bool:
        """True once it has ended; False if it still runs after `seconds`."""

    def signal(self, which: Signal) -> None:
        """SIGTERM or SIGKILL to the workload and whatever it started; nothing if it has ended."""

    def remove(self) -> dict[str, str]:
        """Once it has ended (or could not be stopped): keep its outcome, remove what `start` created
        (never leave it running); notes for the cell's sampler_stats."""

    def exit_code(self) -> int | None:
        """Its exit status (-N: killed by signal N); None if unknown."""

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed it: its cgroup's oom_kill count where there is one."""

    def peak(self) -> int | None:
        """Its cgroup's peak memory usage in bytes; None without one (the sampled usage stands in)."""


class LaunchingBackend(abc.ABC):
    """A Backend (harness.run.backends.base) whose `run` is the shared loop."""

    name: str
    limits: frozenset[str] = frozenset()         # the cell limits (Cell.limits) it confines a cell with
    unconfined: frozenset[str] = frozenset()     # limits it runs a cell without, as it always has
    host_settings: frozenset[str] = frozenset()  # host settings (Cell.host_settings) it can give a cell

    @abc.abstractmethod
    def available(self) -> str | None:
        """None if this backend can run cells here, else one sentence saying why not."""

    @abc.abstractmethod
    def cleanup(self, run_id: str) -> list[str]:
        """Remove whatever this backend left behind for the run; returns what was removed."""

    def unfit(self, cell: Cell, build: Build) -> tuple[Status, str] | None:
        """(status, reason) when this backend cannot run the cell with this build; None when it can."""
        return None

    @abc.abstractmethod
    def launcher(self, cell: Cell, build: Build, scratch: Path, port: int | None) -> Launcher:
        """The cell's workload, ready to start, with its scratch directory and its {port}."""

    def run(self, cell: Cell, build: Build) -> RunResult:
        """Run the cell to completion (or OOM, timeout, interrupt) while sampling it."""
        refusal = refusal_of(self, cell) or self.unfit(cell, build)
        taken = port_taken(cell) if refusal is None else ""
        if taken:
            refusal = ("failed", taken)
        if refusal is not None:
            return RunResult(cell=cell, status=refusal[0], reason=refusal[1])
        with scratch_dir(cell) as scratch:
            port = cell_port(cell)
            return run_launched(self.launcher(cell, build, scratch, port), cell, scratch, port)


def refusal_of(backend: LaunchingBackend, cell: Cell) -> tuple[Status, str] | None:
    """Why a cell is not run by this backend: a limit it cannot apply, a host setting it cannot give.
    A cell is never run without what it asks for (its build settings are in its build)."""
    for name, _ in cell.limits:
        if name not in backend.limits | backend.unconfined:
            from harness.run.backends.select import backends_applying

            others = backends_applying(name)
            return "skipped", f"needs a {name} limit; the {backend.name} backend has none: " + (
                f"use --backend {' or '.join(others)}" if others else "no backend applies it")
    for name, value in cell.host_settings:
        if name not in backend.host_settings:
            return "skipped", (f"needs the host setting {name}={value}; the {backend.name} backend runs cells on "
                               "this host as it is and cannot set it")
    return None


def run_launched(launcher: Launcher, cell: Cell, scratch: Path, port: int | None) -> RunResult:
    """Start the workload, sample and supervise it to its end, remove it, and judge the outcome."""
    obs = Observation(cell)
    ended = False

    def wait(seconds: float) -> bool:
        nonlocal ended
        ended = ended or launcher.wait(seconds)
        return ended

    interrupted = False
    supervised = Supervised()
    notes: dict[str, str] = {}
    try:
        pid, cgroup = launcher.start(obs)
        if pid:
            obs.start_sampling(pid, cgroup, port, scratch=scratch)
        supervised = supervise(cell, obs, wait, lambda: launcher.signal("terminate"),
                               lambda: launcher.signal("kill"), port)
        if supervised.timed_out:
            launcher.signal("kill")
            wait(KILL_WAIT_S)
        obs.end_ns = time.monotonic_ns()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if not obs.end_ns:
            obs.end_ns = time.monotonic_ns()
        try:
            if not ended:  # interrupted, or a harness error: never leave it running
                launcher.signal("kill")
                wait(KILL_WAIT_S)
            obs.stop()
        finally:
            notes = launcher.remove()

    exit_code, oom = launcher.exit_code(), launcher.oom_killed()
    status, reason = classify(
        exit_code=exit_code, oom_killed=oom, timed_out=supervised.timed_out, interrupted=interrupted,
        stderr_tail=obs.stderr_tail(), timeout_s=cell.timeout_s, program=cell.program is not None,
        stopped=supervised.stopped, failed_step=(supervised.status, supervised.reason), stuck=supervised.stuck,
    )
    if supervised.note:  # said beside the outcome, not instead of it
        reason = f"{reason}; {supervised.note}" if reason else supervised.note
        notes = {**notes, "note": supervised.note}
    result = obs.result(status=status, reason=reason, exit_code=exit_code, oom_killed=oom,
                        peak_cgroup_bytes=launcher.peak(), notes=notes)
    if interrupted:
        raise RunInterrupted(result)
    return result
