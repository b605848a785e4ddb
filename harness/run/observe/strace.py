"""strace attached from the host: the madvise/munmap/mmap calls a workload makes, on the monotonic clock."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.define.metrics import Event
from harness.run.observe.probes import thread_files

# strace -ttt -f -o FILE lines: "<pid> <wall seconds> <call>(<args>) = <ret>", or split into
# "... <unfinished ...>" and "<... call resumed> ..." when threads interleave.
_STRACE_LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\d+\.\d+)\s+(madvise|munmap|mmap)\((.*)$")


def parse_strace(text: str, wall_minus_mono_ns: int) -> list[Event]:
    """`syscall` events from an strace log; wall-clock stamps moved onto the monotonic clock."""
    events: list[Event] = []
    for raw in text.splitlines():
        m = _STRACE_LINE.match(raw.strip())
        if not m:
            continue
        tid, wall_s, name, rest = m.groups()
        args_text = rest.split(")", 1)[0] if ")" in rest else rest.replace("<unfinished ...>", "")
        args = [a.strip() for a in args_text.split(",")]
        if len(args) < 2:
            continue
        try:
            length = int(args[1], 0)
        except ValueError:
            continue
        detail: dict[str, Any] = {"tid": int(tid)}
        if name == "madvise" and len(args) >= 3:
            detail["advice"] = args[2]
        elif name == "mmap" and len(args) >= 4:
            detail["prot"], detail["flags"] = args[2], args[3]
        ret = rest.rsplit("=", 1)[1].strip() if "=" in rest and "<unfinished" not in rest else ""
        if ret:
            detail["ret"] = ret
        t_ns = int(round(float(wall_s) * 1e9)) - wall_minus_mono_ns
        events.append((t_ns, "syscall", name, float(length), json.dumps(detail)))
    return events


class SyscallTrace:
    """strace attached from the host to a running pid, tracing the calls that map and release memory."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.note = ""
        # strace and its log, from a successful start in attach() until finish().
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    def attach(self, pid: int, ready_file: Path | None = None) -> None:
        """Start strace on pid and wait until it traces every thread; then create ready_file, which a
        workload told to wait for it (run.env.WAIT_FOR_TRACER) waits for. Created whatever happens, so
        no workload waits for a tracer that is not coming."""
        try:
            self._attach(pid)
        finally:
            if ready_file is not None:
                ready_file.touch()

    def _attach(self, pid: int) -> None:
        strace = strace_path()
        if strace is None:
            self.note = "strace is not installed on the host; no syscall events (apt-get install strace)"
            return
        fd, name = tempfile.mkstemp(prefix="goreclaim-strace-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        # -f with -p attaches every thread of the process, where the scavenger may run.
        self._proc = subprocess.Popen(
            [strace, "-f", "-qq", "-ttt", "-e", "signal=none", "-e", "trace=madvise,munmap,mmap",
             "-o", name, "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + ATTACH_TIMEOUT_S
        while not all_threads_traced(pid):
            if self._proc.poll() is not None:
                return  # strace failed: finish() says why
            if time.monotonic() > deadline:
                self.note = (f"strace had not attached to every thread after {ATTACH_TIMEOUT_S:.0f} s; "
                             "the workload went on, its first calls may be missing")
                return
            time.sleep(0.002)

    def finish(self, wall_minus_mono_ns: int) -> None:
        if self._proc is None or self._log is None:
            return
        try:
            # strace leaves when its tracee does; a short grace, then stop it ourselves.
            _, err = self._proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            _, err = self._proc.communicate()
        if self._proc.returncode not in (0, None) and not self._log.stat().st_size:
            self.note = f"strace failed (exit {self._proc.returncode}): {err.decode(errors='replace').strip()[-300:]}"
        self.events = parse_strace(self._log.read_text(errors="replace"), wall_minus_mono_ns)
        self._log.unlink(missing_ok=True)
        self._proc = None


# Bounds an attach that hangs; strace takes milliseconds on an idle host.
ATTACH_TIMEOUT_S = 60.0


def strace_path() -> str | None:
    """The host's strace, or None: the one place that decides whether a cell can be traced."""
    return shutil.which("strace")


def all_threads_traced(pid: int) -> bool:
    """Every thread of pid has a tracer (TracerPid in /proc/PID/task/*/status, as the host sees it);
    False once the process is gone."""
    threads = thread_files(pid, "status")
    if not threads:
        return False
    return all(_tracer_pid(status) not in (b"", b"0") for (status,) in threads)


def _tracer_pid(status: bytes) -> bytes:
    start = status.find(b"TracerPid:")
    return b"" if start < 0 else status[start + 10:status.find(b"\n", start)].strip()
