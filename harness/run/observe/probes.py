"""Probe functions: one cheap read of one memory source, for the sampler.

A probe is a zero-argument callable returning {metric: value} (bytes). It raises ProcessLookupError
(or FileNotFoundError) when its target is gone; the sampler then stops calling it.

The /proc and cgroup probes are `FileProbe`s: they keep their files open and re-read them with os.pread
at offset 0 (/proc and cgroupfs regenerate the content on every read from the start, and this skips
open/close and Python file objects), and they split a call in two for the sampler: `read_raw()`, the
reads alone, at its tick, and `parse_raw(raw)` later, in a batch. Only the needed keys are parsed, by
searching the raw bytes.
"""

from __future__ import annotations

import errno
import json
import os
import re
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol, runtime_checkable

from harness.run.observe.cgroupfs import MemoryCgroup, normalize_stat, parse_flat_keyed, parse_pressure

Probe = Callable[[], Mapping[str, float]]


@runtime_checkable
class SplitProbe(Protocol):
    """A probe the sampler calls in two halves: `read_raw()` at its tick, `parse_raw(raw)` later, in a
    batch (FileProbe)."""

    def read_raw(self) -> Any: ...

    def parse_raw(self, raw: Any) -> Mapping[str, float]: ...


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

    def failed(self, e: OSError) -> OSError:
        """What a failed read raises. /proc: any failure (ESRCH once the process is reaped) means the
        process is gone. cgroupfs: ENODEV means the cgroup was removed (docker's, right after its container
        exits), so FileNotFoundError: gone too."""
        if isinstance(e, ProcessLookupError):
            return e
        if self.path.startswith("/proc/"):
            return ProcessLookupError(f"{self.path}: {e.strerror}")
        if e.errno == errno.ENODEV:
            return FileNotFoundError(errno.ENODEV, f"{self.path}: cgroup removed")
        return e

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except (OSError, AttributeError, TypeError):
            pass


class FileProbe:
    """A probe over files of one target, kept open.

    Calling it reads and parses: parse(raw) → {metric: value}, where raw is the bytes of the one file, or
    a tuple of each file's bytes. The sampler calls the halves apart: `read_raw()` at its tick (the
    kernel's work and little else; it raises ProcessLookupError/FileNotFoundError when the target is
    gone) and `parse_raw(raw)` later, in a batch off the tick. parse may raise ProcessLookupError too (a
    zombie's status has no Vm* lines): the target was gone at that read.
    """

    def __init__(self, paths: Sequence[str], parse: Callable[..., Mapping[str, float]]):
        self.files = tuple(_KeptOpen(p) for p in paths)
        self.parse_raw = parse
        self.read_raw = _reader(self.files)

    def __call__(self) -> Mapping[str, float]:
        return self.parse_raw(self.read_raw())

    def __repr__(self) -> str:
        return f"FileProbe({[f.path for f in self.files]!r})"


def _reader(files: tuple[_KeptOpen, ...]) -> Callable[[], bytes | tuple[bytes, ...]]:
    # Closures over the fds: the cheapest call Python has, and the tick runs on cold caches.
    pread, size = os.pread, _READ_SIZE
    first = files[0]
    if len(files) == 1:
        fd = first.fd

        def read_one() -> bytes:
            try:
                return pread(fd, size, 0)
            except OSError as e:
                raise first.failed(e) from None

        return read_one
    if len(files) == 2:
        fd_a, fd_b = files[0].fd, files[1].fd

        def read_two() -> tuple[bytes, bytes]:
            try:
                return pread(fd_a, size, 0), pread(fd_b, size, 0)
            except OSError as e:
                raise first.failed(e) from None

        return read_two
    fds = [f.fd for f in files]

    def read_all() -> tuple[bytes, ...]:
        try:
            return tuple([pread(fd, size, 0) for fd in fds])
        except OSError as e:
            raise first.failed(e) from None

    return read_all


def _kib_field(data: bytes, key: bytes) -> int | None:
    """Value of a `Key:   1234 kB` line, in bytes. key includes the colon and the leading newline."""
    i = data.find(key)
    if i < 0:
        return None
    j = data.find(b"\n", i + len(key))
    return int(data[i + len(key) : j if j >= 0 else None].split()[0]) * 1024


_STATUS_KEYS = (("vm_rss", b"\nVmRSS:"), ("rss_anon", b"\nRssAnon:"), ("rss_file", b"\nRssFile:"),
                ("vm_size", b"\nVmSize:"), ("vm_hwm", b"\nVmHWM:"), ("vm_swap", b"\nVmSwap:"))


