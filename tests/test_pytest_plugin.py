"""Scenario files as pytest items, driven through pytester."""

from pathlib import Path

import pytest
from test_cli import NEW_SCENARIO

from tests.guests import guest_unavailable

pytest_plugins = ["pytester"]

SMALL = """
description = "collection only"
workload = "alloc-release"
[params]
size = "16MiB"
[limits]
memory = "64MiB"
[matrix]
touch = [true, false]
[run]
repeats = 1
"""


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(pytester, monkeypatch):
    # In a subprocess: pandas/numpy cannot be re-imported inside one interpreter.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.runpytest = pytester.runpytest_subprocess
    pytester.makeconftest('pytest_plugins = ["harness.drive.pytest_plugin"]')
    pytester.mkdir("scenarios")
    return pytester


def add(pytester, name, text):
    path = pytester.path / "scenarios" / f"{name}.toml"
    path.write_text(text)
    return path


def test_collect_only_lists_the_cartesian_product(project):
    add(project, "small", SMALL)
    result = project.runpytest("scenarios", "--collect-only", "-q", "--matrix", "gogc=50,100",
                               "--matrix", "madvdontneed=0,1", "--results", "res")
    result.stdout.fnmatch_lines([
        "scenarios/small.toml::small[gogc=50,madvdontneed=0,touch=true,r0]",
        "scenarios/small.toml::small[gogc=50,madvdontneed=1,touch=true,r0]",
        "scenarios/small.toml::small[gogc=100,madvdontneed=0,touch=true,r0]",
        "scenarios/small.toml::small[gogc=100,madvdontneed=1,touch=true,r0]",
        "scenarios/small.toml::small[gogc=50,madvdontneed=0,touch=false,r0]",
        "*8 tests collected*",
    ])
    assert result.ret == 0
    assert not (project.path / "res").exists()  # nothing built, nothing run


def test_repeats_quick_and_k(project):
    add(project, "small", SMALL + '[quick]\nmatrix = { touch = ["true"] }\n')
    result = project.runpytest("scenarios", "--collect-only", "-q", "--quick", "--repeats", "3", "-k", "r1 or r2")
    result.stdout.fnmatch_lines(["scenarios/small.toml::small[r1]", "scenarios/small.toml::small[r2]",
                                 "*2/3 tests collected (1 deselected)*"])


