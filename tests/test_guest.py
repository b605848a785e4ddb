"""Cells' future host for real: a Debian guest kernel booted under qemu (harness.run.guest).

One guest is booted for the module's cgroup checks; the cleanup tests boot their own, since they
end it. Everything here skips, saying why, only where qemu or the kernel cannot be had.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.build import kernels
from harness.run import guest as guest_module
from harness.run.guest import Guest, GuestError, GuestSettings
from tests.guests import SERIES, gone, guest_unavailable, qemus_of, require_guest

DRIVER = Path(__file__).with_name("guest_driver.py")
PYTHON = sys.executable  # the project's venv: the guest sees the host's files at the same paths




@pytest.fixture(scope="module")
def available():
    require_guest("guest tests")


@pytest.fixture(scope="module")
def guest(available, tmp_path_factory):
    shared = tmp_path_factory.mktemp("guest-shared")
    with Guest(GuestSettings(kernel=SERIES, cgroup="v2", memory_mib=1024), writable=[shared],
               log=lambda line: print(line, file=sys.stderr)) as booted:
        booted.shared = shared
        yield booted



def _events(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in text.strip().splitlines())}


# A cgroup under the guest's root with the given limits; the command runs in it; then its files.
CGROUP_RUN = r"""
set -e
G=/sys/fs/cgroup/{name}
mkdir $G
echo {limit} > $G/{knob}
echo 0 > $G/memory.swap.max 2>/dev/null || true
set +e
sh -c 'echo $$ > {cg}/cgroup.procs; exec "$@"' sh {command}
echo "exit $?"
echo "--events"; cat $G/memory.events
echo "--peak"; cat $G/memory.peak
"""


def _sections(output: str) -> dict[str, str]:
    sections, name = {"": []}, ""
    for line in output.splitlines():
        if line.startswith("--"):
            name = line[2:]
            sections[name] = []
        else:
            sections[name].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def test_cgroup_v2_with_the_memory_controller(guest):
    result = guest.run(["sh", "-c", "stat -f -c %T /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.subtree_control;"
                        " uname -r"])
    fs, controllers, release = result.output.splitlines()[-3:]
    assert result.exit_code == 0
    assert fs == "cgroup2fs"
    assert "memory" in controllers.split()
    assert release == guest.release == guest.kernel.release
    assert guest.cgroup_fs == "cgroup2"
    assert guest.accel in ("kvm", "tcg")


def test_memory_max_kills_and_counts_oom_kill(guest):
    allocate = f"{PYTHON} -c \"x = b'a' * (200 << 20)\""
    script = CGROUP_RUN.format(name="t-oom", knob="memory.max", limit="64M", cg="/sys/fs/cgroup/t-oom",
                               command=allocate)
    result = guest.run(["sh", "-c", script], timeout_s=300)
    parts = _sections(result.output)
    assert "exit 137" in parts[""], result.output  # SIGKILL from the kernel's OOM killer
    events = _events(parts["events"])
    assert events["oom_kill"] == 1, result.output
    assert events["max"] > 0
    assert int(parts["peak"]) >= 60 << 20


# Allocates 96 MiB a MiB at a time (each page written), printing how far it got; stalls over memory.high.
THROTTLED = ("import sys, time\\n"
             "chunks = []\\n"
             "for i in range(96):\\n"
             "    chunks.append(bytearray(b'a' * (1 << 20)))\\n"
             "time.sleep(3600)\\n")


def test_memory_high_throttles_without_killing(guest):
    (guest.shared / "throttled.py").write_text(THROTTLED.replace("\\n", "\n"))
    script = rf"""
G=/sys/fs/cgroup/t-high
mkdir $G && echo 48M > $G/memory.high && echo 0 > $G/memory.swap.max
sh -c 'echo $$ > /sys/fs/cgroup/t-high/cgroup.procs; exec {PYTHON} {guest.shared}/throttled.py' &
pid=$!
for i in $(seq 600); do
  high=$(awk '$1 == "high" {{print $2}}' $G/memory.events)
  [ "$high" -gt 0 ] && [ "$(awk '$1 == "some" {{print $5}}' $G/memory.pressure)" != total=0 ] && break
  sleep 0.5
