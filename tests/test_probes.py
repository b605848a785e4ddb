import os
import subprocess
import sys
import time

import pytest

from harness.run.observe.cgroupfs import (
    create_memory_cgroup,
    memory_cgroup_of,
    normalize_stat,
    parse_flat_keyed,
    writable_memory_hierarchy,
)
from harness.run.observe.probes import (
    cgroup_probe,
    parse_cgroup,
    parse_smaps_rollup,
    parse_status,
    proc_status_probe,
    smaps_rollup_probe,
)

STATUS = b"""Name:\tgo\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1100000 kB\nVmSize:\t 1064960 kB
VmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t 1050000 kB\nVmRSS:\t  524288 kB\nRssAnon:\t  520192 kB
RssFile:\t    4096 kB\nRssShmem:\t       0 kB\nVmData:\t 1050000 kB\nVmPTE:\t    2048 kB\nVmSwap:\t    8192 kB
Threads:\t5\n"""
ZOMBIE = b"Name:\tgo\nState:\tZ (zombie)\nTgid:\t42\nThreads:\t1\n"
SMAPS = b"""00400000-7ffd000 ---p 00000000 00:00 0                          [rollup]
Rss:              524288 kB\nPss:              524288 kB\nAnonymous:        520192 kB\nLazyFree:         262144 kB
AnonHugePages:     4096 kB\nShmemPmdMapped:        0 kB\n"""


def test_parse_status():
    assert parse_status(STATUS) == {"vm_rss": 524288 << 10, "rss_anon": 520192 << 10, "rss_file": 4096 << 10,
                                    "vm_size": 1064960 << 10, "vm_hwm": 1050000 << 10, "vm_swap": 8192 << 10}
    with pytest.raises(ProcessLookupError):
        parse_status(ZOMBIE)


def test_parse_smaps_rollup():
    assert parse_smaps_rollup(SMAPS) == {"rss": 524288 << 10, "lazyfree": 262144 << 10,
                                         "anon_huge_pages": 4096 << 10}
    with pytest.raises(ProcessLookupError):
        parse_smaps_rollup(b"")


