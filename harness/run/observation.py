"""What is measured while a workload runs, whatever starts it: its output, telemetry, samples and trace.

A backend owns only how the process is started, confined and stopped; `Observation` owns
everything measured about it, so the docker, cgroup and process backends measure alike.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.define.cell import Cell
from harness.define.metrics import Sample, Source
from harness.run.backends.base import RunResult, Status
from harness.run.env import TRACED_FILE
from harness.run.lines import pump_demuxed, pump_lines
from harness.run.observe.strace import SyscallTrace
from harness.run.ports import with_port

if TYPE_CHECKING:
    from harness.run.observe.cgroupfs import MemoryCgroup
    from harness.run.observe.probes import Probe
    from harness.run.observe.sampler import Sampler

# A program's output is kept whole up to this many bytes per stream (then cut, saying so).
OUTPUT_LIMIT = 16 << 20


class Observation:
    """Telemetry, samples and the optional syscall trace of one workload run."""

    def __init__(self, cell: Cell):
        from harness.run.observe.telemetry import TelemetryParser

        self.cell = cell
        self.parser = TelemetryParser()
        self._parser_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sampler: Sampler | None = None
        self.sampler_rows: list = []
        self.sampler_stats: dict = {}
        self.trace = SyscallTrace()
        # strace stamps wall-clock time; this offset moves it onto CLOCK_MONOTONIC.
        self.wall_minus_mono_ns = time.time_ns() - time.monotonic_ns()
        self.t0_ns = 0
        self.end_ns = 0
        self.pid: int | None = None   # the process sampled, once known
        self.scratch: Path | None = None  # the cell's scratch directory ($TMPDIR), where a heap profile is written
        # A program's whole stdout and stderr (a workload's telemetry is parsed, not kept).
        self.keeps_output = cell.program is not None
        self.output = {"stdout": bytearray(), "stderr": bytearray()}
        # --ready log:REGEX: set by the first line of its output that matches.
        self.ready_seen = threading.Event()
        ready = cell.program.ready if cell.program is not None else ""
        self._ready_re = re.compile(ready[4:]) if ready.startswith("log:") else None

    def mark_start(self) -> None:
        self.t0_ns = time.monotonic_ns()
        if self.cell.program is not None:
            # What a workload's own `start` line would say: which runtime settings it ran with.
            env = dict(self.cell.env)
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

    def load_ran(self, command: list[str], output: str, t_ns: int) -> str:
        """A load command's output (kept whole as the cell's load.txt) and, when it is hey's or wrk's summary,
        its numbers as a `load` event; "" then, else the note that says it was not parsed."""
        from harness.run.loadgen import parse_load_output

        self.output["load"] = bytearray(output.encode()[:OUTPUT_LIMIT])
        report = parse_load_output(output)
        detail = {"command": command, **(report.as_detail() if report is not None else {})}
        with self._parser_lock:
            self.parser.events.append((t_ns, "load", report.tool if report is not None else "unparsed",
                                       report.requests_per_s if report is not None else float("nan"),
                                       json.dumps(detail)))
        if report is not None:
            return ""
        return ("the load command's output is neither hey's summary nor wrk --latency's: run and kept (load.txt), "
                "no requests/s or latency from it")

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
        t = threading.Thread(target=pump_demuxed, args=(frames, self._feed_stdout, self._feed_stderr), daemon=True)
        t.start()
        self._threads.append(t)

    def _feed_stdout(self, line: str, recv_ns: int) -> None:
        if self.keeps_output:
            self._keep("stdout", line)
        with self._parser_lock:
            ev = self.parser.feed_stdout(line, recv_ns)
        # A new phase means the previous one just ended: read every tier now (see Sampler.trigger).
        sampler = self._sampler
        if sampler is not None and ev in ("phase", "heapprofile"):
            sampler.trigger()
        if ev == "heapprofile":
            self._read_heap_profile()

    def add_samples(self, samples: list[Sample]) -> None:
        """Readings taken beside the sampler, from any thread (a backend's own: Docker's stats stream)."""
        with self._parser_lock:
            self.parser.samples.extend(samples)

    def _read_heap_profile(self) -> None:
        """The heap profile the last heapprofile line names, read from the scratch directory while the
        workload runs (the directory goes with the cell): its inuse_space, a runtime sample at the line's t."""
        from harness.run.observe.heapprofile import ProfileError, inuse_space

        with self._parser_lock:  # the latest heapprofile event (a stderr line may have come after it)
            t, _, phase, _, line = next(e for e in reversed(self.parser.events) if e[1] == "heapprofile")
        name = Path(str(json.loads(line).get("file", ""))).name
        if self.scratch is None or not name:
            self.sampler_stats["heap_profile"] = f"heap profile {name or '(unnamed)'}: no scratch directory to read"
            return
        try:
            value = inuse_space(self.scratch / name)
        except (OSError, ProfileError) as e:
            self.sampler_stats["heap_profile"] = f"heap profile {name} at the end of {phase}: {e}"
            return
        with self._parser_lock:
            self.parser.samples.append((t, "runtime", "pprof_inuse_space", float(value)))

    def _feed_stderr(self, line: str, recv_ns: int) -> None:
        if self.keeps_output:
            self._keep("stderr", line)
        with self._parser_lock:
            self.parser.feed_stderr(line, recv_ns)

    def start_sampling(self, pid: int, cgroup: MemoryCgroup | None = None, port: int | None = None,
                       scratch: Path | None = None) -> None:
        """Sample pid (and its cgroup); attach strace to a traced cell, then tell the workload, through
        its scratch directory, that it may start (run.env.WAIT_FOR_TRACER)."""
        from harness.run.observe.probes import cgroup_probe, metrics_url_probe, proc_status_probe, smaps_rollup_probe
        from harness.run.observe.sampler import Sampler

        self.pid = pid
        self.scratch = scratch
        try:
            fast: dict[Source, Probe] = {"proc": proc_status_probe(pid)}
            if cgroup is not None:
                # A removed cgroup (ENODEV) is a gone target in cgroup_probe itself; unwrapped, so the sampler
                # can read it at its tick and parse later (probes.FileProbe).
                fast["cgroup"] = cgroup_probe(cgroup)
            slow: dict[Source, Probe] = {"smaps": smaps_rollup_probe(pid)}
            if self.cell.program is not None and self.cell.program.metrics_url:
                slow["runtime"] = metrics_url_probe(with_port([self.cell.program.metrics_url], port)[0])
        except (ProcessLookupError, FileNotFoundError):
            self.sampler_stats["not_sampled"] = f"pid {pid} ended before its first sample"
            return
        sampler = self._sampler = Sampler(fast=fast, slow=slow, fast_hz=self.cell.fast_hz, slow_hz=self.cell.slow_hz)
        sampler.start()
        if self.cell.trace_syscalls:
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
        self, *, status: Status, reason: str, exit_code: int | None, oom_killed: bool,
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
            output={k: bytes(v).decode("utf-8", "replace") for k, v in self.output.items()}
            if self.keeps_output else {},
        )
