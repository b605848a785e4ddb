"""What a cell may ask of the host it runs on (the `cgroup`, `kernel`, `thp` and `swap` axes), declared once.

A kernel is `host` (this machine's) or a Debian series, each the kernel line of one Debian release:
goreclaim fetches the newest kernel of that release (harness.build.kernels) and boots it as a guest
(harness.run.guest) for the cells that ask for it, or for another cgroup version than this host has.
"""

from __future__ import annotations

CGROUP_VERSIONS = ("v1", "v2")
HOST_KERNEL = "host"
# Debian series -> the Debian release whose kernel line it is.
KERNEL_SERIES: dict[str, str] = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "trixie"}
# Accelerators under which timing is not the host's (harness.run.guest records which ran a cell): qemu's
# software emulation runs a guest several times slower; what is resident, reclaimed or killed holds,
# CPU time, throughput, latency and stall times do not.
UNTIMED_ACCELERATORS = ("tcg",)
# The kernel a guest boots when a cell asks only for another cgroup version than this host's.
DEFAULT_GUEST_KERNEL = "6.1"
# Transparent huge page modes (/sys/kernel/mm/transparent_hugepage/enabled; Documentation/admin-guide/mm/transhuge.rst).
# A guest boots with `transparent_hugepage=MODE` and its `defrag` set to the same word (all three are defrag
# settings too): `always` faults and collapses huge pages anywhere, `madvise` only in MADV_HUGEPAGE ranges.
THP_MODES = ("always", "madvise", "never")
# khugepaged's pause between scans in a guest, in ms (the kernel's default is 10000, each scan 4096 pages:
# 16 MiB of PTEs per 10 s, shared by every process). A guest lives minutes, and at the default pace its
# khugepaged may not reach a cell's heap within the cell's idle window; ten times the pace it does. What
# collapses is unchanged (max_ptes_none stays the kernel's 511); cells.csv records the pace each cell ran at.
GUEST_KHUGEPAGED_SCAN_SLEEP_MS = 1000
