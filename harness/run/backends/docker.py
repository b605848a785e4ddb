"""The workload in a locked-down container (image FROM scratch), sampled from the host.

The container shares the host's PID view and monotonic clock, so its process is read through
/proc/<pid> on the host exactly like a child process, and its telemetry lines up with samples.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from harness.build.docker_client import docker_client
from harness.define.build import Build
from harness.define.cell import Cell
from harness.define.workloads import workload
from harness.run.backends.base import Status
from harness.run.backends.loop import Launcher, LaunchingBackend, Signal
from harness.run.env import child_env
from harness.run.leftovers import labelled_containers, owner_labels, remove_container
from harness.run.observation import Observation
from harness.run.observe.cgroupfs import MemoryCgroup
from harness.run.observe.docker_stats import DockerStats
from harness.run.ports import fixed_port, with_port
from harness.run.scratch import SCRATCH_IN_CONTAINER, remove_leftover_scratch

LABEL = "goreclaim"
RUN_LABEL = "goreclaim.run"
CELL_LABEL = "goreclaim.cell"
# Go starts a handful of threads per P; this only stops a runaway, never a workload.
PIDS_LIMIT = 512
SIGNALS = {"terminate": "SIGTERM", "kill": "SIGKILL"}


# Every call to the daemon but the attach stream (silent between lines: a client of its own without a
# timeout) and wait() (given its own) returns within this, or fails: a daemon that stops answering (seen
# once in a TCG guest) must not hold a cell forever. Ample under TCG, where a start takes seconds.
CONTROL_TIMEOUT_S = 120.0


def _client():
    return docker_client(timeout_s=CONTROL_TIMEOUT_S)


class DockerBackend(LaunchingBackend):
    name = "docker"
    limits = frozenset({"memory", "cpus"})

    def __init__(self, run_label: str = ""):
        self.run_label = run_label  # the run id, labelled on every container for cleanup
        self._docker = None

    def available(self) -> str | None:
        from harness.build.image import docker_unavailable

        return docker_unavailable()

    @property
    def docker(self):
        if self._docker is None:
            self._docker = _client()
        return self._docker

    def cleanup(self, run_id: str) -> list[str]:
        return remove_leftover_containers(run_id) + remove_leftover_scratch()

    def unfit(self, cell: Cell, build: Build) -> tuple[Status, str] | None:
        not_elf = _not_elf(build)
        return ("failed", not_elf) if not_elf else None

    def launcher(self, cell: Cell, build: Build, scratch: Path, port: int | None) -> Launcher:
        options = container_options(cell, build, scratch, port, self.run_label)
        return ContainerLauncher(self.docker, build, options)


def container_options(cell: Cell, build: Build, scratch: Path, port: int | None, run_label: str) -> dict[str, Any]:
    """What the cell's container is created with (but its image): confined, and limited as the cell asks."""
    # The root filesystem stays read-only; the one writable place is the cell's scratch
    # directory on the host's filesystem (so its page cache is charged to the container).
    volumes = {str(scratch): {"bind": SCRATCH_IN_CONTAINER, "mode": "rw"}}
    if build.workdir:  # a test binary's package directory, for its testdata
        volumes[build.workdir] = {"bind": build.workdir, "mode": "ro"}
    for mount in cell.program.mounts if cell.program else ():
        volumes[mount.source] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
    entrypoint = str(build.executable) if build.executable is not None else f"/bin/{workload(cell.workload).binary}"
    options: dict[str, Any] = dict(
        entrypoint=[entrypoint],
        command=with_port(cell.args, port),
        environment=child_env(cell, tmpdir=SCRATCH_IN_CONTAINER),
        volumes=volumes,
        working_dir=build.workdir or SCRATCH_IN_CONTAINER,
        network_disabled=True,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=PIDS_LIMIT,
        labels={LABEL: "1", RUN_LABEL: run_label, CELL_LABEL: cell.cell_id, **owner_labels()},
        detach=True,
    )
    limit = cell.memory_limit_bytes
    if limit is not None:
        # memswap equal to mem: the container may not swap at all.
        options.update(mem_limit=limit, memswap_limit=limit)
    if cell.cpus:
        options["nano_cpus"] = int(cell.cpus * 1e9)
    if cell.cpuset:  # a cell sharing its host has CPUs of its own
        options["cpuset_cpus"] = cell.cpuset
    published = [p for p in (port, fixed_port(cell)) if p is not None]
    if published:
        # A server's port, published on the host's loopback only (never other interfaces),
        # at the same number it listens on inside.
        options.update(network_disabled=False, ports={f"{p}/tcp": ("127.0.0.1", p) for p in published})
    return options


