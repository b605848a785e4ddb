"""What a killed run leaves behind, whose it is, and removing it once its owner is gone.

A cell's container, memory cgroup and scratch directory are removed by the backend that made them
(and RunSession.close sweeps the run's own). A harness killed with SIGKILL (the OOM killer, a CI
timeout, a closed laptop) removes nothing, so each of them names its owner: the pid of the process
that made it (the harness, or a cluster's cell worker) and that process's start time, clock ticks
after boot from /proc/PID/stat, so that another process given the same pid later is not taken for
the owner. `sweep()` removes what belongs to owners that are gone: at the start of `goreclaim run`
and `advise`, and on demand with `goreclaim clean`. What a live process owns is never touched.

    memory cgroup      goreclaim-<pid>-<start>-<n>, anywhere in the memory hierarchy
    scratch directory  $TMPDIR/goreclaim-scratch-<pid>-<start>-<random>
    container          labelled goreclaim=1 and goreclaim.owner=<pid>-<start>@<boot id>
                       (without "@<boot id>" where the kernel does not show one)

Names made before owners carried a start time (goreclaim-<pid>-<n>) are judged by the pid alone:
kept while any process has it. A container without an owner label is left alone. Removing a cgroup
or a container ends the processes in it; removing a scratch directory ends the workloads running in
it (the process backend's, which nothing else would end).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
OWNER_LABEL = "goreclaim.owner"
# The names' prefixes, here once: the cgroup backend and the scratch directory make names with them.
CGROUP_PREFIX = "goreclaim-"
SCRATCH_PREFIX = "goreclaim-scratch-"

# The owner part of a name: "<pid>-<start>", or "<pid>" alone in names from before start times.
_CGROUP_NAME = re.compile(CGROUP_PREFIX + r"(?P<pid>\d+)-(?:(?P<start>\d+)-)?\d+|"
                          + CGROUP_PREFIX + r"probe-(?P<probe>\d+)")
_SCRATCH_NAME = re.compile(SCRATCH_PREFIX + r"(?P<pid>\d+)-(?:(?P<start>\d+)-)?[^-]+")
_LABEL = re.compile(r"(?P<pid>\d+)-(?P<start>\d+)(?:@(?P<boot>[0-9a-f-]+))?")


@dataclass(frozen=True)
class Owner:
    """The process that made a leftover."""

    pid: int
    start: int | None = None   # clock ticks after boot (/proc/PID/stat field 22); None: not recorded
    boot: str | None = None    # the boot it ran in (/proc/sys/kernel/random/boot_id); None: this one

    def __str__(self) -> str:
        return f"pid {self.pid}" + (f" started at tick {self.start}" if self.start is not None else "")


def process_start(pid: int, proc: Path = PROC) -> int | None:
    """The start time of process `pid` in clock ticks after boot; None when there is no such process
    or it is a zombie (dead, only not yet reaped by its parent)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def boot_id(proc: Path = PROC) -> str | None:
    """This boot's id; None where the kernel does not show it (then a label names no boot)."""
    try:
        return (proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip() or None
    except OSError:
        return None


_own: dict[int, str] = {}


def owner_tag() -> str:
    """"<pid>-<start>" of this process, the owner part of the names of what it makes."""
    pid = os.getpid()  # looked up again after a fork: the child is another owner
    if pid not in _own:
        _own[pid] = f"{pid}-{process_start(pid)}"
    return _own[pid]


def owner_labels() -> dict[str, str]:
    """The container label naming this process as the owner (a container outlives a reboot)."""
    boot = boot_id()
    return {OWNER_LABEL: owner_tag() + (f"@{boot}" if boot else "")}


def owner_of_cgroup(name: str) -> Owner | None:
    """The owner a memory cgroup's name records; None for a name goreclaim's runs do not make."""
    match = _CGROUP_NAME.fullmatch(name)
    if match is None:
        return None
    if match["probe"]:
        return Owner(int(match["probe"]))
    return Owner(int(match["pid"]), int(match["start"]) if match["start"] else None)


def owner_of_scratch(name: str) -> Owner | None:
    match = _SCRATCH_NAME.fullmatch(name)
    if match is None:
        return None
    return Owner(int(match["pid"]), int(match["start"]) if match["start"] else None)


def owner_of_label(value: str) -> Owner | None:
    match = _LABEL.fullmatch(value)
    if match is None:
        return None
    return Owner(int(match["pid"]), int(match["start"]), match["boot"])


def alive(owner: Owner, proc: Path = PROC) -> bool:
    """Whether the process that made a leftover still runs: its pid is taken by a live process that
    started when the owner did, in this boot. Without a recorded start, any live process with the pid
    counts (a leftover may then stay longer, never go too early)."""
    boot = boot_id(proc) if owner.boot is not None else None
    if boot is not None and owner.boot != boot:
        return False
    start = process_start(owner.pid, proc)
    if start is None:
        return False
    return owner.start is None or owner.start == start


@dataclass
class Leftover:
    kind: str            # container | cgroup | scratch
    name: str            # a container's id and name, a cgroup's or a directory's path
    owner: Owner
    remove: Callable[[], None] = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (owner {self.owner}: gone)"


@dataclass
class Sweep:
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)      # "what: why" of a removal that did not work
    unowned: list[str] = field(default_factory=list)     # goreclaim containers with no owner label


