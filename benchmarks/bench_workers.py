"""Time to answer with cells in parallel: the same scenarios with `goreclaim run --workers 1` and
`--workers 2` (a local Dask cluster on this host), min / median / max over the runs, and the ratio.

    python benchmarks/bench_workers.py [--runs 1] [--quick] [--workers 1,2] [SCENARIO ...]

Default: every scenario in scenarios/ (the default reproduce: 30+ minutes per run); `--quick` runs
their [quick] variants. Name scenarios to time a subset. Figures only, never pass/fail: the exit status
is non-zero only when a run itself fails. Cells that read CPU time or throughput run alone whatever
the number of workers, so the gain comes from the memory-only ones.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(workers: int, scenarios: list[str], quick: bool, results: Path) -> tuple[float, int, float]:
    """(wall seconds, cells, the cells' own wall seconds added up) of one run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "harness", "run", *scenarios, "--workers", str(workers),
               "--results", str(results)] + (["--quick"] if quick else [])
    started = time.monotonic()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if out.returncode not in (0, 1):  # 1: an expectation failed; the time still counts
        sys.exit(f"{' '.join(command)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    with open(run_dir / "cells.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cell_s = sum(float(r["wall_s"] or 0) for r in rows)
    return wall, len(rows), cell_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: every file in scenarios/)")
    parser.add_argument("--runs", type=int, default=1, help="runs per worker count (default 1)")
    parser.add_argument("--quick", action="store_true", help="the scenarios' [quick] variants")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]

    walls: dict[int, list[float]] = {w: [] for w in counts}
    with tempfile.TemporaryDirectory(prefix="goreclaim-bench-workers-") as tmp:
        for run in range(args.runs):
            for w in counts:  # interleaved, so a busy spell of the machine hits both
                wall, n, cell_s = run_once(w, args.scenarios, args.quick, Path(tmp) / f"w{w}")
                walls[w].append(wall)
                print(f"run {run + 1}/{args.runs} --workers {w}: {n} cells in {wall:.1f}s "
                      f"(the cells' own wall time adds up to {cell_s:.1f}s)", flush=True)
    what = " ".join(args.scenarios) or "every scenario"
    print(f"\n{what}{' --quick' if args.quick else ''}, {args.runs} run(s) each: wall seconds min / median / max")
    for w in counts:
        print(f"  --workers {w}: {min(walls[w]):.1f} / {statistics.median(walls[w]):.1f} / {max(walls[w]):.1f}")
    base = statistics.median(walls[counts[0]])
    for w in counts[1:]:
        print(f"  median --workers {w} / --workers {counts[0]}: {statistics.median(walls[w]) / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