class ContainerLauncher:
    """The cell's workload in its container; its cgroup followed while it exists (runc deletes it at
    the container's exit) for the peak usage and the kernel's OOM kills."""

    def __init__(self, docker: Any, build: Build, options: dict[str, Any]):
        self.docker, self.build, self.options = docker, build, options
        self.image = ""
        self.container: Any = None  # docker.models.containers.Container, once created
        self.stream: Any = None     # its attached output: demultiplexed (stdout, stderr) frames
        self.cgroup: MemoryCgroup | None = None
        self.follower: CgroupFollower | None = None
        self._exit_code: int | None = None
        self._oom_flag = False
        self._killed = False                       # the harness sent SIGKILL (a timeout, a stop)
        self.subtree: MemoryCgroup | None = None   # v2: the cgroup holding the container's (docker/, system.slice/)
        self._subtree_kills: tuple[int, int] | None = None  # its oom_kill count at the start and at the end

    def start(self, obs: Observation) -> tuple[int | None, MemoryCgroup | None]:
        from harness.build.image import ensure_image
        from harness.run.observe.cgroupfs import memory_cgroup_of

        self.image = ensure_image(self.build)
        container = self.container = self.docker.containers.create(image=self.image, **self.options)
        # Attached before start, so not one line of output can be missed.
        stream = self.stream = docker_client(timeout_s=None).api.attach(container.id, stdout=True, stderr=True,
                                                                        stream=True, logs=True, demux=True)
        obs.read_demuxed(stream)
        obs.mark_start()
        container.start()
        # What `docker stats` shows, from the daemon's own stream (on a client of its own) until the container goes.
        DockerStats(docker_client(timeout_s=None).api, container.id, obs.add_samples,
                    lambda e: obs.sampler_stats.setdefault("docker_stats", e)).start()
        container.reload()
        pid = container.attrs["State"]["Pid"]
        if pid:
            try:
                self.cgroup = memory_cgroup_of(pid)
            except (OSError, RuntimeError):
                self.cgroup = None  # exited already; nothing left to sample
            if self.cgroup is not None:
                self.follower = CgroupFollower(self.cgroup)
                self.subtree = subtree_of(self.cgroup)
                before = _oom_kills(self.subtree)
                self._subtree_kills = (before, before) if before is not None else None
        return pid or None, self.cgroup

    def wait(self, seconds: float) -> bool:
        if self.container is None:
            return True
        try:
            self._exit_code = self.container.wait(timeout=seconds)["StatusCode"]
            return True
        except Exception as e:  # requests' ReadTimeout/ConnectionError, depending on version
            if not _is_timeout(e):
                raise
            return False

    def signal(self, which: Signal) -> None:
        if self.container is not None:
            self._killed = self._killed or which == "kill"
            _signal(self.container, SIGNALS[which])

    def remove(self) -> dict[str, str]:
        if self.follower is not None:
            self.follower.stop.set()
        not_removed = ""
        try:
            if self.container is not None and self._exit_code is not None:
                # For an OOM kill the follower did not see before runc removed the cgroup: the count of the
                # cgroup above it (v2), else Docker's flag (v1).
                after = _oom_kills(self.subtree) if self._subtree_kills is not None else None
                if self._subtree_kills is not None and after is not None:
                    self._subtree_kills = (self._subtree_kills[0], after)
                self.container.reload()
                self._oom_flag = bool(self.container.attrs["State"].get("OOMKilled"))
        finally:
            if self.container is not None:
                not_removed = _remove(self.container)
            if self.stream is not None:
                self.stream.close()
            if self.follower is not None:
                self.follower.thread.join(2)
        return {"image": self.image, "container_id": self.container.id if self.container is not None else "",
                **({"cgroup": str(self.cgroup.path)} if self.cgroup is not None else {}),
                **({"oom_kill_counted_by": self._oom_counter()} if self.oom_killed() else {}),
                **({"container_not_removed": not_removed} if not_removed else {})}

    def _oom_counter(self) -> str:
        """Which count said the container was OOM-killed (oom_verdict's order)."""
        if self.follower is not None and self.follower.oom_kills > 0:
            return "its cgroup's oom_kill count"
        if self._subtree_kills is not None and self.subtree is not None:
            return f"the oom_kill count of {self.subtree.path}, above its cgroup"
        return "Docker's OOMKilled flag (cgroup v1)"

    def exit_code(self) -> int | None:
        return self._exit_code

    def oom_killed(self) -> bool:
        grew = None if self._subtree_kills is None else self._subtree_kills[1] > self._subtree_kills[0]
        return oom_verdict(self.follower.oom_kills if self.follower is not None else 0, self._exit_code,
                           self._killed, grew, self._oom_flag)

    def peak(self) -> int | None:
        return self.follower.peak if self.follower is not None else None