def memory_hierarchy_root(proc: Path = PROC) -> Path | None:
    """The mount point of the memory cgroup hierarchy this process is in (cgroups are made under a
    process's own cgroup, and a killed run's may sit under another's); None without one."""
    from harness.run.observe.cgroupfs import CgroupError, memory_cgroup_of, parse_mountinfo

    try:
        own = memory_cgroup_of(os.getpid(), proc_root=str(proc))
        mounts = parse_mountinfo((proc / "self" / "mountinfo").read_text())
    except (CgroupError, OSError):
        return None
    points = [Path(m.mount_point) for m in mounts if m.version == own.version
              and (m.version == 2 or "memory" in m.controllers)]
    under = [p for p in points if own.path == p or p in own.path.parents]
    return max(under, key=lambda p: len(p.parts)) if under else None


def cgroup_leftovers(root: Path | None, proc: Path = PROC) -> list[Leftover]:
    """Memory cgroups under `root` whose names record an owner that is gone."""
    from harness.run.observe.cgroupfs import MemoryCgroup

    if root is None:
        return []
    version = 2 if (root / "cgroup.controllers").exists() else 1
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        descend = []
        for name in dirnames:
            owner = owner_of_cgroup(name)
            if owner is None:
                descend.append(name)  # a leftover's own children go with it
            elif not alive(owner, proc):
                cgroup = MemoryCgroup(Path(dirpath) / name, version)
                found.append(Leftover("cgroup", str(cgroup.path), owner, cgroup.remove))
        dirnames[:] = descend
    return found


def scratch_leftovers(tmpdir: Path | None = None, proc: Path = PROC) -> list[Leftover]:
    """Scratch directories in $TMPDIR whose owner is gone."""
    tmpdir = Path(tmpdir or tempfile.gettempdir())
    found = []
    for path in sorted(tmpdir.glob(f"{SCRATCH_PREFIX}*")):
        owner = owner_of_scratch(path.name)
        if owner is not None and path.is_dir() and not alive(owner, proc):
            found.append(Leftover("scratch", str(path), owner, functools.partial(_remove_scratch, path, proc)))
    return found


def _remove_scratch(path: Path, proc: Path = PROC) -> None:
    """Remove a scratch directory, after ending the workloads still running in it: on the process
    backend nothing else ends a killed harness's child. A workload is a process whose working
    directory is there and whose $TMPDIR names it (run.env.child_env), never a shell that visits."""
    import signal

    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if (cwd == path or path in cwd.parents) and f"TMPDIR={path}".encode() in environ:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(path)


