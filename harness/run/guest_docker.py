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
from pathlib import Path

DOCKERD = "dockerd"
SOCKET = "/run/goreclaim-docker.sock"
DOCKER_HOST = f"unix://{SOCKET}"
EXEC_ROOT = "/run/goreclaim-docker"
PID_FILE = "/run/goreclaim-docker.pid"
# Under software emulation dockerd answers 10-30 s after its start; this bounds a hang only.
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
# The programs the engine runs besides dockerd (Debian's docker.io, containerd and runc packages).
HELPERS = ("containerd", "containerd-shim-runc-v2", "runc")


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


def dockerd_command(data_root: Path) -> list[str]:
    return [DOCKERD, "--host", DOCKER_HOST, "--data-root", str(data_root / "docker"), "--exec-root", EXEC_ROOT,
            "--pidfile", PID_FILE, "--config-file", str(data_root / "daemon.json"),
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false",
            "--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "warn"]


class GuestEngine:
    """dockerd in this guest: `start()` waits until it answers, `stop()` ends it and removes its data."""

    def __init__(self, scratch: Path):
        self.data_root = scratch / "goreclaim-docker"
        self.log_path = scratch / "goreclaim-dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_s = float("nan")

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Start dockerd and wait until it answers; the seconds that took. EngineError saying why not."""
        from harness.build.docker_client import docker_client

        self.data_root.mkdir(parents=True, exist_ok=True)
        config = {"deprecated-key-path": str(self.data_root / "key.json")}
        (self.data_root / "daemon.json").write_text(json.dumps(config))
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            # A session of its own: a signal to the cell worker does not reach it; stop() ends it in order.
            self.process = subprocess.Popen(dockerd_command(self.data_root), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        os.environ["DOCKER_HOST"] = DOCKER_HOST  # every client in this process (harness.build.docker_client)
        while True:
            if self.process.poll() is not None:
                raise EngineError(f"dockerd exited with status {self.process.returncode}: {self._last_log_line()}")
            if Path(SOCKET).exists():
                try:
                    docker_client(timeout_s=5).ping()
                    self.start_s = time.monotonic() - started
                    return self.start_s
                except Exception:  # noqa: BLE001 - the SDK raises several types while the engine starts
                    pass
            if time.monotonic() - started > timeout_s:
                raise EngineError(f"dockerd did not answer within {timeout_s:.0f} s: {self._last_log_line()}")
            time.sleep(0.5)

    def stop(self) -> None:
        """End dockerd (its containerd and shims with it), then remove its data root."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.data_root, ignore_errors=True)

    def _last_log_line(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log"
        return lines[-1][:300] if lines else "no log"
