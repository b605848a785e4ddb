"""What a memory.high, THP or swap cell costs in a guest kernel against the same cell on this host:
min / median / max of each cell's wall time, and each command's whole time (the guest's boot in it).

    python benchmarks/bench_host_axes.py [--repeats 3] [--only thp,swap,memory_high]

One quick alloc_release cell (128 MiB touched in a 256 MiB limit, cgroup backend), `--repeats` times
per setting, through `goreclaim run`:

- thp: `thp=<this machine's mode>` runs here, `thp=always` (or `never` where this host is `always`) in a guest;
- swap: `swap=0` here, `swap=256MiB` in a guest (a swap file on its scratch disk);
- memory_high: the cell here without one, then `memory_high=100%` in a guest (never crossed: the guest's
  cost alone) and `memory_high=64MiB` with `swap=256MiB` (crossed: throttled into reclaim and swap).

Under TCG a guest's times are several times the host's (harness.define.hosts.UNTIMED_ACCELERATORS);
the accelerator is printed with them. Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.run.placement import thp_mode  # noqa: E402

CELL = ["alloc_release", "--quick", "--backend", "cgroup", "--matrix", "touch=true", "--matrix", "freeos=false",
        "--matrix", "memory=256MiB"]


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<44} no cell ran"
    return (f"{name:<44} min {min(values):7.2f} s   median {statistics.median(values):7.2f} s   "
            f"max {max(values):7.2f} s   ({len(values)} cells)")


def run(matrix: list[str], repeats: int) -> tuple[list[dict[str, str]], float]:
    """The cells.csv rows of one `goreclaim run` of the cell with these --matrix values, and its seconds."""
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "-m", "harness", "run", *CELL, *(a for m in matrix for a in ("--matrix", m)),
                   "--repeats", str(repeats), "--results", results]
        started = time.monotonic()
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        took = time.monotonic() - started
        if out.returncode not in (0, 1):
            raise SystemExit(f"bench_host_axes: {' '.join(command)} exited {out.returncode}:\n"
                             f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
        with open(Path(out.stdout.strip().splitlines()[-1]) / "cells.csv", newline="") as f:
            return list(csv.DictReader(f)), took


def report(title: str, rows: list[dict[str, str]], took: float, key: str) -> None:
    print(f"{title}: the whole command {took:.1f} s")
    for value in dict.fromkeys(r.get(key, "") for r in rows):
        group = [r for r in rows if r.get(key, "") == value]
        accel = group[0]["accel"]
        where = "here" if accel == "native" else f"guest ({accel})"
        statuses = ", ".join(sorted({r["status"] for r in group}))
        print(line(f"  {key}={value or '(none)'}, {where}, {statuses}", [float(r["wall_s"]) for r in group]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="thp,swap,memory_high", help="which settings (comma-separated)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    here = thp_mode()
    if "thp" in only:
        other = "never" if here == "always" else "always"
        rows, took = run([f"thp={here},{other}"], args.repeats)
        report(f"thp ({here} is this machine's)", rows, took, "thp")
    if "swap" in only:
        rows, took = run(["swap=0,256MiB"], args.repeats)
        report("swap", rows, took, "swap")
    if "memory_high" in only:
        rows, took = run([], args.repeats)
        report("memory_high: none, here", rows, took, "memory_high")
        rows, took = run(["memory_high=100%"], args.repeats)
        report("memory_high: never crossed", rows, took, "memory_high")
        rows, took = run(["memory_high=64MiB", "swap=256MiB"], args.repeats)
        report("memory_high: crossed, with swap", rows, took, "memory_high")
    return 0


if __name__ == "__main__":
    sys.exit(main())
