"""Attaching to a process that is already running (`goreclaim watch`): find it, read what it is, sample it.

The process is only read, never touched: /proc/PID (status, smaps_rollup, environ, exe, cgroup) and its
memory cgroup's files, plus its own metrics page when given one. Nothing here stops, signals or
ptraces it. A process named by container is found through Docker (its init process's host pid); by
cgroup path, the process of that cgroup with the largest resident set.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.build.program import ProgramBuildError, go_build_info
from harness.define.cell import Cell, pairs
from harness.define.units import UnitError, parse_size
from harness.define.workloads import Program
from harness.run.backends.base import RunResult
from harness.run.observation import Observation
from harness.run.observe.cgroupfs import CgroupError, MemoryCgroup, memory_cgroup_of
from harness.run.placement import placement

# The runtime settings read from the process's environment ("" when it does not set them).
RUNTIME_ENV = ("GOGC", "GOMEMLIMIT", "GODEBUG")
# How often the watch looks whether the process is still there (the sampler reads on its own cadence).
ALIVE_CHECK_S = 0.2
# A cgroup limit at or above this is "no limit" (v1 writes PAGE_COUNTER_MAX pages; v2 writes "max").
UNLIMITED = 1 << 62


class AttachError(Exception):
    """The process cannot be watched; the message is one line naming it and why."""


@dataclass
class Target:
    """A running process as found and read, before it is sampled."""

    pid: int
    named: str                       # how it was named: "pid 123", "container web (3f2a…)", "cgroup /sys/…"
    exe: str                         # what /proc/PID/exe points at
    start_ticks: int                 # /proc/PID/stat starttime: a reused pid is another process
    go_version: str | None = None    # from the binary's build information; None: not a Go program
    build_settings: dict[str, str] = field(default_factory=dict)   # `go version -m`'s build lines
    env: dict[str, str] = field(default_factory=dict)              # GOGC, GOMEMLIMIT, GODEBUG as set
    cgroup: MemoryCgroup | None = None
    limits: dict[str, int] = field(default_factory=dict)          # memory_max, memory_high (v2): bytes
    cgroup_processes: int = 0        # processes in its memory cgroup, itself included: >1, usage is theirs together
    notes: list[str] = field(default_factory=list)                 # what could not be read, and why

    @property
    def name(self) -> str:
        return Path(self.exe.removesuffix(" (deleted)")).name or f"pid{self.pid}"

    def describe(self) -> dict:
        """The manifest's `watch` entry."""
        return {"pid": self.pid, "named": self.named, "exe": self.exe, "name": self.name,
                "go_version": self.go_version or "", "build_settings": self.build_settings, "env": self.env,
                "cgroup": str(self.cgroup.path) if self.cgroup else "",
                "cgroup_version": self.cgroup.version if self.cgroup else None,
                "limits": self.limits, "cgroup_processes": self.cgroup_processes, "notes": self.notes}


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat, after the command name (which may hold spaces and parentheses)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat.rsplit(b")", 1)[1].split()[19])


