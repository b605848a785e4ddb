"""Probe functions: one cheap read of one memory source, for the sampler.

A probe is a zero-argument callable returning {metric: value} (bytes). It raises ProcessLookupError
(or FileNotFoundError) when its target is gone; the sampler then stops calling it.

The fast-tier probes keep their file open and re-read it with os.pread at offset 0: /proc and cgroupfs
regenerate the content on every read from the start, and this skips open/close and Python file objects.
Only the needed keys are parsed, by searching the raw bytes.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

from harness.cgroupfs import MemoryCgroup

Probe = Callable[[], Mapping[str, float]]

_READ_SIZE = 16384  # /proc/<pid>/status ~1.5 KiB, v1 memory.stat ~1.5 KiB, smaps_rollup ~1 KiB


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if path.startswith("/proc/"):
            raise ProcessLookupError(f"{path}: process is gone") from None
        raise


class _KeptOpen:
    """An fd closed when the probe is garbage-collected."""

    __slots__ = ("fd", "path")

    def __init__(self, path: str):
        self.path = path
        self.fd = _open(path)

    def read(self) -> bytes:
        try:
            return os.pread(self.fd, _READ_SIZE, 0)
        except ProcessLookupError:
            raise
        except OSError as e:
            # ESRCH after the process is reaped; treat any read failure of /proc as "gone".
            if self.path.startswith("/proc/"):
                raise ProcessLookupError(f"{self.path}: {e.strerror}") from None
            raise

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError, TypeError):
            pass


def _kib_field(data: bytes, key: bytes) -> int | None:
    """Value of a `Key:   1234 kB` line, in bytes. key includes the colon and the leading newline."""
    i = data.find(key)
    if i < 0:
        return None
    j = data.find(b"\n", i + len(key))
    return int(data[i + len(key) : j if j >= 0 else None].split()[0]) * 1024


# (metric, key) pairs; a leading newline keeps "VmRSS" from matching inside another key.
_STATUS_KEYS = (
    ("vm_rss", b"\nVmRSS:"),
    ("rss_anon", b"\nRssAnon:"),
    ("rss_file", b"\nRssFile:"),
    ("vm_size", b"\nVmSize:"),
    ("vm_hwm", b"\nVmHWM:"),
)


def parse_status(data: bytes) -> dict[str, float]:
    """/proc/<pid>/status bytes → {vm_rss, rss_anon, rss_file, vm_size, vm_hwm}; zombies raise."""
    out = {}
    for metric, key in _STATUS_KEYS:
        value = _kib_field(data, key)
        if value is None:
            if metric == "vm_rss":
                # A zombie (exited, not yet reaped) has no Vm* lines: nothing left to measure.
                raise ProcessLookupError("process has exited (no VmRSS in /proc/<pid>/status)")
            continue
        out[metric] = value
    return out


def proc_status_probe(pid: int) -> Probe:
    """vm_rss, rss_anon, rss_file, vm_size, vm_hwm (bytes) from /proc/<pid>/status."""
    f = _KeptOpen(f"/proc/{pid}/status")

    def probe() -> dict[str, float]:
        return parse_status(f.read())

    probe.source = f  # keeps the fd alive with the probe
    return probe


_SMAPS_KEYS = (
    ("rss", b"\nRss:"),
    ("lazyfree", b"\nLazyFree:"),
    ("anon_huge_pages", b"\nAnonHugePages:"),
)


def parse_smaps_rollup(data: bytes) -> dict[str, float]:
    if not data:
        raise ProcessLookupError("smaps_rollup is empty: the process has no address space left")
    out = {}
    for metric, key in _SMAPS_KEYS:
        value = _kib_field(data, key)
        if value is not None:
            out[metric] = value
    return out


def smaps_rollup_probe(pid: int) -> Probe:
    """rss, lazyfree, anon_huge_pages (bytes) from /proc/<pid>/smaps_rollup.

    Costs far more than status on a large process (walks every page table) and takes the mmap lock:
    slow tier only.
    """
    f = _KeptOpen(f"/proc/{pid}/smaps_rollup")

    def probe() -> dict[str, float]:
        return parse_smaps_rollup(f.read())

    probe.source = f
    return probe


def _stat_field(data: bytes, key: bytes) -> int | None:
    i = data.find(key)
    if i < 0:
        return None
    j = data.find(b"\n", i + len(key))
    return int(data[i + len(key) : j if j >= 0 else None])


def cgroup_probe(cg: MemoryCgroup) -> Probe:
    """usage, anon, file, inactive_file, working_set (bytes) of a memory cgroup, as cg.normalized()."""
    usage_f = _KeptOpen(str(cg.usage_file))
    stat_f = _KeptOpen(str(cg.stat_file))
    if cg.version == 1:
        # total_* include children (use_hierarchy); fall back to the local counters on old kernels.
        keys = ((b"\ntotal_rss ", b"\nrss "), (b"\ntotal_cache ", b"\ncache "),
                (b"\ntotal_inactive_file ", b"\ninactive_file "))
    else:
        keys = ((b"\nanon ",), (b"\nfile ",), (b"\ninactive_file ",))

    def field(data: bytes, candidates: tuple[bytes, ...]) -> int:
        for key in candidates:
            value = _stat_field(data, key)
            if value is not None:
                return value
        return 0

    def probe() -> dict[str, float]:
        usage = int(usage_f.read())
        data = b"\n" + stat_f.read()  # so the first line's key also has a leading newline
        inactive_file = field(data, keys[2])
        return {
            "usage": usage,
            "anon": field(data, keys[0]),
            "file": field(data, keys[1]),
            "inactive_file": inactive_file,
            "working_set": max(0, usage - inactive_file),
        }

    probe.source = (usage_f, stat_f)
    return probe


def kernel_peaks(pid: int | None, cg: MemoryCgroup | None) -> tuple[int | None, int | None]:
    """(VmHWM of pid, peak usage of cg), read once at the end; None where unavailable or gone."""
    vm_hwm = None
    if pid is not None:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                vm_hwm = _kib_field(b"\n" + f.read(), b"\nVmHWM:")
        except (OSError, ValueError):
            vm_hwm = None
    cgroup_peak = None
    if cg is not None:
        try:
            cgroup_peak = cg.peak()
        except OSError:
            cgroup_peak = None
    return vm_hwm, cgroup_peak
