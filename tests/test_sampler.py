import itertools
import random
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.run.observe.sampler import Clock, Sampler, _Tier

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _counter():
    def probe():
        probe.calls += 1
        return {"n": probe.calls}

    probe.calls = 0
    return probe


class VirtualClock:
    """Time that moves only when a probe says it cost some, or when the tier sleeps or waits; actions
    scheduled at a virtual instant (stop, trigger) run when time reaches it. `oversleep()` adds to every
    sleep and wait what a loaded machine would (a thread woken late)."""

    def __init__(self, oversleep=lambda: 0):
        self.t = 10**12
        self.t0 = self.t
        self.oversleep = oversleep
        self.actions: list[tuple[int, object]] = []

    def at(self, seconds: float, action) -> None:
        self.actions.append((self.t0 + round(seconds * 1e9), action))
        self.actions.sort(key=lambda a: a[0])

    def cost(self, seconds: float) -> None:
        self._advance(self.t + round(seconds * 1e9))

    def _advance(self, target: int, event: threading.Event | None = None) -> bool:
        while self.actions and self.actions[0][0] <= target:
            when, action = self.actions.pop(0)
            self.t = max(self.t, when)
            action()
            if event is not None and event.is_set():
                return True        # a wait ends when its event is set; a sleep runs its full length
        self.t = max(self.t, target)
        return False

    def now_ns(self) -> int:
        return self.t

    def sleep(self, seconds: float) -> None:
        self._advance(self.t + round(seconds * 1e9) + self.oversleep())

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        return self._advance(self.t + round(timeout * 1e9) + self.oversleep(), event)

    def clock(self) -> Clock:
        return Clock(self.now_ns, self.sleep, self.wait)


def _virtual_tier(probes, hz, clock: VirtualClock, stop_after_s: float) -> _Tier:
    """A tier run in this thread on virtual time; stopped at stop_after_s as Sampler.stop() does it."""
    stop = threading.Event()
    tier = _Tier("fast", probes, hz, stop, clock.clock())

    def stop_now():
        stop.set()
        tier.running = False
        tier.wake.set()

    clock.at(stop_after_s, stop_now)
    tier._run()
    return tier


def _stamping(clock: VirtualClock, cost_s=lambda n: 0.0):
    """A probe that records (start, end) of each read and costs cost_s(read number) of virtual time."""
    spans = []

    def probe():
        start = clock.now_ns()
        clock.cost(cost_s(len(spans)))
        spans.append((start, clock.now_ns()))
        return {"v": float(len(spans))}

    return probe, spans


MS = 1_000_000


def test_reads_land_on_the_deadline_grid_whatever_they_cost():
    # A probe costing 3 ms of a 10 ms period: a relative sleep(period) loop would drift to ~77 Hz.
    clock = VirtualClock()
    probe, spans = _stamping(clock, lambda n: 0.003)
    tier = _virtual_tier({"c": probe}, 100, clock, stop_after_s=2.0)
    # The stop arrives during the sleep before the 2.000 s deadline; that tick is still read.
    assert [s for s, _ in spans] == [clock.t0 + k * 10 * MS for k in range(201)]
    st = tier.stats()
    assert (st["fast_ticks"], st["fast_missed"], st["fast_triggered"]) == (201, 0, 0)
    assert st["fast_hz_achieved"] == pytest.approx(100.0, rel=1e-12)
    assert [r[3] for r in tier.rows()] == [float(i) for i in range(1, 202)]


def test_missed_deadlines_are_skipped_and_counted():
    clock = VirtualClock()
    probe, spans = _stamping(clock, lambda n: 0.055 if n == 4 else 0.0)   # the 5th read spans 5.5 periods
    tier = _virtual_tier({"p": probe}, 100, clock, stop_after_s=0.5)
    starts = [s for s, _ in spans]
    # Read 5 starts at 40 ms and ends at 95 ms: the 50-90 ms deadlines are gone; the next read is at 100 ms,
    # not a burst of five back to back.
    assert starts[:6] == [clock.t0 + ms * MS for ms in (0, 10, 20, 30, 40, 100)]
    assert tier.missed == 5
    assert tier.ticks + tier.missed == 51       # deadlines 0..500 ms: each one read or counted


