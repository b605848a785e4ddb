"""How long a guest kernel takes to boot and to start a command: min / median / max over a few boots.

    python benchmarks/bench_guest.py [--boots 3] [--kernel 6.1] [--cgroup v2] [--cells 3] [--docker]

Each boot is a whole `Guest` (harness.run.guest): initramfs, qemu, the host's root over 9p, the
cgroup hierarchy, up to its ready line; then one trivial command (`true`) and the project's Python
starting in the guest, and the shutdown. The accelerator (KVM or TCG) is printed with the figures:
under TCG they are several times the host's. With `--cells N`, also the per-cell cost against the
host: `goreclaim run alloc_release --quick` with N repeats of one cell on this host's cgroup version
and in a guest with the other (cgroup backend), each cell's wall_s from cells.csv. With `--docker`,
also the guest's Docker engine (harness.run.guest_docker) in each boot: from containerd's start until
dockerd answers a ping, and the whole guest command that starts and stops it (Python's start included).
Figures only, never pass/fail.
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

from harness.run.guest import Guest, GuestError, GuestSettings  # noqa: E402
from harness.run.placement import cgroup_version  # noqa: E402

# In the guest: start its Docker engine, print the seconds until it answered, stop it.
ENGINE = ("import os; from pathlib import Path; from harness.run.guest_docker import GuestEngine; "
          "e = GuestEngine(Path(os.environ['TMPDIR'])); s = e.start(); e.stop(); print(s)")


def line(name: str, values: list[float]) -> str:
    return (f"{name:<26} min {min(values):6.2f} s   median {statistics.median(values):6.2f} s   "
            f"max {max(values):6.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--kernel", default="6.1")
    parser.add_argument("--cgroup", default="v2")
    parser.add_argument("--cells", type=int, default=0, help="repeats of a quick cell here and in a guest")
    parser.add_argument("--docker", action="store_true", help="also start and stop the guest's Docker engine")
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"boot": [], "command (true)": [], "python -c pass": [], "shutdown": []}
    if args.docker:
        figures.update({"docker engine answers": [], "docker engine start+stop": []})
    accel = release = ""
    for _ in range(args.boots):
        try:
            guest = Guest(GuestSettings(kernel=args.kernel, cgroup=args.cgroup))
            guest.start()
        except GuestError as exc:
            print(f"bench_guest: {exc}", file=sys.stderr)
            return 2
        accel, release = guest.accel, guest.release
        figures["boot"].append(guest.boot_s)
        figures["command (true)"].append(guest.run(["true"]).seconds)
        figures["python -c pass"].append(guest.run([sys.executable, "-c", "pass"]).seconds)
        if args.docker:
            engine = guest.run([sys.executable, "-c", ENGINE], cwd=ROOT, timeout_s=600)
            said = engine.output.split()
            if engine.exit_code != 0 or not said:
                print(f"bench_guest: the guest's Docker engine: {engine.output[-2000:]}", file=sys.stderr)
                guest.close()
                return 2
            figures["docker engine answers"].append(float(said[-1]))
            figures["docker engine start+stop"].append(engine.seconds)
        started = time.monotonic()
        guest.close()
        figures["shutdown"].append(time.monotonic() - started)
    print(f"guest Linux {release} ({args.kernel}), cgroup {args.cgroup}, accelerator {accel}, {args.boots} boots")
    for name, values in figures.items():
        print(line(name, values))
    return cells(args.cells) if args.cells else 0


def cells(repeats: int) -> int:
    """A quick alloc_release cell `repeats` times here and in a guest with the other cgroup version."""
    here = cgroup_version()
    other = "v2" if here == "v1" else "v1"
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "-m", "harness", "run", "alloc_release", "--quick", "--backend", "cgroup",
                   "--repeats", str(repeats), "--matrix", f"cgroup={here},{other}", "--matrix", "touch=true",
                   "--matrix", "freeos=false", "--results", results]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if out.returncode not in (0, 1):
            print(f"bench_guest: {' '.join(command)} exited {out.returncode}:\n"
                  f"{out.stdout[-2000:]}{out.stderr[-2000:]}", file=sys.stderr)
            return 2
        run_dir = Path(out.stdout.strip().splitlines()[-1])
        with open(run_dir / "cells.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    for accel in sorted({r["accel"] for r in rows}):
        walls = [float(r["wall_s"]) for r in rows if r["accel"] == accel and r["wall_s"]]
        where = "host" if accel == "native" else f"guest ({accel})"
        print(line(f"cell wall_s, {where}", walls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