done
kill -0 $pid && echo alive
echo "--events"; cat $G/memory.events
echo "--pressure"; cat $G/memory.pressure
kill -9 $pid; wait $pid
"""
    result = guest.run(["sh", "-c", script], timeout_s=600)
    parts = _sections(result.output)
    assert "alive" in parts[""], result.output
    events = _events(parts["events"])
    assert events["high"] > 0, result.output
    assert events["oom_kill"] == 0 and events["max"] == 0, result.output
    some = dict(field.split("=") for field in parts["pressure"].splitlines()[0].split()[1:])
    assert int(some["total"]) > 0, result.output  # microseconds some task stalled on memory


def test_timeout_stops_the_guest_and_removes_its_scratch(available):
    stopped = Guest(GuestSettings(kernel=SERIES, memory_mib=512, cpus=1))
    stopped.start()
    pid, scratch = stopped.process.pid, stopped.scratch
    with pytest.raises(GuestError, match="did not finish within its timeout"):
        stopped.run(["sleep", "3600"], timeout_s=2)
    stopped.close()
    assert gone(pid)
    assert not scratch.exists()


def test_a_panic_is_the_reason(available):
    with Guest(GuestSettings(kernel=SERIES, memory_mib=512, cpus=1)) as crashing:
        pid = crashing.process.pid
        with pytest.raises(GuestError, match="Kernel panic"):
            crashing.run(["sh", "-c", "echo c > /proc/sysrq-trigger"], timeout_s=300)
    assert gone(pid)


# In the guest: end the init's heartbeat loop (a child of pid 1 running the same /init script), as if the
# guest had stopped, while its kernel still answers.
SILENCE_HEARTBEAT = r"""
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = 1 ] && continue
  [ "$(awk '/^PPid:/ {print $2}' $p/status 2>/dev/null)" = 1 ] || continue
  case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in *init*) kill $pid && echo "silenced $pid" ;; esac
done
"""


def test_a_guest_that_stops_beating_is_given_up_saying_where_its_cpus_were(available):
    with Guest(GuestSettings(kernel=SERIES, memory_mib=512, cpus=2), stall_s=20) as silent:
        pid = silent.process.pid
        assert "silenced" in silent.run(["sh", "-c", SILENCE_HEARTBEAT], timeout_s=120).output
        with pytest.raises(guest_module.GuestStalled, match="no heartbeat for") as stalled:
            silent.run(["sleep", "3600"], timeout_s=600)
    assert gone(pid)
    diagnosis = stalled.value.diagnosis
    # Each vCPU named by System.map (the guest boots nokaslr): a function and its offset, in kernel text.
    cpus = re.findall(r"CPU (\d): ([^;\s]+)", diagnosis.splitlines()[2])
    assert [c for c, _ in cpus] == ["0", "1"], diagnosis
    assert all(re.fullmatch(r"\w[\w.]*\+0x[0-9a-f]+", name) for _, name in cpus), diagnosis
    # The kernel answered the SysRq keys on the console: its CPUs' backtraces and its blocked tasks.
    assert "Show backtrace of all active CPUs" in diagnosis, diagnosis
    assert "Show Blocked State" in diagnosis, diagnosis


def test_each_vcpus_place_is_read_in_long_mode_and_before_it(tmp_path):
    from harness.run.guest_monitor import SymbolMap, instruction_pointers

    registers = ("CPU#0\r\nRAX=0000000000000000\r\nRIP=ffffffff81001234 RFL=00000246\r\n"
                 "CPU#1\r\nEAX=00000000\r\nEIP=0000fff0 EFL=00000002 [-------]\r\n")
    assert instruction_pointers(registers) == [0xFFFFFFFF81001234, 0xFFF0]
    (tmp_path / "kallsyms").write_text("ffffffff81001000 T default_idle\nffffffff81002000 t other\n")
    symbols = SymbolMap.read(tmp_path / "kallsyms")
    assert symbols.name(0xFFFFFFFF81001234) == "default_idle+0x234"
    assert symbols.name(0xFFF0) == "0xfff0 (not kernel text)"


def test_a_boot_that_never_finishes_is_a_stall_diagnosed_before_qemu_is_killed(available, monkeypatch):
    """qemu -S holds the vCPUs at the reset vector: the boot hangs, as TCG boots here have been seen to, with
    no console line. It is given up at its timeout as a stall, its vCPUs' places said, nothing left behind."""
    real = guest_module._qemu_command

    def held(*args, probe, **kwargs):  # the guest only: a held KVM probe would be remembered as KVM hanging
        return [*real(*args, probe=probe, **kwargs), *(() if probe else ("-S",))]

    monkeypatch.setattr(guest_module, "_qemu_command", held)
    monkeypatch.setattr(guest_module, "STALL_CONSOLE_S", 1.0)
    hung = Guest(GuestSettings(kernel=SERIES, memory_mib=512, cpus=2), boot_timeout_s=5)
    with pytest.raises(guest_module.GuestStalled, match="the boot did not finish within 5 s") as stalled:
        hung.start()
    assert hung.process is not None and gone(hung.process.pid)
    assert hung.scratch is None
    # Both vCPUs still at the reset vector, read as EIP (not yet in long mode), outside the kernel's text.
    assert "(vCPUs at CPU 0: 0xfff0 (not kernel text); CPU 1: 0xfff0 (not kernel text))" in str(stalled.value), \
        stalled.value.diagnosis