def test_a_loaded_machine_gets_no_bursts_and_every_deadline_is_accounted_for():
    # Wake-ups up to 35 ms late and reads of up to 12 ms, at random: a tick is never read before its
    # deadline, a late tick is followed by the first deadline after it ended (never a catch-up burst), and
    # ticks + missed is exactly the number of deadlines up to the end of the last read.
    rng = random.Random(7)
    clock = VirtualClock(oversleep=lambda: rng.choice((0, 0, 0, rng.randrange(35 * MS))))
    probe, spans = _stamping(clock, lambda n: rng.choice((0.0005, 0.0005, rng.uniform(0, 0.012))))
    tier = _virtual_tier({"p": probe}, 100, clock, stop_after_s=20.0)
    period = 10 * MS
    for (_, prev_end), (start, _) in itertools.pairwise(spans):
        # The deadline served next is the first one after the previous read ended; it is read no earlier
        # than that deadline and no later than the longest oversleep.
        next_deadline = clock.t0 + ((prev_end - clock.t0) // period + 1) * period
        assert next_deadline <= start < next_deadline + 35 * MS
    last_end = spans[-1][1]
    assert tier.ticks + tier.missed == (last_end - clock.t0) // period + 1
    assert tier.missed > 100 and tier.ticks == len(spans) > 1000
    assert 0 < tier.stats()["fast_hz_achieved"] <= 100


def test_gone_and_broken_probes():
    clock = VirtualClock()
    n = [0]

    def dies():
        n[0] += 1
        if n[0] > 10:
            raise ProcessLookupError("gone")
        return {"v": float(n[0])}

    def broken():
        raise ValueError("bad parse")

    tier = _virtual_tier({"dies": dies, "ok": lambda: {"v": 1.0}, "broken": broken}, 100, clock, 0.5)
    rows, st = tier.rows(), tier.stats()
    assert n[0] == 11 and [r[3] for r in rows if r[1] == "dies"] == [float(i) for i in range(1, 11)]
    assert st["fast_gone"] == {"dies": clock.t0 + 100 * MS}     # the 11th tick
    assert len([r for r in rows if r[1] == "ok"]) == st["fast_ticks"] == 51
    assert st["fast_errors"] == 51 and st["fast_first_error"] == "broken: ValueError: bad parse"


def test_a_gone_target_found_by_the_batched_parse_stops_its_reads():
    # FileProbe's halves: read_raw at the tick, parse_raw in a batch later; a zombie's status reads fine
    # and fails to parse, which marks the probe gone at that read and drops its later reads.
    clock = VirtualClock()
    reads = [0]

    class Half:
        def read_raw(self):
            reads[0] += 1
            return reads[0]

        def parse_raw(self, raw):
            clock.cost(0.0002)    # parsing costs time too: the batch must stop before the next deadline
            if raw >= 120:
                raise ProcessLookupError("zombie")
            return {"n": float(raw)}

    tier = _virtual_tier({"proc": Half()}, 100, clock, stop_after_s=3.0)
    rows, st = tier.rows(), tier.stats()
    assert [r[3] for r in rows] == [float(i) for i in range(1, 120)]
    assert st["fast_gone"]["proc"] == clock.t0 + 119 * 10 * MS
    assert reads[0] < 200, "reading stopped soon after the parse found the target gone"
    assert st["fast_missed"] == 0, "the batched parse never made a tick late"


def test_all_probes_gone_ends_the_tier_by_itself():
    def gone():
        raise FileNotFoundError("/proc/1/status")

    clock = VirtualClock()
    tier = _virtual_tier({"p": gone}, 100, clock, stop_after_s=1000.0)   # returns long before the stop
    assert clock.t == clock.t0 and tier.ticks == 1 and tier.rows() == []
    # The same with real threads: both tiers end on their own, without stop().
    sampler = Sampler({"p": gone}, {"s": gone}, fast_hz=100, slow_hz=2)
    sampler.start()
    for t in sampler._tiers:
        t.thread.join(timeout=120)
    assert not any(t.thread.is_alive() for t in sampler._tiers)
    assert sampler.stop().rows == []


def test_trigger_reads_the_slow_tier_at_once_without_moving_its_schedule():
    clock = VirtualClock()
    probe, spans = _stamping(clock)
    stop = threading.Event()
    tier = _Tier("slow", {"slow": probe}, 0.5, stop, clock.clock())
    clock.at(0.3, tier.wake.set)                                   # Sampler.trigger()
    clock.at(3.0, lambda: (stop.set(), setattr(tier, "running", False), tier.wake.set()))
    tier._run()
    assert [s - clock.t0 for s, _ in spans] == [0, 300 * MS, 2000 * MS]
    st = tier.stats()
    assert (st["slow_ticks"], st["slow_triggered"], st["slow_missed"]) == (2, 1, 0)
    assert clock.t == clock.t0 + 3000 * MS, "a stop during the wait ends it without another read"


def _wait_until(condition, what: str, timeout_s: float = 120.0) -> None:
    # Bounds a hang only: on a loaded machine the condition may take long, never forever.
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_threads_read_every_source_in_time_order_and_never_faster_than_asked():
    a, s = _counter(), _counter()
    sampler = Sampler({"a": a, "b": lambda: {"x": 1.0}}, {"s": s}, fast_hz=100, slow_hz=5)
    sampler.start()
    _wait_until(lambda: a.calls >= 5 and s.calls >= 2, "5 fast and 2 slow reads")
    result = sampler.stop()
    st = result.stats
    assert {r[1] for r in result.rows} == {"a", "b", "s"}
    assert [r[0] for r in result.rows] == sorted(r[0] for r in result.rows)
    a_rows = [r for r in result.rows if r[1] == "a"]        # one row per metric per read, as returned
    assert [r[3] for r in a_rows] == [float(i) for i in range(1, len(a_rows) + 1)]
    assert st["fast_errors"] == 0 and "fast_first_error" not in st
    # Load may make deadlines pass unread (counted as missed), but no more deadlines than the clock
    # allowed are ever served or counted: ticks + missed <= elapsed × rate + 1, whatever the load.
    for tier, hz in (("fast", 100), ("slow", 5)):
        assert 1 <= st[f"{tier}_ticks"] + st[f"{tier}_missed"] <= st[f"{tier}_elapsed_s"] * hz + 1 + 1e-6, st


def test_slow_tier_does_not_slow_the_fast_tier():
    # The slow read blocks until the fast tier has read 5 more times. Were the tiers one thread, the fast
    # tier could not read while the slow read is in progress and the release would never come.
    fast_reads = [0]
    released = []

    def fast_probe():
        fast_reads[0] += 1
        return {"v": 1.0}

    def slow_probe():
        target = fast_reads[0] + 5
        deadline = time.monotonic() + 120
        while fast_reads[0] < target and time.monotonic() < deadline:
            time.sleep(0.005)
        released.append(fast_reads[0] >= target)
        return {"s": 1.0}

    sampler = Sampler({"f": fast_probe}, {"slow": slow_probe}, fast_hz=100, slow_hz=10)
    sampler.start()
    _wait_until(lambda: len(released) >= 2, "two slow reads")
    sampler.stop()
    assert all(released), "the fast tier kept reading while a slow read was in progress"


def test_stop_is_idempotent_and_start_once():
    sampler = Sampler({"a": _counter()}, fast_hz=50)
    sampler.start()
    time.sleep(0.1)
    first = sampler.stop()
    assert sampler.stop() is first
    with pytest.raises(RuntimeError):
        sampler.start()
    with pytest.raises(ValueError, match="fast_hz"):
        Sampler({"a": _counter()}, fast_hz=0)
    with pytest.raises(ValueError, match="unique"):
        Sampler({"a": _counter()}, {"a": _counter()})


def test_stop_after_a_start_cut_short_by_ctrl_c():
    # SIGINT between the two tiers' thread starts: stop() must still return what the started tier read.
    a = _counter()
    sampler = Sampler({"a": a}, {"s": _counter()}, fast_hz=100, slow_hz=1)
    sampler._started = True
    sampler._tiers[0].thread.start()
    _wait_until(lambda: a.calls >= 1, "one fast read")
    result = sampler.stop()
    assert {r[1] for r in result.rows} == {"a"} and result.stats["slow_ticks"] == 0


def test_benchmark_samples_a_real_1gib_process():
    """The cost benchmark measures what it says (its figure is printed by `make bench`, never
    asserted: CPU time on a shared machine is not a pass/fail property)."""
    from bench_sampler import run_benchmark

    report = run_benchmark(seconds=1.0, hz=100, size_bytes=1 << 30)
    assert report["max_vm_rss_bytes"] >= 1 << 30
    assert report["fast_ticks"] >= 1
    assert report["cpu_pct_of_one_core"] > 0


def test_side_by_side_benchmark_runs_the_sampler_in_its_own_process():
    """bench_sampler's whole-process figures for this tree's sampler (psrecord and a baseline are the
    benchmark's business, not a test's)."""
    from bench_sampler import Contender, Holder, side_by_side

    from harness.run.observe.probes import cgroup_probe, proc_status_probe

    with Holder(64 << 20) as holder:
        # What one reading of each probe gives here (14 on this v1 host: status with VmSwap, the cgroup's
        # five plus anon_thp, shmem, swap); more on v2.
        fields = len(proc_status_probe(holder.pid)()) + len(cgroup_probe(holder.cg)())
        got = side_by_side([Contender("goreclaim", holder, Path(__file__).resolve().parents[1])], 100.0, 0.5, 1)
    (report,) = got["goreclaim"]
    # Counts, not a rate: a busy machine may miss deadlines, but every tick gives all the fields.
    assert report["fields_per_tick"] == fields and report["ticks"] >= 1 and report["rows"] >= fields * report["ticks"]
    assert report["max_vm_rss"] >= 64 << 20
    assert report["window_cpu_s"] > 0 and report["ticks"] >= 1
