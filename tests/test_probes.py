import os
import subprocess
import sys

import pytest

from harness.run.observe.cgroupfs import memory_cgroup_of
from harness.run.observe.probes import (cgroup_probe, kernel_peaks, parse_smaps_rollup, parse_status, proc_status_probe,
                            smaps_rollup_probe)

STATUS = b"""Name:\tgo\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1100000 kB\nVmSize:\t 1064960 kB
VmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t 1050000 kB\nVmRSS:\t  524288 kB\nRssAnon:\t  520192 kB
RssFile:\t    4096 kB\nRssShmem:\t       0 kB\nVmData:\t 1050000 kB\nThreads:\t5\n"""
ZOMBIE = b"Name:\tgo\nState:\tZ (zombie)\nTgid:\t42\nThreads:\t1\n"
SMAPS = b"""00400000-7ffd000 ---p 00000000 00:00 0                          [rollup]
Rss:              524288 kB\nPss:              524288 kB\nAnonymous:        520192 kB\nLazyFree:         262144 kB
AnonHugePages:     4096 kB\nShmemPmdMapped:        0 kB\n"""


def test_parse_status():
    assert parse_status(STATUS) == {"vm_rss": 524288 << 10, "rss_anon": 520192 << 10, "rss_file": 4096 << 10,
                                    "vm_size": 1064960 << 10, "vm_hwm": 1050000 << 10}
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
    vm_hwm, _ = kernel_peaks(holder.pid, None)
    assert vm_hwm >= 256 << 20


def test_probe_rereads_on_every_call(holder):
    probe = proc_status_probe(os.getpid())
    before = probe()["vm_rss"]
    grow = b"\x01" * (64 << 20)
    after = probe()["vm_rss"]
    assert after - before >= 60 << 20
    del grow


def test_cgroup_probe_matches_normalized():
    cg = memory_cgroup_of(os.getpid())
    probe = cgroup_probe(cg)
    got, reference = probe(), cg.normalized()
    assert set(got) == {"usage", "anon", "file", "inactive_file", "working_set"}
    for key in got:  # the cgroup changes between two reads; allow a little motion
        assert abs(got[key] - reference[key]) <= 4 << 20, key
    assert got["working_set"] == max(0, got["usage"] - got["inactive_file"])
    _, peak = kernel_peaks(None, cg)
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
    assert kernel_peaks(child.pid, None) == (None, None)
