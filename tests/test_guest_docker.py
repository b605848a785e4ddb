"""Docker inside a guest kernel on cgroup v2 (harness.run.guest_docker, harness.drive.guest_cells), for real.

One guest is booted for the batch by one `goreclaim run` (a cell that completes, one the kernel's OOM
killer ends); the Ctrl-C test boots its own, since it ends it. The layouts of a container's cgroup that
this guest cannot show (systemd's driver needs systemd as init) are checked on laid-out trees. The
real tests skip, saying why, only where qemu, the kernel or Debian's docker.io cannot be had.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.define.axes import contributions
from harness.define.cell import Cell
from harness.define.workloads import Program
from harness.drive.guest_cells import _refusal, publishes_port, wants_engine
from harness.run import guest as guest_module
from harness.run.backends.docker import oom_verdict, subtree_of
from harness.run.guest import GuestSettings
from harness.run.guest_docker import containerd_command, dockerd_command, engine_missing
from harness.run.observe.cgroupfs import MemoryCgroup, memory_cgroup_of
from harness.run.placement import cgroup_version
from tests.guests import gone, qemus_of, require_guest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CONTAINER_ID = "4f1e" * 16


def _cell(backend: str = "docker", program: Program | None = None, **axes: str) -> Cell:
    return Cell(cell_id=f"alloc_release[{','.join(f'{k}={v}' for k, v in axes.items())}]", scenario="alloc_release",
                workload="alloc-release", args=("--size=16MiB",), backend=backend, axes=tuple(axes.items()),
                program=program, **contributions(axes))


# ---------------------------------------------------------------------------------- a container's cgroup on v2


def _lay_out(tmp_path: Path, proc_cgroup: str, container_dir: str) -> tuple[Path, Path]:
    """A v2 hierarchy under tmp_path/cgroup with the container's cgroup and the one above it, and a /proc
    whose pid 4242 lists `proc_cgroup`; (proc root, mountinfo)."""
    root = tmp_path / "cgroup"
    (root / container_dir).mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / container_dir / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (root / container_dir).parent.joinpath("memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cgroup").write_text(proc_cgroup)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"30 24 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
                         "rw,nsdelegate\n")
    return proc, mountinfo


@pytest.mark.parametrize("driver, path", [
    ("cgroupfs", f"docker/{CONTAINER_ID}"),                       # what the guest's engine makes (run below)
    ("systemd", f"system.slice/docker-{CONTAINER_ID}.scope"),    # dockerd's default where systemd is init
])
def test_a_containers_v2_cgroup_and_the_one_counting_its_kills_are_found_with_either_driver(tmp_path, driver, path):
    # Read from the host's (or guest's) root cgroup namespace, /proc/<pid>/cgroup gives the container's
    # whole path even under Docker's private cgroup namespace, the v2 default, where the container itself
    # sees "0::/".
    proc, mountinfo = _lay_out(tmp_path, f"0::/{path}\n", path)
    found = memory_cgroup_of(4242, proc_root=str(proc), mountinfo=mountinfo)
    assert found == MemoryCgroup(tmp_path / "cgroup" / path, 2)
    assert found.oom_kills() == 1
    above = subtree_of(found)
    assert above is not None and above.path == (tmp_path / "cgroup" / path).parent
    assert above.oom_kills() == 2


def test_the_root_and_v1_have_no_cgroup_counting_a_containers_kills(tmp_path):
    proc, mountinfo = _lay_out(tmp_path, "0::/alone\n", "alone")
    (tmp_path / "cgroup" / "memory.events").unlink()  # the root cgroup has no memory.events
    assert subtree_of(memory_cgroup_of(4242, proc_root=str(proc), mountinfo=mountinfo)) is None
    assert subtree_of(MemoryCgroup(tmp_path / "cgroup" / "alone", 1)) is None


@pytest.mark.parametrize("own, exit_code, killed_by_harness, subtree_grew, flag, expected", [
    (1, 137, False, None, False, True),     # the container's own count, followed while its cgroup existed
    (1, 0, False, False, False, True),      # counted, whatever the exit says
    (0, 137, False, True, False, True),     # v2: its cgroup went before the last read; the one above counted it
    (0, 137, False, False, True, False),    # v2: Docker's flag alone is never the verdict
    (0, 137, False, None, True, True),      # v1: no cgroup counts a child's kills; Docker's flag on exit 137
    (0, 137, False, None, False, False),    # a SIGKILL from elsewhere
    (0, 137, True, True, True, False),      # the harness's own SIGKILL (a timeout, a stop)
    (0, 1, False, True, True, False),       # not killed by a signal
    (0, None, False, True, True, False),
])
def test_an_oom_kill_is_the_kernels_count(own, exit_code, killed_by_harness, subtree_grew, flag, expected):
    assert oom_verdict(own, exit_code, killed_by_harness, subtree_grew, flag) is expected


# ---------------------------------------------------------------------------------- which cells, which engine


def test_the_engine_is_started_only_for_cells_that_may_use_it(monkeypatch):
    from harness.drive import guest_cells

    monkeypatch.setattr(guest_cells, "engine_missing", lambda: None)
    assert wants_engine([_cell("cgroup"), _cell("docker")])
    assert wants_engine([_cell("auto")])
    assert not wants_engine([_cell("cgroup"), _cell("process")])
    monkeypatch.setattr(guest_cells, "engine_missing", lambda: "dockerd is not installed")
    assert not wants_engine([_cell("auto")])  # auto then picks the cgroup backend in the guest
    refused = _refusal(_cell("docker"), GuestSettings("6.1", "v2"))
    assert refused is not None and "dockerd is not installed" in refused and "--backend cgroup" in refused


def test_a_server_publishing_a_port_is_refused_docker_in_a_guest(monkeypatch):
    from harness.drive import guest_cells

    monkeypatch.setattr(guest_cells, "engine_missing", lambda: None)
    server = Program(kind="binary", name="srv", binary="/bin/true", ready="tcp:{port}", load=("hey", "x"))
    fixed = Program(kind="binary", name="srv", binary="/bin/true", ready="tcp:8080")
    batch = Program(kind="binary", name="true", binary="/bin/true")
    assert publishes_port(_cell(program=server)) and publishes_port(_cell(program=fixed))
    assert not publishes_port(_cell(program=batch)) and not publishes_port(_cell())
    refused = _refusal(_cell(program=server), GuestSettings("6.1", "v2"))
    assert refused is not None and "has no network" in refused and "--backend cgroup" in refused
    assert _refusal(_cell(program=batch), GuestSettings("6.1", "v2")) is None
    assert _refusal(_cell("cgroup", program=server), GuestSettings("6.1", "v2")) is None


def test_the_guests_engine_writes_only_where_the_guest_can():
    command = dockerd_command(Path(guest_module.GUEST_TMP) / "goreclaim-docker")
    options = {name: command[command.index(name) + 1] for name in ("--data-root", "--exec-root", "--pidfile",
                                                                   "--config-file")}
    assert options["--data-root"].startswith(guest_module.GUEST_TMP + "/")
    assert options["--exec-root"].startswith("/run/") and options["--pidfile"].startswith("/run/")
    assert options["--config-file"].startswith(guest_module.GUEST_TMP + "/")  # not /etc/docker/daemon.json
    assert "--bridge=none" in command and "--iptables=false" in command
    containerd = containerd_command(Path(guest_module.GUEST_TMP) / "goreclaim-docker")
    assert containerd[containerd.index("--root") + 1].startswith(guest_module.GUEST_TMP + "/")
    assert containerd[containerd.index("--address") + 1] == command[command.index("--containerd") + 1]
    assert "apparmor=0" in guest_module.BASE_CMDLINE


def test_the_cells_directory_of_a_killed_harness_is_swept(tmp_path, monkeypatch):
    from harness.drive import guest_cells

    monkeypatch.setattr(guest_cells, "guests_dir", lambda: tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"cells-{dead.pid}-abc").mkdir()
    (tmp_path / f"cells-{dead.pid}-abc" / "0000").mkdir()
    (tmp_path / f"cells-{os.getpid()}-def").mkdir()  # a running harness's
    assert guest_cells.sweep_cell_dirs() == [tmp_path / f"cells-{dead.pid}-abc"]
    assert [p.name for p in tmp_path.iterdir()] == [f"cells-{os.getpid()}-def"]


# ---------------------------------------------------------------------------------- for real




@pytest.fixture(scope="module")
def available():
    require_guest("guest Docker tests", also=engine_missing())


def _v2_elsewhere():
    if cgroup_version() == "v2":
        pytest.skip("this machine is cgroup v2: a v2 cell runs here, not in a guest")


def _cells_csv(run_dir: Path) -> dict[str, dict[str, str]]:
    with open(run_dir / "cells.csv", newline="") as f:
        return {row["cell_id"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def docker_run(available, tmp_path_factory):
    """One guest for the batch: a 64 MiB container that touches 16 MiB (ends well) and one that touches 128 MiB."""
    _v2_elsewhere()
    results = tmp_path_factory.mktemp("guest-docker")
    out = subprocess.run([PYTHON, "-m", "harness", "run", "alloc_release", "--quick",
                          "--matrix", "go=default", "--backend", "docker",
                          "--matrix", "cgroup=v2", "--matrix", "touch=true,false", "--matrix", "freeos=false",
                          "--matrix", "memory=64MiB", "--results", str(results)],
                         cwd=ROOT, capture_output=True, text=True, timeout=2400)
    print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]  # 1: an expectation failed
    return Path(out.stdout.strip().splitlines()[-1]), out.stdout + out.stderr


def test_docker_cells_run_in_containers_in_a_v2_guest(docker_run):
    run_dir, _ = docker_run
    rows = _cells_csv(run_dir)
    assert len(rows) == 2
    for row in rows.values():
        assert row["backend"] == "docker", row
        assert row["cgroup_version"] == "v2" and row["accel"] in ("kvm", "tcg") and row["kernel"].startswith("6.1.")
    (guest,) = json.loads((run_dir / "manifest.json").read_text())["guests"]
    assert guest["cgroup"] == "v2" and guest["docker_start_s"] > 0, guest


def test_a_completed_and_an_oom_killed_container_on_v2(docker_run):
    run_dir, output = docker_run
    for cell_id, row in _cells_csv(run_dir).items():
        touched = "touch=true" in cell_id
        # 128 MiB touched in a 64 MiB container: the kernel's OOM killer, counted in memory.events
        assert row["status"] == ("oom_killed" if touched else "ok"), (row, output[-3000:])
        assert (row["oom_killed"] == "True") == touched, row
    for cell_json in (run_dir / "cells").glob("*/cell.json"):
        stats = json.loads(cell_json.read_text())["sampler_stats"]
        assert stats["cgroup"].startswith("/sys/fs/cgroup/docker/"), stats  # the cgroupfs driver on v2
        if "touch=true" in cell_json.parent.name:
            assert "oom_kill count" in stats["oom_kill_counted_by"], stats  # the kernel's count, not Docker's flag




def test_ctrl_c_during_a_guest_docker_cell_leaves_nothing(available, tmp_path):
    _v2_elsewhere()
    run = subprocess.Popen([PYTHON, "-m", "harness", "run", "alloc_release", "--quick",
                            "--matrix", "go=default", "--backend", "docker",
                            "--matrix", "cgroup=v2", "--matrix", "touch=false", "--matrix", "freeos=false",
                            "--matrix", "idle=600s", "--results", str(tmp_path)],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in run.stdout:  # the engine answers, then the guest's worker says when the cell starts
        seen.append(line)
        if "cell 0000 starts" in line:
            break
    assert any("Docker engine answered" in line for line in seen), "".join(seen)
    qemus = qemus_of(run.pid)
    assert qemus, "".join(seen)
    time.sleep(20)  # its container is then most likely running (the outcome below holds either way)
    run.send_signal(signal.SIGINT)
    rest = run.communicate(timeout=300)[0]
    assert run.returncode == 130, "".join(seen) + rest
    # The containers, their cgroups and the engine's data lived in the guest: on its scratch disk, gone with
    # qemu and the guest's scratch directory.
    assert all(gone(pid) for pid in qemus)
    assert not list(guest_module.guests_dir().glob(f"guest-{run.pid}-*"))
    assert not list(guest_module.guests_dir().glob(f"cells-{run.pid}-*"))
    (run_dir,) = tmp_path.iterdir()
    (row,) = _cells_csv(run_dir).values()
    assert row["status"] == "interrupted", row
    print(rest)
