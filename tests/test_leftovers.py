"""What a killed run leaves behind: whose it is (pid and start time, so a reused pid is not the owner),
and that only what a process that is gone owned is removed, by `goreclaim clean` and at the start of a run.

The last tests kill `goreclaim run` with SIGKILL mid-cell, on docker and on cgroup, and finish the run
with `goreclaim run --resume`."""

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

from harness.run import leftovers
from harness.run.leftovers import (
    OWNER_LABEL,
    Owner,
    alive,
    boot_id,
    owner_labels,
    owner_of_cgroup,
    owner_of_label,
    owner_of_scratch,
    owner_tag,
    process_start,
)

REPO = Path(__file__).resolve().parent.parent
NO_CGROUPS = Path("/nonexistent-cgroup-root")  # a sweep that looks at no cgroups


def _dead_owner() -> Owner:
    """The owner a process that ran and is gone would have written (its pid and start time)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    start = process_start(child.pid)
    child.communicate()
    return Owner(child.pid, start)


def _live_child() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)


# ------------------------------------------------------------------------------------------- the owner

def fake_proc(root: Path, processes: dict[int, tuple[str, int]], boot: str = "b00t") -> Path:
    """A /proc with `pid -> (state, start ticks)`; comm is made awkward on purpose."""
    for pid, (state, start) in processes.items():
        fields = [state, "1"] + ["0"] * 17 + [str(start)] + ["0"] * 30
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "stat").write_text(f"{pid} (a (b) c) {' '.join(fields)}\n")
    (root / "sys" / "kernel" / "random").mkdir(parents=True)
    (root / "sys" / "kernel" / "random" / "boot_id").write_text(boot + "\n")
    return root


def test_process_start_reads_field_22_after_any_comm(tmp_path):
    proc = fake_proc(tmp_path, {41: ("S", 123456), 42: ("Z", 99)})
    assert process_start(41, proc) == 123456
    assert process_start(42, proc) is None   # a zombie has ended: not an owner
    assert process_start(43, proc) is None


def test_a_reused_pid_is_not_the_owner(tmp_path):
    proc = fake_proc(tmp_path, {41: ("S", 5000)})
    assert alive(Owner(41, 5000), proc)
    assert not alive(Owner(41, 4000), proc)       # pid 41 is another process now
    assert not alive(Owner(44, 5000), proc)       # no process has the pid
    assert alive(Owner(41, None), proc)           # an older name has no start: the pid alone keeps it
    assert alive(Owner(41, 5000, "b00t"), proc)
    assert not alive(Owner(41, 5000, "an-earlier-boot"), proc)   # a container outlives a reboot
    (proc / "sys" / "kernel" / "random" / "boot_id").unlink()
    assert alive(Owner(41, 5000, "b00t"), proc) and not alive(Owner(41, 4000, "b00t"), proc)


def test_real_processes_live_dead_and_reused():
    me = Owner(os.getpid(), process_start(os.getpid()))
    assert me.start is not None and alive(me)
    assert not alive(Owner(me.pid, me.start + 1))
    assert not alive(_dead_owner())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = Owner(zombie.pid, process_start(zombie.pid))
    deadline = time.monotonic() + 60  # bounds a hang only
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    try:
        assert not alive(owner), "an exited child its parent has not reaped yet is not alive"
    finally:
        zombie.wait()


def test_names_and_labels_record_the_owner():
    me = Owner(os.getpid(), process_start(os.getpid()))
    assert owner_of_cgroup(f"goreclaim-{owner_tag()}-7") == me
    assert owner_of_cgroup("goreclaim-123-4") == Owner(123)                 # before start times
    assert owner_of_cgroup("goreclaim-probe-123") == Owner(123)
    for foreign in ("goreclaim-test-123-oom", "goreclaim-bench-123", "goreclaim-", "other-123-4-5"):
        assert owner_of_cgroup(foreign) is None
    assert owner_of_scratch("goreclaim-scratch-12-345-ab_cd9xy") == Owner(12, 345)
    assert owner_of_scratch("goreclaim-scratch-12-12345678") == Owner(12)   # before start times
    assert owner_of_scratch("goreclaim-scratch-x") is None
    label = owner_labels()[OWNER_LABEL]
    assert owner_of_label(label) == Owner(me.pid, me.start, boot_id()) and alive(owner_of_label(label))
    assert owner_of_label("") is None and owner_of_label("123") is None
    assert owner_of_label("12-345") == Owner(12, 345)   # a kernel without a boot id


def test_scratch_directories_carry_the_owner():
    from harness.define.cell import Cell
    from harness.run.scratch import scratch_dir

    with scratch_dir(Cell(cell_id="c", scenario="s", workload="alloc-release", args=())) as path:
        assert owner_of_scratch(path.name) == Owner(os.getpid(), process_start(os.getpid()))


# ------------------------------------------------------------------------------------------- the sweep

def test_sweep_removes_scratch_of_gone_owners_only(tmp_path):
    dead = _dead_owner()
    live = _live_child()
    try:
        me = process_start(os.getpid())
        dirs = {
            "dead": tmp_path / f"goreclaim-scratch-{dead.pid}-{dead.start}-abc",
            "reused": tmp_path / f"goreclaim-scratch-{os.getpid()}-{me - 1}-abc",
            "live": tmp_path / f"goreclaim-scratch-{live.pid}-{process_start(live.pid)}-abc",
            "live_old_name": tmp_path / f"goreclaim-scratch-{live.pid}-abcdefgh",
            "dead_old_name": tmp_path / f"goreclaim-scratch-{dead.pid}-abcdefgh",
            "not_ours": tmp_path / "goreclaim-scratch-notes",
        }
        for d in dirs.values():
            (d / "sub").mkdir(parents=True)
            (d / "sub" / "file").write_text("x")
        swept = leftovers.sweep(tmpdir=tmp_path, cgroup_root=NO_CGROUPS, docker=None)
        again = leftovers.sweep(tmpdir=tmp_path, cgroup_root=NO_CGROUPS, docker=None)
    finally:
        live.communicate()
    gone = {name for name, d in dirs.items() if not d.exists()}
    assert gone == {"dead", "reused", "dead_old_name"}
    assert sorted(swept.removed) == sorted(f"scratch {dirs[n]} (owner {owner_of_scratch(dirs[n].name)}: gone)"
                                           for n in gone)
    assert swept.failed == [] and swept.unowned == [] and again.removed == []


@pytest.fixture
def own_cgroup():
    from harness.run.observe.cgroupfs import memory_cgroup_of, writable_memory_hierarchy

    why_not = writable_memory_hierarchy()
    if why_not is not None:
        pytest.skip(f"no writable memory cgroup here: {why_not}")
    return memory_cgroup_of(os.getpid())


def test_sweep_removes_a_gone_owners_cgroup_and_ends_its_processes(tmp_path, own_cgroup):
    from harness.run.observe.cgroupfs import create_memory_cgroup

    dead = _dead_owner()
    live = _live_child()
    orphan = None
    try:
        gone = create_memory_cgroup(f"goreclaim-{dead.pid}-{dead.start}-0", 64 << 20, own_cgroup)
        kept = create_memory_cgroup(f"goreclaim-{live.pid}-{process_start(live.pid)}-0", 64 << 20, own_cgroup)
        # The killed harness's workload lives on in its cgroup.
        orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                  preexec_fn=lambda: gone.add_process(os.getpid()))
        swept = leftovers.sweep(tmpdir=tmp_path, cgroup_root=own_cgroup.path, docker=None)
        assert not gone.path.exists() and kept.path.exists()
        assert swept.removed == [f"cgroup {gone.path} (owner {dead}: gone)"]
        assert orphan.wait(timeout=60) == -signal.SIGKILL
    finally:
        live.communicate()
        for cg in (gone, kept):
            cg.remove()
        if orphan is not None and orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_memory_hierarchy_root_holds_this_process(own_cgroup):
    root = leftovers.memory_hierarchy_root()
    assert root is not None and (own_cgroup.path == root or root in own_cgroup.path.parents)


@pytest.fixture
def docker_and_image(go_build):
    from harness.build.image import docker_unavailable, ensure_image

    why_not = docker_unavailable()
    if why_not is not None:
        pytest.skip(why_not)
    import docker

    return docker.from_env(), ensure_image(go_build)


def test_sweep_removes_a_gone_owners_container_only(tmp_path, docker_and_image):
    client, image = docker_and_image
    dead = _dead_owner()
    live = _live_child()
    made = []
    try:
        labels = {"goreclaim": "1", "goreclaim.run": f"test-leftovers-{os.getpid()}"}
        for owner in (dead, Owner(live.pid, process_start(live.pid))):
            owner_label = {OWNER_LABEL: f"{owner.pid}-{owner.start}@{boot_id()}"}
            made.append(client.containers.create(image, entrypoint=["/bin/alloc-release"], network_disabled=True,
                                                 labels={**labels, **owner_label}))
        made.append(client.containers.create(image, entrypoint=["/bin/alloc-release"], network_disabled=True,
                                             labels=labels))
        gone, kept, unowned = made
        swept = leftovers.sweep(tmpdir=tmp_path, cgroup_root=NO_CGROUPS, docker=client)
        ours = {"label": f"goreclaim.run={labels['goreclaim.run']}"}
        left = {c.id for c in leftovers.labelled_containers(client, [ours["label"]])}
        assert left == {kept.id, unowned.id}
        assert f"container {gone.short_id} {gone.name} (owner {dead}: gone)" in swept.removed
        assert f"{unowned.short_id} {unowned.name}" in swept.unowned
    finally:
        live.communicate()
        for c in made:
            try:
                c.remove(force=True)
            except Exception:  # noqa: BLE001 - removed by the sweep
                pass


# --------------------------------------------------------------------------- goreclaim run, killed and resumed

def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def owned_by(pid: int) -> dict[str, list[str]]:
    """Every container, memory cgroup and scratch directory whose owner has this pid."""
    import tempfile

    found: dict[str, list[str]] = {"container": [], "cgroup": [], "scratch": []}
    client = leftovers.docker_engine()
    if client is not None:
        for c in leftovers.labelled_containers(client, ["goreclaim=1"]):
            owner = owner_of_label(c.labels.get(OWNER_LABEL, ""))
            if owner is not None and owner.pid == pid:
                found["container"].append(f"{c.short_id} {c.state}")
    root = leftovers.memory_hierarchy_root()
    for dirpath, dirnames, _ in os.walk(root) if root is not None else ():
        for name in dirnames:
            owner = owner_of_cgroup(name)
            if owner is not None and owner.pid == pid:
                found["cgroup"].append(str(Path(dirpath) / name))
    found["scratch"] = [str(p) for p in Path(tempfile.gettempdir()).glob(f"goreclaim-scratch-{pid}-*")]
    return found


def _workload_running(backend: str, pid: int) -> bool:
    """A cell of the harness `pid` has its workload running: its container, or a process in its cgroup."""
    owned = owned_by(pid)
    if backend == "docker":
        return any(c.endswith(" running") for c in owned["container"])
    for path in owned["cgroup"]:
        try:
            if (Path(path) / "cgroup.procs").read_text().split():
                return True
        except OSError:
            continue
    return False


def _wait_until(check, proc: subprocess.Popen, what: str, bound_s: float = 600) -> None:
    """Poll `check` while `proc` runs; the bound stops a hang, it is no expectation of speed."""
    deadline = time.monotonic() + bound_s
    while not check():
        assert proc.poll() is None, f"the run ended before {what}: {proc.stdout.read()}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


def _cells_saved(run_dir_of) -> int:
    run_dir = run_dir_of()
    if run_dir is None or not (run_dir / "cells.csv").exists():
        return 0
    with open(run_dir / "cells.csv") as f:
        return len(list(csv.DictReader(f)))


QUICK = ["alloc_release", "--quick", "--matrix", "touch=true", "--matrix", "go=default"]


@pytest.mark.parametrize("backend", ["docker", "cgroup"])
def test_sigkill_mid_cell_then_resume_finishes_the_run_and_leaves_nothing(backend, tmp_path, backend_or_skip,
                                                                         go_build):
    backend_or_skip(backend)
    results = tmp_path / "results"
    # Two cells; long enough an idle that the second is surely still running when it is killed.
    harness = _cli("run", *QUICK, "--matrix", "idle=5s", "--backend", backend, "--results", str(results))
    try:
        def run_dir():
            found = list(results.glob("*/manifest.json")) if results.exists() else []
            return found[0].parent if found else None

        _wait_until(lambda: _cells_saved(run_dir) == 1, harness, "the first cell was saved")
        _wait_until(lambda: _workload_running(backend, harness.pid), harness, "the second cell's workload ran")
        harness.send_signal(signal.SIGKILL)
        harness.communicate(timeout=60)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    left = owned_by(harness.pid)
    assert left["container" if backend == "docker" else "cgroup"] and left["scratch"], left
    assert json.loads((run_dir() / "manifest.json").read_text())["complete"] is False

    resumed = _cli("run", "--resume", str(run_dir()))
    out, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out
    assert f"resuming {run_dir()}: 1 of 2 cells on disk are kept, 1 to run" in out
    assert "left by a killed run" in out
    assert owned_by(harness.pid) == {"container": [], "cgroup": [], "scratch": []}
    with open(run_dir() / "cells.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["cell_id"] for r in rows) == ["alloc_release[freeos=false,r0]", "alloc_release[freeos=true,r0]"]
    assert {r["status"] for r in rows} == {"ok"} and {r["backend"] for r in rows} == {backend}
    manifest = json.loads((run_dir() / "manifest.json").read_text())
    assert manifest["complete"] is True and len(manifest["resumed_utc"]) == 1
    assert "alloc_release[freeos=true,r0]" in (run_dir() / "report.md").read_text()


@pytest.mark.parametrize("backend", ["docker", "cgroup"])
def test_clean_leaves_a_live_runs_container_cgroup_and_scratch(backend, tmp_path, backend_or_skip, go_build):
    backend_or_skip(backend)
    live = _cli("run", *QUICK, "--matrix", "freeos=false", "--matrix", "idle=10m", "--backend", backend,
                "--results", str(tmp_path / "results"))
    try:
        _wait_until(lambda: _workload_running(backend, live.pid), live, "the live run's workload ran")
        before = owned_by(live.pid)
        clean = _cli("clean")
        out, _ = clean.communicate(timeout=300)
        assert clean.returncode == 0, out
        assert owned_by(live.pid) == before and before["container" if backend == "docker" else "cgroup"], (before, out)
        assert f"-{live.pid}-" not in out and f"pid {live.pid} " not in out, out
        assert _workload_running(backend, live.pid)
        live.send_signal(signal.SIGINT)
        out, _ = live.communicate(timeout=300)
        assert live.returncode == 130, out
        assert "continue with: goreclaim run --resume" in out
    finally:
        if live.poll() is None:
            os.killpg(live.pid, signal.SIGKILL)
            live.wait()
    assert owned_by(live.pid) == {"container": [], "cgroup": [], "scratch": []}


def test_a_kind_that_cannot_be_listed_is_reported_and_the_rest_swept(tmp_path):
    class BrokenEngine:
        class api:
            @staticmethod
            def containers(**_):
                raise RuntimeError("500 Server Error: the daemon is busy")

    dead = _dead_owner()
    scratch = tmp_path / f"goreclaim-scratch-{dead.pid}-{dead.start}-abc"
    scratch.mkdir()
    swept = leftovers.sweep(tmpdir=tmp_path, cgroup_root=NO_CGROUPS, docker=BrokenEngine())
    assert swept.failed == ["listing containers: RuntimeError: 500 Server Error: the daemon is busy"]
    assert swept.removed == [f"scratch {scratch} (owner {dead}: gone)"] and not scratch.exists()


def test_sweep_ends_a_process_backend_workload_left_in_its_scratch_directory(tmp_path):
    """A killed harness's child on the process backend runs on, in its scratch directory with $TMPDIR
    there; a shell that only visits the directory is left alone."""
    dead = _dead_owner()
    scratch = tmp_path / f"goreclaim-scratch-{dead.pid}-{dead.start}-abc"
    scratch.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    workload = subprocess.Popen(sleeper, cwd=scratch, env={**os.environ, "TMPDIR": str(scratch)})
    visitor = subprocess.Popen(sleeper, cwd=scratch)
    try:
        swept = leftovers.sweep(tmpdir=tmp_path, cgroup_root=NO_CGROUPS, docker=None)
        assert workload.wait(timeout=60) == -signal.SIGKILL
        assert visitor.poll() is None and not scratch.exists()
        assert swept.removed == [f"scratch {scratch} (owner {dead}: gone)"]
    finally:
        for p in (workload, visitor):
            p.kill()
            p.wait()
