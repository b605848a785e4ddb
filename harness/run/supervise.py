"""Waiting for a cell's process as its timeline says: to its end, or ready → load → idle → stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.define.cell import Cell
from harness.define.units import parse_duration
from harness.define.workloads import PORT
from harness.run.load import run_load
from harness.run.ports import answers, with_port

if TYPE_CHECKING:
    from harness.run.observation import Observation

# A step of a server's timeline that went wrong: the cell's status then (harness.run.backends.base.STATUSES).
FailedStep = Literal["", "not_ready", "load_failed"]
# `wait(seconds)`: True once the process has ended.
Wait = Callable[[float], bool]


@dataclass
class Supervised:
    """How a cell's process was waited for: what `classify` judges besides its exit."""

    timed_out: bool = False
    stuck: str = ""     # at a timeout: what its threads were doing (threads_state)
    stopped: str = ""   # how the harness stopped it; "" when it ended by itself
    status: FailedStep = ""
    reason: str = ""
    note: str = ""      # what the cell says besides its outcome (a load output that was not parsed)


def threads_state(pid: int | None) -> str:
    """What a process's threads are doing, for a cell that hit its timeout: how many are running
    (R) or sleeping (S, D) and in which kernel function they wait (/proc/PID/task/*/stat, wchan);
    "" when the process is gone or unreadable. A busy loop and a thread stuck in the kernel look
    alike from outside; this line tells them apart."""
    from harness.run.observe.probes import thread_files

    counts: dict[str, int] = {}
    for stat, wchan in thread_files(pid, "stat", "wchan") or ():
        try:
            state = stat.rsplit(b")", 1)[1].split()[0].decode()
        except IndexError:
            continue
        where = wchan.strip().decode(errors="replace")
        key = state + (f" in {where}" if where and where != "0" else "")
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    return "threads at the timeout: " + ", ".join(f"{n}× {k}" for k, n in sorted(counts.items()))


def supervise(cell: Cell, obs: Observation, wait: Wait, terminate: Callable[[], None],
              kill: Callable[[], None], port: int | None = None) -> Supervised:
    """Wait for a cell's process as its timeline says.

    `wait(seconds)` is True once the process has ended. A workload or a batch program runs to
    its end (or the timeout). A server is waited for until ready (`ready`), loaded by its load
    command (`load`), left alone (`idle`), then sent SIGTERM (`stop`) and, still there after
    the grace period, SIGKILL.
    """
    program = cell.program
    if program is None or (not program.serves and program.idle_s is None):
        if wait(cell.timeout_s):
            return Supervised()
        return Supervised(timed_out=True, stuck=threads_state(obs.pid))
    done = Supervised()

    def stop() -> str:
        obs.phase("stop")
        terminate()
        if wait(program.grace_s):
            return "stopped with SIGTERM"
        kill()
        wait(30)
        return f"ignored SIGTERM for {program.grace_s:g}s; killed with SIGKILL"

    if program.ready:
        state = _await_ready(program.ready.replace(PORT, str(port)), program.ready_timeout_s, obs, wait)
        if state is None:
            return done  # it ended before it was ready: its exit says how
        if not state:
            done.status = "not_ready"
            done.reason = f"not ready ({program.ready}) within {program.ready_timeout_s:g}s"
            done.stopped = stop()
            return done
        obs.phase("ready")
    if program.load:
        obs.phase("load")
        load_start_ns = time.monotonic_ns()
        command = with_port(program.load, port)
        ended, code, output = run_load(command, cell.timeout_s, wait)
        done.note = obs.load_ran(command, output, load_start_ns)
        if ended:
            return done  # it ended during the load: its exit says how
        if code != 0:
            done.status = "load_failed"
            done.reason = f"the load command {' '.join(program.load)} " + (
                "did not finish within the cell's timeout" if code is None else f"exited with status {code}") + \
                (f"; output: {output[-2000:]}" if output else "")
            done.stopped = stop()
            return done
    if program.idle_s:
        obs.phase("idle")
        if wait(program.idle_s):
            return done
    done.stopped = stop() + (" after the idle phase" if program.idle_s else "")
    return done


def _await_ready(check: str, timeout_s: float, obs: Observation, wait: Wait) -> bool | None:
    """True once `check` passes, False at the timeout, None if the process ended first."""
    kind, _, rest = check.partition(":")
    if kind == "delay":
        return None if wait(parse_duration(rest)) else True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if kind == "log" and obs.ready_seen.is_set():
            return True
        if kind == "tcp" and answers(int(rest)):
            return True
        if wait(0.05):
            return None
    return False
