"""One sampler run in its own process, for bench_sampler.py's whole-process CPU figures.

    python benchmarks/sampler_child.py --root TREE --pid PID --cgroup PATH --cgroup-version 1|2
                                       --hz HZ --seconds S

Imports harness from TREE (this checkout, or an older one exported by bench_sampler.py --baseline), samples
PID's proc status and its memory cgroup on the fast tier the way that tree's run loop does (its
start_sampling, in harness/run/observation.py, or harness/run/backends/common.py in older trees), and
prints one JSON line: the sampler's statistics, the rows it returned and this process's CPU time (all
threads, CLOCK_PROCESS_CPUTIME_ID) from just before Sampler.start() to just after Sampler.stop(). The
parent also takes the whole process's CPU from wait4() and subtracts a --seconds 0 run's (interpreter
start-up and imports) as a cross-check.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
from pathlib import Path


def _gone_on_enodev(probe):
    # As an older tree's harness/run/backends/common.py wrapped the cgroup probe, before cgroup_probe handled
    # ENODEV itself.
    def read():
        try:
            return probe()
        except OSError as e:
            if e.errno == errno.ENODEV:
                raise FileNotFoundError(e.errno, "cgroup removed") from e
            raise

    return read


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--cgroup", required=True)
    ap.add_argument("--cgroup-version", type=int, required=True)
    ap.add_argument("--hz", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.root)
    from harness.run.observe.cgroupfs import MemoryCgroup
    from harness.run.observe.probes import cgroup_probe, proc_status_probe
    from harness.run.observe.sampler import Sampler

    cgroup = cgroup_probe(MemoryCgroup(args.cgroup, args.cgroup_version))
    # The probes as that tree passes them to the sampler, wherever its start_sampling lives.
    run_loop = "".join(path.read_text() for path in (Path(args.root, "harness", "run", "observation.py"),
                                                      Path(args.root, "harness", "run", "backends", "common.py"))
                       if path.exists())
    if "_gone_on_enodev(cgroup_probe(" in run_loop:
        cgroup = _gone_on_enodev(cgroup)
    fast = {"proc": proc_status_probe(args.pid), "cgroup": cgroup}
    sampler = Sampler(fast, {}, fast_hz=args.hz)
    t0 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
    sampler.start()
    if args.seconds > 0:
        time.sleep(args.seconds)
    result = sampler.stop()
    t1 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
    st = result.stats
    ticks = st["fast_ticks"] + st.get("fast_triggered", 0)
    print(json.dumps({
        "hz_achieved": st["fast_hz_achieved"],
        "ticks": st["fast_ticks"],
        "missed": st["fast_missed"],
        "rows": len(result.rows),
        "fields_per_tick": len(result.rows) / ticks if ticks else 0.0,
        "errors": st["fast_errors"],
        "thread_cpu_s": st["fast_cpu_s"],
        "window_cpu_s": t1 - t0,
        "read_us_p50": st["fast_read_us_p50"],
        "max_vm_rss": max((v for _, src, m, v in result.rows if src == "proc" and m == "vm_rss"), default=None),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
