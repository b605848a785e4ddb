import pytest

from harness.define.axes import contributions
from harness.define.cell import Cell
from harness.run.env import child_env

HOST = {
    "PATH": "/usr/bin:/bin",
    "TZ": "UTC",
    "HOME": "/root",
    "GOGC": "1",
    "GODEBUG": "x",
    "GOMEMLIMIT": "1",
    "GOMAXPROCS": "1",
    "GOTRACEBACK": "crash",
    "LD_PRELOAD": "/evil.so",
}


def cell(axes=None, **kw):
    """A cell with these axis values ({"gogc": "50"}) and Cell fields."""
    return Cell(cell_id="c", scenario="s", workload="alloc-release", args=(), **contributions(axes or {}), **kw)


def test_host_runtime_settings_never_leak():
    env = child_env(cell(), host=HOST)
    assert env == {"PATH": "/usr/bin:/bin", "TZ": "UTC"}


def test_host_runtime_settings_never_leak_from_os_environ(monkeypatch):
    for k, v in HOST.items():
        monkeypatch.setenv(k, v)
    env = child_env(cell())
    for name in ("GOGC", "GODEBUG", "GOMEMLIMIT", "GOMAXPROCS", "GOTRACEBACK", "HOME", "LD_PRELOAD"):
        assert name not in env


def test_cell_settings_replace_host_ones():
    env = child_env(
        cell({"gogc": "50", "madvdontneed": "1", "gomemlimit": "300MiB", "godebug": "gctrace=1"}),
        host=HOST,
    )
    assert env["GOGC"] == "50"
    assert env["GODEBUG"] == "madvdontneed=1,gctrace=1"
    assert env["GOMEMLIMIT"] == "314572800"
    assert "GOMAXPROCS" not in env


@pytest.mark.parametrize("axes,key", [({"gogc": "off"}, "GOGC"), ({"gomemlimit": "off"}, "GOMEMLIMIT")])
def test_off_passes_through(axes, key):
    assert child_env(cell(axes), host={})[key] == "off"


def test_gomemlimit_share_is_taken_of_the_memory_limit():
    env = child_env(cell({"memory": "1GiB", "gomemlimit": "50%"}), host={})
    assert env["GOMEMLIMIT"] == str(512 << 20)


def test_godebug_absent_when_empty():
    assert "GODEBUG" not in child_env(cell(), host={})


def test_unset_axes_set_nothing():
    env = child_env(cell({"gogc": "unset", "madvdontneed": "unset", "gomemlimit": "unset", "godebug": "none"}),
                    host={})
    assert env == {}


def test_a_traced_workload_waits_for_its_tracer_only_when_strace_will_attach(monkeypatch):
    import harness.run.env as env_module
    from harness.define.workloads import Program
    from harness.run.env import TRACED_FILE, WAIT_FOR_TRACER

    monkeypatch.setattr(env_module, "strace_path", lambda: "/usr/bin/strace")
    traced = cell(trace_syscalls=True)
    # The file in the scratch directory as the workload sees it (the container's mount point).
    assert child_env(traced, host={}, tmpdir="/scratch")[WAIT_FOR_TRACER] == f"/scratch/{TRACED_FILE}"
    assert WAIT_FOR_TRACER not in child_env(cell(), host={}, tmpdir="/scratch")
    # A program nobody here wrote does not know the variable: it is not told to wait.
    program = Program(kind="binary", name="true", binary="/bin/true")
    assert WAIT_FOR_TRACER not in child_env(cell(trace_syscalls=True, program=program), host={}, tmpdir="/s")
    # Without strace nothing attaches, and a workload told to wait would wait for nothing.
    monkeypatch.setattr(env_module, "strace_path", lambda: None)
    assert WAIT_FOR_TRACER not in child_env(traced, host={}, tmpdir="/scratch")


def test_the_tracer_variable_is_the_one_the_workloads_read():
    from pathlib import Path

    from harness.run.env import WAIT_FOR_TRACER

    tracer_go = Path(__file__).resolve().parents[1] / "go_workloads/internal/telemetry/tracer.go"
    assert f'WaitForTracerEnv = "{WAIT_FOR_TRACER}"' in tracer_go.read_text()