@pytest.fixture(scope="module")
def holder():
    """A real process holding 256 MiB of touched anonymous memory."""
    child = subprocess.Popen([sys.executable, "-c", "import time; b = b'\\x01' * (256 << 20); "
                              "print('ready', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    yield child
    child.kill()
    child.wait()


def test_probes_agree_with_the_kernel_on_a_real_process(holder):
    status = proc_status_probe(holder.pid)()
    assert status["rss_anon"] >= 256 << 20
    assert status["vm_rss"] >= status["rss_anon"] + status["rss_file"]  # plus RssShmem
    assert status["vm_size"] >= status["vm_rss"] and status["vm_hwm"] >= status["vm_rss"]
    smaps = smaps_rollup_probe(holder.pid)()
    assert abs(smaps["rss"] - status["vm_rss"]) < 8 << 20 and smaps["lazyfree"] == 0
    assert status["vm_hwm"] >= 256 << 20
    assert 0 <= smaps["anon_huge_pages"] <= smaps["rss"]
    if _swap_total() == 0:   # a host without swap: nothing can be swapped out, the kernel says 0, not nothing
        assert status["vm_swap"] == 0


def _swap_total() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("SwapTotal:"))


def test_probe_rereads_on_every_call(holder):
    probe = proc_status_probe(os.getpid())
    before = probe()["vm_rss"]
    grow = b"\x01" * (64 << 20)
    after = probe()["vm_rss"]
    assert after - before >= 60 << 20
    del grow


def test_cgroup_probe_matches_normalize_stat():
    cg = memory_cgroup_of(os.getpid())
    probe = cgroup_probe(cg)
    # The cgroup changes between two reads, by a lot on a busy host whose other processes share it: read
    # pairs until one agrees within a little motion, which a probe reading the wrong figure never does.
    deadline = time.monotonic() + 120
    while True:
        got = probe()
        reference = normalize_stat(cg.version, int(cg.usage_file.read_text()),
                                   parse_flat_keyed(cg.stat_file.read_text()))
        off = {key: got[key] - reference[key] for key in reference if abs(got[key] - reference[key]) > 4 << 20}
        if not off or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # This host's kernel writes total_rss_huge and total_shmem (v1) or anon_thp, shmem, pglazyfree and
    # pglazyfreed (v2), and swap where swap accounting is on (total_swap, memory.swap.current).
    extra = {"anon_thp", "shmem"} | ({"pglazyfree", "pglazyfreed"} if cg.version == 2 else set())
    assert set(got) - {"swap"} == {"usage", "anon", "file", "inactive_file", "working_set"} | extra
    stat = parse_flat_keyed(cg.stat_file.read_text())
    assert ("swap" in got) == ("total_swap" in stat if cg.version == 1 else cg.swap_file.exists())
    if _swap_total() == 0 and "swap" in got:   # no swap device: the kernel says 0
        assert got["swap"] == 0
    assert not off, off
    assert got["anon_thp"] <= got["anon"] + (8 << 20)
    assert got["shmem"] >= 0 and (cg.version == 2 or got["anon_thp"] <= stat["total_rss"] + (8 << 20))
    assert got["working_set"] == max(0, got["usage"] - got["inactive_file"])
    peak = cg.peak()
    assert peak is None or peak >= got["usage"] - (4 << 20)


def test_gone_process_raises_process_lookup_error():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    status, smaps = proc_status_probe(child.pid), smaps_rollup_probe(child.pid)
    assert status()["vm_rss"] > 0
    child.stdin.close()
    child.wait()  # reaped: the pid's /proc entry is gone
    with pytest.raises(ProcessLookupError):
        status()
    with pytest.raises(ProcessLookupError):
        smaps()
    with pytest.raises(ProcessLookupError):
        proc_status_probe(child.pid)


V1_STAT = b"""cache 3428352\nrss 1687552\nrss_huge 0\ninactive_file 528384\nactive_file 2899968
hierarchical_memory_limit 9223372036854771712\ntotal_cache 5000000\ntotal_rss 7000000\ntotal_rss_huge 0
total_inactive_file 1000000\ntotal_active_file 4000000\n"""
V1_STAT_LOCAL_ONLY = b"cache 3428352\nrss 1687552\nrss_huge 0\ninactive_file 528384\nactive_file 2899968\n"
V2_STAT = b"""anon 104857600\nfile 52428800\nkernel 1048576\nanon_thp 0\nfile_mapped 1048576
inactive_anon 104857600\nactive_anon 0\ninactive_file 40000000\nactive_file 12428800\n"""


@pytest.mark.parametrize("version, stat", [(1, V1_STAT), (1, V1_STAT_LOCAL_ONLY), (2, V2_STAT)])
def test_parse_cgroup_is_normalize_stat(version, stat):
    extra = {"anon_thp", "shmem", "pglazyfree", "pglazyfreed", "swap"}   # read as they are, beside normalize_stat's
    for usage in (b"20000000\n", b"100\n"):
        got = parse_cgroup(version, (usage, stat))
        assert {k: v for k, v in got.items() if k not in extra} == normalize_stat(
            version, int(usage), parse_flat_keyed(stat.decode()))
    got = parse_cgroup(1, (b"20000000\n", V1_STAT))
    assert (got["anon"], got["file"], got["inactive_file"], got["working_set"]) == (7000000, 5000000, 1000000,
                                                                                   19000000)


def test_parse_status_without_rss_split():
    old_kernel = b"Name:\tgo\nVmSize:\t 2048 kB\nVmHWM:\t 1024 kB\nVmRSS:\t 512 kB\nVmData:\t 100 kB\n"
    assert parse_status(old_kernel) == {"vm_rss": 512 << 10, "vm_size": 2048 << 10, "vm_hwm": 1024 << 10}


def test_file_probe_halves_are_the_call(holder):
    probe = proc_status_probe(holder.pid)
    raw = probe.read_raw()
    assert isinstance(raw, bytes) and probe.parse_raw(raw)["rss_anon"] >= 256 << 20
    assert set(probe.parse_raw(raw)) == set(probe())
    cg = cgroup_probe(memory_cgroup_of(os.getpid()))
    raw = cg.read_raw()
    usage, stat = raw[0], raw[1]
    assert int(usage) > 0 and b"inactive_file" in stat
    assert set(cg.parse_raw(raw)) == set(cg())


def test_zombie_is_gone_when_parsed():
    # Read at the tick, a zombie's status is still bytes; parsing them says the process is gone.
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    probe = proc_status_probe(child.pid)
    child.stdin.close()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    try:
        raw = probe.read_raw()
        with pytest.raises(ProcessLookupError):
            probe.parse_raw(raw)
        with pytest.raises(ProcessLookupError):
            probe()
    finally:
        child.wait()


def test_removed_cgroup_is_gone():
    if writable_memory_hierarchy() is not None:
        pytest.skip("needs a writable memory cgroup hierarchy")
    cg = create_memory_cgroup(f"goreclaim-test-probe-{os.getpid()}", None)
    try:
        probe = cgroup_probe(cg)
        assert probe()["usage"] >= 0
    finally:
        cg.remove(5.0)
    with pytest.raises(FileNotFoundError):   # ENODEV from the kept-open files
        probe.read_raw()


def test_parse_status_field_by_field_when_the_block_differs():
    # A line inside the block that this parser does not know: the fields are still found by name.
    odd = STATUS.replace(b"VmPin:", b"VmPin:\t       0 kB\nVmNew:")
    assert parse_status(odd) == parse_status(STATUS)
    assert sorted(parse_status(odd)) == sorted(parse_status(STATUS)) == ["rss_anon", "rss_file", "vm_hwm",
                                                                         "vm_rss", "vm_size", "vm_swap"]
