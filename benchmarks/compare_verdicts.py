"""Do two runs give the same verdicts? Each verdict row (claim, Go version, cgroup version) of one run's
claims.csv against the same row of the other's: how many rows both have, how many agree, and every one that
differs or that only one run has.

    python benchmarks/compare_verdicts.py RUN_A RUN_B

For the noise question (the same scenarios run twice, alone and with --workers 2, or two reference runs).
Figures only: the exit status is non-zero only when a run directory cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

KEY = ["claim", "go_version", "cgroup_version"]


def verdicts(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "claims.csv"
    if not path.is_file():
        sys.exit(f"{path}: no such file (a run directory written by goreclaim run or goreclaim report)")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in KEY:
        if column not in table.columns:
            table[column] = ""
    return table[KEY + ["verdict"]].drop_duplicates(KEY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs=2, type=Path, metavar="RUN_DIR")
    args = parser.parse_args()
    a, b = (verdicts(run) for run in args.runs)
    both = a.merge(b, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    shared = both[both["_merge"] == "both"]
    differ = shared[shared["verdict_a"] != shared["verdict_b"]]
    print(f"A: {args.runs[0]} ({len(a)} verdict rows)\nB: {args.runs[1]} ({len(b)} verdict rows)")
    print(f"compared {len(shared)} rows both runs have: {len(shared) - len(differ)} the same, {len(differ)} differ")
    for row in differ.itertuples():
        print(f"  differ  {row.claim} go {row.go_version} {row.cgroup_version or '-'}: "
              f"A {row.verdict_a}, B {row.verdict_b}")
    for side, name in (("left_only", "A"), ("right_only", "B")):
        for row in both[both["_merge"] == side].itertuples():
            print(f"  only {name}  {row.claim} go {row.go_version} {row.cgroup_version or '-'}: "
                  f"{row.verdict_a if name == 'A' else row.verdict_b}")


if __name__ == "__main__":
    main()
