"""Pure logic of the backends: outcome classification, strace parsing, line splitting, selection."""

import json

import pytest

from harness.run.backends.select import BackendUnavailable, select_backend
from harness.run.lines import pump_lines
from harness.run.observe.strace import parse_strace
from harness.run.outcome import classify


def judge(**kw):
    base = dict(exit_code=0, oom_killed=False, timed_out=False, interrupted=False, stderr_tail="", timeout_s=5)
    base.update(kw)
    return classify(**base)


@pytest.mark.parametrize(
    "kw,status,words",
    [
        ({}, "ok", []),
        ({"exit_code": -9, "oom_killed": True}, "oom_killed", ["OOM"]),
        # SIGKILL without the kernel's OOM counter moving is not an OOM kill.
        ({"exit_code": -9}, "failed", ["SIGKILL"]),
        ({"exit_code": 137, "oom_killed": True}, "oom_killed", []),
        ({"exit_code": -9, "timed_out": True}, "timeout", ["timeout_s=5"]),
        ({"exit_code": 2, "stderr_tail": "panic: boom\n"}, "failed", ["status 2", "panic: boom"]),
        ({"exit_code": None, "interrupted": True, "oom_killed": True}, "interrupted", ["SIGINT"]),
    ],
)
def test_classify(kw, status, words):
    got_status, reason = judge(**kw)
    assert got_status == status
    for w in words:
        assert w in reason


STRACE_LOG = """\
4242  1700000000.500000 mmap(NULL, 1073741824, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000
4243  1700000000.600000 madvise(0xc000400000, 1073741824, MADV_DONTNEED <unfinished ...>
4242  1700000000.600100 munmap(0x7f1000000000, 65536) = 0
4243  1700000000.700000 <... madvise resumed>) = 0
[pid  4244] 1700000000.800000 madvise(0xc000000000, 4194304, MADV_FREE) = 0
4242  1700000000.900000 +++ exited with 0 +++
"""


def test_parse_strace_moves_wall_clock_onto_monotonic():
    offset = 1_700_000_000_000_000_000 - 5_000_000_000  # wall - monotonic
    events = parse_strace(STRACE_LOG, offset)
    assert [(e[2], e[3]) for e in events] == [
        ("mmap", 1073741824.0), ("madvise", 1073741824.0), ("munmap", 65536.0), ("madvise", 4194304.0),
    ]
    assert all(e[1] == "syscall" for e in events)
    assert events[0][0] == 5_500_000_000
    assert json.loads(events[1][4])["advice"] == "MADV_DONTNEED"
    assert json.loads(events[3][4]) == {"tid": 4244, "advice": "MADV_FREE", "ret": "0"}
    assert json.loads(events[0][4])["flags"] == "MAP_PRIVATE|MAP_ANONYMOUS"


def test_pump_lines_joins_lines_split_across_chunks():
    got = []
    pump_lines(iter([b'{"t":1,', b'"ev":"start"}\nsecond\r\n', b"", b"third\nunterminated"]),
               lambda line, ns: got.append(line))
    assert got == ['{"t":1,"ev":"start"}', "second", "third", "unterminated"]


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="docker, cgroup, process"):
        select_backend("kubernetes")


def test_process_backend_is_always_available():
    backend, why = select_backend("process")
    assert backend.name == "process" and "process" in why


def test_auto_prefers_docker_then_cgroup():
    from harness.build.image import docker_unavailable
    from harness.run.observe.cgroupfs import writable_memory_hierarchy

    backend, why = select_backend("auto")
    if docker_unavailable() is None:
        assert backend.name == "docker"
    elif writable_memory_hierarchy() is None:
        assert backend.name == "cgroup" and "docker unavailable" in why
    else:
        assert backend.name == "process" and "skipped" in why


def test_explicit_unavailable_backend_says_what_to_use(monkeypatch):
    import harness.build.image

    monkeypatch.setattr(harness.build.image, "docker_unavailable", lambda client=None: "no daemon at /x.sock")
    with pytest.raises(BackendUnavailable) as err:
        select_backend("docker")
    assert "no daemon at /x.sock" in str(err.value) and "--backend cgroup" in str(err.value)


