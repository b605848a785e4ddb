"""Where a cell runs: the host, its kernel, its cgroup version, its transparent huge page mode, what
executes that kernel and the CPUs the cell may use.

Recorded per cell (cells.csv), since on a cluster the cells of one run spread over hosts.
"""

from __future__ import annotations

import os
import socket


def cpu_list(cpus) -> str:
    """CPU numbers as the kernel writes a list: {0, 1, 2, 5} -> "0-2,5"."""
    numbers = sorted({int(c) for c in cpus})
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ",".join(parts)


def parse_cpu_list(text: str) -> set[int]:
    """"0-2,5" -> {0, 1, 2, 5}; ValueError for anything else."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi) if hi else int(lo)
        if last < first:
            raise ValueError(f"{part!r}: a range ends before it starts")
        out.update(range(first, last + 1))
    if not out:
        raise ValueError(f"{text!r}: no CPU")
    return out


def cgroup_version() -> str:
    """This machine's cgroup version ("v1", "v2"), "unknown" when it has no memory cgroup to read."""
    try:
        from harness.run.observe.cgroupfs import memory_cgroup_of

        return f"v{memory_cgroup_of('self').version}"
    except Exception:  # noqa: BLE001 - no cgroup to read: say so, never fail a cell for it
        return "unknown"


THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"


def thp_mode(path: str = THP_ENABLED) -> str:
    """This kernel's transparent huge page mode, the bracketed word of `enabled` ("always [madvise] never"
    -> "madvise"); "unknown" without THP."""
    try:
        words = open(path).read().split()
    except OSError:
        return "unknown"
    return next((w[1:-1] for w in words if w.startswith("[") and w.endswith("]")), "unknown")


KHUGEPAGED_SCAN_SLEEP = "/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs"


def khugepaged_pace(path: str = KHUGEPAGED_SCAN_SLEEP) -> str:
    """khugepaged's pause between scans in ms (how soon it collapses what THP allows); "unknown" without THP."""
    try:
        return open(path).read().strip()
    except OSError:
        return "unknown"


def swap_bytes(path: str = "/proc/swaps") -> int:
    """The size of this host's swap devices together, in bytes (0 without swap)."""
    try:
        lines = open(path).read().splitlines()[1:]  # after the header: name type size(KiB) used priority
    except OSError:
        return 0
    return sum(int(line.split()[2]) << 10 for line in lines if len(line.split()) >= 3)


def accelerator() -> str:
    """What executes this kernel: `native` on a host, `kvm` or `tcg` in a guest goreclaim booted (its
    kernel command line says, harness.run.guest). Under `tcg` timing is not the host's."""
    try:
        words = open("/proc/cmdline").read().split()
    except OSError:
        return "native"
    return next((w.partition("=")[2] for w in words if w.startswith("goreclaim.accel=")), "native")


def placement(cpuset: str = "") -> dict[str, str]:
    """This host, its kernel, cgroup version, THP mode, khugepaged's pace and accelerator, and `cpuset`
    (else the CPUs this process may use)."""
    return {"host": socket.gethostname(), "kernel": os.uname().release, "cgroup_version": cgroup_version(),
            "thp": thp_mode(), "khugepaged_ms": khugepaged_pace(), "accel": accelerator(),
            "cpuset": cpuset or cpu_list(os.sched_getaffinity(0))}
