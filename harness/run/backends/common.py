"""What every backend does while a workload runs: read its output, sample it, trace it, judge it.

A backend owns only how the process is started, confined and stopped; `Observation` owns
everything measured about it, so the docker, cgroup and process backends measure alike.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.run.backends.base import RunResult
from harness.run.observe.strace import SyscallTrace
from harness.run.leftovers import owner_tag
from harness.define.cell import Cell
from harness.define.units import parse_duration
from harness.define.workloads import PORT


class RunInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived during a run; `result` holds what was measured until then.

    A KeyboardInterrupt, so a caller that knows nothing of it still stops; the runner
    catches it to save the partial cell before stopping.
    """

    def __init__(self, result: RunResult):
        super().__init__(f"interrupted during {result.cell.cell_id}")
        self.result = result


def classify(
    *, exit_code: int | None, oom_killed: bool, timed_out: bool, interrupted: bool, stderr_tail: str,
    timeout_s: float, program: bool = False, stopped: str = "", failed_step: tuple[str, str] = ("", ""),
    stuck: str = "",
) -> tuple[str, str]:
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
        how = f"killed by signal {signal.Signals(-exit_code).name if -exit_code in signal.valid_signals() else -exit_code}"
    else:
        how = f"exited with status {exit_code}"
    tail = stderr_tail.strip()
    if program:
        return "exited", how + (f"; output: {tail[-2000:]}" if tail else "")
    return "failed", how + (f"; stderr: {tail}" if tail else "")


@dataclass
class Supervised:
    """How a cell's process was waited for: what `classify` judges besides its exit."""

    timed_out: bool = False
    stuck: str = ""     # at a timeout: what its threads were doing (threads_state)
    stopped: str = ""   # how the harness stopped it; "" when it ended by itself
    status: str = ""    # not_ready | load_failed: the program's timeline went wrong there
    reason: str = ""


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


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now: the cell's {port}."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixed_port(cell: Cell) -> int | None:
    """The port of a `--ready tcp:PORT` naming a number rather than the cell's {port}."""
    ready = cell.program.ready if cell.program is not None else ""
    return int(ready[4:]) if ready.startswith("tcp:") and ready[4:].isdigit() else None


def port_taken(cell: Cell) -> str:
    """Why the cell's fixed port cannot be its program's: something answers on it already ("" if free)."""
    port = fixed_port(cell)
    if port is None:
        return ""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return (f"port {port} on 127.0.0.1 is already taken by another process, so --ready tcp:{port} "
                    "would not be this program; free it, or let each cell have its own with {port}")
    except OSError:
        return ""


def with_port(texts, port: int | None) -> list[str]:
    return [t.replace(PORT, str(port)) if port is not None else t for t in texts]