def parse_status(data: bytes) -> dict[str, float]:
    """/proc/<pid>/status bytes → {vm_rss, rss_anon, rss_file, vm_size, vm_hwm, vm_swap} in bytes; a field
    the file lacks is left out, never read as 0."""
    # Since 4.5 the kernel writes these lines in one block, in this order (fs/proc/task_mmu.c, task_mem):
    # VmSize VmLck VmPin VmHWM VmRSS RssAnon RssFile RssShmem, each `Name:<blanks>N kB`. One split of the
    # block is the cheapest parse; the names are checked, and anything else is parsed field by field.
    i = data.find(b"\nVmSize:")
    j = data.find(b"\nRssShmem:", i)
    if 0 <= i < j:
        f = data[i:j].split()
        if (len(f) == 21 and f[9] == b"VmHWM:" and f[12] == b"VmRSS:" and f[15] == b"RssAnon:"
                and f[18] == b"RssFile:"):
            out: dict[str, float] = {"vm_rss": int(f[13]) << 10, "rss_anon": int(f[16]) << 10,
                                     "rss_file": int(f[19]) << 10, "vm_size": int(f[1]) << 10,
                                     "vm_hwm": int(f[10]) << 10}
            # VmSwap comes later in the same function (after VmPTE): swapped-out anonymous pages.
            swap = _kib_field(data, b"\nVmSwap:")
            if swap is not None:
                out["vm_swap"] = swap
            return out
    if b"\nVmRSS:" not in data:   # a zombie has no Vm* lines
        raise ProcessLookupError("process has exited (no VmRSS in /proc/<pid>/status)")
    # Another layout, or a kernel older than 4.5 without RssAnon/RssFile: what there is.
    return _kib_fields(data, _STATUS_KEYS)


def _kib_fields(data: bytes, keys: Iterable[tuple[str, bytes]]) -> dict[str, float]:
    """{metric: bytes} of each `Name: N kB` field of `keys` ((metric, b"\nName:")) that `data` has."""
    out: dict[str, float] = {}
    for metric, key in keys:
        value = _kib_field(data, key)
        if value is not None:
            out[metric] = value
    return out


def proc_status_probe(pid: int) -> FileProbe:
    """vm_rss, rss_anon, rss_file, vm_size, vm_hwm, vm_swap (bytes) from /proc/<pid>/status."""
    return FileProbe([f"/proc/{pid}/status"], parse_status)


_SMAPS_KEYS = (
    ("rss", b"\nRss:"),
    ("lazyfree", b"\nLazyFree:"),
    ("anon_huge_pages", b"\nAnonHugePages:"),
)


def parse_smaps_rollup(data: bytes) -> dict[str, float]:
    if not data:
        raise ProcessLookupError("smaps_rollup is empty: the process has no address space left")
    return _kib_fields(data, _SMAPS_KEYS)


def smaps_rollup_probe(pid: int) -> FileProbe:
    """rss, lazyfree, anon_huge_pages (bytes) from /proc/<pid>/smaps_rollup.

    Costs far more than status on a large process (walks every page table) and takes the mmap lock:
    slow tier only.
    """
    return FileProbe([f"/proc/{pid}/smaps_rollup"], parse_smaps_rollup)


def _flat_value(data: bytes, key: bytes) -> int | None:
    """The value of the `key value` line whose key is key[1:] (key starts with a newline), else None."""
    i = data.find(key)
    if i < 0:
        if not data.startswith(key[1:]):
            return None
        i = -1
    i += len(key)
    j = data.find(b"\n", i)
    return int(data[i : j if j >= 0 else None])


# v1: the hierarchical total_* count the whole subtree (use_hierarchy), which is what the limit applies to.
_STAT_KEYS = {1: (b"\ntotal_rss ", b"\ntotal_cache ", b"\ntotal_inactive_file "),
              2: (b"\nanon ", b"\nfile ", b"\ninactive_file ")}
# memory.stat fields read as they are, each a series of its own where the kernel writes it (left out where
# it does not: v1 has no pglazyfree/pglazyfreed, and no anon_thp by that name but rss_huge).
# Documentation/admin-guide/cgroup-v2.rst (memory.stat) and cgroup-v1/memory.rst (5.2 stat file).
_STAT_EXTRA_KEYS = {
    # v1's total_swap: memory.stat has it only with swap accounting on. Read from the same file as anon, not as
    # memory.memsw.usage_in_bytes less usage: two files read microseconds apart under a growing heap differ by
    # megabytes with no swap at all (seen here: 9 MiB "swap" on a swapless host).
    1: (("anon_thp", b"\ntotal_rss_huge "), ("shmem", b"\ntotal_shmem "), ("swap", b"\ntotal_swap ")),
    2: (("anon_thp", b"\nanon_thp "), ("shmem", b"\nshmem "), ("pglazyfree", b"\npglazyfree "),
        ("pglazyfreed", b"\npglazyfreed ")),
}


def parse_cgroup(version: int, raw: tuple[bytes, ...]) -> Mapping[str, float]:
    """(memory.usage_in_bytes (v1) or memory.current (v2), memory.stat) bytes → as normalize_stat() gives them,
    plus the _STAT_EXTRA_KEYS the stat has."""
    usage, stat = int(raw[0]), raw[1]
    anon_key, file_key, inactive_key = _STAT_KEYS[version]
    anon, file, inactive_file = (_flat_value(stat, anon_key), _flat_value(stat, file_key),
                                 _flat_value(stat, inactive_key))
    out: dict[str, float]
    if anon is None or file is None or inactive_file is None:
        out = dict(normalize_stat(version, usage, parse_flat_keyed(stat.decode())))
    else:
        out = {"usage": usage, "anon": anon, "file": file, "inactive_file": inactive_file,
               "working_set": usage - inactive_file if usage > inactive_file else 0}
    for metric, key in _STAT_EXTRA_KEYS[version]:
        value = _flat_value(stat, key)
        if value is not None:
            out[metric] = value
    return out


