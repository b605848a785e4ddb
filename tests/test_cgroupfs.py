import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.observe.cgroupfs import (
    CgroupError,
    MemoryCgroup,
    create_memory_cgroup,
    list_leftovers,
    memory_cgroup_of,
    parse_mountinfo,
    writable_memory_hierarchy,
)
from harness.run.observe.probes import cgroup_probe

V1_STAT = """cache 3428352
rss 1687552
rss_huge 0
inactive_file 528384
active_file 2899968
total_cache 5000000
total_rss 7000000
total_inactive_file 1000000
"""

# From a cgroup v2 host (kernel 6.x), trimmed.
V2_STAT = """anon 104857600
file 52428800
kernel 1048576
kernel_stack 65536
shmem 0
file_mapped 1048576
inactive_anon 104857600
active_anon 0
inactive_file 40000000
active_file 12428800
"""
V2_EVENTS = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"


def _layout(tmp_path: Path, mountinfo: str, proc_cgroup: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "42").mkdir()
    (proc / "self" / "mountinfo").write_text(mountinfo.replace("@", str(tmp_path)))
    (proc / "42" / "cgroup").write_text(proc_cgroup)
    return proc


def test_v1_subtree_mount(tmp_path):
    # A container's view: the hierarchy's /docker/abc is mounted at .../memory.
    proc = _layout(tmp_path,
                   "35 31 0:32 /docker/abc @/memory rw,relatime - cgroup cgroup rw,memory\n"
                   "36 31 0:33 / @/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct\n",
                   "4:memory:/docker/abc/job\n3:cpu,cpuacct:/\n")
    d = tmp_path / "memory" / "job"
    d.mkdir(parents=True)
    (d / "memory.usage_in_bytes").write_text("10000000\n")
    (d / "memory.stat").write_text(V1_STAT)
    (d / "memory.max_usage_in_bytes").write_text("20000000\n")
    (d / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (d / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    cg = memory_cgroup_of(42, proc_root=str(proc))
    assert cg == MemoryCgroup(d, 1)
    # total_* (the subtree) wins over the local counters; no total_rss_huge/total_shmem and no total_swap
    # (swap accounting off): no anon_thp, shmem or swap series.
    assert cgroup_probe(cg)() == {"usage": 10000000, "anon": 7000000, "file": 5000000,
                                  "inactive_file": 1000000, "working_set": 9000000}
    # v1's names for them: total_rss_huge is anon_thp, total_swap the subtree's swap.
    (d / "memory.stat").write_text(V1_STAT + "total_rss_huge 2097152\ntotal_shmem 4096\ntotal_swap 2000000\n")
    read = cgroup_probe(cg)()
    assert (read["anon_thp"], read["shmem"], read["swap"]) == (2097152, 4096, 2000000)
    assert "pglazyfree" not in read
    assert cg.peak() == 20000000 and cg.oom_kills() == 3
    (d / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")
    assert cg.oom_kills() == 0


def test_v1_path_outside_mounted_subtree(tmp_path):
    proc = _layout(tmp_path, "35 31 0:32 /docker/abc @/memory rw - cgroup cgroup rw,memory\n",
                   "4:memory:/system.slice/x\n")
    with pytest.raises(CgroupError, match="outside the mounted subtree"):
        memory_cgroup_of(42, proc_root=str(proc))


def test_v2(tmp_path):
    proc = _layout(tmp_path, "30 23 0:26 / @/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
                   "0::/user.slice/job\n")
    root = tmp_path / "unified"
    d = root / "user.slice" / "job"
    d.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (d / "memory.current").write_text("150000000\n")
    (d / "memory.stat").write_text(V2_STAT)
    (d / "memory.events").write_text(V2_EVENTS)
    (d / "memory.max").write_text("max\n")
    cg = memory_cgroup_of(42, proc_root=str(proc))
    assert cg == MemoryCgroup(d, 2)
    signals = {"events_high": 0.0, "events_max": 12.0, "events_oom": 2.0, "events_oom_kill": 2.0}
    # A stat without anon_thp/pglazyfree (an older kernel) and no memory.swap.current: those series are not
    # read at all (NaN in the summary), never 0.
    assert cgroup_probe(cg)() == {"usage": 150000000, "anon": 104857600, "file": 52428800,
                                  "inactive_file": 40000000, "working_set": 110000000, "shmem": 0, **signals}
    (d / "memory.stat").write_text(V2_STAT + "anon_thp 4194304\npglazyfree 3000\npglazyfreed 1000\n")
    (d / "memory.swap.current").write_text("8388608\n")
    read = cgroup_probe(cg)()
    assert (read["anon_thp"], read["pglazyfree"], read["pglazyfreed"], read["swap"]) == (4194304, 3000, 1000,
                                                                                         8388608)
    # PSI where the kernel has it: avg10 as a fraction, total stall in seconds (swap still read after it)
    (d / "memory.pressure").write_text("some avg10=66.20 avg60=20.00 avg300=5.00 total=2500000\n"
                                       "full avg10=1.50 avg60=0.00 avg300=0.00 total=40000\n")
    read = cgroup_probe(cg)()
    assert read["swap"] == 8388608
    assert read["psi_some_avg10"] == pytest.approx(0.662) and read["psi_some_total_s"] == pytest.approx(2.5)
    assert read["psi_full_avg10"] == pytest.approx(0.015) and read["psi_full_total_s"] == pytest.approx(0.04)
    assert cg.peak() is None  # memory.peak needs kernel 5.19
    (d / "memory.peak").write_text("160000000\n")
    assert cg.peak() == 160000000 and cg.oom_kills() == 2
    # inactive_file above usage (stale stat) floors working_set at 0 instead of going negative
    (d / "memory.current").write_text("1000\n")
    assert cgroup_probe(cg)()["working_set"] == 0


def test_v2_without_memory_controller(tmp_path):
    proc = _layout(tmp_path, "30 23 0:26 / @/unified rw - cgroup2 cgroup2 rw\n", "0::/job\n")
    (tmp_path / "unified" / "job").mkdir(parents=True)
    (tmp_path / "unified" / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(CgroupError, match="memory controller is not available"):
        memory_cgroup_of(42, proc_root=str(proc))


def test_hybrid_prefers_v1_memory(tmp_path):
    # This host's layout: controllers on v1, a unified v2 mount without memory.
    proc = _layout(tmp_path,
                   "31 23 0:28 / @ rw - tmpfs tmpfs rw,mode=755\n"
                   "35 31 0:32 / @/memory rw,relatime - cgroup cgroup rw,memory\n"
                   "40 31 0:37 / @/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
                   "41 31 0:38 / @/unified rw,relatime - cgroup2 cgroup2 rw\n",
                   "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n")
    (tmp_path / "memory" / "process_api" / "abc").mkdir(parents=True)
    cg = memory_cgroup_of(42, proc_root=str(proc))
    assert cg == MemoryCgroup(tmp_path / "memory" / "process_api" / "abc", 1)
    mounts = parse_mountinfo((proc / "self" / "mountinfo").read_text())
    assert [m.version for m in mounts] == [1, 1, 2]
    assert "name=systemd" in mounts[1].controllers


def test_mountinfo_escapes_and_errors(tmp_path):
    mounts = parse_mountinfo("35 31 0:32 / /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n")
    assert mounts[0].mount_point == "/sys/fs/cgroup/mem ory"
    with pytest.raises(CgroupError, match="my-mountinfo:1"):
        parse_mountinfo("garbage line\n", "my-mountinfo")


def test_gone_process_is_process_lookup_error(tmp_path):
    proc = _layout(tmp_path, "35 31 0:32 / @/memory rw - cgroup cgroup rw,memory\n", "4:memory:/\n")
    with pytest.raises(ProcessLookupError):
        memory_cgroup_of(999999, proc_root=str(proc))


# ---- real cgroups on this host ------------------------------------------------------------------------

def _need_writable():
    why = writable_memory_hierarchy()
    if why is not None:
        pytest.skip(f"needs a writable memory cgroup hierarchy: {why}")


def test_real_oom_kill_in_64mib_child_cgroup():
    _need_writable()
    name = f"goreclaim-test-{os.getpid()}-oom"
    cg = create_memory_cgroup(name, 64 << 20)
    try:
        assert cg.oom_kills() == 0
        # The child waits for a byte on stdin so it allocates only once it is inside the cgroup.
        child = subprocess.Popen([sys.executable, "-c",
                                  "import sys; sys.stdin.read(1); b = b'x' * (200 << 20); print('survived')"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        cg.add_process(child.pid)
        assert cg.procs() == [child.pid]
        child.stdin.write("g")
        child.stdin.close()
        out = child.stdout.read()
        assert child.wait(timeout=30) == -9 and "survived" not in out
        assert cg.oom_kills() >= 1
        peak = cg.peak()
        # The page counter may overshoot the limit by a page before the OOM killer acts.
        assert peak is not None and peak <= (64 << 20) * 1.01 and peak > 32 << 20
    finally:
        cg.remove(5.0)
    assert not cg.path.exists()
    assert all(c.path.name != name for c in list_leftovers())


def test_real_remove_kills_remaining_tasks():
    _need_writable()
    cg = create_memory_cgroup(f"goreclaim-test-{os.getpid()}-rm", 256 << 20)
    # v1 does not move charges with a task, so the child allocates only after it has been moved.
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.read(1); b = b'x' * (20 << 20); "
                              "print('ready', flush=True); time.sleep(60)"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        cg.add_process(child.pid)
        child.stdin.write("g")
        child.stdin.flush()
        assert child.stdout.readline() == "ready\n"
        usage = cgroup_probe(cg)()
        assert usage["anon"] >= 20 << 20 and usage["usage"] >= usage["anon"]
        assert usage["working_set"] == usage["usage"] - usage["inactive_file"]
    finally:
        cg.remove(60.0)  # the killed child must run its exit, which a loaded host may delay; bounds a hang only
    assert child.wait(timeout=5) == -9
    assert not cg.path.exists()
    assert list_leftovers(prefix=f"goreclaim-test-{os.getpid()}") == []


def test_real_create_refuses_existing_name():
    _need_writable()
    cg = create_memory_cgroup(f"goreclaim-test-{os.getpid()}-dup", None)
    try:
        with pytest.raises(CgroupError, match="already exists"):
            create_memory_cgroup(cg.path.name, None)
    finally:
        cg.remove()