def supervise(cell: Cell, obs: Observation, wait: Callable[[float], bool], terminate: Callable[[], None],
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
        ended, code, output = _run_load(with_port(program.load, port), cell.timeout_s, wait)
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


def _await_ready(check: str, timeout_s: float, obs: Observation, wait) -> bool | None:
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


def answers(port: int) -> bool:
    """Something listens on 127.0.0.1:port and keeps the connection open. Docker's proxy accepts
    on a published port before the program listens, then closes at once: that is not ready."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.settimeout(0.1)
            try:
                return conn.recv(1) != b""  # a server that greets first
            except socket.timeout:
                return True  # held open, waiting for a request
    except OSError:
        return False


def _run_load(command: list[str], timeout_s: float, wait) -> tuple[bool, int | None, str]:
    """Run the load command on the host to its end: (the program ended meanwhile, its exit code or
    None if it was stopped, its output). It never outlives this call."""
    with tempfile.TemporaryFile() as output:
        try:
            load = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                    process_group=0)
        except OSError as e:
            return False, 127, f"cannot start it: {e}"
        ended = False
        try:
            deadline = time.monotonic() + timeout_s
            while load.poll() is None and time.monotonic() < deadline:
                if wait(0.1):
                    ended = True
                    break
        finally:
            if load.poll() is None:
                try:
                    os.killpg(load.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                load.wait()
                code = None
            else:
                code = load.returncode
        output.seek(0)
        text = output.read().decode("utf-8", "replace").strip()
    return ended, code, text


def pump_lines(chunks: Iterable[bytes], feed: Callable[[str, int], None]) -> None:
    """Split a byte stream into lines; each is stamped with the monotonic time it arrived."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        now = time.monotonic_ns()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            feed(line.decode("utf-8", "replace").rstrip("\r"), now)
    if pending:
        feed(pending.decode("utf-8", "replace"), time.monotonic_ns())


# A program's output is kept whole up to this many bytes per stream (then cut, saying so).
OUTPUT_LIMIT = 16 << 20

SCRATCH_PREFIX = "goreclaim-scratch-"
SCRATCH_IN_CONTAINER = "/scratch"


@contextlib.contextmanager
def scratch_dir(cell: Cell) -> Iterator[Path]:
    """A writable directory for the cell's working directory and $TMPDIR, on the host's real
    filesystem (a file written there fills page cache charged to the cell's cgroup, where tmpfs
    would be unreclaimable shmem), kept out of the image and removed when the cell ends."""
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{owner_tag()}-"))  # run.leftovers
    path.chmod(0o777)  # the workload may run as another user than the harness
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_leftover_scratch() -> list[str]:
    """Scratch directories of this process that a second Ctrl-C kept from being removed."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{os.getpid()}-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


class Observation:
    """Telemetry, samples and the optional syscall trace of one workload run."""

    def __init__(self, cell: Cell):
        from harness.run.observe.telemetry import TelemetryParser

        self.cell = cell
        self.parser = TelemetryParser()
        self._parser_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sampler = None
        self.sampler_rows: list = []
        self.sampler_stats: dict = {}
        self.trace = SyscallTrace()
        # strace stamps wall-clock time; this offset moves it onto CLOCK_MONOTONIC.
        self.wall_minus_mono_ns = time.time_ns() - time.monotonic_ns()
        self.t0_ns = 0
        self.end_ns = 0
        self.pid: int | None = None   # the process sampled, once known
        self.output = {"stdout": bytearray(), "stderr": bytearray()} if cell.program is not None else None
        # --ready log:REGEX: set by the first line of its output that matches.
        self.ready_seen = threading.Event()
        ready = cell.program.ready if cell.program is not None else ""
        self._ready_re = re.compile(ready[4:]) if ready.startswith("log:") else None

    def mark_start(self) -> None:
        self.t0_ns = time.monotonic_ns()
        if self.cell.program is not None:
            # What a workload's own `start` line would say: which runtime settings it ran with.
            env = {"GOGC": self.cell.gogc or "", "GODEBUG": self.cell.godebug(),
                   "GOMEMLIMIT": self.cell.gomemlimit or ""}
            with self._parser_lock:
                self.parser.events.append((self.t0_ns, "start", self.cell.workload, float("nan"), json.dumps(
                    {"workload": self.cell.workload, "program": self.cell.program.kind,
                     "go_version": self.cell.go_version, "env": env, "by": "harness"})))
            self.phase("start", self.t0_ns)

    def phase(self, name: str, t_ns: int | None = None) -> None:
        """A phase the harness marks itself (a program writes no telemetry); every tier is read now."""
        with self._parser_lock:
            self.parser.events.append((t_ns or time.monotonic_ns(), "phase", name, float("nan"),
                                       json.dumps({"by": "harness"})))
        if self._sampler is not None:
            self._sampler.trigger()

    def _keep(self, stream: str, line: str) -> None:
        if self._ready_re is not None and not self.ready_seen.is_set() and self._ready_re.search(line):
            self.ready_seen.set()
        kept = self.output[stream]
        if len(kept) < OUTPUT_LIMIT:
            kept += (line + "\n").encode()[:OUTPUT_LIMIT - len(kept)]
            if len(kept) >= OUTPUT_LIMIT:
                kept += f"[goreclaim: cut at {OUTPUT_LIMIT} bytes]\n".encode()

    def read_streams(self, stdout: Iterable[bytes] | None, stderr: Iterable[bytes] | None) -> None:
        for chunks, feed in ((stdout, self._feed_stdout), (stderr, self._feed_stderr)):
            if chunks is None:
                continue
            t = threading.Thread(target=pump_lines, args=(chunks, feed), daemon=True)
            t.start()
            self._threads.append(t)

    def read_demuxed(self, frames: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """One thread for docker's demultiplexed (stdout, stderr) frames."""

        def run() -> None:
            pending = {True: b"", False: b""}
            for out, err in frames:
                now = time.monotonic_ns()
                for is_out, chunk in ((True, out), (False, err)):
                    if not chunk:
                        continue
                    pending[is_out] += chunk
                    *lines, pending[is_out] = pending[is_out].split(b"\n")
                    feed = self._feed_stdout if is_out else self._feed_stderr
                    for line in lines:
                        feed(line.decode("utf-8", "replace").rstrip("\r"), now)
            now = time.monotonic_ns()
            for is_out, rest in pending.items():
                if rest:
                    (self._feed_stdout if is_out else self._feed_stderr)(rest.decode("utf-8", "replace"), now)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._threads.append(t)

    def _feed_stdout(self, line: str, recv_ns: int) -> None:
        if self.output is not None:
            self._keep("stdout", line)
        with self._parser_lock:
            ev = self.parser.feed_stdout(line, recv_ns)
        # A new phase means the previous one just ended: read every tier now (see Sampler.trigger).
        sampler = self._sampler
        if sampler is not None and ev == "phase":
            sampler.trigger()

    def _feed_stderr(self, line: str, recv_ns: int) -> None:
        if self.output is not None:
            self._keep("stderr", line)
        with self._parser_lock:
            self.parser.feed_stderr(line, recv_ns)

    def start_sampling(self, pid: int, cgroup=None, port: int | None = None, scratch: Path | None = None) -> None:
        """Sample pid (and its cgroup); attach strace to a traced cell, then tell the workload, through
        its scratch directory, that it may start (run.env.WAIT_FOR_TRACER)."""
        from harness.run.observe.probes import (cgroup_probe, metrics_url_probe, proc_status_probe,
                                                smaps_rollup_probe)
        from harness.run.observe.sampler import Sampler

        self.pid = pid
        try:
            fast = {"proc": proc_status_probe(pid)}
            if cgroup is not None:
                # A removed cgroup (ENODEV) is a gone target in cgroup_probe itself; unwrapped, so the sampler
                # can read it at its tick and parse later (probes.FileProbe).
                fast["cgroup"] = cgroup_probe(cgroup)
            slow = {"smaps": smaps_rollup_probe(pid)}
            if self.cell.program is not None and self.cell.program.metrics_url:
                slow["runtime"] = metrics_url_probe(with_port([self.cell.program.metrics_url], port)[0])
        except (ProcessLookupError, FileNotFoundError):
            self.sampler_stats["not_sampled"] = f"pid {pid} ended before its first sample"
            return
        self._sampler = Sampler(fast=fast, slow=slow, fast_hz=self.cell.fast_hz, slow_hz=self.cell.slow_hz)
        self._sampler.start()
        if self.cell.trace_syscalls:
            from harness.run.env import TRACED_FILE

            self.trace.attach(pid, ready_file=scratch / TRACED_FILE if scratch is not None else None)

    def stop(self, join_timeout_s: float = 5.0) -> None:
        """After the workload has ended: stop sampling, drain its output, collect the trace."""
        if not self.end_ns:
            self.end_ns = time.monotonic_ns()
        if self._sampler is not None:
            got = self._sampler.stop()
            self.sampler_rows, self.sampler_stats = list(got.rows), dict(got.stats)
            self._sampler = None
        for t in self._threads:
            t.join(join_timeout_s)
        self.trace.finish(self.wall_minus_mono_ns)

    def stderr_tail(self) -> str:
        with self._parser_lock:
            return self.parser.stderr_tail()

    def result(
        self, *, status: str, reason: str, exit_code: int | None, oom_killed: bool,
        peak_cgroup_bytes: int | None = None, notes: dict | None = None,
    ) -> RunResult:
        with self._parser_lock:
            samples = list(self.sampler_rows) + list(self.parser.samples)
            events = list(self.parser.events)
        events += self.trace.events
        events.append((
            self.end_ns or time.monotonic_ns(), "exit", status,
            float(exit_code) if exit_code is not None else float("nan"),
            json.dumps({"reason": reason, "oom_killed": oom_killed}),
        ))
        events.sort(key=lambda e: e[0])
        stats = dict(self.sampler_stats)
        if self.cell.trace_syscalls:
            stats["strace"] = self.trace.note or f"{len(self.trace.events)} syscall events"
            start = self.parser.start or {}
            if "tracer_wait_ns" in start:
                # How long the workload waited for strace before its start line (run.env.WAIT_FOR_TRACER).
                stats["strace_wait_s"] = float(start["tracer_wait_ns"]) / 1e9
        stats.update(notes or {})
        if self.trace.note and not reason:
            reason = self.trace.note
        rss = [v for (_, src, metric, v) in samples if src == "proc" and metric in ("vm_rss", "vm_hwm")]
        if peak_cgroup_bytes is None:
            usage = [v for (_, src, metric, v) in samples if src == "cgroup" and metric == "usage"]
            peak_cgroup_bytes = int(max(usage)) if usage else None
        return RunResult(
            cell=self.cell, status=status, reason=reason, exit_code=exit_code, oom_killed=oom_killed,
            wall_s=((self.end_ns or time.monotonic_ns()) - self.t0_ns) / 1e9 if self.t0_ns else 0.0,
            t0_ns=self.t0_ns, samples=samples, events=events,
            peak_rss_bytes=int(max(rss)) if rss else None, peak_cgroup_bytes=peak_cgroup_bytes,
            stderr_tail=self.stderr_tail(), sampler_stats=stats,
            output={k: bytes(v).decode("utf-8", "replace") for k, v in (self.output or {}).items()},
        )
