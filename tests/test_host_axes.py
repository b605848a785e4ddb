"""The memory_high, thp and swap axes: validation, what they contribute, where their cells run, what
the cgroup backend writes, and (for real, in a guest) that a guest gets the THP mode and swap asked for
and that a cell above its memory.high is throttled, not killed."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.define import units
from harness.define.axes import AXES, contributions
from harness.define.build import Build
from harness.define.cell import Cell
from harness.drive.guest_cells import describe, guest_settings, met
from harness.run.backends.cgroup import CgroupBackend
from harness.run.backends.docker import DockerBackend
from harness.run.backends.loop import refusal_of
from harness.run.backends.process import ProcessBackend
from harness.run.env import child_env
from harness.run.guest import Guest, GuestSettings
from harness.run.placement import cgroup_version, swap_bytes, thp_mode
from tests.guests import require_guest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def _cell(**axes: str) -> Cell:
    return Cell(cell_id=f"alloc_release[{','.join(f'{k}={v}' for k, v in axes.items())}]", scenario="alloc_release",
                workload="alloc-release", args=("--size=16MiB",), backend="cgroup", axes=tuple(axes.items()),
                **contributions(axes))


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("axis, raw, expected", [
    ("memory_high", "90%", "90%"), ("memory_high", "400MiB", "400MiB"),
    ("thp", "ALWAYS", "always"), ("thp", "never", "never"), ("swap", "0", "0"), ("swap", "256MiB", "256MiB"),
])
def test_values_are_written_as_given(axis, raw, expected):
    assert AXES[axis].canonical(raw) == expected


@pytest.mark.parametrize("axis, raw, words", [
    ("memory_high", "120%", "(0, 100]"), ("memory_high", "lots", "share of the memory limit"),
    ("memory_high", "0", "positive"), ("thp", "sometimes", "always, madvise, never"), ("swap", "much", "much"),
])
def test_bad_values_say_what_is_valid(axis, raw, words):
    with pytest.raises(units.UnitError, match=re.escape(words)):
        AXES[axis].canonical(raw)


def test_memory_high_is_a_share_of_the_memory_limit_in_bytes_and_implies_cgroup_v2():
    given = contributions({"memory": "512MiB", "memory_high": "80%"})
    assert dict(given["limits"])["memory_high"] == int(512 * (1 << 20) * 0.8)
    assert dict(given["host_settings"]) == {"cgroup": "v2"}
    assert dict(given["columns"])["memory_high_bytes"] == int(512 * (1 << 20) * 0.8)
    sized = contributions({"memory": "512MiB", "memory_high": "400MiB", "cgroup": "v2"})  # v2 named: they agree
    assert dict(sized["limits"])["memory_high"] == 400 << 20 and dict(sized["host_settings"]) == {"cgroup": "v2"}


@pytest.mark.parametrize("values, words", [
    ({"memory_high": "80%"}, "memory_high=80%: needs a memory limit"),
    ({"memory": "1GiB", "memory_high": "80%", "cgroup": "v1"}, "cgroup v1; leave cgroup out"),
    ({"memory": "1GiB", "memory_high": "2GiB"}, "above the memory limit"),
    ({"swap": "1GiB"}, "swap=1GiB: needs a memory limit"),
    ({"memory": "1GiB", "swap": "1GiB", "cgroup": "v1"}, "cgroup v1; leave cgroup out"),
])
def test_bad_combinations_name_the_axis_and_the_fix(values, words):
    with pytest.raises(units.UnitError, match=words):
        contributions(values)


def test_swap_zero_asks_nothing_and_a_size_is_the_cells_swap_limit():
    assert contributions({"swap": "0"})["host_settings"] == () and contributions({"swap": "0"})["limits"] == ()
    given = contributions({"memory": "256MiB", "swap": "256MiB"})
    assert dict(given["limits"])["swap"] == 256 << 20
    assert dict(given["host_settings"]) == {"cgroup": "v2", "swap": "256MiB"}


def test_a_bad_combination_on_the_command_line_is_one_line_per_cell_exit_2_nothing_started(tmp_path):
    out = subprocess.run([PYTHON, "-m", "harness", "run", "alloc_release", "--quick",
                          "--matrix", "go=default", "--matrix", "touch=true",
                          "--matrix", "freeos=false", "--matrix", "memory_high=80%", "--matrix", "cgroup=v1",
                          "--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "memory_high=80%" in out.stderr and "cgroup=v2" in out.stderr
    assert not list(tmp_path.iterdir())


def test_godebug_disablethp_reaches_the_programs_environment():
    cell = _cell(godebug="disablethp=1", madvdontneed="1")
    assert child_env(cell, host={})["GODEBUG"] == "madvdontneed=1,disablethp=1"


# ---------------------------------------------------------------------------------- where cells run


def test_this_hosts_thp_mode_and_swap_are_read(tmp_path):
    enabled = tmp_path / "enabled"
    enabled.write_text("always [madvise] never\n")
    assert thp_mode(str(enabled)) == "madvise"
    assert thp_mode(str(tmp_path / "missing")) == "unknown"
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n/swapfile file 262144 0 -2\n/dev/vdb partition 1024 0 -3\n")
    assert swap_bytes(str(swaps)) == (262144 + 1024) << 10
    assert swap_bytes(str(tmp_path / "missing")) == 0


@pytest.mark.parametrize("axes, here, expected", [
    ({"thp": "madvise"}, ("v1", "madvise", 0), None),
    ({"thp": "always"}, ("v1", "madvise", 0), GuestSettings("6.1", "v1", thp="always")),
    # this machine's mode: the guest takes it anyway (GuestSettings.thp ""), one group with the cells not asking
    ({"thp": "never", "kernel": "5.10"}, ("v1", "never", 0), GuestSettings("5.10", "v2")),
    ({"swap": "0"}, ("v1", "madvise", 0), None),
    ({"memory": "256MiB", "swap": "256MiB"}, ("v2", "madvise", 0), GuestSettings("6.1", "v2", swap_mib=256)),
    ({"memory": "256MiB", "swap": "256MiB"}, ("v2", "madvise", 1 << 30), None),
    ({"memory": "256MiB", "memory_high": "90%"}, ("v1", "madvise", 0), GuestSettings("6.1", "v2")),
    ({"memory": "256MiB", "memory_high": "90%"}, ("v2", "madvise", 0), None),
])
def test_a_cell_runs_here_only_where_thp_swap_and_cgroup_are_what_it_asks(axes, here, expected):
    assert guest_settings(_cell(**axes), *here) == expected


def test_thp_and_swap_are_met_by_the_guest_and_named_in_its_lines():
    cell = _cell(memory="256MiB", swap="256MiB", thp="always")
    assert met(cell).host_settings == () and dict(met(cell).limits)["swap"] == 256 << 20
    assert describe(GuestSettings("6.1", "v2", thp="always", swap_mib=256)) == (
        "guest (Linux 6.1, cgroup v2, THP always, swap 256 MiB)")


def test_the_cgroup_backend_refuses_memory_high_on_a_v1_host_saying_why():
    if cgroup_version() == "v2":
        pytest.skip("this host has cgroup v2: memory.high is applied here")
    cell = met(_cell(memory="256MiB", memory_high="80%"))
    status, reason = CgroupBackend().unfit(cell, Build("1.19.8", Path("/nonexistent"), "", "amd64"))
    assert status == "skipped" and "memory_high (memory.high)" in reason and "cgroup=v2" in reason


@pytest.mark.parametrize("axes, limit", [({"memory_high": "80%"}, "memory_high"), ({"swap": "256MiB"}, "swap")])
def test_docker_and_process_refuse_memory_high_and_swap_naming_the_cgroup_backend(axes, limit):
    cell = met(_cell(memory="256MiB", **axes))
    for backend in (DockerBackend(), ProcessBackend()):
        refusal = refusal_of(backend, cell)
        assert refusal is not None and refusal[0] == "skipped", backend.name
        assert f"needs a {limit} limit" in refusal[1] or "needs a memory limit" in refusal[1], refusal
    docker = refusal_of(DockerBackend(), cell)
    assert docker is not None and f"needs a {limit} limit; the docker backend has none: use --backend cgroup" \
        in docker[1]


# ---------------------------------------------------------------------------------- for real, in a guest




@pytest.fixture(scope="module")
def available():
    require_guest("guest tests")


def test_a_guest_has_the_thp_mode_and_the_swap_asked_for(available):
    with Guest(GuestSettings("6.1", "v2", thp="always", swap_mib=256)) as guest:
        out = guest.run(["sh", "-c", "cat /sys/kernel/mm/transparent_hugepage/enabled "
                         "/sys/kernel/mm/transparent_hugepage/defrag /proc/swaps"]).output.splitlines()
    assert out[0].split()[0] == "[always]" and "[always]" in out[1].split(), out
    (swap,) = [line.split() for line in out[3:]]
    assert int(swap[2]) == (256 << 10) - 4, out  # KiB: the file less mkswap's one-page header


def test_a_cell_above_its_memory_high_is_throttled_not_killed(available, tmp_path):
    if CgroupBackend().available():
        pytest.skip(f"the cgroup backend cannot run here: {CgroupBackend().available()}")
    # 128 MiB touched under memory.high 64 MiB, with swap to reclaim into: throttled, then it ends. No thp asked:
    # the guest has this machine's mode (Debian's kernels would default to always).
    out = subprocess.run([PYTHON, "-m", "harness", "run", "alloc_release", "--quick",
                          "--matrix", "go=default", "--backend", "cgroup",
                          "--matrix", "touch=true", "--matrix", "freeos=false", "--matrix", "memory=256MiB",
                          "--matrix", "memory_high=64MiB", "--matrix", "swap=256MiB",
                          "--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]  # 1: an expectation failed
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    with open(run_dir / "cells.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "ok" and row["oom_killed"] == "False", row
    assert row["thp"] == thp_mode() and row["cgroup_version"] == "v2" and row["memory_high_bytes"] == str(64 << 20)
    with open(run_dir / "summary.csv", newline="") as f:
        (summary,) = csv.DictReader(f)
    assert float(summary["memory_high_events"]) > 0, summary
    print(f"memory_high_events {summary['memory_high_events']}, psi_some_avg10 {summary.get('psi_some_avg10')}")
