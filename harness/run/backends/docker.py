"""The workload in a locked-down container (image FROM scratch), sampled from the host.

The container shares the host's PID view and monotonic clock, so its process is read through
/proc/<pid> on the host exactly like a child process, and its telemetry lines up with samples.
"""

from __future__ import annotations

import threading
import time

from harness.run.backends.base import RunResult
from harness.run.backends.common import (SCRATCH_IN_CONTAINER, Observation, RunInterrupted, Supervised, classify,
                                         fixed_port, free_port, port_taken, remove_leftover_scratch, scratch_dir,
                                         supervise, with_port)
from harness.build.docker_client import docker_client
from harness.define.cell import Cell
from harness.define.workloads import workload
from harness.run.env import child_env
from harness.run.leftovers import owner_labels
from harness.build.toolchain import Build

LABEL = "goreclaim"
RUN_LABEL = "goreclaim.run"
CELL_LABEL = "goreclaim.cell"
# Go starts a handful of threads per P; this only stops a runaway, never a workload.
PIDS_LIMIT = 512


def _client():
    # No client-side timeout: the attach stream stays silent between lines and wait() is
    # given its own timeout.
    return docker_client(timeout_s=None)


class DockerBackend:
    name = "docker"

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

    def run(self, cell: Cell, build: Build) -> RunResult:
        taken = port_taken(cell) or _not_elf(build)
        if taken:
            return RunResult(cell=cell, status="failed", reason=taken)
        with scratch_dir(cell) as scratch:
            return self._run(cell, build, scratch)

    def _run(self, cell: Cell, build: Build, scratch) -> RunResult:
        from harness.build.image import ensure_image

        image = ensure_image(build)
        limit = cell.memory_limit_bytes
        # The root filesystem stays read-only; the one writable place is the cell's scratch
        # directory on the host's filesystem (so its page cache is charged to the container).
        volumes = {str(scratch): {"bind": SCRATCH_IN_CONTAINER, "mode": "rw"}}
        if build.workdir:  # a test binary's package directory, for its testdata
            volumes[build.workdir] = {"bind": build.workdir, "mode": "ro"}
        for mount in cell.program.mounts if cell.program else ():
            volumes[mount.source] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
        entrypoint = str(build.executable) if build.executable is not None else \
            f"/bin/{workload(cell.workload).binary}"
        port = free_port() if cell.program is not None and cell.program.uses_port else None
        create_kwargs = dict(
            image=image,
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
            labels={LABEL: "1", RUN_LABEL: self.run_label, CELL_LABEL: cell.cell_id, **owner_labels()},
            detach=True,
        )
        if limit is not None:
            # memswap equal to mem: the container may not swap at all.
            create_kwargs.update(mem_limit=limit, memswap_limit=limit)
        if cell.cpus:
            create_kwargs["nano_cpus"] = int(cell.cpus * 1e9)
        if cell.cpuset:  # a cell sharing its host has CPUs of its own
            create_kwargs["cpuset_cpus"] = cell.cpuset
        published = [p for p in (port, fixed_port(cell)) if p is not None]
        if published:
            # A server's port, published on the host's loopback only (never other interfaces),
            # at the same number it listens on inside.
            create_kwargs.update(network_disabled=False,
                                 ports={f"{p}/tcp": ("127.0.0.1", p) for p in published})

        obs = Observation(cell)
        container = None
        stream = None
        interrupted = False
        supervised = Supervised()
        exit_code = None
        oom = False
        cgroup = None
        peak_cgroup: list[int] = []
        stop_peak = threading.Event()
        peak_thread = None
        try:
            container = self.docker.containers.create(**create_kwargs)
            # Attached before start, so not one line of output can be missed.
            stream = self.docker.api.attach(container.id, stdout=True, stderr=True, stream=True, logs=True,
                                            demux=True)
            obs.read_demuxed(stream)
            obs.mark_start()
            container.start()
            container.reload()
            pid = container.attrs["State"]["Pid"]
            if pid:
                from harness.run.observe.cgroupfs import memory_cgroup_of

                try:
                    cgroup = memory_cgroup_of(pid)
                except (OSError, RuntimeError):
                    cgroup = None  # exited already; nothing left to sample
                obs.start_sampling(pid, cgroup, port, scratch=scratch)
                if cgroup is not None:
                    # runc deletes the container's cgroup as soon as it exits, so its
                    # max_usage has to be read while it is still there.
                    peak_thread = threading.Thread(
                        target=_follow_peak, args=(cgroup, peak_cgroup, stop_peak), daemon=True)
                    peak_thread.start()
            ended: list[int] = []

            def wait(seconds: float) -> bool:
                try:
                    ended.append(container.wait(timeout=seconds)["StatusCode"])
                    return True
                except Exception as e:  # requests' ReadTimeout/ConnectionError, depending on version
                    if not _is_timeout(e):
                        raise
                    return False

            supervised = supervise(cell, obs, wait, lambda: _signal(container, "SIGTERM"),
                                   lambda: _signal(container, "SIGKILL"), port)
            if supervised.timed_out:
                _signal(container, "SIGKILL")
                wait(30)
            exit_code = ended[-1] if ended else None
            obs.end_ns = time.monotonic_ns()
            container.reload()
            oom = bool(container.attrs["State"].get("OOMKilled"))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if not obs.end_ns:
                obs.end_ns = time.monotonic_ns()
            stop_peak.set()
            not_removed = _remove(container) if container is not None else ""
            if stream is not None:
                stream.close()
            if peak_thread is not None:
                peak_thread.join(2)
            obs.stop()

        status, reason = classify(
            exit_code=exit_code, oom_killed=oom, timed_out=supervised.timed_out, interrupted=interrupted,
            stderr_tail=obs.stderr_tail(), timeout_s=cell.timeout_s, program=cell.program is not None,
            stopped=supervised.stopped, failed_step=(supervised.status, supervised.reason),
            stuck=supervised.stuck,
        )
        result = obs.result(
            status=status, reason=reason, exit_code=exit_code, oom_killed=oom,
            peak_cgroup_bytes=max(peak_cgroup) if peak_cgroup else None,
            notes={"image": image, "container_id": container.id if container is not None else "",
                   **({"container_not_removed": not_removed} if not_removed else {})},
        )
        if interrupted:
            raise RunInterrupted(result)
        return result


def _follow_peak(cgroup, out: list[int], stop: threading.Event, period_s: float = 0.02) -> None:
    while not stop.is_set():
        try:
            value = cgroup.peak()
        except OSError:
            return
        if value is not None:
            if out:
                out[0] = max(out[0], value)
            else:
                out.append(value)
        stop.wait(period_s)


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
    removed = []
    client = _client()
    for c in client.containers.list(all=True, filters=filters):
        c.remove(force=True)
        removed.append(c.id)
    return removed
