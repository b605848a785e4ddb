"""The sampler's own CPU cost on a real 1 GiB process, side by side with psrecord.

    python benchmarks/bench_sampler.py [--runs 5] [--seconds 10] [--hz 100 [1000 ...]] [--size-mib 1024]
                                       [--baseline GIT_REF] [--no-psrecord] [--in-process] [--with-smaps]
                                       [--fail-over PCT]

One child process holds --size-mib of touched memory in its own memory cgroup (or this process's when
no child cgroup can be made). For each rate and each run, these sample it at the same time, each in its
own process:

  goreclaim   the fast tier as the backends run it: proc (/proc/<pid>/status: vm_rss, rss_anon,
              rss_file, vm_size, vm_hwm) and cgroup (usage, anon, file, inactive_file, working_set),
              10 fields per tick (benchmarks/sampler_child.py)
  baseline    the same from GIT_REF's harness/ (--baseline, e.g. main): before/after in one run
  psrecord    `psrecord PID --interval 1/HZ --duration S --log FILE` (PyPI psrecord; cpu %, real and
              virtual memory: 3 fields per tick), skipped when it is not installed

A sampler's cost is its whole process's CPU time (every thread, user + system: CLOCK_PROCESS_CPUTIME_ID)
from just before it starts sampling to just after it stops and has returned its rows (psrecord: around
its monitor() call), so interpreter start-up and imports are not counted. Printed per rate, as
min / median / max over the runs: CPU seconds per 10 s, % of one core, CPU us per tick; `(minus 0 s run)`,
a cross-check, is the whole process's CPU time from wait4() minus that of a 0 s run of the same command
(noisier: start-up varies by tens of ms); the achieved rate (ticks over the time from the first to the
last; psrecord: lines of its log), fields per tick, missed deadlines and start-up CPU. `ratio` is
goreclaim's CPU over psrecord's (and over the baseline's) within each run, so both saw the same load.

On a shared machine CPU time is a figure, not a verdict: the exit status is non-zero only when
--fail-over is given and the median goreclaim cost at the first rate exceeds it. benchmarks/sampler_floor.c
is the same loop in C (one wake-up and the same reads per tick): the floor the figures sit on.

--in-process prints the older in-process figures instead (this process's CPU over the run while its
sampler threads sample; --with-smaps adds the slow tier, smaps_rollup at 2 Hz, whose read is kernel
work proportional to the target's mapped pages: tens of ms on 1 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.run.observe.cgroupfs import create_memory_cgroup, memory_cgroup_of, writable_memory_hierarchy  # noqa: E402
from harness.run.observe.probes import cgroup_probe, proc_status_probe, smaps_rollup_probe  # noqa: E402
from harness.run.observe.sampler import Sampler  # noqa: E402

BUDGET_PCT_OF_ONE_CORE = 1.0    # the fast tier at 100 Hz

_HOLDER = ("import sys, time; sys.stdin.readline(); b = b'\\x01' * ({size}); "
           "print('ready', flush=True); time.sleep(3600)")

_CHILD = Path(__file__).resolve().parent / "sampler_child.py"

_PSRECORD = """
import json, sys, time
from psrecord.main import monitor
pid, interval, seconds, log = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
t0 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
monitor(pid, logfile=log, duration=seconds, interval=interval)
t1 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
print(json.dumps({"window_cpu_s": t1 - t0}), flush=True)
"""


class Holder:
    """A child process holding size_bytes of touched memory, in its own memory cgroup when possible."""

    def __init__(self, size_bytes: int):
        self.cgroup = None
        if writable_memory_hierarchy() is None:
            self.cgroup = create_memory_cgroup(f"goreclaim-bench-{os.getpid()}", None)
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(size=size_bytes)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            if self.cgroup is not None:
                self.cgroup.add_process(self.proc.pid)
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            if self.proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the memory-holding child did not start")
            self.cg = self.cgroup or memory_cgroup_of(self.proc.pid)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.cgroup is not None:
            self.cgroup.remove(5.0)

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def run_benchmark(seconds: float = 10.0, hz: float = 100.0, size_bytes: int = 1 << 30,
                  slow: bool = False) -> dict:
    """In-process: sample a child holding size_bytes for `seconds`; return CPU %, rates and read costs."""
    with Holder(size_bytes) as holder:
        fast = {"proc": proc_status_probe(holder.pid), "cgroup": cgroup_probe(holder.cg)}
        slow_probes = {"smaps": smaps_rollup_probe(holder.pid)} if slow else {}
        sampler = Sampler(fast, slow_probes, fast_hz=hz, slow_hz=2.0)
        # The process CPU clock, not psutil's cpu_times: those count in 10 ms ticks, 0 for a short run.
        cpu0, wall0 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID), time.monotonic()
        sampler.start()
        time.sleep(seconds)
        result = sampler.stop()
        cpu = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) - cpu0
        wall = time.monotonic() - wall0
        cg_path = str(holder.cg.path)
    s = result.stats
    rss = [v for _, src, m, v in result.rows if src == "proc" and m == "vm_rss"]
    return {
        "seconds": round(wall, 3),
        # Significant digits, not decimals: one tick of a starved run is still more than 0.
        "cpu_pct_of_one_core": _sig(100 * cpu / wall),
        "fast_tier_cpu_pct": _sig(100 * s["fast_cpu_s"] / wall),
        "slow_tier_cpu_pct": _sig(100 * s["slow_cpu_s"] / wall),
        "fast_hz_achieved": round(s["fast_hz_achieved"], 2),
        "fast_ticks": s["fast_ticks"],
        "fast_missed": s["fast_missed"],
        "slow_hz_achieved": round(s["slow_hz_achieved"], 2),
        "fast_read_us_p50": round(s["fast_read_us_p50"], 1),
        "fast_read_us_p99": round(s["fast_read_us_p99"], 1),
        "slow_read_us_p50": round(s["slow_read_us_p50"], 1),
        "rows": len(result.rows),
        "max_vm_rss_bytes": max(rss) if rss else None,
        "cgroup": cg_path,
        "budget_pct": BUDGET_PCT_OF_ONE_CORE,
    }


# --- whole-process, side by side ------------------------------------------------------------------------

def _spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, what: str) -> tuple[float, dict]:
    """Wait for proc; (its CPU seconds, user + system, from wait4; the JSON line it printed)."""
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited with {proc.returncode}: {err.strip()[-2000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return usage.ru_utime + usage.ru_stime, (json.loads(lines[-1]) if lines else {})


class Contender:
    """One sampler command, run as its own process: how to start it and what it reports."""

    def __init__(self, name: str, holder: Holder, tree: Path | None = None, tmp: Path | None = None):
        self.name, self.holder, self.tree, self.tmp = name, holder, tree, tmp

    def argv(self, hz: float, seconds: float, log: Path | None) -> list[str]:
        if self.tree is None:   # psrecord
            return [sys.executable, "-c", _PSRECORD, str(self.holder.pid), repr(1 / hz), repr(seconds), str(log)]
        return [sys.executable, str(_CHILD), "--root", str(self.tree), "--pid", str(self.holder.pid),
                "--cgroup", str(self.holder.cg.path), "--cgroup-version", str(self.holder.cg.version),
                "--hz", repr(hz), "--seconds", repr(seconds)]

    def start(self, hz: float, seconds: float, tag: str) -> tuple[subprocess.Popen, Path | None]:
        log = self.tmp / f"{self.name}-{tag}.log" if self.tree is None else None
        return _spawn(self.argv(hz, seconds, log)), log

    def finish(self, started: tuple[subprocess.Popen, Path | None]) -> dict:
        proc, log = started
        cpu, report = _finish(proc, self.name)
        report["cpu_s"] = cpu
        if log is not None:
            report.update(_psrecord_log(log))
        return report


def _psrecord_log(log: Path) -> dict:
    rows = [line.split() for line in log.read_text().splitlines() if line.strip() and not line.startswith("#")]
    times = [float(r[0]) for r in rows]
    return {
        "ticks": len(rows),
        "hz_achieved": (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 and times[-1] > times[0] else 0.0,
        "fields_per_tick": (len(rows[0]) - 1) if rows else 0,   # every column but the elapsed time
        "missed": 0,
    }


def side_by_side(contenders: list[Contender], hz: float, seconds: float, runs: int) -> dict[str, list[dict]]:
    """Per contender, one report per run: all contenders sample the holder at the same time for `seconds`,
    then each runs for 0 s (start-up and imports) and that is subtracted."""
    out: dict[str, list[dict]] = {c.name: [] for c in contenders}
    for run in range(runs):
        order = contenders[run % len(contenders):] + contenders[:run % len(contenders)]
        long = {c.name: c.start(hz, seconds, f"{hz:g}-{run}") for c in order}
        got = {c.name: c.finish(long[c.name]) for c in order}
        for c in order:
            zero = c.finish(c.start(hz, 0.0, f"{hz:g}-{run}-zero"))
            r = got[c.name]
            r["startup_cpu_s"] = zero["cpu_s"]
            r["net_cpu_s"] = r["cpu_s"] - zero["cpu_s"]
            r["cpu_s_per_10s"] = r["window_cpu_s"] * 10.0 / seconds
            r["pct_of_one_core"] = 100.0 * r["window_cpu_s"] / seconds
            r["subtracted_pct_of_one_core"] = 100.0 * r["net_cpu_s"] / seconds
            r["us_per_tick"] = 1e6 * r["window_cpu_s"] / max(r.get("ticks", 0), 1)
            out[c.name].append(r)
    return out


def _mmm(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    return v[0], statistics.median(v), v[-1]


ROWS = (("cpu s per 10 s", "cpu_s_per_10s", "{:.4f}"), ("% of one core", "pct_of_one_core", "{:.3f}"),
        ("  (minus 0 s run)", "subtracted_pct_of_one_core", "{:.3f}"), ("cpu us per tick", "us_per_tick", "{:.1f}"),
        ("achieved Hz", "hz_achieved", "{:.1f}"), ("fields per tick", "fields_per_tick", "{:.0f}"),
        ("missed ticks", "missed", "{:.0f}"), ("start-up cpu s", "startup_cpu_s", "{:.3f}"))


def print_side_by_side(results: dict[str, list[dict]], hz: float) -> None:
    names = list(results)
    print(f"\n{hz:g} Hz  ({len(results[names[0]])} runs; min / median / max)")
    print(f"  {'':<18}" + "".join(f"{n:>28}" for n in names))
    for label, key, fmt in ROWS:
        cells = []
        for n in names:
            lo, mid, hi = _mmm([r.get(key, float("nan")) for r in results[n]])
            cells.append(f"{fmt.format(lo)} / {fmt.format(mid)} / {fmt.format(hi)}")
        print(f"  {label:<18}" + "".join(f"{c:>28}" for c in cells))
    for other in names[1:]:
        ratios = [a["window_cpu_s"] / b["window_cpu_s"] for a, b in zip(results[names[0]], results[other], strict=True)
                  if b["window_cpu_s"] > 0]
        if ratios:
            lo, mid, hi = _mmm(ratios)
            print(f"  ratio {names[0]}/{other} (cpu, same run): {lo:.2f} / {mid:.2f} / {hi:.2f}")


def export_tree(ref: str, into: Path) -> Path:
    """GIT_REF's harness/ as an importable tree under `into`."""
    dest = into / "baseline"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "harness"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _have_psrecord() -> bool:
    return subprocess.run([sys.executable, "-c", "import psrecord.main"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--hz", type=float, nargs="+", default=[100.0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--baseline", metavar="GIT_REF", help="also run GIT_REF's sampler, side by side")
    ap.add_argument("--no-psrecord", action="store_true")
    ap.add_argument("--in-process", action="store_true", help="the in-process figures instead")
    ap.add_argument("--with-smaps", action="store_true", help="--in-process: also the slow tier (2 Hz)")
    ap.add_argument("--fail-over", type=float, default=None, metavar="PCT",
                    help="exit 1 when the median goreclaim cost at the first rate exceeds PCT %% of one core")
    args = ap.parse_args(argv)
    if args.in_process:
        return in_process(args)

    tmp = Path(tempfile.mkdtemp(prefix="goreclaim-bench-"))
    try:
        with Holder(args.size_mib << 20) as holder:
            contenders = [Contender("goreclaim", holder, ROOT)]
            if args.baseline:
                contenders.append(Contender(f"baseline {args.baseline}", holder, export_tree(args.baseline, tmp)))
            if args.no_psrecord:
                pass
            elif _have_psrecord():
                contenders.append(Contender("psrecord", holder, None, tmp))
            else:
                print("psrecord is not installed (pip install psrecord): goreclaim alone")
            print(f"sampler cost on a {args.size_mib} MiB process (cgroup v{holder.cg.version} {holder.cg.path}), "
                  f"{args.runs} runs of {args.seconds:g} s, all contenders at once, {os.cpu_count()} CPUs; "
                  f"cpu = each sampling process's CPU time while it samples")
            first_median = None
            for hz in args.hz:
                results = side_by_side(contenders, hz, args.seconds, args.runs)
                print_side_by_side(results, hz)
                if first_median is None:
                    first_median = statistics.median(r["pct_of_one_core"] for r in results["goreclaim"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ngoreclaim at {args.hz[0]:g} Hz: median {first_median:.2f}% of one core "
          f"(aim <= {BUDGET_PCT_OF_ONE_CORE:g}% at 100 Hz)")
    if args.fail_over is not None and first_median > args.fail_over:
        print(f"OVER: {first_median:.2f}% > --fail-over {args.fail_over}%")
        return 1
    return 0


IN_PROCESS_FIGURES = ("cpu_pct_of_one_core", "fast_tier_cpu_pct", "slow_tier_cpu_pct", "fast_hz_achieved",
                      "fast_missed", "fast_read_us_p50", "fast_read_us_p99", "slow_read_us_p50")


def in_process(args) -> int:
    hz = args.hz[0]
    reports = [run_benchmark(args.seconds, hz, args.size_mib << 20, slow=args.with_smaps)
               for _ in range(args.runs)]
    print(f"sampler in this process at {hz:g} Hz on a {args.size_mib} MiB process, {args.runs} runs of "
          f"{args.seconds:g} s (cgroup {reports[0]['cgroup']})")
    print(f"{'figure':<22} {'min':>9} {'median':>9} {'max':>9}")
    for name in IN_PROCESS_FIGURES:
        lo, mid, hi = _mmm([r[name] for r in reports])
        print(f"{name:<22} {lo:>9.3f} {mid:>9.3f} {hi:>9.3f}")
    key = "fast_tier_cpu_pct" if args.with_smaps else "cpu_pct_of_one_core"
    median = statistics.median(r[key] for r in reports)
    print(f"fast tier: median {median:.2f}% of one core (aim <= {BUDGET_PCT_OF_ONE_CORE:g}% at 100 Hz)")
    if args.fail_over is not None and median > args.fail_over:
        print(f"OVER: {median:.2f}% > --fail-over {args.fail_over}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