def alive(target: Target) -> bool:
    """The same process still runs (its pid not reused) and is not a zombie; read from /proc only."""
    try:
        with open(f"/proc/{target.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == target.start_ticks


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value < UNLIMITED else None


def cgroup_limits(cgroup: MemoryCgroup) -> dict[str, int]:
    """The memory limits that apply to a cgroup: the smallest of its own and its ancestors' (as far as
    the mount shows them); v2's memory.high too, the point where the kernel starts reclaiming."""
    names = {"memory_max": "memory.limit_in_bytes" if cgroup.version == 1 else "memory.max"}
    if cgroup.version == 2:
        names["memory_high"] = "memory.high"
    out: dict[str, int] = {}
    path = cgroup.path
    while (path / cgroup.stat_file.name).exists():
        for key, file in names.items():
            value = _read_limit(path / file)
            if value is not None:
                out[key] = min(out.get(key, value), value)
        if path.parent == path:
            break
        path = path.parent
    return out


def inspect(pid: int, named: str) -> Target:
    """Read what process `pid` is; AttachError (one line) when it does not exist or may not be read."""
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        raise AttachError(f"{named}: no such process (nothing at /proc/{pid})")
    try:
        start = _start_ticks(pid)
        environ = (proc / "environ").read_bytes()
        # smaps_rollup needs the same access as ptrace's read mode: what the slow tier reads.
        (proc / "smaps_rollup").read_bytes()
    except PermissionError as e:
        raise AttachError(f"{named}: cannot read {e.filename or proc}: permission denied; watch reads "
                          f"/proc/{pid} (run it as the process's user or as root)") from None
    except (FileNotFoundError, ProcessLookupError):
        if proc.is_dir():
            raise AttachError(f"{named}: has no memory of its own to sample (a kernel thread)") from None
        raise AttachError(f"{named}: the process exited before it could be read") from None
    try:
        exe = os.readlink(proc / "exe")
    except PermissionError:
        raise AttachError(f"{named}: cannot read /proc/{pid}/exe: permission denied; watch reads /proc/{pid} "
                          "(run it as the process's user or as root)") from None
    except OSError:
        raise AttachError(f"{named}: has no executable (a kernel thread, or it exited)") from None
    env = {}
    for entry in environ.split(b"\0"):
        key, _, value = entry.decode(errors="replace").partition("=")
        if key in RUNTIME_ENV:
            env[key] = value
    target = Target(pid=pid, named=named, exe=exe, start_ticks=start, env=env)
    try:
        target.go_version, target.build_settings = go_build_info(proc / "exe")
    except (OSError, ValueError, ProgramBuildError) as e:
        target.notes.append(f"no Go build information read from /proc/{pid}/exe: {e}")
    try:
        target.cgroup = memory_cgroup_of(pid)
        target.limits = cgroup_limits(target.cgroup)
        target.cgroup_processes = len((target.cgroup.path / "cgroup.procs").read_text().split())
    except (CgroupError, OSError) as e:
        target.notes.append(f"no memory cgroup found: {e}")
    return target


def _largest(pids: list[int]) -> int:
    def rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return -1
    return max(pids, key=rss)


def _in_cgroup(path: Path) -> tuple[int, str]:
    if not path.is_dir():
        raise AttachError(f"{path}: no such cgroup directory")
    if not ((path / "memory.current").exists() or (path / "memory.usage_in_bytes").exists()):
        raise AttachError(f"{path}: not a memory cgroup (no memory.current or memory.usage_in_bytes in it)")
    try:
        pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError as e:
        raise AttachError(f"{path / 'cgroup.procs'}: cannot read it: {e.strerror}") from None
    if not pids:
        raise AttachError(f"cgroup {path}: has no process to watch")
    return _largest(pids), f"cgroup {path}"


def _in_container(name: str) -> tuple[int, str]:
    from harness.build.docker_client import docker_client

    try:
        import docker.errors

        container = docker_client(timeout_s=10).containers.get(name)
    except ImportError:
        raise AttachError(f"{name}: not a pid or a cgroup path, and the docker SDK is not installed") from None
    except docker.errors.NotFound:
        raise AttachError(f"{name}: no such container (and not a pid or a cgroup path); `docker ps` lists the "
                          "running ones") from None
    except docker.errors.DockerException as e:
        raise AttachError(f"{name}: not a pid or a cgroup path, and Docker cannot be reached to find a container "
                          f"of that name: {str(e).splitlines()[0]}") from None
    state = container.attrs.get("State", {})
    if not state.get("Running") or not state.get("Pid"):
        raise AttachError(f"container {name} is not running (status {state.get('Status', '?')})")
    return int(state["Pid"]), f"container {container.name} ({container.short_id})"


def resolve(spec: str) -> Target:
    """PID, CONTAINER (a Docker name or id) or CGROUP_PATH (an absolute path) → the Target to watch."""
    spec = spec.strip()
    if spec.isdigit():
        pid, named = int(spec), f"pid {spec}"
    elif spec.startswith("/"):
        pid, named = _in_cgroup(Path(spec))
    elif spec:
        pid, named = _in_container(spec)
    else:
        raise AttachError("watch: name a process: a PID, a Docker container's name or id, or a cgroup path")
    return inspect(pid, named)


def watch_cell(target: Target, metrics_url: str = "", fast_hz: float = 100.0, slow_hz: float = 2.0) -> Cell:
    """The one cell of a watch: the process as a program, with the runtime settings it runs with."""
    program = Program(kind="binary", name=target.name, binary=target.exe, metrics_url=metrics_url)
    gomemlimit = target.env.get("GOMEMLIMIT", "")
    try:
        gomemlimit_bytes = parse_size(gomemlimit) if gomemlimit and gomemlimit != "off" else None
    except UnitError:
        gomemlimit_bytes = None
    columns = (("gogc", target.env.get("GOGC") or None), ("gomemlimit", gomemlimit or None),
               ("gomemlimit_bytes", gomemlimit_bytes))
    limits = (("memory", target.limits["memory_max"]),) if "memory_max" in target.limits else ()
    return Cell(cell_id=f"{target.name}[pid={target.pid}]", scenario="watch", workload=target.name, args=(),
                go_version=target.go_version or "", backend="watch", program=program, fast_hz=fast_hz,
                slow_hz=slow_hz, env=pairs({k: v for k, v in target.env.items() if v}), limits=limits,
                columns=tuple((k, v) for k, v in columns if v is not None))


def watch(target: Target, cell: Cell, duration_s: float | None, log: Callable[[str], None] = print,
          stop: threading.Event | None = None) -> RunResult:
    """Sample the process with the two-tier sampler until `duration_s` has passed (None: until Ctrl-C, or
    `stop` is set) or it exits; a `watched` RunResult with what was seen. Ctrl-C ends the watch, not the
    process."""
    stop = stop or threading.Event()
    obs = Observation(cell)
    obs.keeps_output = False   # its output is not ours to read
    obs.mark_start()
    obs.start_sampling(target.pid, target.cgroup)
    started = time.monotonic()
    reason = ""
    try:
        while True:
            if not alive(target):
                reason = f"the process exited during the watch, after {time.monotonic() - started:.1f}s: " \
                         "what was seen until then is kept"
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                reason = f"watched for {duration_s:g}s"
                break
            if stop.wait(ALIVE_CHECK_S):
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        reason = f"stopped by Ctrl-C after {time.monotonic() - started:.1f}s (the process goes on)"
    finally:
        obs.end_ns = time.monotonic_ns()
        obs.stop()
    log(reason)
    result = obs.result(status="watched", reason=reason, exit_code=None, oom_killed=False,
                        notes={"watched": target.named, **({"notes": "; ".join(target.notes)} if target.notes else {})})
    result.placement = placement("")
    return result
