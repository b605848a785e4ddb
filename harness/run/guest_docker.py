"""A Docker engine inside a guest (harness.run.guest): started once for a group of cells, stopped with it.

Runs in the guest, from harness.drive.guest_worker. The guest sees the host's root read-only, so the
engine is the host's own Debian `docker.io` (dockerd, containerd, runc), with everything it writes on
the guest's own storage: its data root on the scratch disk (GUEST_TMP, ext4, gone with the guest),
its exec root, socket and pid file under /run (a tmpfs of the guest's). What it is started without,
and why:

- no bridge, no iptables, no userland proxy (`--bridge=none --iptables=false`): the guest loads only
  the modules its initramfs holds (no bridge, no netfilter), and cells run with `--network none`; a
  cell that needs a published port is refused before the guest boots (harness.drive.guest_cells);
- the `vfs` storage driver: overlay2 needs the `overlay` module; a cell's image is FROM scratch and a
  few MiB, so a full copy per container costs little;
- containerd started by us, not by dockerd: dockerd 20.10 gives the containerd it starts itself 15 s
  to answer (moby libcontainerd/supervisor/remote_daemon.go, startupTimeout), which a loaded machine
  under software emulation exceeds;
  ours is waited for without that bound, with a configuration of its own (no CRI plugin);
- the cgroupfs cgroup driver, named: dockerd 20.10 picks systemd on cgroup v2 where systemd is init,
  which a guest's busybox init is not. A container's cgroup is then /sys/fs/cgroup/docker/<id>/
  (with systemd as init it would be /sys/fs/cgroup/system.slice/docker-<id>.scope/; the backend
  finds either through /proc/<pid>/cgroup);
- a configuration file of its own on the scratch disk (`--config-file`), not /etc/docker/daemon.json,
  naming a trust key there too (`deprecated-key-path`, a key of the file, not a flag): dockerd 20.10
  creates /etc/docker/key.json where it is missing, and /etc is read-only here.

The guest is booted with `apparmor=0` for it (harness.run.guest.BASE_CMDLINE): Debian's kernel
enables AppArmor, the guest has no `apparmor_parser` to load docker's profile, and `docker run`
then fails to apply `docker-default`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

DOCKERD = "dockerd"
CONTAINERD = "containerd"
SOCKET = "/run/goreclaim-docker.sock"
CONTAINERD_STATE = "/run/goreclaim-containerd"
CONTAINERD_SOCKET = f"{CONTAINERD_STATE}/containerd.sock"
# Kubernetes' plugin, which Debian's containerd loads by default, is of no use to dockerd.
CONTAINERD_CONFIG = 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
DOCKER_HOST = f"unix://{SOCKET}"
EXEC_ROOT = "/run/goreclaim-docker"
PID_FILE = "/run/goreclaim-docker.pid"
# Under software emulation dockerd answers 10-30 s after its start; this bounds a hang only.
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
# The programs the engine runs besides dockerd (Debian's docker.io, containerd and runc packages).
HELPERS = (CONTAINERD, "containerd-shim-runc-v2", "runc")


class EngineError(RuntimeError):
    """The engine did not start; the message says why in one line (its log's last line)."""


def engine_missing() -> str | None:
    """None when this machine's files hold a Docker engine a guest can start, else why not."""
    for program in (DOCKERD, *HELPERS):
        if shutil.which(program, path=os.pathsep.join(("/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                                       "/usr/bin", "/sbin", "/bin"))) is None:
            return f"{program} is not installed (Debian's docker.io), so no Docker engine can start in a guest"
    try:
        import docker  # noqa: F401 - the cells talk to the engine through it
    except ImportError:
        return "the docker Python package is not installed: pip install docker"
    return None


def containerd_command(data_root: Path) -> list[str]:
    return [CONTAINERD, "--config", str(data_root / "containerd.toml"), "--root", str(data_root / "containerd"),
            "--state", CONTAINERD_STATE, "--address", CONTAINERD_SOCKET, "--log-level", "warn"]


def dockerd_command(data_root: Path) -> list[str]:
    return [DOCKERD, "--host", DOCKER_HOST, "--containerd", CONTAINERD_SOCKET, "--data-root", str(data_root / "docker"),
            "--exec-root", EXEC_ROOT, "--pidfile", PID_FILE, "--config-file", str(data_root / "daemon.json"),
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false",
            "--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "warn"]


class GuestEngine:
    """containerd and dockerd in this guest: `start()` waits until dockerd answers, `stop()` ends both and
    removes their data."""

    def __init__(self, scratch: Path):
        self.data_root = scratch / "goreclaim-docker"
        self.logs = scratch / "goreclaim-docker-logs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.start_s = float("nan")

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Start containerd, then dockerd, and wait until dockerd answers; the seconds from the start. EngineError
        saying why not."""
        from harness.build.docker_client import docker_client

        self.data_root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.data_root / "containerd.toml").write_text(CONTAINERD_CONFIG)
        daemon_config = {"deprecated-key-path": str(self.data_root / "key.json")}
        (self.data_root / "daemon.json").write_text(json.dumps(daemon_config))
        started = time.monotonic()
        deadline = started + timeout_s
        self._spawn(CONTAINERD, containerd_command(self.data_root))
        self._wait(CONTAINERD, lambda: Path(CONTAINERD_SOCKET).exists(), deadline)  # serves once its plugins loaded
        self._spawn(DOCKERD, dockerd_command(self.data_root))
        os.environ["DOCKER_HOST"] = DOCKER_HOST  # every client in this process (harness.build.docker_client)

        def answers() -> bool:
            try:
                return Path(SOCKET).exists() and bool(docker_client(timeout_s=5).ping())
            except Exception:  # noqa: BLE001 - the SDK raises several types while the engine starts
                return False

        self._wait(DOCKERD, answers, deadline)
        self.start_s = time.monotonic() - started
        return self.start_s

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            # A session of its own: a signal to the cell worker does not reach it; stop() ends it in order.
            self.processes[name] = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _wait(self, name: str, ready: Callable[[], bool], deadline: float) -> None:
        while not ready():
            code = self.processes[name].poll()
            if code is not None:
                raise EngineError(f"{name} exited with status {code}: {self._last_log_line(name)}")
            if time.monotonic() > deadline:
                raise EngineError(f"{name} did not answer within {READY_TIMEOUT_S:.0f} s: {self._last_log_line(name)}")
            time.sleep(0.5)

    def stop(self) -> None:
        """End dockerd, then containerd, then remove their data (the guest's shims die with the guest)."""
        for name in (DOCKERD, CONTAINERD):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.logs, ignore_errors=True)

    def _last_log_line(self, name: str) -> str:
        try:
            lines = [line for line in (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
                     if line.strip()]
        except OSError:
            return "no log"
        return lines[-1][:300] if lines else "no log"
