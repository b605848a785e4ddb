"""The goexperiment axis: a build setting that reaches `go build`, is cached per value, is proven in the
binary's build information, and is refused before anything starts on a Go that lacks the experiment."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.build import program as programs
from harness.build import toolchain, workload_build
from harness.define import units
from harness.define.axes import AXES, contributions
from harness.define.matrix import expand
from harness.define.project import DEFAULT_GO
from harness.define.scenario import load
from harness.define.workloads import Program

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "greentea.toml"


def _installed(version: str) -> toolchain.Toolchain:
    tc = toolchain.installed(version)
    if tc is None:
        pytest.skip(f"Go {version} is not installed here (nothing is downloaded by this test)")
    return tc


# ---- the axis ------------------------------------------------------------------------------------


def test_goexperiment_values_are_written_as_go_takes_them():
    canonical = AXES["goexperiment"].canonical
    assert canonical("GreenTeaGC") == "greenteagc"
    assert canonical(" nogreenteagc , fieldtrack ") == "nogreenteagc,fieldtrack"
    assert canonical("unset") == "unset"
    for bad in ("green tea", "greenteagc,,x", "1gc", "green-tea"):
        with pytest.raises(units.UnitError, match="not an experiment name"):
            canonical(bad)


def test_goexperiment_is_a_build_setting_not_an_environment_variable():
    parts = contributions({"goexperiment": "nogreenteagc", "gogc": "100"})
    assert parts["build_env"] == (("GOEXPERIMENT", "nogreenteagc"),)
    assert ("GOEXPERIMENT", "nogreenteagc") not in parts["env"]
    assert contributions({"goexperiment": "unset"})["build_env"] == ()


def test_each_build_setting_has_its_own_cache_directory():
    names = {workload_build.build_dir_name("ab" * 32, "1.26.6", "amd64", env)
             for env in ((), (("GOEXPERIMENT", "greenteagc"),), (("GOEXPERIMENT", "nogreenteagc"),))}
    assert len(names) == 3
    assert "ababab" in workload_build.build_dir_name("ab" * 32, "1.26.6", "amd64")


def test_each_build_setting_has_its_own_image():
    from harness.build.image import image_labels, image_tag
    from harness.define.build import Build

    plain = Build("1.26.6", Path("/b"), "ab" * 32, "amd64")
    on = dataclasses.replace(plain, build_env=(("GOEXPERIMENT", "greenteagc"),))
    off = dataclasses.replace(plain, build_env=(("GOEXPERIMENT", "nogreenteagc"),))
    assert len({image_tag(plain), image_tag(on), image_tag(off)}) == 3
    assert image_labels(off)["goreclaim.build_env"] == "GOEXPERIMENT=nogreenteagc"


def test_the_experiments_a_go_version_names():
    assert programs.version_experiments("1.27.3-X:nogreenteagc") == "nogreenteagc"
    assert programs.version_experiments("1.21.13 X:fieldtrack,loopvar") == "fieldtrack,loopvar"
    assert programs.version_experiments("1.27.3") == "baseline"


def test_known_experiments_are_read_from_a_toolchains_source(tmp_path):
    flags = tmp_path / toolchain.EXPERIMENT_FLAGS
    flags.parent.mkdir(parents=True)
    flags.write_text("package goexperiment\n\ntype Flags struct {\n\tFieldTrack bool\n\t// doc\n\tGreenTeaGC bool\n}\n")
    parser = tmp_path / toolchain.EXPERIMENT_PARSER
    parser.parent.mkdir(parents=True)
    parser.write_text('names["regabi"] = func(v bool) {}\n')
    known = toolchain.known_experiments(tmp_path)
    assert known == {"fieldtrack", "greenteagc", "regabi"}
    assert toolchain.unknown_experiments("nogreenteagc,regabi,none", known) == []
    assert toolchain.unknown_experiments("greentea,nofieldtrack,noboring", known) == ["greentea", "noboring"]
    assert toolchain.known_experiments(tmp_path / "no-goroot") is None


# ---- real builds ---------------------------------------------------------------------------------


def test_green_tea_in_and_out_of_the_newest_go_shows_in_the_binaries_build_information():
    tc = _installed(DEFAULT_GO)
    on = workload_build.build_with(tc, (("GOEXPERIMENT", "greenteagc"),)).build
    off = workload_build.build_with(tc, (("GOEXPERIMENT", "nogreenteagc"),)).build
    plain = workload_build.build_with(tc).build
    assert len({on.bin_dir, off.bin_dir, plain.bin_dir}) == 3
    settings = {b.bin_dir: programs.go_build_info(b.binary("small-churn")) for b in (on, off, plain)}
    assert settings[on.bin_dir][1]["GOEXPERIMENT"] == "greenteagc"
    assert settings[off.bin_dir][1]["GOEXPERIMENT"] == "nogreenteagc"
    assert "GOEXPERIMENT" not in settings[plain.bin_dir][1]
    # Green Tea is the baseline of this Go (internal/buildcfg/exp.go): only turning it off is an experiment.
    assert (on.experiments, off.experiments, plain.experiments) == ("baseline", "nogreenteagc", "")
    assert settings[off.bin_dir][0].endswith("X:nogreenteagc")
    # go version -m says the same as the buildinfo reader.
    out = subprocess.run([str(tc.go), "version", "-m", str(off.binary("small-churn"))], env=toolchain.go_env(tc),
                         capture_output=True, text=True, check=True).stdout
    assert "build\tGOEXPERIMENT=nogreenteagc" in out


def test_an_experiment_a_go_before_1_18_cannot_show_fails_its_build():
    tc = _installed("1.15.15")  # no internal/goexperiment: nothing to check against before the build
    assert toolchain.known_experiments(tc.goroot) is None
    with pytest.raises(toolchain.ToolchainError, match="names no experiment and it records no build settings"):
        workload_build.build_with(tc, (("GOEXPERIMENT", "fieldtrack"),))


def test_a_program_package_is_built_with_the_experiment(tmp_path):
    tc = _installed(DEFAULT_GO)
    (tmp_path / "go.mod").write_text("module example.com/hello\n\ngo 1.21\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() {}\n")
    program = Program("package", "hello", package=str(tmp_path), module=str(tmp_path))
    build = programs.build_program(program, tc.version, (("GOEXPERIMENT", "nogreenteagc"),))
    assert build.experiments == "nogreenteagc"
    assert programs.go_build_info(build.executable)[1]["GOEXPERIMENT"] == "nogreenteagc"
    with pytest.raises(programs.ProgramBuildError, match="unknown GOEXPERIMENT bogusexperiment"):
        programs.build_program(program, tc.version, (("GOEXPERIMENT", "bogusexperiment"),))


def test_an_experiment_the_compiler_does_not_know_is_a_build_failed_cell_with_its_words():
    _installed(DEFAULT_GO)
    from harness.drive.session import CellRunner

    cells = expand(load(SCENARIO), {"goexperiment": ["bogusexperiment"], "go": ["default"]}, repeats=1, quick=True)
    runner = CellRunner("process", log=lambda line: None)
    result = runner.run(cells[0])
    assert result.status == "build_failed", result.reason
    assert "go: unknown GOEXPERIMENT bogusexperiment" in result.reason
    assert "\n$ GOEXPERIMENT=bogusexperiment " in result.reason  # the command, as it ran


def test_green_tea_on_a_go_without_it_is_one_line_exit_2_nothing_started(tmp_path):
    _installed("1.21.13")
    out = subprocess.run([sys.executable, "-m", "harness", "run", str(SCENARIO), "--quick", "--matrix", "go=1.21.13",
                          "--matrix", "goexperiment=greenteagc", "--results", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("greentea: goexperiment=greenteagc: Go 1.21.13 has no experiment greenteagc ("), lines
    assert list(tmp_path.iterdir()) == []  # no run directory: nothing started


def test_each_build_runs_its_own_binary_in_docker():
    """The workload reports runtime.Version() at start: each cell ran the binary of its own build, not an
    image of another build of the same Go version and sources."""
    _installed(DEFAULT_GO)
    from harness.drive.session import CellRunner
    from harness.run.backends.select import BackendUnavailable

    try:
        runner = CellRunner("docker", run_label=f"test-goexperiment-{os.getpid()}", log=lambda line: None)
    except BackendUnavailable as e:
        pytest.skip(f"docker backend unavailable: {e}")
    cells = expand(load(SCENARIO), {"go": ["default"]}, repeats=1, quick=True)
    started = {}
    for cell in cells:
        result = runner.run(dataclasses.replace(cell, timeout_s=60.0))
        assert result.status == "ok", result.reason
        detail = next(e[4] for e in result.events if e[1] == "start")
        started[cell.axis("goexperiment")] = (detail if isinstance(detail, dict) else json.loads(detail))["go_version"]
    runner.cleanup()
    assert started == {"greenteagc": f"go{DEFAULT_GO}", "nogreenteagc": f"go{DEFAULT_GO}-X:nogreenteagc"}
