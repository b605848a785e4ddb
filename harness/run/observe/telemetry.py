"""Workload output → runtime samples and events (docs/ARCHITECTURE.md, "Telemetry protocol").

stdout carries JSON lines stamped with CLOCK_MONOTONIC ns by the workload; stderr carries the Go runtime's
gctrace/scavtrace lines, which are stamped with the harness's receive time (their own "@1.23s" counts
from runtime init, which is not on our clock). Anything else is kept for the stderr tail, never fatal:
a crashing workload's last words are exactly what a failed cell must show.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from harness.define.metrics import Event, Sample

_NAN = math.nan

# gctrace, from runtime/mgc.go (the heap numbers are >>20, i.e. MiB written "MB"):
#   Go 1.15: gc 7 @0.5s 2%: 0.01+0.4+0.003 ms clock, ... ms cpu, 4->4->0 MB, 5 MB goal, 2 P (forced)
#   Go 1.27: ... ms cpu, 64->64->0 MB, 128 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
# Newer runtimes may insert a note after the utilisation, e.g. "2% (checking for goroutine leaks):".
GCTRACE_RE = re.compile(
    r"^gc (?P<n>\d+) @(?P<at>[\d.]+)s (?P<util>\d+)%[^:]*: .*? ms clock, (?P<cpu>[\d.+/]+) ms cpu, "
    r"(?P<start>\d+)->(?P<end>\d+)->(?P<live>\d+) MB, (?P<goal>\d+) MB goal, "
    r"(?:(?P<stacks>\d+) MB stacks, )?(?:(?P<globals>\d+) MB globals, )?"
    r"(?P<procs>\d+) P(?P<forced> \(forced\))?"
)

# scavtrace, from runtime/mgcscavenge.go (KiB):
#   Go 1.14, 1.18: scav 12 KiB work, 3400 KiB total, 99% util
#   Go 1.15-1.17:  scav 3 12 KiB work, 3400 KiB total, 99% util            (with a generation number)
#   Go 1.19+:      scav 32 KiB work (bg), 65568 KiB work (eager), 69112 KiB now, 100% util (forced)
SCAVTRACE_RE = re.compile(
    r"^scav (?:(?P<gen>\d+) )?(?P<bg>\d+) KiB work(?: \(bg\))?, "
    r"(?:(?P<eager>\d+) KiB work \(eager\), )?(?P<released>\d+) KiB (?:total|now), "
    r"(?P<util>\d+)% util(?P<forced> \(forced\))?"
)

# A benchmark result as `go test -bench` prints it (golang.org/x/perf/benchfmt):
#   BenchmarkCodeDecoder-2   	     100	  12279593 ns/op	 158.02 MB/s	 2385164 B/op	   77620 allocs/op
BENCH_RE = re.compile(r"^(?P<name>Benchmark\S+?)(?:-(?P<procs>\d+))?\s+(?P<n>\d+)\s+(?P<values>\S.*)$")

_MiB = 1 << 20
_KiB = 1 << 10


def parse_gctrace(line: str) -> dict[str, Any] | None:
    m = GCTRACE_RE.match(line)
    if m is None:
        return None
    g = m.groupdict()
    out: dict[str, Any] = {
        "num_gc": int(g["n"]),
        "at_s": float(g["at"]),
        "util_pct": int(g["util"]),
        "heap_start_bytes": int(g["start"]) * _MiB,
        "heap_end_bytes": int(g["end"]) * _MiB,
        "heap_live_bytes": int(g["live"]) * _MiB,
        "goal_bytes": int(g["goal"]) * _MiB,
        "procs": int(g["procs"]),
        "forced": g["forced"] is not None,
        # GC CPU of this cycle: sweep termination + assist/background/idle marking + mark termination.
        "cpu_s": sum(float(p) for p in re.split(r"[+/]", g["cpu"]) if p) / 1e3,
    }
    if g["stacks"] is not None:
        out["stacks_bytes"] = int(g["stacks"]) * _MiB
    if g["globals"] is not None:
        out["globals_bytes"] = int(g["globals"]) * _MiB
    return out


def parse_scavtrace(line: str) -> dict[str, Any] | None:
    m = SCAVTRACE_RE.match(line)
    if m is None:
        return None
    g = m.groupdict()
    bg = int(g["bg"]) * _KiB
    eager = int(g["eager"]) * _KiB if g["eager"] is not None else 0
    return {
        "released_bytes": bg + eager,       # this report's work: background plus eager (FreeOSMemory)
        "released_bg_bytes": bg,
        "released_eager_bytes": eager,
        "heap_released_bytes": int(g["released"]) * _KiB,  # the runtime's running total
        "util_pct": int(g["util"]),
        "forced": g["forced"] is not None,
    }


def parse_bench(line: str) -> dict[str, Any] | None:
    """One benchmark result line -> {name, procs, iterations, metrics {unit: value}}; None otherwise."""
    m = BENCH_RE.match(line.strip())
    if m is None:
        return None
    fields = m.group("values").split()
    if len(fields) < 2 or len(fields) % 2:
        return None
    metrics: dict[str, float] = {}
    for value, unit in zip(fields[::2], fields[1::2], strict=True):
        try:
            metrics[unit] = float(value)
        except ValueError:
            return None
    return {"name": m.group("name"), "procs": int(m.group("procs") or 1), "iterations": int(m.group("n")),
            "metrics": metrics}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


class TelemetryParser:
    """Feed it lines as they arrive; read .samples, .events, .start, .end, .bad_lines, .stderr_tail()."""

    def __init__(self, tail_lines: int = 400):
        self.samples: list[Sample] = []
        self.events: list[Event] = []
        self.start: dict[str, Any] | None = None    # the workload's `start` line
        self.end: dict[str, Any] | None = None      # the `totals` of its `end` line
        self.bad_lines = 0
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._workload = ""

    # stdout: the workload's JSON lines.
    def feed_stdout(self, line: str, recv_ns: int) -> str | None:
        """Parse one protocol line; returns its `ev` ("phase", "metrics", ...), None if not one."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return None
        if line.startswith("Benchmark"):
            bench = parse_bench(line)
            if bench is not None:
                self.events.append((recv_ns, "bench", bench["name"], bench["metrics"].get("ns/op", _NAN),
                                    json.dumps({"line": line, **bench})))
                self._tail.append(line)
                return "bench"
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or "ev" not in obj:
            self.bad_lines += 1
            self._tail.append(line)
            return None
        t = obj.get("t")
        if not isinstance(t, int) or isinstance(t, bool):
            t = recv_ns  # the protocol requires "t"; fall back rather than drop the line
        ev = obj["ev"]
        if not isinstance(ev, str) or ev not in self._HANDLERS:
            self.bad_lines += 1
            self._tail.append(line)
            return None
        try:
            self._HANDLERS[ev](self, t, obj, line)
        except (TypeError, ValueError, KeyError, AttributeError):
            self.bad_lines += 1
            self._tail.append(line)
            return None
        return ev

    def _on_start(self, t: int, obj: dict[str, Any], line: str) -> None:
        self.start = obj
        self._workload = str(obj.get("workload", ""))
        self.events.append((t, "start", self._workload, _NAN, line))

    def _on_phase(self, t: int, obj: dict[str, Any], line: str) -> None:
        self.events.append((t, "phase", str(obj["name"]), _NAN, line))

    def _on_metrics(self, t: int, obj: dict[str, Any], line: str) -> None:
        append = self.samples.append
        for name, value in obj["m"].items():
            number = _number(value)
            if number is not None:
                append((t, "runtime", name, number))

    def _on_freeos(self, t: int, obj: dict[str, Any], line: str) -> None:
        self.events.append((t, "freeos", "freeos", float(obj["dur_ns"]), line))

    def _on_sizes(self, t: int, obj: dict[str, Any], line: str) -> None:
        self.events.append((t, "sizes", str(obj["size"]), float(obj["ops_per_s"]), line))

    def _on_heapprofile(self, t: int, obj: dict[str, Any], line: str) -> None:
        # The file is read by the Observation, which knows the cell's scratch directory.
        self.events.append((t, "heapprofile", str(obj["phase"]), float(obj["bytes"]), line))

    def _on_end(self, t: int, obj: dict[str, Any], line: str) -> None:
        totals = obj.get("totals", {})
        if not isinstance(totals, dict):
            raise TypeError("totals is not an object")
        self.end = totals
        name = str(obj.get("workload", self._workload))
        self.events.append((t, "end", name, _NAN, json.dumps(totals, sort_keys=True)))

    _HANDLERS: dict[str, Callable[[TelemetryParser, int, dict[str, Any], str], None]] = {
        "start": _on_start,
        "phase": _on_phase,
        "metrics": _on_metrics,
        "freeos": _on_freeos,
        "sizes": _on_sizes,
        "heapprofile": _on_heapprofile,
        "end": _on_end,
    }

    # stderr: the runtime's traces, or anything else the process says.
    def feed_stderr(self, line: str, recv_ns: int) -> None:
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        if line.startswith("gc "):
            gc = parse_gctrace(line)
            if gc is not None:
                self.events.append((recv_ns, "gc", f"gc{gc['num_gc']}", float(gc["heap_end_bytes"]),
                                    json.dumps({"line": line, **gc})))
                return
        elif line.startswith("scav "):
            scav = parse_scavtrace(line)
            if scav is not None:
                self.events.append((recv_ns, "scav", "scav", float(scav["released_bytes"]),
                                    json.dumps({"line": line, **scav})))
                return
        self._tail.append(line)

    def stderr_tail(self, n: int = 40) -> str:
        """The last n lines that were neither protocol JSON nor runtime traces, oldest first."""
        if n <= 0:
            return ""
        return "\n".join(list(self._tail)[-n:])
