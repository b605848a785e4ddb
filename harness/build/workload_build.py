"""The built-in workloads (go_workloads/cmd/<name>) built with one Toolchain into static binaries,
cached by (source hash, Go version, arch, build settings) under <cache>/builds.

A build setting (a cell's build_env: GOEXPERIMENT) is checked in the binaries after the build: the
settings Go records in them (`go version -m`) must say it took, or the build fails.

A build lands in a temporary directory that is renamed into place, so concurrent runs never see
half a build, and a second build of the same sources is a cache hit that runs no compiler.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.build.elf import Elf, ElfError
from harness.build.program import experiments_of
from harness.build.toolchain import (
    GO_BUILD_TIMEOUT_S,
    Toolchain,
    ToolchainError,
    cache_root,
    go_env,
    goarch,
    resolve,
    version_key,
)
from harness.define.build import Build
from harness.define.cell import Pairs
from harness.define.project import DEFAULT_GO, GO_WORKLOADS
from harness.define.workloads import WORKLOADS

# Written last into every completed build directory: its presence means "complete".
BUILD_MARKER = ".goreclaim-build.json"


def _source_files(root: Path) -> list[Path]:
    files = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        # Test files cannot change a binary; leaving them out spares a rebuild per test edit.
        if (p.suffix == ".go" and not p.name.endswith("_test.go")) or p.name in ("go.mod", "go.sum"):
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def source_hash(root: Path | None = None) -> str:
    """sha256 over the files of go_workloads/ that affect a build, each with its relative path."""
    root = root or GO_WORKLOADS
    h = hashlib.sha256()
    for p in _source_files(root):
        rel = p.relative_to(root).as_posix().encode()
        data = p.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


@dataclass(frozen=True)
class BuildOutcome:
    build: Build
    toolchain: Toolchain
    cache_hit: bool
    seconds: float
    workloads: tuple[str, ...]   # built (or found in the cache)

    @property
    def missing(self) -> tuple[str, ...]:
        """Catalogue workloads that have no go_workloads/cmd/<name> package yet."""
        return tuple(w for w in WORKLOADS if w not in self.workloads)


def _has_go_package(directory: Path) -> bool:
    return any(not p.name.endswith("_test.go") for p in directory.glob("*.go"))


def _supports_buildvcs(version: str) -> bool:
    return version_key(version)[:2] >= (1, 18)


def _is_dynamic(binary: Path) -> bool:
    """Whether the binary asks for a dynamic loader (PT_INTERP), which a FROM-scratch image lacks."""
    try:
        return Elf(binary).interpreter() is not None
    except ElfError as e:
        raise ToolchainError(str(e)) from None


def _run_go_build(tc: Toolchain, workloads: tuple[str, ...], out_dir: Path, build_env: Pairs = ()) -> None:
    cmd = [str(tc.go), "build", "-trimpath"]
    if _supports_buildvcs(tc.version):
        cmd.append("-buildvcs=false")  # the binary must depend on the sources only, not on git state
    out_dir.mkdir(parents=True, exist_ok=True)  # Go before 1.16 writes several packages only into an existing dir
    cmd += ["-o", str(out_dir) + os.sep, *(f"./cmd/{w}" for w in workloads)]
    try:
        out = subprocess.run(cmd, cwd=GO_WORKLOADS, env={**go_env(tc), **dict(build_env)}, capture_output=True,
                             text=True, timeout=GO_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"go build with Go {tc.version} did not finish within {GO_BUILD_TIMEOUT_S} s") from e
    if out.returncode != 0:
        settings = "".join(f"{name}={value} " for name, value in build_env)
        raise ToolchainError(
            f"go build with Go {tc.version} ({tc.source}) failed in {GO_WORKLOADS}:\n"
            f"$ {settings}{' '.join(cmd)}\n{(out.stdout + out.stderr).strip()}"
        )


def build_dir_name(shash: str, version: str, arch: str, build_env: Pairs = ()) -> str:
    """A build's cache directory: one per (sources, Go version, arch, build settings)."""
    name = f"{shash[:16]}-go{version}-{arch}"
    if build_env:
        settings = "\0".join(f"{k}={v}" for k, v in build_env)
        readable = re.sub(r"[^A-Za-z0-9_.,=+-]", "_", "-".join(f"{k}={v}" for k, v in build_env))[:80]
        name += f"-{readable}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"
    return name


