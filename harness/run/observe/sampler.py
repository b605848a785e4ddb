"""Fixed-cadence two-tier sampling over probe functions.

Each tier runs in its own thread on absolute deadlines (deadline_k = t_start + k * period, from
time.monotonic_ns()), so cadence does not drift with the cost of reads. A tier that wakes up late skips
the deadlines it missed (and counts them) instead of bursting to catch up. The slow tier (smaps_rollup,
milliseconds on a large process) has its own thread so it never delays the fast tier.

A tick does the reads and little else, because after a 10 ms sleep the CPU caches are cold and every
Python operation there costs several times its price in a loop. A probe with `read_raw`/`parse_raw`
(probes.FileProbe: /proc status, the cgroup files) is only read at the tick, and the tier parses what it
kept in batches, about every half second, in the time left before its next deadline; another probe is
called at the tick and its {metric: value} kept as returned. Every kept read becomes one row per metric.

`trigger()` asks for one extra reading of every tier now, off the cadence. Backends call it when the
workload announces a phase, so "the value at the end of a phase" exists even for the slow tier and
for phases shorter than one sampling period (a FreeOSMemory call lasts milliseconds).
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.define.metrics import Sample, Source
from harness.run.observe.probes import Probe, SplitProbe

# A probe's read as kept at the tick: (t_ns, source, parse, raw), where parse is the probe's parse_raw,
# or None when raw is already its {metric: value}.
Read = tuple[int, Source, Callable[[Any], Mapping[str, float]] | None, Any]
# The sampler's cadence figures, by name ("fast_hz_achieved", ...).
Stats = dict[str, Any]

# Exceptions that mean "the target is gone": stop calling that probe, quietly.
_GONE = (ProcessLookupError, FileNotFoundError)

# Kept reads are parsed into rows about this often (seconds of sampling), within this share of the time
# left before the next deadline.
_FLUSH_EVERY_S = 0.5
_FLUSH_SHARE = 0.75


@dataclass(frozen=True)
class Clock:
    """What a tier reads the time with and waits on. The real one is the monotonic clock; the scheduling
    tests pass one whose time moves only when told, so they check deadlines exactly at any machine load."""
    now_ns: Callable[[], int] = time.monotonic_ns
    sleep: Callable[[float], None] = time.sleep
    wait: Callable[[threading.Event, float], bool] = threading.Event.wait   # (event, timeout) -> set?


REAL_CLOCK = Clock()


@dataclass
class SamplerResult:
    rows: list[Sample]                   # (t_ns, source, metric, value), sorted by t_ns
    stats: Stats = field(default_factory=dict)


class _Tier:
    """One thread sampling a set of probes at one rate."""

    def __init__(self, name: str, probes: Mapping[Source, Probe], hz: float, stop: threading.Event,
                 clock: Clock = REAL_CLOCK):
        if hz <= 0:
            raise ValueError(f"{name}_hz must be > 0, got {hz!r}")
        self.name = name
        self.probes = dict(probes)
        self.hz = hz
        self.clock = clock
        self.period_ns = int(round(1e9 / hz))
        self._stop = stop
        self.running = True                     # cleared by Sampler.stop(), which also sets _stop
        # Set by stop() and trigger(); long-period tiers wait on it, so either wakes them at once.
        self.wake = threading.Event()
        self.triggered = 0
        # One per read; _flush() turns them into rows.
        self.reads: list[Read] = []
        self._rows: list[Sample] = []
        self._flush_at = max(1, len(self.probes)) * max(1, int(hz * _FLUSH_EVERY_S))
        self.ticks = 0
        self.missed = 0
        self.read_ns = array("q")               # total read time per tick
        self.errors = 0
        self.first_error: str | None = None
        self.gone: dict[Source, int] = {}       # probe name -> t_ns when its target disappeared
        self.t_start = self.t_end = 0
        self.first_tick = self.last_tick = 0
        self.cpu_ns = 0
        self.thread = threading.Thread(target=self._run, name=f"sampler-{name}", daemon=True)

    def _error(self, name: str, e: Exception) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{name}: {type(e).__name__}: {e}"

    def _run(self) -> None:
        monotonic_ns = self.clock.now_ns
        sleep = self.clock.sleep
        wait = self.clock.wait
        stop_is_set = self._stop.is_set
        wake = self.wake
        reads = self.reads
        reads_append = reads.append
        read_append = self.read_ns.append
        gone = self.gone
        flush, flush_at = self._flush, self._flush_at
        period = self.period_ns
        # Long periods wait on the wake event so stop() and trigger() are prompt; short ones use
        # sleep(), which is cheaper, and a trigger is served at the next tick (within one period).
        use_wait = period >= 50_000_000
        # (name, what to call at the tick, how to parse what it returned later or None)
        active: list[tuple[Source, Callable[[], Any], Callable[[Any], Mapping[str, float]] | None]] = [
            (name, probe.read_raw, probe.parse_raw) if isinstance(probe, SplitProbe) else (name, probe, None)
            for name, probe in self.probes.items()]
        ticks = missed = triggered = 0
        first_tick = last_tick = 0
        cpu_start = time.thread_time_ns()
        t_start = self.t_start = monotonic_ns()
        k = 0
        try:
            while active and self.running:
                deadline = t_start + k * period
                now = monotonic_ns()
                extra = False
                if now < deadline:
                    if use_wait:
                        if wait(wake, (deadline - now) / 1e9):
                            wake.clear()
                            if stop_is_set():
                                break
                            extra = True
                    else:
                        sleep((deadline - now) / 1e9)
                tick_start = monotonic_ns()
                for name, read, parse in active:
                    t = monotonic_ns()
                    try:
                        reads_append((t, name, parse, read()))
                    except _GONE:
                        gone[name] = t
                        active = [a for a in active if a[0] != name]
                    except Exception as e:  # noqa: BLE001 - a broken probe must not kill the sampler
                        self._error(name, e)
                now = monotonic_ns()
                read_append(now - tick_start)
                if extra:
                    # Off the cadence: not a tick, and the schedule stays as it was.
                    triggered += 1
                    continue
                if not k:
                    first_tick = tick_start
                last_tick = tick_start
                ticks += 1
                k += 1
                # Late: skip every deadline already in the past rather than sampling back to back.
                behind = (now - t_start) // period + 1
                if behind > k:
                    missed += behind - k
                    k = behind
                if len(reads) >= flush_at:
                    # Awake anyway: parse kept reads, stopping well before the next deadline.
                    if flush(now + int((t_start + k * period - now) * _FLUSH_SHARE)):
                        # A parse found its target gone (a zombie's status): stop reading it.
                        active = [a for a in active if a[0] not in gone]
        finally:
            self.ticks, self.missed, self.triggered = ticks, missed, triggered
            self.first_tick, self.last_tick = first_tick, last_tick
            self.t_end = monotonic_ns()
            self.cpu_ns = time.thread_time_ns() - cpu_start

    def _flush(self, until_ns: int | None = None) -> bool:
        """Kept reads → rows, oldest first, until the monotonic clock passes until_ns (None: all of them).
        A parse that says the target is gone marks the probe gone at that read and drops its later reads;
        any other failure is counted as an error of the probe. True if a probe was found gone."""
        reads, rows_append, gone = self.reads, self._rows.append, self.gone
        monotonic_ns = self.clock.now_ns
        found_gone = False
        done = 0
        for t, name, parse, raw in reads:
            done += 1
            if gone and name in gone and t >= gone[name]:
                continue
            try:
                for metric, value in (raw if parse is None else parse(raw)).items():
                    rows_append((t, name, metric, value))
            except _GONE:
                gone[name] = t
                found_gone = True
            except Exception as e:  # noqa: BLE001
                self._error(name, e)
            if until_ns is not None and not done & 15 and monotonic_ns() >= until_ns:
                break
        del reads[:done]
        return found_gone

    def rows(self) -> list[Sample]:
        self._flush()
        return self._rows

    def stats(self) -> Stats:
        self._flush()
        elapsed_s = max(self.t_end - self.t_start, 1) / 1e9
        p = self.name
        out: Stats = {
            f"{p}_hz_target": self.hz,
            # Intervals between the first and last tick, so a short run is not biased by one tick.
            f"{p}_hz_achieved": ((self.ticks - 1) * 1e9 / (self.last_tick - self.first_tick)
                                 if self.ticks >= 2 and self.last_tick > self.first_tick else 0.0),
            f"{p}_ticks": self.ticks,
            f"{p}_missed": self.missed,
            f"{p}_triggered": self.triggered,
            f"{p}_read_us_p50": _percentile(self.read_ns, 50) / 1e3,
            f"{p}_read_us_p99": _percentile(self.read_ns, 99) / 1e3,
            f"{p}_read_us_max": (max(self.read_ns) / 1e3) if self.read_ns else 0.0,
            f"{p}_errors": self.errors,
            f"{p}_elapsed_s": elapsed_s,
            f"{p}_cpu_s": self.cpu_ns / 1e9,             # this tier's thread CPU time
            f"{p}_rows": len(self._rows),
        }
        if self.first_error is not None:
            out[f"{p}_first_error"] = self.first_error
        if self.gone:
            out[f"{p}_gone"] = dict(self.gone)
        return out


def _percentile(values: array[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return float(ordered[idx])


def _first(row: Sample) -> int:
    return row[0]


class Sampler:
    """Samples `fast` probes at fast_hz and `slow` probes at slow_hz until stop().

    Probes are keyed by source name ("proc", "cgroup", "smaps"); each row is (t_ns, source, metric, value)
    with t_ns taken just before that probe's read.
    """

    def __init__(self, fast: Mapping[Source, Probe], slow: Mapping[Source, Probe] | None = None,
                 fast_hz: float = 100.0, slow_hz: float = 2.0):
        overlap = set(fast) & set(slow or {})
        if overlap:
            raise ValueError(f"probe names must be unique across tiers, both tiers have {sorted(overlap)}")
        self._stop = threading.Event()
        self._tiers = [_Tier("fast", fast, fast_hz, self._stop), _Tier("slow", slow or {}, slow_hz, self._stop)]
        self._started = False
        self._result: SamplerResult | None = None

    def start(self) -> Sampler:
        if self._started:
            raise RuntimeError("Sampler.start() called twice; create a new Sampler per run")
        self._started = True
        for tier in self._tiers:
            tier.thread.start()
        return self

    def stop(self) -> SamplerResult:
        """Stop both tiers and return every row and the cadence statistics. Safe to call twice."""
        if self._result is not None:
            return self._result
        self._stop.set()
        for tier in self._tiers:
            tier.running = False
            tier.wake.set()
        for tier in self._tiers:
            try:
                tier.thread.join()
            except RuntimeError:
                pass  # never started: a Ctrl-C came in the middle of start()
        # Each tier's rows are in time order already; sorting the two runs together merges them.
        rows = self._tiers[0].rows() + self._tiers[1].rows()
        rows.sort(key=_first)
        stats: Stats = {}
        for tier in self._tiers:
            stats.update(tier.stats())
        self._result = SamplerResult(rows, stats)
        return self._result

    def trigger(self) -> None:
        """One extra reading of every tier as soon as possible, outside the cadence."""
        for tier in self._tiers:
            tier.wake.set()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
