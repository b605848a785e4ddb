"""Probe functions: one cheap read of one memory source, for the sampler.

A probe is a zero-argument callable returning {metric: value} (bytes). It raises ProcessLookupError
(or FileNotFoundError) when its target is gone; the sampler then stops calling it.

The fast-tier probes keep their file open and re-read it with os.pread at offset 0: /proc and cgroupfs
regenerate the content on every read from the start, and this skips open/close and Python file objects.
Only the needed keys are parsed, by searching the raw bytes.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from typing import Callable, Mapping

from harness.run.observe.cgroupfs import MemoryCgroup, normalize_stat, parse_flat_keyed

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


# One ordered regex is about twice as fast as five separate searches; the fields appear in this order
# in every kernel since 4.5 (RssAnon/RssFile were added then). A zombie has no Vm* lines.
_STATUS_RE = re.compile(
    rb"\nVmSize:\s+(\d+).*?\nVmHWM:\s+(\d+).*?\nVmRSS:\s+(\d+).*?\nRssAnon:\s+(\d+).*?\nRssFile:\s+(\d+)", re.S)


def parse_status(data: bytes) -> dict[str, float]:
    """/proc/<pid>/status bytes → {vm_rss, rss_anon, rss_file, vm_size, vm_hwm} in bytes."""
    m = _STATUS_RE.search(data)
    if m is None:
        if b"\nVmRSS:" not in data:
            raise ProcessLookupError("process has exited (no VmRSS in /proc/<pid>/status)")
        # Older kernel without RssAnon/RssFile: report what there is.
        return {metric: _kib_field(data, key) for metric, key in (
            ("vm_rss", b"\nVmRSS:"), ("vm_size", b"\nVmSize:"), ("vm_hwm", b"\nVmHWM:"))}
    size, hwm, rss, anon, file = m.groups()
    return {"vm_rss": int(rss) << 10, "rss_anon": int(anon) << 10, "rss_file": int(file) << 10,
            "vm_size": int(size) << 10, "vm_hwm": int(hwm) << 10}


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


# v1 lists local counters first and the hierarchical total_* after them; v2 starts with anon and file.
_V1_STAT_RE = re.compile(rb"\ntotal_cache (\d+)\ntotal_rss (\d+)\n.*?\ntotal_inactive_file (\d+)\n", re.S)
_V2_STAT_RE = re.compile(rb"^anon (\d+)\nfile (\d+)\n.*?\ninactive_file (\d+)\n", re.S)


def cgroup_probe(cg: MemoryCgroup) -> Probe:
    """usage, anon, file, inactive_file, working_set (bytes) of a memory cgroup, as cg.normalized()."""
    usage_f = _KeptOpen(str(cg.usage_file))
    stat_f = _KeptOpen(str(cg.stat_file))
    version = cg.version

    def probe() -> dict[str, float]:
        usage = int(usage_f.read())
        data = stat_f.read()
        if version == 1:
            m = _V1_STAT_RE.search(data)
            if m is not None:
                file, anon, inactive_file = m.groups()
            else:
                return normalize_stat(1, usage, parse_flat_keyed(data.decode()))
        else:
            m = _V2_STAT_RE.search(data)
            if m is not None:
                anon, file, inactive_file = m.groups()
            else:
                return normalize_stat(2, usage, parse_flat_keyed(data.decode()))
        inactive_file = int(inactive_file)
        return {"usage": usage, "anon": int(anon), "file": int(file), "inactive_file": inactive_file,
                "working_set": usage - inactive_file if usage > inactive_file else 0}

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


# A Go program's own metrics endpoint -> the runtime metric names of the telemetry protocol.
EXPVAR_MEMSTATS = {
    "HeapAlloc": "heap_alloc", "HeapInuse": "heap_inuse", "HeapIdle": "heap_idle", "HeapReleased": "heap_released",
    "HeapSys": "heap_sys", "Sys": "sys", "NextGC": "next_gc", "NumGC": "num_gc", "PauseTotalNs": "pause_total_ns",
    "GCCPUFraction": "gc_cpu_fraction", "TotalAlloc": "total_alloc", "Mallocs": "mallocs", "Frees": "frees",
}
PROMETHEUS_GO = {
    "go_memstats_heap_alloc_bytes": "heap_alloc", "go_memstats_heap_inuse_bytes": "heap_inuse",
    "go_memstats_heap_idle_bytes": "heap_idle", "go_memstats_heap_released_bytes": "heap_released",
    "go_memstats_heap_sys_bytes": "heap_sys", "go_memstats_sys_bytes": "sys", "go_memstats_next_gc_bytes": "next_gc",
    "go_memstats_alloc_bytes_total": "total_alloc", "go_memstats_mallocs_total": "mallocs",
    "go_memstats_frees_total": "frees", "go_memstats_gc_cpu_fraction": "gc_cpu_fraction",
    "go_gc_duration_seconds_count": "num_gc", "go_gc_gogc_percent": "gogc_percent",
    "go_gc_gomemlimit_bytes": "memlimit",
}
_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? ([-+0-9.eE]+|NaN|[+-]Inf)", re.M)


def parse_metrics_page(text: str) -> dict[str, float]:
    """An expvar page (/debug/vars: its memstats) or a Prometheus text page (go_memstats_*, go_gc_*)
    -> {runtime metric: value}; {} for anything else."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            memstats = json.loads(stripped).get("memstats", {})
        except (ValueError, AttributeError):
            return {}
        return {name: float(memstats[key]) for key, name in EXPVAR_MEMSTATS.items()
                if isinstance(memstats.get(key), (int, float))}
    return {PROMETHEUS_GO[m.group(1)]: float(m.group(2)) for m in _PROM_LINE.finditer(text)
            if m.group(1) in PROMETHEUS_GO}


def metrics_url_probe(url: str, timeout_s: float = 0.4) -> Probe:
    """The runtime's own metrics from a program's HTTP endpoint (expvar or Prometheus), slow tier.
    Before the program listens a read fails and is counted, not fatal."""
    def probe() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return parse_metrics_page(response.read().decode("utf-8", "replace"))

    return probe
