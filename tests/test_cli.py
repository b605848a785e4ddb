"""The command line: bad input exits 2 with every message, list/validate, and a real run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.drive.cli import main

ROOT = Path(__file__).resolve().parent.parent

# A scenario that exists only as TOML: it must run with no code change anywhere.
NEW_SCENARIO = """
description = "A 32 MiB touched spike handed back with FreeOSMemory in a 64 MiB container."
workload = "alloc-release"
[params]
size = "32MiB"
baseline = "200ms"
hold = "200ms"
idle = "500ms"
freeos = true
[limits]
memory = "64MiB"
[matrix]
madvdontneed = ["1"]
[run]
timeout = "30s"
[[expect]]
metric = "peak_rss"
op = ">"
value = "30MiB"
[[expect]]
metric = "rss@idle"
op = "<"
value = "24MiB"
"""


def write_scenario(directory: Path, name: str = "new_spike", text: str = NEW_SCENARIO) -> Path:
    scenarios = directory / "scenarios"
    scenarios.mkdir(exist_ok=True)
    path = scenarios / f"{name}.toml"
    path.write_text(text)
    return path


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("run", "validate", "list", "report", "build"):
        assert command in out.stdout
    run_help = run_cli("run", "--help").stdout
    for option in ("--matrix", "--backend", "--repeats", "--go", "--results", "--quick"):
        assert option in run_help


def test_validate_reports_every_error_and_exits_2(tmp_path, capsys):
    bad = write_scenario(tmp_path, "bad", NEW_SCENARIO.replace("[run]", "[runs]").replace('op = ">"', 'op = "=>"'))
    good = write_scenario(tmp_path, "good")
    assert main(["validate", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{good}: ok" in captured.out
    assert f"{bad}: runs: unknown key; did you mean 'run'?" in captured.err
    assert f"{bad}: expect[0].op: '=>' is not a comparison" in captured.err
    assert "Traceback" not in captured.err


def test_typo_wrong_type_and_unknown_workload_are_reported_together(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('description = "bad"\nworkload = "alloc-relase"\n[params]\nsize = "1GiB"\n'
                   '[limits]\nmemroy = "1GiB"\n[run]\nrepeats = "two"\n')
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: workload: unknown workload 'alloc-relase'; did you mean 'alloc-release'?" in err
    assert f"{bad}: limits.memroy: unknown key; did you mean 'memory'?" in err
    assert f"{bad}: run.repeats: 'two' is not a positive integer" in err
    assert "Traceback" not in err


def test_validate_shipped_scenarios(capsys):
    assert main(["validate", *map(str, sorted((ROOT / "scenarios").glob("*.toml")))]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no_such_scenario"], "no_such_scenario: no such scenario"),
        (["run", "alloc_release", "--matrix", "gocg=50"], "unknown axis 'gocg'; did you mean 'gogc'?"),
        (["run", "alloc_release", "--matrix", "madvdontneed=2"], "alloc_release: madvdontneed=2"),
        (["run", "alloc_release", "--go", "newest"], "is not a Go version"),
    ],
)
def test_run_bad_input_exits_2_before_running_anything(argv, message, capsys, tmp_path):
    assert main(argv + ["--results", str(tmp_path / "results")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_run_bad_repeats_is_a_usage_error():
    out = run_cli("run", "alloc_release", "--repeats", "0")
    assert out.returncode == 2 and "not a positive integer" in out.stderr


def test_list_shows_scenarios_workloads_and_axes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "alloc_release" in out and "C2,C10" in out and "28 / 12" in out
    assert "small-churn" in out and "pointers=false" in out
    assert "standard axes: go, memory, cpus, gogc, gomemlimit, madvdontneed, godebug, goexperiment, backend" in out


def test_new_toml_scenario_runs_through_the_cli(tmp_path, limiting_backend):
    path = write_scenario(tmp_path)
    results = tmp_path / "results"
    out = run_cli("run", str(path), "--results", str(results))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert "[1/1] new_spike[r0] ok" in out.stdout
    run_dir = Path(lines[-1])
    assert run_dir.parent == results and (run_dir / "cells.csv").exists()
    from harness.store.rundir import load_run

    run = load_run(run_dir)
    assert list(run.cells["cell_id"]) == ["new_spike[r0]"]
    # Sampling went on into the last phase, the 500 ms idle: the sampler's own readings, since the
    # workload's final metrics line would reach the end whatever the sampler did.
    idle = run.events.query("kind == 'phase' and name == 'idle'")["t_s"]
    assert len(idle) == 1 and run.samples.query("source == 'proc'")["t_s"].max() >= idle.iloc[0]


def test_failed_expectation_exits_1(tmp_path, limiting_backend):
    impossible = NEW_SCENARIO.replace('value = "30MiB"', 'value = "1GiB"')
    path = write_scenario(tmp_path, "too_strict", impossible)
    out = run_cli("run", str(path), "--results", str(tmp_path / "results"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "too_strict[r0]: peak_rss = " in out.stdout and "expected > 1024 MiB" in out.stdout


def _run_dir(tmp_path: Path, **manifest) -> Path:
    from harness.store.rundir import RunStore

    return RunStore.create(tmp_path / "results", manifest, run_id="earlier").run_dir


@pytest.mark.parametrize("kind, message", [
    ("not a run", "not a run directory (no manifest.json); --resume continues a run directory made by goreclaim run"),
    ("complete", "complete already (0 cells); nothing to resume"),
    ("advise", "made by goreclaim advise; continue it with goreclaim advise --resume"),
    ("no argv", "its manifest has no argv (made before runs kept their command line); it cannot be resumed"),
])
def test_run_resume_refuses_what_it_cannot_continue_in_one_line(kind, message, tmp_path, capsys):
    if kind == "not a run":
        run_dir = tmp_path
    elif kind == "advise":
        run_dir = _run_dir(tmp_path, argv=["alloc_release"], advise={"argv": ["alloc_release", "--memory", "1GiB"]})
    else:
        run_dir = _run_dir(tmp_path, **({} if kind == "no argv" else {"argv": ["alloc_release"]}))
        if kind == "complete":
            from harness.store.rundir import RunStore

            RunStore.reopen(run_dir).finish(True)
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("extra", [["--quick"], ["alloc_release"], ["--backend", "cgroup"], ["--results", "x"]])
def test_run_resume_with_other_options_is_an_error(extra, tmp_path, capsys):
    run_dir = _run_dir(tmp_path, argv=["alloc_release"])
    assert main(["run", "--resume", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert f"--resume RUN_DIR: give nothing else ({' '.join(extra)}); the run directory holds the command line" in err
    assert not list((run_dir / "cells").iterdir())


def test_run_resume_keeps_the_cells_on_disk_and_runs_the_rest(tmp_path, capsys):
    """Resumed from a directory whose manifest holds the command line: only the missing cell runs, in it,
    with the program's own arguments too."""
    from harness.store.rundir import load_run

    results = tmp_path / "results"
    argv = ["run", "--program", "/bin/echo", "--matrix", "gogc=50,100", "--backend", "process",
            "--results", str(results), "--", "resumed", "words"]
    assert main(argv) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert load_run(run_dir).manifest["argv"] == argv[1:]
    # As a kill leaves it: the second cell cut short, the run not complete.
    second = sorted((run_dir / "cells").iterdir())[1]
    (second / "cell.json").unlink()
    (run_dir / "manifest.json").write_text((run_dir / "manifest.json").read_text()
                                           .replace('"complete": true', '"complete": false'))
    assert main(["run", "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"resuming {run_dir}: 1 of 2 cells on disk are kept, 1 to run" in out
    assert "[1/1] echo[gogc=100,r0] ok" in out and "[gogc=50" not in out
    run = load_run(run_dir)
    assert list(run.cells["cell_id"]) == ["echo[gogc=50,r0]", "echo[gogc=100,r0]"]
    assert run.manifest["complete"] is True and run.manifest["argv"] == argv[1:]
    assert (sorted((run_dir / "cells").iterdir())[1] / "stdout.txt").read_text() == "resumed words\n"
    assert [p.name for p in results.iterdir()] == [run_dir.name], "a resumed run writes into its own directory"


def test_clean_says_when_there_is_nothing_to_remove(tmp_path):
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    out = subprocess.run([sys.executable, "-m", "harness", "clean"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(env_tmp)}, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if not line.startswith("left alone:")]
    # Another engineer's killed run may leave something in the shared cgroup hierarchy or Docker: then it is listed.
    assert lines == ["nothing to remove"] or all(line.startswith("removed ") for line in lines), out.stdout


@pytest.mark.parametrize("cut", [True, False])
def test_resume_checks_the_expectations_of_the_cells_it_keeps(cut, tmp_path, limiting_backend, capsys):
    """Killed with a cell cut short, or after the last cell but before the end: the resumed run fails the
    kept cells' expectations, per cell and relative, as an uninterrupted run does."""
    from harness.store.rundir import load_run

    strict = NEW_SCENARIO.replace('value = "30MiB"', 'value = "1GiB"').replace('madvdontneed = ["1"]',
                                                                             'madvdontneed = ["0", "1"]')
    strict += '[[expect]]\nwhere = { madvdontneed = "1" }\nmetric = "peak_rss"\nop = ">"\nratio = 100\n' \
              'of = { madvdontneed = "0" }\n'
    path = write_scenario(tmp_path, "strict", strict)
    assert main(["run", str(path), "--results", str(tmp_path / "results")]) == 1
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    second = sorted((run_dir / "cells").iterdir())[1]
    if cut:
        (second / "cell.json").unlink()
    (run_dir / "manifest.json").write_text((run_dir / "manifest.json").read_text()
                                           .replace('"complete": true', '"complete": false'))
    assert main(["run", "--resume", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert ("1 of 2 cells on disk are kept, 1 to run" if cut else "2 of 2 cells on disk are kept, 0 to run") in out
    kept_id = load_run(run_dir).cells["cell_id"].iloc[0]
    assert f"FAIL {kept_id}: peak_rss = " in out and "expected > 1024 MiB" in out
    assert "expected > 100 × strict[madvdontneed=0,r0]" in out, out
    assert load_run(run_dir).manifest["complete"] is True
