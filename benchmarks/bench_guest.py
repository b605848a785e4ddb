"""How long a guest kernel takes to boot and to start a command: min / median / max over a few boots.

    python benchmarks/bench_guest.py [--boots 3] [--kernel 6.1] [--cgroup v2]

Each boot is a whole `Guest` (harness.run.guest): initramfs, qemu, the host's root over 9p, the
cgroup hierarchy, up to its ready line; then one trivial command (`true`) and the project's Python
starting in the guest, and the shutdown. The accelerator (KVM or TCG) is printed with the figures:
under TCG they are several times the host's. Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.run.guest import Guest, GuestError, GuestSettings  # noqa: E402


def line(name: str, values: list[float]) -> str:
    return (f"{name:<22} min {min(values):6.2f} s   median {statistics.median(values):6.2f} s   "
            f"max {max(values):6.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--kernel", default="6.1")
    parser.add_argument("--cgroup", default="v2")
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"boot": [], "command (true)": [], "python -c pass": [], "shutdown": []}
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
        started = time.monotonic()
        guest.close()
        figures["shutdown"].append(time.monotonic() - started)
    print(f"guest Linux {release} ({args.kernel}), cgroup {args.cgroup}, accelerator {accel}, {args.boots} boots")
    for name, values in figures.items():
        print(line(name, values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