def test_threads_state_names_what_each_thread_does():
    import os

    from harness.run.supervise import threads_state

    mine = threads_state(os.getpid())
    assert mine.startswith("threads at the timeout: ") and "× R" in mine   # this thread is running
    assert threads_state(None) == "" and threads_state(2 ** 22 + 7) == ""  # unknown, or no such process


class _Refusing:
    """A container whose removal fails `refusals` times (a daemon busy with a frozen process)."""

    def __init__(self, refusals: int, then=None):
        self.refusals, self.then, self.calls = refusals, then, 0

    def remove(self, force: bool):
        assert force
        self.calls += 1
        if self.calls <= self.refusals:
            import docker

            raise docker.errors.APIError("409 Conflict: removal of container is already in progress")
        if self.then is not None:
            raise self.then


def test_container_removal_is_tried_again_and_a_failure_is_told(monkeypatch):
    import docker

    from harness.run.backends import docker as backend

    monkeypatch.setattr(backend.time, "sleep", lambda s: None)
    flaky = _Refusing(2)
    assert backend._remove(flaky) == "" and flaky.calls == 3
    assert backend._remove(_Refusing(0, then=docker.errors.NotFound("gone"))) == ""
    stuck = _Refusing(99)
    assert "409 Conflict" in backend._remove(stuck) and stuck.calls == 4


def test_statuses_describe_every_status():
    from typing import get_args

    from harness.run.backends.base import ERRORS, MEASURED, STATUSES, Status

    assert tuple(STATUSES) == get_args(Status)
    assert set(MEASURED) | set(ERRORS) < set(STATUSES) and not set(MEASURED) & set(ERRORS)


SCENARIO = """
description = "one axis declared by a test"
workload = "alloc-release"
[params]
size = "1MiB"
[matrix]
madvdontneed = ["1"]
"""


def test_an_axis_is_one_declaration(monkeypatch, tmp_path):
    """An axis declared here and nowhere else reaches the cell ids, the workload's environment, the
    container's limits, and the check that a cell never runs without the host and build it asks for."""
    import dataclasses

    from harness.define.axes import AXES, Axis, Contribution
    from harness.define.build import Build
    from harness.define.matrix import expand
    from harness.define.scenario import load
    from harness.run.backends.docker import container_options
    from harness.run.backends.process import ProcessBackend
    from harness.run.env import child_env

    def ballast(value, values):
        return Contribution(env={"GODEBUG": f"ballast={value}", "BALLAST": value}, limits={"cpus": float(value)},
                            host_settings={"kernel": "6.1"}, build_env={"GOEXPERIMENT": "ballast"})

    monkeypatch.setitem(AXES, "ballast", Axis("ballast", "a test's own axis", str, contribute=ballast))
    (tmp_path / "one.toml").write_text(SCENARIO)
    cells = expand(load(tmp_path / "one.toml"), {"ballast": ["1", "2"]}, repeats=1)
    assert [c.cell_id for c in cells] == ["one[ballast=1,r0]", "one[ballast=2,r0]"]
    cell = cells[1]

    # Its GODEBUG setting joins madvdontneed's; its own variable is passed as it is.
    env = child_env(cell, host={})
    assert env["GODEBUG"] == "madvdontneed=1,ballast=2" and env["BALLAST"] == "2"
    build = Build("0", tmp_path / "bin", "x", "amd64")
    options = container_options(cell, build, tmp_path, None, "run")
    assert options["nano_cpus"] == 2_000_000_000 and options["environment"]["BALLAST"] == "2"

    # No backend here can give a cell a host setting: not run. (Its build settings are its build's:
    # tests/test_goexperiment.py.)
    assert cell.build_env == (("GOEXPERIMENT", "ballast"),)
    r = ProcessBackend().run(cell, build)
    assert (r.status, r.reason) == ("skipped", "needs the host setting kernel=6.1; the process backend runs cells "
                                               "on this host as it is and cannot set it")
    # A limit no backend applies is not silently dropped either.
    r = ProcessBackend().run(dataclasses.replace(cell, limits=(("ballast", 1.0),)), build)
    assert (r.status, r.reason) == ("skipped", "needs a ballast limit; the process backend has none: "
                                               "no backend applies it")


