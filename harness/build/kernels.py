"""Debian series ("6.1") -> a guest kernel, fetched from Debian's archive and cached like Go toolchains.

A series names a Debian release's kernel line: 5.10 is bullseye's, 6.1 bookworm's, 6.12 trixie's.
The newest `linux-image-<release>-amd64` of that release (what its `linux-image-amd64` depends on,
counting the release's updates and security suites) is downloaded with `apt-get download` through a
temporary sources list, unpacked with `dpkg -x` into <cache>/kernels/<release>/ (its /boot and
/lib/modules), and its compressed kernel is unpacked once more into `vmlinux`: qemu boots an
uncompressed ELF kernel directly (PVH), which saves the seconds that decompression costs under
software emulation. A later request for the series is a cache hit, with no network.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from harness.build.go_downloads import DEBIAN_MIRROR
from harness.build.toolchain import cache_root
from harness.define.hosts import KERNEL_SERIES

DEBIAN_SECURITY = "http://deb.debian.org/debian-security"
SERIES = KERNEL_SERIES  # series -> the Debian release whose kernel line it is
APT_TIMEOUT_S = 900
METADATA = "kernel.json"  # written last: an entry without it is an unfinished install, not a cache hit


class KernelError(Exception):
    """A kernel that cannot be had; the message is one line saying why."""


@dataclass(frozen=True)
class Kernel:
    series: str        # "6.1"
    release: str       # "6.1.0-41-amd64", as `uname -r` prints it in the guest
    package: str       # "linux-image-6.1.0-41-amd64 6.1.158-1"
    root: Path         # <cache>/kernels/<release>

    @property
    def vmlinux(self) -> Path:
        """The uncompressed ELF kernel qemu boots."""
        return self.root / "vmlinux"

    @property
    def kallsyms(self) -> Path:
        """Its text symbols as a guest's /proc/kallsyms lists them, written by its first boot (Debian's
        System.map is a placeholder); they name a stalled guest's instruction pointers (booted `nokaslr`)."""
        return self.root / "kallsyms"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    def config(self, option: str) -> str:
        """An option of the kernel's build configuration: "y", "m", a value, "n" (not set) or "" (unknown)."""
        try:
            text = (self.root / "boot" / f"config-{self.release}").read_text()
        except OSError:
            return ""
        if f"# {option} is not set" in text:
            return "n"
        match = re.search(rf"^{re.escape(option)}=(.*)$", text, re.M)
        return match.group(1).strip('"') if match else ""


def kernels_dir() -> Path:
    return cache_root() / "kernels"


def _check_series(series: str) -> str:
    if series not in SERIES:
        raise KernelError(f"kernel {series!r} is not a Debian series goreclaim fetches "
                          f"(valid: {', '.join(SERIES)})")
    return SERIES[series]


def cached(series: str) -> Kernel | None:
    """The cached kernel of a series (the newest release if several), or None."""
    _check_series(series)
    found = []
    base = kernels_dir()
    for meta in base.glob(f"*/{METADATA}") if base.is_dir() else ():
        try:
            data = json.loads(meta.read_text())
            kernel = Kernel(data["series"], data["release"], data["package"], meta.parent)
        except (OSError, ValueError, KeyError):
            continue  # a damaged entry is simply not a cache hit
        if kernel.series == series and kernel.vmlinux.is_file():
            found.append(kernel)
    return max(found, key=lambda k: _release_key(k.release), default=None)


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"[0-9]+", release))


