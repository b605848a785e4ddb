"""Runs two cells in one RunSession (a short one, then a long one) for the SIGINT tests.

usage: sigint_driver.py RESULTS_DIR BACKEND RUN_ID
Prints `RUN_DIR <path>` once the session is open and `FIRST_SAVED` once the first cell is stored.
"""

import sys
from pathlib import Path

from harness.define.axes import contributions
from harness.define.cell import Cell
from harness.drive.session import RunSession


def cell(cell_id: str, *args: str) -> Cell:
    return Cell(cell_id=cell_id, scenario="sigint", workload="alloc-release", args=args,
                timeout_s=300.0, **contributions({"memory": "256MiB"}))


def main() -> None:
    results, backend, run_id = sys.argv[1:4]
    with RunSession(Path(results), backend=backend, run_id=run_id, log=lambda s: print(s, flush=True)) as session:
        print("RUN_DIR", session.store.run_dir, flush=True)
        session.run_cell(cell("first", "--size=32MiB", "--hold=200ms", "--idle=200ms", "--baseline=100ms"))
        print("FIRST_SAVED", flush=True)
        session.run_cell(cell("second", "--size=64MiB", "--hold=1s", "--idle=120s"))


if __name__ == "__main__":
    main()