class _Sleeper:
    """A launcher whose workload never ends by itself: it ends when killed, or raises `interrupt` from wait."""

    def __init__(self, interrupt: bool = False):
        self.interrupt, self.killed, self.removed, self.signals = interrupt, False, 0, []

    def start(self, obs):
        obs.mark_start()
        return None, None  # nothing to sample

    def wait(self, seconds):
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        return self.killed

    def signal(self, which):
        self.signals.append(which)
        self.killed = self.killed or which == "kill"

    def remove(self):
        self.removed += 1
        return {"launcher": "sleeper"}

    def exit_code(self):
        return -9 if self.killed else None

    def oom_killed(self):
        return False

    def peak(self):
        return 4096


def test_the_loop_kills_at_the_timeout_and_keeps_what_a_ctrl_c_left(tmp_path):
    from harness.define.cell import Cell
    from harness.run.backends.base import RunInterrupted
    from harness.run.backends.loop import run_launched

    cell = Cell(cell_id="s", scenario="s", workload="alloc-release", args=(), timeout_s=0.0)
    sleeper = _Sleeper()
    r = run_launched(sleeper, cell, tmp_path, None)
    assert r.status == "timeout" and r.reason.startswith("still running after timeout_s=0; killed")
    assert sleeper.signals == ["kill"] and sleeper.removed == 1
    assert r.exit_code == -9 and r.peak_cgroup_bytes == 4096 and r.sampler_stats["launcher"] == "sleeper"

    sleeper = _Sleeper(interrupt=True)
    with pytest.raises(RunInterrupted) as stop:
        run_launched(sleeper, cell, tmp_path, None)
    assert stop.value.result.status == "interrupted" and stop.value.result.t0_ns > 0
    assert sleeper.signals == ["kill"] and sleeper.removed == 1  # never left running


class _Confines:
    """A backend as CellRunner sees it: its name and the limits it applies."""

    def __init__(self, name, limits, unconfined=frozenset()):
        self.name, self.limits, self.unconfined = name, frozenset(limits), frozenset(unconfined)

    def available(self):
        return None


def _runner(requested, session_backend, others):
    from harness.drive.session import CellRunner

    runner = CellRunner.__new__(CellRunner)
    runner.log, runner.run_label, runner.requested = print, "", requested
    runner.backend = session_backend
    runner._backends = {session_backend.name: session_backend, **others}
    runner._builds = {}
    return runner


def test_auto_runs_a_cell_on_a_backend_that_applies_all_its_limits():
    """Under auto, Docker (no memory.high) hands a memory_high cell to the cgroup backend; a cell it can
    confine stays with it; an explicit --backend docker is kept (and skips the cell, saying why)."""
    from harness.define.axes import contributions
    from harness.define.cell import Cell

    docker = _Confines("docker", {"memory", "cpus"})
    cgroup = _Confines("cgroup", {"memory", "memory_high", "swap"})
    high = Cell(cell_id="h", scenario="s", workload="alloc-release", args=(),
                **contributions({"memory": "256MiB", "memory_high": "80%"}))
    plain = Cell(cell_id="p", scenario="s", workload="alloc-release", args=(), **contributions({"memory": "256MiB"}))
    assert _runner("auto", docker, {"cgroup": cgroup})._backend_for(high) is cgroup
    assert _runner("auto", docker, {"cgroup": cgroup})._backend_for(plain) is docker
    assert _runner("docker", docker, {"cgroup": cgroup})._backend_for(high) is docker
    # No backend here applies memory.high: the session's own says why it skips the cell.
    assert _runner("auto", docker, {"cgroup": "no writable memory hierarchy"})._backend_for(high) is docker
