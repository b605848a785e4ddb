"""Find and read a process's memory cgroup on cgroup v1, v2 and hybrid hosts; create and remove children.

The memory cgroup of a process is found from two files: `/proc/<pid>/cgroup` gives its path relative to
the root of each hierarchy, and `/proc/self/mountinfo` says where each hierarchy is mounted and which
subtree of it (the `root` field: a container may see only `/docker/<id>` mounted as `/sys/fs/cgroup/memory`).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


class CgroupError(RuntimeError):
    """The cgroup layout could not be understood or changed; the message says which file and why."""


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem mount from mountinfo."""

    version: int                  # 1 or 2
    root: str                     # subtree of the hierarchy that is mounted ("/" for all of it)
    mount_point: str
    controllers: frozenset[str]   # v1: from the super options ("memory", "name=systemd"); v2: empty


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str, source: str = "mountinfo") -> list[CgroupMount]:
    """cgroup and cgroup2 mounts listed in mountinfo text (format: proc(5))."""
    mounts = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            raise CgroupError(f"{source}:{lineno}: not a mountinfo line (want 'id parent maj:min root "
                              f"mountpoint opts ... - fstype source superopts'): {line!r}")
        fstype = tail[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        super_opts = tail[2].split(",") if len(tail) > 2 else []
        if fstype == "cgroup":
            # Options without "=" are controllers (plus a few flags like "xattr"); keep "name=..." too.
            controllers = frozenset(o for o in super_opts
                                    if o.startswith("name=") or ("=" not in o and o not in ("rw", "ro")))
            mounts.append(CgroupMount(1, _unescape(fields[3]), _unescape(fields[4]), controllers))
        else:
            mounts.append(CgroupMount(2, _unescape(fields[3]), _unescape(fields[4]), frozenset()))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup → {controller: path}; the v2 unified entry is keyed by ""."""
    paths = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths[""] = path
        for c in controllers.split(","):
            if c:
                paths[c] = path
    return paths


def _join_under_mount(mount: CgroupMount, cgroup_path: str, source: str) -> Path:
    root = mount.root.rstrip("/")
    if cgroup_path == root or cgroup_path.startswith(root + "/") or root == "":
        rel = cgroup_path[len(root):].lstrip("/")
        return Path(mount.mount_point) / rel if rel else Path(mount.mount_point)
    raise CgroupError(f"{source}: cgroup path {cgroup_path!r} is outside the mounted subtree {mount.root!r} "
                      f"at {mount.mount_point} (a cgroup namespace or a different mount is needed)")


def _best_mount(mounts: list[CgroupMount], cgroup_path: str) -> CgroupMount | None:
    # Prefer the mount whose root is the longest prefix of the path (bind mounts of subtrees).
    def score(m: CgroupMount) -> int:
        root = m.root.rstrip("/")
        if cgroup_path == root or cgroup_path.startswith(root + "/") or root == "":
            return len(root)
        return -1

    ranked = sorted(mounts, key=score, reverse=True)
    return ranked[0] if ranked else None


class MemoryCgroup:
    """A memory cgroup directory (v1 memory controller or v2 with memory enabled)."""

    def __init__(self, path: Path | str, version: int):
        if version not in (1, 2):
            raise ValueError(f"cgroup version must be 1 or 2, got {version!r}")
        self.path = Path(path)
        self.version = version

    def __repr__(self) -> str:
        return f"MemoryCgroup({str(self.path)!r}, version={self.version})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemoryCgroup) and (self.path, self.version) == (other.path, other.version)

    def __hash__(self) -> int:
        return hash((self.path, self.version))

    # File names differ between versions; these are the ones the probes keep open.
    @property
    def usage_file(self) -> Path:
        return self.path / ("memory.usage_in_bytes" if self.version == 1 else "memory.current")

    @property
    def stat_file(self) -> Path:
        return self.path / "memory.stat"

    @property
    def swap_file(self) -> Path:
        """v2's swap in use (absent without swap accounting); v1 has it as memory.stat total_swap."""
        return self.path / "memory.swap.current"

    # v2 only: what the memory controller did (memory.events) and how long tasks stalled (memory.pressure,
    # PSI: absent when the kernel runs with psi=0).
    @property
    def events_file(self) -> Path:
        return self.path / "memory.events"

    @property
    def pressure_file(self) -> Path:
        return self.path / "memory.pressure"

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def _read_int(self, name: str) -> int:
        text = self._read(name).strip()
        try:
            return int(text)
        except ValueError:
            raise CgroupError(f"{self.path / name}: expected an integer, got {text!r}") from None

    def peak(self) -> int | None:
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return self._read_int(name)
        except FileNotFoundError:
            return None

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return parse_flat_keyed(self._read(name)).get("oom_kill", 0)

    def procs(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split()]

    def add_process(self, pid: int) -> None:
        try:
            (self.path / "cgroup.procs").write_text(f"{pid}\n")
        except ProcessLookupError:
            raise
        except OSError as e:
            raise CgroupError(f"{self.path / 'cgroup.procs'}: cannot move pid {pid}: {e.strerror}") from e

    def children(self) -> list[MemoryCgroup]:
        return [MemoryCgroup(p, self.version) for p in sorted(self.path.iterdir()) if p.is_dir()]

    def remove(self, timeout_s: float = 5.0) -> None:
        """Kill every task left in this cgroup (and its children), wait for them to go, rmdir."""
        if not self.path.exists():
            return
        deadline = time.monotonic() + timeout_s
        for child in self.children():
            child.remove(max(0.1, deadline - time.monotonic()))
        kill_file = self.path / "cgroup.kill"
        while True:
            try:
                pids = self.procs()
            except FileNotFoundError:
                return
            if pids and kill_file.exists():
                try:
                    kill_file.write_text("1\n")
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids:
                try:
                    self.path.rmdir()
                    return
                except FileNotFoundError:
                    return
                except OSError as e:
                    # v1 keeps the directory busy for a moment after the last task exits.
                    if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        raise CgroupError(f"{self.path}: rmdir failed: {e.strerror}") from e
            if time.monotonic() > deadline:
                raise CgroupError(f"{self.path}: still has tasks {pids} or is busy after {timeout_s}s")
            time.sleep(0.01)


def parse_flat_keyed(text: str) -> dict[str, int]:
    """`key value` lines (memory.stat, memory.events, memory.oom_control) → {key: int}."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def parse_pressure(text: str) -> dict[str, float]:
    """A PSI file (memory.pressure): `some avg10=0.12 avg60=0.00 avg300=0.00 total=1234` lines (and `full`)
    → {"some_avg10": 0.12, "some_total": 1234.0, ...}: avg10 in percent, total in microseconds."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        for field in fields:
            name, _, value = field.partition("=")
            if name in ("avg10", "total"):
                try:
                    out[f"{kind}_{name}"] = float(value)
                except ValueError:
                    continue
    return out


def normalize_stat(version: int, usage: int, stat: dict[str, int]) -> dict[str, int]:
    """{usage, anon, file, inactive_file, working_set} with the same meaning on v1 and v2."""
    if version == 1:
        # total_* count the whole subtree (use_hierarchy), which is what the limit applies to.
        anon = stat.get("total_rss", stat.get("rss", 0))
        file = stat.get("total_cache", stat.get("cache", 0))
        inactive_file = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    else:
        anon, file, inactive_file = stat.get("anon", 0), stat.get("file", 0), stat.get("inactive_file", 0)
    return {
        "usage": usage,
        "anon": anon,
        "file": file,
        "inactive_file": inactive_file,
        "working_set": max(0, usage - inactive_file),
    }


def _memory_location(pid: int | str, proc_root: str, mountinfo: str | Path | None) -> tuple[Path, int]:
    mountinfo_path = Path(mountinfo) if mountinfo is not None else Path(proc_root) / "self" / "mountinfo"
    cgroup_file = Path(proc_root) / str(pid) / "cgroup"
    mounts = parse_mountinfo(mountinfo_path.read_text(), str(mountinfo_path))
    try:
        paths = parse_proc_cgroup(cgroup_file.read_text())
    except FileNotFoundError:
        raise ProcessLookupError(f"{cgroup_file}: no such process") from None
    if "memory" in paths:
        v1 = [m for m in mounts if m.version == 1 and "memory" in m.controllers]
        mount = _best_mount(v1, paths["memory"])
        if mount is None:
            raise CgroupError(f"{cgroup_file} lists a v1 memory hierarchy but {mountinfo_path} has no "
                              f"cgroup mount with the memory controller")
        return _join_under_mount(mount, paths["memory"], str(cgroup_file)), 1
    if "" in paths:
        v2 = [m for m in mounts if m.version == 2]
        mount = _best_mount(v2, paths[""])
        if mount is None:
            raise CgroupError(f"{cgroup_file} has a v2 entry but {mountinfo_path} has no cgroup2 mount")
        path = _join_under_mount(mount, paths[""], str(cgroup_file))
        controllers = Path(mount.mount_point) / "cgroup.controllers"
        if controllers.exists() and "memory" not in controllers.read_text().split():
            raise CgroupError(f"{controllers}: the memory controller is not available on the v2 hierarchy "
                              f"and no v1 memory hierarchy is mounted")
        return path, 2
    raise CgroupError(f"{cgroup_file}: no memory controller entry and no v2 entry")


def memory_cgroup_of(pid: int | str = "self", proc_root: str = "/proc",
                     mountinfo: str | Path | None = None) -> MemoryCgroup:
    """The memory cgroup of `pid`. `mountinfo` (a file path) defaults to `<proc_root>/self/mountinfo`."""
    path, version = _memory_location(pid, proc_root, mountinfo)
    return MemoryCgroup(path, version)


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as e:
        raise CgroupError(f"{path}: cannot write {value.strip()!r}: {e.strerror}") from e


def create_memory_cgroup(name: str, limit_bytes: int | None,
                         parent: MemoryCgroup | None = None) -> MemoryCgroup:
    """A new child cgroup of `parent` (default: this process's memory cgroup) with swap forbidden.

    `limit_bytes` None leaves memory unlimited (swap is still forbidden).
    """
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"cgroup name must be one path component, got {name!r}")
    parent = parent or memory_cgroup_of(os.getpid())
    path = parent.path / name
    if parent.version == 2:
        subtree = parent.path / "cgroup.subtree_control"
        if "memory" not in subtree.read_text().split():
            _write(subtree, "+memory\n")
    try:
        path.mkdir()
    except FileExistsError:
        raise CgroupError(f"{path}: already exists (a leftover? remove it or pick another name)") from None
    except OSError as e:
        raise CgroupError(f"{path}: cannot create: {e.strerror}") from e
    cg = MemoryCgroup(path, parent.version)
    try:
        if parent.version == 1:
            if limit_bytes is not None:
                _write(path / "memory.limit_in_bytes", f"{limit_bytes}\n")
                # memsw counts memory+swap; equal to the memory limit means no swap at all.
                if (path / "memory.memsw.limit_in_bytes").exists():
                    _write(path / "memory.memsw.limit_in_bytes", f"{limit_bytes}\n")
            try:
                (path / "memory.swappiness").write_text("0\n")
            except OSError:
                pass  # not writable under some parents; memsw or a swapless host covers it
        else:
            if limit_bytes is not None:
                _write(path / "memory.max", f"{limit_bytes}\n")
            if (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0\n")
    except BaseException:
        cg.remove(1.0)
        raise
    return cg


def writable_memory_hierarchy() -> str | None:
    """None if this process can create memory cgroups under its own, else why not (one sentence)."""
    try:
        own = memory_cgroup_of(os.getpid())
    except (CgroupError, OSError) as e:
        return f"no memory cgroup found for this process: {e}"
    if not os.access(own.path, os.W_OK):
        return f"{own.path} is not writable (need root or a delegated cgroup)"
    try:
        probe = create_memory_cgroup(f"goreclaim-probe-{os.getpid()}", None, own)
    except (CgroupError, OSError) as e:
        return f"cannot create a child memory cgroup under {own.path}: {e}"
    try:
        probe.remove(2.0)
    except CgroupError as e:
        return f"created but could not remove a probe cgroup: {e}"
    return None


def list_leftovers(prefix: str = "goreclaim-", parent: MemoryCgroup | None = None) -> list[MemoryCgroup]:
    """Child cgroups of `parent` (default: this process's memory cgroup) whose names start with `prefix`."""
    parent = parent or memory_cgroup_of(os.getpid())
    try:
        return [c for c in parent.children() if c.path.name.startswith(prefix)]
    except FileNotFoundError:
        return []