# memory.events counters read on v2, each the series events_<name>.
V2_EVENTS = ("high", "max", "oom", "oom_kill")
# The files a v2 cgroup probe reads, in this order; pressure and swap only where they exist.
V2_FILES = ("current", "stat", "events", "pressure", "swap")


def parse_cgroup_v2(raw: tuple[bytes, ...], files: tuple[str, ...] = V2_FILES[:4]) -> Mapping[str, float]:
    """(memory.current, memory.stat, memory.events[, memory.pressure][, memory.swap.current]), named by
    `files` → parse_cgroup's values, the events counters (events_high, ...), PSI: psi_some_avg10 /
    psi_full_avg10 as fractions, psi_some_total_s / psi_full_total_s in seconds stalled, and `swap`."""
    named = dict(zip(files, raw, strict=False))
    out = dict(parse_cgroup(2, (named["current"], named["stat"])))
    events = parse_flat_keyed(named["events"].decode())
    out.update({f"events_{name}": float(events.get(name, 0)) for name in V2_EVENTS})
    if "pressure" in named:
        psi = parse_pressure(named["pressure"].decode())
        for kind in ("some", "full"):
            if f"{kind}_avg10" in psi:
                out[f"psi_{kind}_avg10"] = psi[f"{kind}_avg10"] / 100.0
                out[f"psi_{kind}_total_s"] = psi[f"{kind}_total"] / 1e6
    if "swap" in named:
        out["swap"] = float(int(named["swap"]))
    return out


def cgroup_probe(cg: MemoryCgroup) -> FileProbe:
    """usage, anon, file, inactive_file, working_set (bytes) of a memory cgroup, as normalize_stat() gives them,
    with shmem, anon_thp (and v2's pglazyfree, pglazyfreed) and swap in use where the kernel has them; on v2
    also its memory.events counters and PSI (parse_cgroup_v2). A removed cgroup (ENODEV on the files kept
    open) is a gone target: FileNotFoundError."""
    if cg.version == 1:
        return FileProbe([str(cg.usage_file), str(cg.stat_file)], partial(parse_cgroup, cg.version))
    present = {"current": cg.usage_file, "stat": cg.stat_file, "events": cg.events_file,
               "pressure": cg.pressure_file, "swap": cg.swap_file}
    files = tuple(name for name in V2_FILES if name in ("current", "stat", "events") or present[name].exists())
    return FileProbe([str(present[name]) for name in files], partial(parse_cgroup_v2, files=files))


def thread_files(pid: int | None, *names: str) -> list[tuple[bytes, ...]] | None:
    """The named /proc/PID/task/TID/ files of each of a process's threads, read once, not sampled
    (a thread that ends meanwhile is left out); None when the process is gone or unreadable."""
    if pid is None:
        return None
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    out = []
    for tid in tids:
        try:
            contents = []
            for name in names:
                with open(f"/proc/{pid}/task/{tid}/{name}", "rb") as f:
                    contents.append(f.read())
        except OSError:
            continue
        out.append(tuple(contents))
    return out


# A Go program's own metrics endpoint -> the runtime metric names of the telemetry protocol.
EXPVAR_MEMSTATS = {
    "HeapAlloc": "heap_alloc", "HeapInuse": "heap_inuse", "HeapIdle": "heap_idle", "HeapReleased": "heap_released",
    "HeapSys": "heap_sys", "Sys": "sys", "NextGC": "next_gc", "NumGC": "num_gc", "PauseTotalNs": "pause_total_ns",
    "GCCPUFraction": "gc_cpu_fraction", "TotalAlloc": "total_alloc", "Mallocs": "mallocs", "Frees": "frees",
    "StackInuse": "stack_inuse", "StackSys": "stack_sys",
}
PROMETHEUS_GO = {
    "go_memstats_heap_alloc_bytes": "heap_alloc", "go_memstats_heap_inuse_bytes": "heap_inuse",
    "go_memstats_heap_idle_bytes": "heap_idle", "go_memstats_heap_released_bytes": "heap_released",
    "go_memstats_heap_sys_bytes": "heap_sys", "go_memstats_sys_bytes": "sys", "go_memstats_next_gc_bytes": "next_gc",
    "go_memstats_alloc_bytes_total": "total_alloc", "go_memstats_mallocs_total": "mallocs",
    "go_memstats_frees_total": "frees", "go_memstats_gc_cpu_fraction": "gc_cpu_fraction",
    "go_gc_duration_seconds_count": "num_gc", "go_gc_gogc_percent": "gogc_percent",
    "go_gc_gomemlimit_bytes": "memlimit",
    "go_memstats_stack_inuse_bytes": "stack_inuse", "go_memstats_stack_sys_bytes": "stack_sys",
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