def test_bad_scenario_is_a_collection_error_with_every_message(project):
    add(project, "broken", SMALL.replace("[run]", "[runn]").replace('size = "16MiB"', 'size = "16 megs"'))
    result = project.runpytest("scenarios", "--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's code for collection errors
    result.stdout.fnmatch_lines([
        "*scenarios/broken.toml: runn: unknown key; did you mean 'run'?*",
        "*scenarios/broken.toml: params.size: '16 megs': unknown size unit 'megs'*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_bad_matrix_option_is_reported_per_file(project):
    add(project, "small", SMALL)
    result = project.runpytest("scenarios", "--collect-only", "--matrix", "gogc=fast")
    result.stdout.fnmatch_lines(["*small: gogc=fast: 'fast': GOGC is a non-negative integer*"])


def test_xdist_is_refused(project, monkeypatch):
    add(project, "small", SMALL)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    result = project.runpytest("scenarios", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cells must not share a machine*"])


def test_new_toml_scenario_runs_under_pytest(project, limiting_backend):
    add(project, "new_spike", NEW_SCENARIO)
    result = project.runpytest("scenarios", "-v", "--results", "res", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*new_spike.toml::new_spike?r0? PASSED*", "*goreclaim run: *res/*"])
    assert any((project.path / "res").glob("*/cells.csv"))


def test_failed_expectation_and_relative_check(project, limiting_backend):
    text = NEW_SCENARIO.replace('madvdontneed = ["1"]', 'madvdontneed = ["0", "1"]').replace(
        'value = "30MiB"', 'value = "1GiB"')
    text = text.split("[[expect]]")[0] + """
[[expect]]
metric = "peak_rss"
op = ">"
value = "1GiB"
[[expect]]
where = { madvdontneed = "1" }
metric = "peak_rss"
op = ">"
ratio = 10
of = { madvdontneed = "0" }
"""
    add(project, "strict", text)
    result = project.runpytest("scenarios", "--results", "res", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "strict[madvdontneed=0,r0]: peak_rss = " in out and "expected > 1024 MiB" in out
    assert "expected > 10 × strict[madvdontneed=0,r0]" in out  # the pair, checked by its second cell
    assert "Traceback" not in out

    # With the partner deselected the relative check is noted, not failed.
    only = project.runpytest("scenarios", "--results", "res", "-p", "no:cacheprovider", "-k", "1")
    only.assert_outcomes(failed=1, deselected=1)
    only.stdout.fnmatch_lines(
        ["*goreclaim not checked: strict?madvdontneed=1,r0?: peak_rss vs the madvdontneed=0 cell*"])


def test_a_program_scenario_runs_under_pytest(project, limiting_backend):
    import json

    from harness.build import toolchain

    try:
        gofmt = toolchain.resolve().goroot / "bin" / "gofmt"
    except toolchain.ToolchainError as e:
        pytest.skip(f"no Go toolchain: {e}")
    tree = project.path / "tree"
    tree.mkdir()
    (tree / "a.go").write_text("package a\n")
    add(project, "fmt_tree", f'description = "gofmt over a tiny tree"\n[program]\nbinary = "{gofmt}"\n'
                             f'args = ["-l", "{tree}"]\nmounts = ["{tree}:ro"]\n[limits]\nmemory = "64MiB"\n')
    result = project.runpytest("scenarios", "--results", "res", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (manifest,) = (project.path / "res").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["programs"][0]["scenario"] == "fmt_tree"
    assert "in plain words" not in (manifest.parent / "report.md").read_text()  # not the claims report




def _cells_csv(run_root: Path) -> list[dict[str, str]]:
    import csv

    (path,) = run_root.glob("*/cells.csv")
    with path.open() as f:
        return list(csv.DictReader(f))


def test_cgroup_v2_cells_run_in_one_guest_booted_for_them(project):
    reason = guest_unavailable()
    if reason:
        print(f"guest test skipped: {reason}")
        pytest.skip(reason)
    add(project, "guest_spike", SMALL.replace("[run]", "[run]\ntimeout = \"3m\""))
    result = project.runpytest("scenarios", "-v", "--matrix", "cgroup=v2", "--results", "res",
                               "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    boots = [line for line in result.outlines if "booting for" in line]   # shown past output capture
    assert boots == ["guest (Linux 6.1, cgroup v2): booting for 2 cell(s)"], result.outlines
    rows = _cells_csv(project.path / "res")
    assert {r["cell_id"] for r in rows} == {"guest_spike[touch=true,r0]", "guest_spike[touch=false,r0]"}
    # Ran in the guest, contained there by the backend `auto` chose and recorded: the guest's own Docker
    # engine where this machine has docker.io to start there, else a cgroup.
    from harness.run.guest_docker import engine_missing

    chosen = "docker" if engine_missing() is None else "cgroup"
    for row in rows:
        assert (row["cgroup_version"], row["accel"] in ("kvm", "tcg"), row["backend"]) == ("v2", True, chosen)
        assert row["kernel"].startswith("6.1.")


def test_a_guest_cell_that_cannot_be_honoured_is_skipped_with_the_reason(project):
    # Debian's 6.12 has no cgroup v1 memory controller (or, on a machine without qemu or the kernel, that):
    # nothing is booted, each item is skipped with the guest's reason.
    add(project, "guest_v1_on_612", SMALL)
    result = project.runpytest("scenarios", "-rs", "--matrix", "cgroup=v1", "--matrix", "kernel=6.12",
                               "--results", "res", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*guest (Linux 6.12, cgroup v1)*"])
    assert all(r["status"] == "skipped" for r in _cells_csv(project.path / "res"))
