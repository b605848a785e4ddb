"""A finished run's status and the reason a reader is given for it."""

from __future__ import annotations

import signal

from harness.run.backends.base import Status
from harness.run.supervise import FailedStep


def classify(
    *, exit_code: int | None, oom_killed: bool, timed_out: bool, interrupted: bool, stderr_tail: str,
    timeout_s: float, program: bool = False, stopped: str = "", failed_step: tuple[FailedStep, str] = ("", ""),
    stuck: str = "",
) -> tuple[Status, str]:
    """(status, reason) of a finished run. OOM is judged by the caller from the kernel's
    counters or docker's State.OOMKilled: a SIGKILL alone may as well be a timeout.

    A program's own non-zero exit is its outcome (`exited`); one the harness stopped after its
    idle phase (`stopped` says how) ran as planned, whatever its exit code."""
    if interrupted:
        return "interrupted", "stopped by SIGINT/SIGTERM before the workload finished"
    if oom_killed:
        return "oom_killed", "killed by the kernel's OOM killer at the memory limit"
    if timed_out:
        return "timeout", f"still running after timeout_s={timeout_s:g}; killed" + (f" ({stuck})" if stuck else "")
    if failed_step[0]:  # not_ready, load_failed: the reason says which step and why
        return failed_step[0], failed_step[1] + (f"; {stopped}" if stopped else "")
    if stopped:
        return "ok", stopped
    if exit_code == 0:
        return "ok", ""
    if exit_code is not None and exit_code < 0:
        number = -exit_code
        how = f"killed by signal {signal.Signals(number).name if number in signal.valid_signals() else number}"
    else:
        how = f"exited with status {exit_code}"
    tail = stderr_tail.strip()
    if program:
        return "exited", how + (f"; output: {tail[-2000:]}" if tail else "")
    return "failed", how + (f"; stderr: {tail}" if tail else "")