def build_with(tc: Toolchain, build_env: Pairs = ()) -> BuildOutcome:
    """Build every catalogue workload with `tc` and the build settings `build_env` (GOEXPERIMENT), or
    reuse the cached build of the same sources and settings."""
    started = time.monotonic()
    catalogue = tuple(WORKLOADS)
    # Workloads still being written are left out (and named by describe()) rather than
    # blocking every other one; a cell of a missing workload fails at exec, naming the path.
    workloads = tuple(w for w in catalogue if _has_go_package(GO_WORKLOADS / "cmd" / w))
    if not workloads:
        raise ToolchainError(
            f"{GO_WORKLOADS}/cmd has no package for any workload of harness/define/workloads.py "
            f"({', '.join(catalogue)})"
        )
    shash = source_hash()
    arch = goarch()
    builds = cache_root() / "builds"
    final = builds / build_dir_name(shash, tc.version, arch, build_env)
    build = Build(tc.version, final / "bin", shash, arch, build_env=build_env)
    if (final / BUILD_MARKER).exists() and all(build.binary(w).is_file() for w in workloads):
        experiments = json.loads((final / BUILD_MARKER).read_text()).get("experiments", "")
        return BuildOutcome(dataclasses.replace(build, experiments=experiments), tc, True,
                            time.monotonic() - started, workloads)

    builds.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=builds))
    try:
        _run_go_build(tc, workloads, tmp / "bin", build_env)
        dynamic = [w for w in workloads if _is_dynamic(tmp / "bin" / w)]
        if dynamic:
            raise ToolchainError(f"Go {tc.version} built dynamically linked binaries (PT_INTERP): {', '.join(dynamic)}")
        experiments = {experiments_of(tmp / "bin" / w, build_env) for w in workloads} if build_env else {""}
        if len(experiments) > 1:
            raise ToolchainError(f"Go {tc.version}: the binaries of one build record different experiments: "
                                 f"{', '.join(sorted(experiments))}")
        build = dataclasses.replace(build, experiments=experiments.pop())
        seconds = time.monotonic() - started
        (tmp / BUILD_MARKER).write_text(json.dumps({
            "go_version": tc.version, "toolchain": tc.source, "source_hash": shash, "arch": arch,
            "workloads": list(workloads), "build_seconds": round(seconds, 3),
            "build_env": dict(build_env), "experiments": build.experiments,
        }, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:
            if (final / BUILD_MARKER).exists():  # a concurrent build of the same sources won
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
        return BuildOutcome(build, tc, False, seconds, workloads)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def build(version: str | None = None, explicit: str | Path | None = None) -> Build:
    """All workloads of harness/define/workloads.py, static, cached by (source hash, Go version, arch)."""
    return build_with(resolve(version, explicit)).build


def describe(outcome: BuildOutcome) -> str:
    how = "cache hit" if outcome.cache_hit else f"built in {outcome.seconds:.1f} s"
    line = (f"go {outcome.toolchain.version}: {how}; toolchain: {outcome.toolchain.source}; "
            f"{len(outcome.workloads)} binaries in {outcome.build.bin_dir}")
    if outcome.build.build_env:
        settings = " ".join(f"{k}={v}" for k, v in outcome.build.build_env)
        line += f"; built with {settings}, experiments off the toolchain's defaults: {outcome.build.experiments}"
    if outcome.missing:
        line += f"; NOT BUILT (no go_workloads/cmd/<name>): {', '.join(outcome.missing)}"
    return line


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_many(versions: list[str], log: Callable[[str], None] = _to_stderr) -> list[Build]:
    """Build for each version (a version string or a path to a Go); one line per version to `log`.

    A version that cannot be had or built is logged with the reason and left out, so fewer
    builds than versions means something failed.
    """
    builds = []
    for v in versions or [DEFAULT_GO]:
        try:
            outcome = build_with(resolve(v))
        except ToolchainError as e:
            log(f"go {v}: FAILED: {e}")
            continue
        log(describe(outcome))
        builds.append(outcome.build)
    return builds