def _start_driver():
    driver = subprocess.Popen([PYTHON, str(DRIVER)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    line = driver.stdout.readline().split()
    assert line[:1] == ["QEMU"], line
    return driver, int(line[1]), Path(line[2])


def test_ctrl_c_leaves_no_qemu_and_no_scratch(available):
    driver, qemu, scratch = _start_driver()
    assert not gone(qemu, within_s=0.5)
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=120) == 130
    assert "STOPPED Ctrl-C" in driver.stdout.read()
    assert gone(qemu)
    assert not scratch.exists()


def test_a_killed_harness_takes_qemu_with_it_and_the_next_start_sweeps_its_scratch(available):
    driver, qemu, scratch = _start_driver()
    driver.kill()
    driver.wait(timeout=60)
    assert gone(qemu)  # PR_SET_PDEATHSIG
    assert scratch.exists()
    assert scratch in guest_module.sweep_leftovers()
    assert not scratch.exists()


# ---------------------------------------------------------------------------------- cells in a guest

from harness.define.axes import contributions  # noqa: E402
from harness.define.cell import Cell  # noqa: E402
from harness.drive.guest_cells import guest_settings, measure_with_guests, met  # noqa: E402
from harness.drive.session import RunSession  # noqa: E402
from harness.run.backends.cgroup import CgroupBackend  # noqa: E402
from harness.run.placement import cgroup_version  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _cell(backend: str = "cgroup", **axes: str) -> Cell:
    return Cell(cell_id=f"alloc_release[{','.join(f'{k}={v}' for k, v in axes.items())}]", scenario="alloc_release",
                workload="alloc-release", args=("--size=16MiB",), backend=backend, axes=tuple(axes.items()),
                **contributions(axes))


@pytest.mark.parametrize("axes, here, expected", [
    ({"cgroup": "v1"}, "v1", None),
    ({"kernel": "host"}, "v1", None),
    ({"cgroup": "v2"}, "v2", None),
    ({"cgroup": "v2"}, "v1", GuestSettings("6.1", "v2")),
    ({"cgroup": "v1"}, "v2", GuestSettings("6.1", "v1")),
    ({"kernel": "5.10"}, "v1", GuestSettings("5.10", "v2")),
    ({"kernel": "6.1", "cgroup": "v1"}, "v1", GuestSettings("6.1", "v1")),
])
def test_a_cell_runs_in_a_guest_only_where_this_host_is_not_what_it_asks(axes, here, expected):
    assert guest_settings(_cell(**axes), here) == expected


def test_the_host_settings_met_are_left_out_for_the_backend():
    cell = _cell(cgroup="v2", kernel="6.1")
    assert cell.host_settings and met(cell).host_settings == ()


def test_docker_in_a_guest_without_an_engine_here_is_skipped_with_the_reason_and_boots_nothing(tmp_path,
                                                                                                 monkeypatch):
    from harness.drive import guest_cells

    monkeypatch.setattr(guest_cells, "engine_missing", lambda: "dockerd is not installed (Debian's docker.io)")
    here = cgroup_version()
    other = "v2" if here == "v1" else "v1"
    before = set(guest_module.guests_dir().glob("*"))
    with RunSession(tmp_path, backend="process", log=lambda line: None) as session:
        outcomes = list(measure_with_guests(session, [_cell("docker", cgroup=other)], log=lambda line: None))
    (outcome,) = outcomes
    assert outcome.result.status == "skipped"
    reason = outcome.result.reason
    assert "dockerd is not installed" in reason and "--backend cgroup or process" in reason
    assert set(guest_module.guests_dir().glob("*")) <= before  # nothing was booted


def test_a_guest_that_cannot_be_had_skips_its_cells_saying_why(tmp_path):
    # Debian's 6.12 has no cgroup v1 memory controller (or, on a machine without qemu or the kernel, that)
    before = set(guest_module.guests_dir().glob("*"))
    with RunSession(tmp_path, backend="process", log=lambda line: None) as session:
        outcomes = list(measure_with_guests(session, [_cell(kernel="6.12", cgroup="v1")], log=lambda line: None))
    (outcome,) = outcomes
    assert outcome.result.status == "skipped"
    assert outcome.result.reason.startswith("guest (Linux 6.12, cgroup v1): ")
    if guest_unavailable() is None and kernels.cached("6.12") is not None:
        assert "CONFIG_MEMCG_V1" in outcome.result.reason
    assert set(guest_module.guests_dir().glob("*")) <= before  # nothing was booted


@pytest.fixture(scope="module")
def cgroup_here():
    reason = CgroupBackend().available()
    if reason:
        pytest.skip(f"the cgroup backend cannot run here: {reason}")


def _cells_csv(run_dir: Path) -> dict[str, dict[str, str]]:
    import csv

    with open(run_dir / "cells.csv", newline="") as f:
        return {row["cell_id"]: row for row in csv.DictReader(f)}


def test_run_puts_the_other_cgroup_version_in_a_guest_and_records_where(available, cgroup_here, tmp_path):
    here = cgroup_version()
    other = "v2" if here == "v1" else "v1"
    out = subprocess.run([PYTHON, "-m", "harness", "run", "alloc_release", "--quick",
                          "--matrix", "go=default", "--backend", "cgroup",
                          "--matrix", f"cgroup={here},{other}", "--matrix", "touch=true,false",
                          "--matrix", "freeos=false", "--matrix", "memory=64MiB", "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]  # 1: an expectation failed
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    rows = _cells_csv(run_dir)
    assert len(rows) == 4
    for row in rows.values():
        in_guest = row["cgroup"] == other
        assert row["cgroup_version"] == row["cgroup"]
        assert (row["accel"] in ("kvm", "tcg")) == in_guest and (row["accel"] == "native") != in_guest
        assert row["kernel"].startswith("6.1.") == in_guest
        # 128 MiB touched in a 64 MiB cgroup: the kernel's OOM killer, counted by the cgroup
        assert row["status"] == ("oom_killed" if "touch=true" in row["cell_id"] else "ok"), row
        assert (row["oom_killed"] == "True") == ("touch=true" in row["cell_id"])
    import json

    (guest,) = json.loads((run_dir / "manifest.json").read_text())["guests"]
    assert guest["cgroup"] == other and guest["release"].startswith("6.1.") and guest["accel"] in ("kvm", "tcg")



def test_ctrl_c_during_a_guest_cell_leaves_nothing_and_records_the_cell(available, cgroup_here, tmp_path):
    other = "v2" if cgroup_version() == "v1" else "v1"
    run = subprocess.Popen([PYTHON, "-m", "harness", "run", "alloc_release", "--quick",
                            "--matrix", "go=default", "--backend", "cgroup",
                            "--matrix", f"cgroup={other}", "--matrix", "touch=true", "--matrix", "freeos=false",
                            "--matrix", "idle=300s", "--results", str(tmp_path)],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in run.stdout:  # the guest's worker says when the cell starts
        seen.append(line)
        if "cell 0000 starts" in line:
            break
    qemus = qemus_of(run.pid)
    assert qemus, "".join(seen)
    run.send_signal(signal.SIGINT)
    rest = run.communicate(timeout=300)[0]
    assert run.returncode == 130, "".join(seen) + rest
    assert all(gone(pid) for pid in qemus)
    assert not list(guest_module.guests_dir().glob(f"guest-{run.pid}-*"))
    assert not list(guest_module.guests_dir().glob(f"cells-{run.pid}-*"))
    (run_dir,) = tmp_path.iterdir()
    (row,) = _cells_csv(run_dir).values()
    assert row["status"] == "interrupted", row
    print(rest)


def test_the_hosts_tmp_is_seen_in_the_guest(guest, tmp_path):
    """A checkout, a venv or a run directory under the host's /tmp (pytest's tmp_path is one) is found at its
    own path in the guest: the guest's own scratch disk is its $TMPDIR, not mounted over /tmp."""
    (tmp_path / "seen.txt").write_text("from the host\n")
    result = guest.run(["sh", "-c", f"cat {tmp_path}/seen.txt; echo $TMPDIR"], timeout_s=300)
    assert result.exit_code == 0 and result.output.splitlines()[-2:] == ["from the host", guest_module.GUEST_TMP], \
        result.output


def test_page_cache_in_the_guests_tmpdir_is_file_memory_not_shmem(guest):
    script = r"""
G=/sys/fs/cgroup/t-cache
mkdir $G
sh -c 'echo $$ > /sys/fs/cgroup/t-cache/cgroup.procs; exec dd if=/dev/zero of=$TMPDIR/cache bs=1M count=48 status=none'
stat -f -c %T $TMPDIR
awk '$1 == "file" || $1 == "shmem" {print $1, $2}' $G/memory.stat
"""
    result = guest.run(["sh", "-c", script], timeout_s=300)
    lines = result.output.splitlines()
    assert result.exit_code == 0 and lines[0] != "tmpfs", result.output
    stat = dict(line.split() for line in lines[1:])
    assert int(stat["file"]) >= 40 << 20, result.output
    assert int(stat["shmem"]) < 8 << 20, result.output


def test_a_cell_that_never_ran_keeps_the_kernel_it_asked_for_in_cells_csv():
    from harness.run.backends.base import RunResult
    from harness.store.rundir import cells_row

    row = cells_row(RunResult(cell=_cell(kernel="6.12", cgroup="v1"), status="skipped", reason="no v1 there"))
    assert (row["kernel"], row["cgroup"], row["accel"]) == ("6.12", "v1", "")
    ran = cells_row(RunResult(cell=_cell(kernel="6.1"), status="ok",
                              placement={"kernel": "6.1.0-57-amd64", "accel": "tcg", "cgroup_version": "v2"}))
    assert (ran["kernel"], ran["accel"], ran["cgroup_version"]) == ("6.1.0-57-amd64", "tcg", "v2")


def test_a_guest_that_stalls_is_given_up_and_its_cells_run_again_in_a_new_guest(available, cgroup_here, tmp_path,
                                                                                 monkeypatch):
    from harness.drive import guest_cells
    from harness.run import guest_monitor

    other = "v2" if cgroup_version() == "v1" else "v1"
    booted: list[Guest] = []

    class FirstOneStalls(Guest):
        """The first guest stops once booted: its heartbeat ended, its vCPUs paused by qemu's monitor."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs, **({} if booted else {"stall_s": 20}))
            booted.append(self)

        def start(self):
            super().start()
            if len(booted) == 1:
                assert "silenced" in self.run(["sh", "-c", SILENCE_HEARTBEAT], timeout_s=120).output
                guest_monitor.Monitor(self.monitor_name).command("stop")

    monkeypatch.setattr(guest_cells, "Guest", FirstOneStalls)
    cells = [_cell(cgroup=other, touch="false"), _cell(cgroup=other, touch="true")]
    lines: list[str] = []
    with RunSession(tmp_path, backend="cgroup", log=lines.append) as session:
        outcomes = list(measure_with_guests(session, cells, log=lines.append))
        run_dir = session.store.run_dir
    assert len(booted) >= 2, "\n".join(lines)  # a third only if the second hung too, as TCG boots can
    assert sorted(o.result.cell.cell_id for o in outcomes) == sorted(c.cell_id for c in cells), lines
    assert {o.result.status for o in outcomes} == {"ok"}, [o.result.reason for o in outcomes]
    assert any("run again in a new guest" in line for line in lines), lines
    kept = sorted((run_dir / guest_cells.STALLS_DIR).iterdir())
    assert len(kept) == len(booted) - 1, kept
    diagnosis = kept[0].read_text()
    assert "no heartbeat for" in diagnosis and "CPU 1: " in diagnosis, diagnosis  # paused: no SysRq answer
