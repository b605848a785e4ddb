"""A foreign program -> a Build: a ready binary as it is, or a Go package or its benchmarks built
per Go version (static, offline).

For the docker backend the image holds the executable and what the kernel and the dynamic
loader will open for it (harness.build.elf), so no base image is needed. A binary's Go version
is read from its embedded build information, the `\\xff Go buildinf:` blob that `go version -m`
reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import mmap
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from harness.build.elf import Elf, ElfError, elf_closure
from harness.build.toolchain import GO_BUILD_TIMEOUT_S, Toolchain, ToolchainError, cache_root, go_env, goarch, resolve
from harness.define.build import Build
from harness.define.cell import Pairs
from harness.define.workloads import NOT_GO, Program

BUILDINFO_MAGIC = b"\xff Go buildinf:"


class ProgramBuildError(ToolchainError):
    """A program that could not be built or prepared for one Go version; the message carries the
    compiler's output. Its cells are `build_failed`, the others run."""


# --------------------------------------------------------------------------- Go build information


def _uvarint(data: bytes | mmap.mmap, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def go_version_of_binary(path: str | Path) -> str | None:
    """The Go version a binary was built with ("1.27.3"), from its build information; None when
    it has none (not a Go program)."""
    return go_build_info(path)[0]


def version_experiments(version: str) -> str:
    """The experiments a binary's Go version names as differing from its toolchain's defaults: the
    list after "X:" that cmd/link appends to runtime.Version (cmd/link/internal/ld/main.go:
    "1.27.3-X:nogreenteagc" -> "nogreenteagc"; " X:" up to Go 1.25, and from 1.26 for a version that
    already holds a "-", golang/go#75953); "baseline" when there is none."""
    _, marker, experiments = version.partition("X:")
    return experiments.strip() if marker else "baseline"


def experiments_of(binary: Path, build_env: Pairs) -> str:
    """The experiments a binary built with the settings `build_env` runs with (version_experiments);
    ProgramBuildError when the GOEXPERIMENT it was given is not the one its build settings record
    (cmd/go load.setBuildInfo writes `build GOEXPERIMENT=` when it is set; Go 1.18+), or, in a binary
    without build settings, when its version names no experiment at all."""
    version, settings = go_build_info(binary)
    wanted = dict(build_env).get("GOEXPERIMENT", "")
    if settings and settings.get("GOEXPERIMENT", "") != wanted:
        raise ProgramBuildError(f"{binary}: built with GOEXPERIMENT={wanted!r}, but its build information records "
                                f"GOEXPERIMENT={settings.get('GOEXPERIMENT', '')!r}")
    experiments = version_experiments(version or "")
    if wanted and not settings and experiments == "baseline":
        # Before 1.18 only the version's X: list can show it; Go 1.15 ignores GOEXPERIMENT at build time,
        # taking the experiments recorded when the toolchain itself was built (cmd/internal/objabi/util.go).
        raise ProgramBuildError(f"{binary}: built with GOEXPERIMENT={wanted!r}, but its Go version {version!r} names "
                                "no experiment and it records no build settings (Go 1.18+ does): the setting did "
                                "not take")
    return experiments


def _build_settings(modinfo: bytes) -> dict[str, str]:
    """The `build\tKEY=VALUE` lines of a binary's module information (what `go version -m` prints),
    without the 16-byte sentinels around it."""
    text = (modinfo[16:-16] if len(modinfo) >= 33 else modinfo).decode(errors="replace")
    settings = {}
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "build":
            key, _, value = rest.partition("=")
            settings[key] = value
        elif kind == "path":
            settings.setdefault("path", rest)
    return settings


def go_build_info(path: str | Path) -> tuple[str | None, dict[str, str]]:
    """(the Go version a binary was built with, its build settings: -ldflags, CGO_ENABLED, GOARCH,
    GOAMD64, the main package's path, ...) from its build information; (None, {}) when it has none.
    Settings are read from Go 1.18's inline form only (earlier binaries: {})."""
    settings: dict[str, str] = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(BUILDINFO_MAGIC)
        while at != -1 and at % 16:  # the blob is 16-byte aligned
            at = data.find(BUILDINFO_MAGIC, at + 1)
        if at == -1:
            return None, {}
        ptr_size, flags = data[at + 14], data[at + 15]
        if flags & 2:  # Go 1.18+: the version string follows inline, length-prefixed, then the module info
            length, start = _uvarint(data, at + 32)
            version = bytes(data[start:start + length]).decode(errors="replace")
            mod_length, mod_start = _uvarint(data, start + length)
            settings = _build_settings(bytes(data[mod_start:mod_start + mod_length]))
        else:  # before 1.18: a pointer to a Go string header (pointer, length)
            try:
                elf = Elf(path)
            except ElfError as e:
                raise ProgramBuildError(str(e)) from None
            fmt = (">" if flags & 1 else "<") + ("Q" if ptr_size == 8 else "I")
            (header,) = struct.unpack_from(fmt, data, at + 16)
            header_off = elf.offset(header)
            if header_off is None:
                return None, {}
            ptr, length = struct.unpack_from(fmt[0] + fmt[1] * 2, data, header_off)
            off = elf.offset(ptr)
            version = bytes(data[off:off + length]).decode(errors="replace") if off is not None else ""
    return version.removeprefix("go") or None, settings


# --------------------------------------------------------------------------- building


def _files_hash(paths: list[str]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _prepared(executable: Path, go_version: str | None, workdir: str = "") -> Build:
    with open(executable, "rb") as f:
        is_elf = f.read(4) == b"\x7fELF"
    # A script runs in place (cgroup, process); an image holds only what an ELF file names.
    try:
        closure = tuple(elf_closure(executable)) if is_elf else ()
    except ElfError as e:
        raise ProgramBuildError(str(e)) from None
    digest = _files_hash([str(executable)] + [host for host, _ in closure])
    return Build(go_version=go_version or NOT_GO, bin_dir=executable.parent, source_hash=digest, arch=goarch(),
                 executable=executable, closure=closure, go_program=go_version is not None, workdir=workdir)


def _go(tc: Toolchain, args: list[str], cwd: str, flags: str, what: str, build_env: Pairs = ()) -> str:
    env = {**go_env(tc), "GOFLAGS": flags, "GOPROXY": "off", **dict(build_env)}  # offline: never fetch a module
    try:
        out = subprocess.run([str(tc.go), *args], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=GO_BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProgramBuildError(f"{what} with Go {tc.version} did not finish within {GO_BUILD_TIMEOUT_S} s") from None
    if out.returncode != 0:
        settings = "".join(f"{name}={value} " for name, value in build_env)
        raise ProgramBuildError(f"{what} with Go {tc.version} failed in {cwd}:\n$ {settings}go {' '.join(args)}\n"
                                f"{(out.stdout + out.stderr).strip()}")
    return out.stdout


def benchmarks(test_binary: Path, pattern: str, cwd: str) -> list[str]:
    """The benchmarks of a test binary whose names match `pattern` (its -test.list)."""
    out = subprocess.run([str(test_binary), "-test.list", pattern], cwd=cwd, capture_output=True, text=True,
                         timeout=120, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return [line for line in out.stdout.splitlines() if line.startswith("Benchmark")]


def build_program(program: Program, go_version: str | None = None, build_env: Pairs = ()) -> Build:
    """The Build a program's cells run: a binary as it is; a package or its test binary built with
    Go `go_version` (None: the default) and the build settings `build_env` (GOEXPERIMENT, checked in
    the binary's build information as for the workloads). ProgramBuildError says why there is none."""
    if program.kind == "binary":
        if build_env:
            raise ProgramBuildError(f"{program.binary}: a ready binary cannot be built with "
                                    f"{', '.join(f'{k}={v}' for k, v in build_env)}: give its package instead")
        path = Path(program.binary)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ProgramBuildError(f"{path}: no longer an executable file")
        return _prepared(path, go_version_of_binary(path))
    tc = resolve(go_version)
    module = program.module or tempfile.gettempdir()  # the standard library builds outside any module
    flags = "-mod=vendor" if (Path(module) / "vendor" / "modules.txt").is_file() else ""
    target = program.package  # a directory or an import path: the go command takes either
    settings = "".join(f"\0{k}={v}" for k, v in build_env)
    digest = hashlib.sha256(f"{program.kind}\0{module}\0{target}{settings}".encode()).hexdigest()[:12]
    out_dir = cache_root() / "programs" / f"{program.name}-{digest}-go{tc.version}-{goarch()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir))
    try:
        name = program.name + (".test" if program.kind == "bench" else "")
        command = ["build", "-trimpath"] if program.kind == "package" else ["test", "-c", "-trimpath"]
        what = "go build" if program.kind == "package" else "go test -c"
        _go(tc, command + ["-o", str(tmp / name), target], module, flags, what, build_env)
        if not (tmp / name).is_file():
            raise ProgramBuildError(f"{what} of {target} with Go {tc.version} wrote no executable "
                                    "(a package without tests, or not a main package)")
        os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    executable = out_dir / name
    workdir = ""
    if program.kind == "bench":
        # A test binary runs in its package's directory, where its testdata is.
        workdir = _go(tc, ["list", "-f", "{{.Dir}}", target], module, flags, "go list").strip()
        if not benchmarks(executable, program.run, workdir):
            every = benchmarks(executable, ".", workdir)
            raise ProgramBuildError(f"no benchmark of {target} matches run={program.run!r} with Go {tc.version} "
                                    f"(benchmarks: {', '.join(every) or 'none'})")
    experiments = experiments_of(executable, build_env) if build_env else ""
    return dataclasses.replace(_prepared(executable, tc.version, workdir), build_env=build_env,
                               experiments=experiments)
