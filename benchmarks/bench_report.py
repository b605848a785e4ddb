"""Wall time and peak RSS of `goreclaim report` on the reference run and on a synthetic larger run.

    python benchmarks/bench_report.py [--runs 3] [--cells 500] [--fail-over SECONDS]

Each measurement is a fresh Python process (`write_report` on a fresh copy of the run directory),
so imports, loading and every exporter count, and no cache survives between runs. The synthetic
run replicates the reference's cells under new ids until it has --cells cells, in the store's own
format (cells.csv, samples.parquet, events.parquet, manifest.json): time and memory should grow
linearly with cells. Prints min/median/max; exits non-zero only when --fail-over is given and a
median exceeds it. A figure, not a test: timings on a shared machine vary.
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

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.store.rundir import EVENTS_SCHEMA, SAMPLES_SCHEMA  # noqa: E402

REFERENCE = REPO / "results" / "reference"
GENERATED = ("report.md", "report.html", "claims.csv", "summary.csv", "summary.json", "benchstat.txt")


def _copy_id(cell_id: str, k: int) -> str:
    """A new id for the k-th copy of a cell: 'x[a=1,r0]' -> 'x[a=1,r0,copy3]'."""
    return cell_id[:-1] + f",copy{k}]" if cell_id.endswith("]") else f"{cell_id}-copy{k}"


def _replicate_parquet(src: Path, dst: Path, schema: pa.Schema, copies: int, keep: list[str]) -> None:
    """src's rows `copies` times, the k-th copy under _copy_id ids; only rows of cells in `keep`."""
    table = pq.read_table(src, read_dictionary=["cell_id"]).combine_chunks()
    column = table.column("cell_id").chunk(0)
    names = column.dictionary.to_pylist()
    wanted = pa.array(keep)
    with pq.ParquetWriter(dst, schema, compression="zstd") as writer:
        for k in range(copies):
            renamed = pa.DictionaryArray.from_arrays(
                column.indices, pa.array([_copy_id(c, k) if k else c for c in names])).cast(pa.string())
            part = table.set_column(table.schema.get_field_index("cell_id"), "cell_id", renamed)
            writer.write_table(part.filter(pc.is_in(renamed, wanted)).cast(schema))


def synthetic_run(reference: Path, cells: int, out: Path) -> Path:
    """A run directory of `cells` cells made by replicating the reference's cells with new ids."""
    ref_cells = pd.read_csv(reference / "cells.csv", dtype=str, keep_default_na=False)
    copies = -(-cells // len(ref_cells))
    frames = []
    for k in range(copies):
        part = ref_cells.copy()
        if k:
            part["cell_id"] = part["cell_id"].map(lambda c, k=k: _copy_id(c, k))
            # Another repeat of the same configuration, as a longer run would have.
            part["repeat"] = (part["repeat"].astype(int) + 2 * k).astype(str)
        frames.append(part)
    table = pd.concat(frames, ignore_index=True).head(cells)
    out.mkdir(parents=True)
    table.to_csv(out / "cells.csv", index=False)
    keep = list(table["cell_id"])
    _replicate_parquet(reference / "samples.parquet", out / "samples.parquet", SAMPLES_SCHEMA, copies, keep)
    _replicate_parquet(reference / "events.parquet", out / "events.parquet", EVENTS_SCHEMA, copies, keep)
    manifest = json.loads((reference / "manifest.json").read_text())
    manifest.update(run_id=f"synthetic-{cells}", n_cells=cells, cells_run=cells)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return out


def measure(run_dir: Path, scratch: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one report in a fresh process on a fresh copy of run_dir."""
    copy = scratch / "run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("figures", *GENERATED))
    code = ("import sys; from harness.drive.plan import STUDY; from harness.present.report import write_report; "
            "write_report(sys.argv[1], STUDY)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(copy)], env=env, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"report failed on {run_dir} (exit {proc.returncode})")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def describe(name: str, values: list[float], unit: str) -> str:
    return (f"{name}: min {min(values):.2f} {unit}, median {statistics.median(values):.2f} {unit}, "
            f"max {max(values):.2f} {unit}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measurements per run directory (default 3)")
    parser.add_argument("--cells", type=int, default=500, help="cells of the synthetic run (default 500; 0: skip)")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the run to measure and replicate")
    parser.add_argument("--fail-over", type=float, metavar="SECONDS",
                        help="exit 1 when a median wall time exceeds SECONDS")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        runs = [("reference", args.reference)]
        if args.cells:
            print(f"generating a synthetic run of {args.cells} cells ...", flush=True)
            runs.append((f"synthetic {args.cells} cells", synthetic_run(args.reference, args.cells, tmp / "synthetic")))
        for name, run_dir in runs:
            n = len(pd.read_csv(run_dir / "cells.csv", usecols=["cell_id"]))
            walls, peaks = [], []
            for _ in range(args.runs):
                wall, peak = measure(run_dir, tmp)
                walls.append(wall)
                peaks.append(peak)
            print(f"{name} ({n} cells, {args.runs} runs)")
            print("  " + describe("wall time", walls, "s"))
            print("  " + describe("peak RSS", peaks, "MiB"))
            if args.fail_over is not None and statistics.median(walls) > args.fail_over:
                print(f"  median wall time {statistics.median(walls):.2f} s exceeds {args.fail_over} s")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