def fetch(series: str) -> Kernel:
    """The kernel of a Debian series, from the cache or else from Debian (KernelError saying why not)."""
    suite = _check_series(series)
    hit = cached(series)
    if hit is not None:
        return hit
    for tool in ("apt-get", "apt-cache", "dpkg"):
        if shutil.which(tool) is None:
            raise KernelError(f"kernel {series}: {tool} is needed to fetch it from Debian {suite} and is not on PATH")
    base = kernels_dir()
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{series}-", dir=base))
    try:
        return _fetch_into(series, suite, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _apt(opts: list[str], args: list[str], cwd: Path, series: str, suite: str, tool: str = "apt-get") -> str:
    try:
        out = subprocess.run([tool, *opts, *args], cwd=cwd, capture_output=True, text=True,
                             timeout=APT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise KernelError(f"kernel {series}: {tool} {args[0]} (Debian {suite}) did not finish "
                          f"within {APT_TIMEOUT_S} s") from None
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise KernelError(f"kernel {series}: {tool} {' '.join(args)} (Debian {suite}) failed: {last[0]}")
    return out.stdout


def _fetch_into(series: str, suite: str, tmp: Path) -> Kernel:
    apt_dir = tmp / "apt"
    lists, cache = apt_dir / "lists", apt_dir / "cache"
    (lists / "partial").mkdir(parents=True)
    (cache / "archives" / "partial").mkdir(parents=True)
    sources = apt_dir / "sources.list"
    sources.write_text(f"deb {DEBIAN_MIRROR} {suite} main\n"
                       f"deb {DEBIAN_MIRROR} {suite}-updates main\n"
                       f"deb {DEBIAN_SECURITY} {suite}-security main\n")
    opts = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}",
            "-o", "Dir::State::Status=/dev/null",  # the host's installed packages are not the guest's
            "-o", "APT::Sandbox::User=root", "-q"]  # the _apt user cannot write into root's cache
    debs = apt_dir / "debs"
    debs.mkdir()
    _apt(opts, ["update"], debs, series, suite)
    # The metapackage depends on the release's current kernel: linux-image-6.1.0-41-amd64.
    shown = _apt(opts, ["depends", "linux-image-amd64"], debs, series, suite, tool="apt-cache")
    images = sorted(set(re.findall(r"Depends: (linux-image-[0-9][^\s]*-amd64)\b", shown)), key=_release_key)
    if not images:
        raise KernelError(f"kernel {series}: Debian {suite}'s linux-image-amd64 names no kernel package")
    package = images[-1]
    release = package.removeprefix("linux-image-")
    if not (release == series or release.startswith(series + ".")):
        raise KernelError(f"kernel {series}: Debian {suite} now ships {release}, not the {series} series")
    _apt(opts, ["download", package], debs, series, suite)
    unpacked = tmp / "root"
    for deb in sorted(debs.glob("*.deb")):
        out = subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise KernelError(f"kernel {series}: dpkg -x {deb.name} failed: {out.stderr.strip()[-200:]}")
    version = re.sub(r"^.*_([^_]+)_amd64\.deb$", r"\1", next(debs.glob("*.deb")).name).replace("%3a", ":")
    compressed = unpacked / "boot" / f"vmlinuz-{release}"
    modules = unpacked / "lib" / "modules" / release
    merged_usr = unpacked / "usr" / "lib" / "modules" / release  # trixie ships them under /usr
    if not modules.is_dir() and merged_usr.is_dir():
        modules.parent.mkdir(parents=True, exist_ok=True)
        os.replace(merged_usr, modules)
    if not compressed.is_file() or not modules.is_dir():
        raise KernelError(f"kernel {series}: {package} has no boot/vmlinuz-{release} and lib/modules/{release}")
    # modules.dep is made on installation, not shipped: the guest's initramfs loads modules in its order.
    if shutil.which("depmod") is None:
        raise KernelError(f"kernel {series}: depmod (Debian's kmod) is needed and is not on PATH")
    out = subprocess.run(["depmod", "-b", str(unpacked), release], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise KernelError(f"kernel {series}: depmod failed: {out.stderr.strip()[-200:]}")
    (unpacked / "vmlinux").write_bytes(extract_vmlinux(compressed.read_bytes()))
    (unpacked / METADATA).write_text(json.dumps(
        {"series": series, "release": release, "package": f"{package} {version}"}, indent=1) + "\n")
    final = kernels_dir() / release
    if final.exists():  # an entry without metadata, left by a fetch that did not finish
        shutil.rmtree(final)
    os.replace(unpacked, final)
    return Kernel(series, release, f"{package} {version}", final)


# Magic bytes of the compressions a bzImage's payload may use, and how to undo each.
_PAYLOADS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a compressed kernel image (what the kernel's scripts/extract-vmlinux does)."""
    for magic, kind in _PAYLOADS:
        start = bzimage.find(magic)
        while start != -1:
            data = _decompress(kind, bzimage[start:])
            if data is not None and data[:4] == b"\x7fELF":
                return data
            start = bzimage.find(magic, start + 1)
    raise KernelError("the kernel image holds no ELF kernel compressed with xz, gzip or zstd")


def _decompress(kind: str, data: bytes) -> bytes | None:
    try:
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(data)
        if kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)  # stops at the stream's end
        out = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, timeout=120)
        return out.stdout or None
    except (lzma.LZMAError, zlib.error, OSError, subprocess.SubprocessError):
        return None