class CgroupFollower:
    """A container's peak usage and OOM kills, read every `period_s` while its cgroup exists."""

    def __init__(self, cgroup: MemoryCgroup, period_s: float = 0.02):
        self.cgroup, self.period_s = cgroup, period_s
        self.peak: int | None = None
        self.oom_kills = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.stop.is_set():
            try:
                value = self.cgroup.peak()
                if value is not None:
                    self.peak = value if self.peak is None else max(self.peak, value)
                self.oom_kills = max(self.oom_kills, self.cgroup.oom_kills())
            except OSError:
                return
            self.stop.wait(self.period_s)


def oom_verdict(own_kills: int, exit_code: int | None, killed_by_harness: bool, subtree_kills_grew: bool | None,
                docker_flag: bool) -> bool:
    """Whether the kernel's OOM killer ended the container, from the kernel's own counts.

    First the container's cgroup's oom_kill count, followed while the cgroup exists. runc removes that
    cgroup as soon as the container exits, so the kill that ended it can fall between the follower's last
    read and the removal. Then only an exit by SIGKILL (137) the harness did not send is an OOM kill, and
    only where the kernel counted one: on cgroup v2 in the memory.events of the cgroup holding the
    container's (docker/ with the cgroupfs driver, system.slice/ with systemd's), whose counts include
    its subtree's (Documentation/admin-guide/cgroup-v2.rst, memory.events; mm/memcontrol.c
    memcg_memory_event walks up unless cgroup2 is mounted with memory_localevents), given as
    `subtree_kills_grew`; on v1, where no cgroup counts its children's kills, Docker's `OOMKilled` flag
    stands in. Docker's flag is never the verdict on v2: Docker 20.10 there can say false after an OOM
    kill (hashicorp/nomad#13119)."""
    if own_kills > 0:
        return True
    if exit_code != 137 or killed_by_harness:
        return False
    if subtree_kills_grew is not None:
        return subtree_kills_grew
    return docker_flag


def subtree_of(cgroup: MemoryCgroup) -> MemoryCgroup | None:
    """On v2, the cgroup above the container's whose memory.events counts the kills in it; None on v1
    and where that is the root (which has no memory.events)."""
    if cgroup.version != 2:
        return None
    parent = MemoryCgroup(cgroup.path.parent, 2)
    return parent if parent.events_file.is_file() else None


def _oom_kills(cgroup: MemoryCgroup | None) -> int | None:
    if cgroup is None:
        return None
    try:
        return cgroup.oom_kills()
    except OSError:
        return None


def _not_elf(build: Build) -> str:
    """Why a program's image could not run it: a script's interpreter is not in its ELF closure."""
    if build.executable is None:
        return ""
    with open(build.executable, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return ""
    return (f"{build.executable} is not an ELF executable (a script?): its image would lack the interpreter; "
            "give the interpreter as --program and the script as its argument, or use --backend cgroup")


def _signal(container, sig: str) -> None:
    import docker

    try:
        container.kill(signal=sig)
    except docker.errors.APIError:
        pass  # it has ended meanwhile


def _remove(container, attempts: int = 4) -> str:
    """Force-remove the cell's container; "" once it is gone, else the last error. A daemon busy with a
    frozen process can time out a removal, so it is tried again; what still stays is the run's to remove
    at its end (RunSession.close → remove_leftover_containers)."""
    import docker

    error = ""
    for attempt in range(attempts):
        try:
            container.remove(force=True)
            return ""
        except docker.errors.NotFound:
            return ""
        except Exception as e:  # noqa: BLE001 - an API error or a timeout: try again
            error = f"{type(e).__name__}: {e}"
            time.sleep(0.5 * 2 ** attempt)
    return error


def _is_timeout(err: Exception) -> bool:
    import requests

    return isinstance(err, (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError))


def remove_leftover_containers(run_label: str | None = None) -> list[str]:
    """Force-remove containers labelled goreclaim (only this run's when run_label is given)."""
    filters = {"label": [f"{LABEL}=1"] + ([f"{RUN_LABEL}={run_label}"] if run_label else [])}
    client = _client()
    listed = labelled_containers(client, filters["label"])
    for c in listed:
        remove_container(client, c.id)
    return [c.id for c in listed]