def docker_engine():
    """A client for the Docker engine, or None when none answers (nothing of Docker's to sweep)."""
    try:
        from harness.build.docker_client import docker_client

        client = docker_client(timeout_s=5)
        client.ping()
    except Exception:  # noqa: BLE001 - no SDK, no socket, no daemon: no containers either
        return None
    return client


@dataclass(frozen=True)
class ListedContainer:
    """A container as the daemon lists it: no inspection per container, so one removed meanwhile (by
    another run on the same daemon) is not an error."""

    id: str
    name: str
    labels: dict[str, str]
    state: str

    @property
    def short_id(self) -> str:
        return self.id[:12]


def labelled_containers(client, labels: list[str]) -> list[ListedContainer]:
    """Every container (running or not) carrying all of `labels` ("key=value")."""
    return [ListedContainer(row["Id"], (row.get("Names") or ["/"])[0].lstrip("/"), row.get("Labels") or {},
                            row.get("State", ""))
            for row in client.api.containers(all=True, filters={"label": labels})]


def remove_container(client, container_id: str) -> None:
    """Force-remove a container (which also ends its process); one gone meanwhile is fine."""
    import docker

    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass


def container_leftovers(client, proc: Path = PROC) -> tuple[list[Leftover], list[str]]:
    """(goreclaim containers whose owner is gone, those with no owner label)."""
    from harness.run.backends.docker import LABEL

    if client is None:
        return [], []
    found, unowned = [], []
    for container in labelled_containers(client, [f"{LABEL}=1"]):
        name = f"{container.short_id} {container.name}"
        owner = owner_of_label(container.labels.get(OWNER_LABEL, ""))
        if owner is None:
            unowned.append(name)
        elif not alive(owner, proc):
            found.append(Leftover("container", name, owner, functools.partial(remove_container, client,
                                                                              container.id)))
    return found, unowned


def find(proc: Path = PROC, tmpdir: Path | None = None, cgroup_root: Path | None = None,
         docker=None) -> tuple[list[Leftover], list[str], list[str]]:
    """(every leftover whose owner is gone, goreclaim containers without an owner label, "what: why" of
    a kind that could not be listed). Containers first: removing one ends its process, and with it its
    use of the scratch directory."""
    listers: tuple[tuple[str, Callable[[], tuple[list[Leftover], list[str]]]], ...] = (
        ("containers", lambda: container_leftovers(docker, proc)),
        ("memory cgroups", lambda: (cgroup_leftovers(cgroup_root if cgroup_root is not None
                                                     else memory_hierarchy_root(proc), proc), [])),
        ("scratch directories", lambda: (scratch_leftovers(tmpdir, proc), [])),
    )
    found: list[Leftover] = []
    unowned: list[str] = []
    failed: list[str] = []
    for what, lister in listers:
        try:
            leftovers, without_owner = lister()
        except Exception as e:  # noqa: BLE001 - a daemon that errs must not stop the other kinds, or a run
            failed.append(f"listing {what}: {type(e).__name__}: {e}")
            continue
        found += leftovers
        unowned += without_owner
    return found, unowned, failed


def sweep(log: Callable[[str], None] | None = None, **where) -> Sweep:
    """Remove every leftover whose owner is gone (keyword arguments as for `find`; by default this
    host's Docker engine, memory hierarchy and $TMPDIR). Best effort: what cannot be listed or removed
    is reported in `failed`, and the rest go on."""
    if "docker" not in where:
        where["docker"] = docker_engine()
    leftovers, unowned, failed = find(**where)
    result = Sweep(unowned=unowned, failed=failed)
    for leftover in leftovers:
        try:
            leftover.remove()
        except FileNotFoundError:
            continue  # gone meanwhile: its owner's last act, or another sweep's
        except Exception as e:  # noqa: BLE001 - one that cannot go must not keep the rest
            result.failed.append(f"{leftover}: {type(e).__name__}: {e}")
            continue
        result.removed.append(str(leftover))
        if log is not None:
            log(f"removed {leftover}")
    return result
