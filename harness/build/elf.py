"""The few parts of an ELF file a loader reads first (program headers, the dynamic section), and
the closure an image needs to run a dynamically linked executable without a base image: the loader
named by PT_INTERP and every DT_NEEDED library, resolved on the host as the loader does (RPATH,
RUNPATH, ld.so.cache, the default directories)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

from harness.build.toolchain import goarch

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 1, 5, 15, 29
LD_SO_CACHE = "/etc/ld.so.cache"


class ElfError(ValueError):
    """A file that is not an ELF executable, or a library the loader would not find."""


class Elf:
    """The few parts of an ELF file a loader looks at first: program headers and the dynamic section."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        with open(path, "rb") as f:
            self.data = f.read()
        ident = self.data[:16]
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise ElfError(f"{path} is not an ELF executable")
        self.is64 = ident[4] == 2
        self.end = "<" if ident[5] == 1 else ">"
        (self.machine,) = struct.unpack_from(self.end + "H", self.data, 18)
        if self.is64:
            phoff, = struct.unpack_from(self.end + "Q", self.data, 0x20)
            phentsize, phnum = struct.unpack_from(self.end + "HH", self.data, 0x36)
        else:
            phoff, = struct.unpack_from(self.end + "I", self.data, 0x1C)
            phentsize, phnum = struct.unpack_from(self.end + "HH", self.data, 0x2A)
        self.segments = []  # (type, offset, vaddr, filesz)
        for i in range(phnum):
            at = phoff + i * phentsize
            if self.is64:
                p_type, _, off, vaddr, _, filesz = struct.unpack_from(self.end + "IIQQQQ", self.data, at)
            else:
                p_type, off, vaddr, _, filesz = struct.unpack_from(self.end + "IIIII", self.data, at)
            self.segments.append((p_type, off, vaddr, filesz))

    @property
    def kind(self) -> tuple[bool, int]:
        """Class and machine: a library must match its executable's."""
        return self.is64, self.machine

    def offset(self, vaddr: int) -> int | None:
        for p_type, off, start, size in self.segments:
            if p_type == PT_LOAD and start <= vaddr < start + size:
                return off + vaddr - start
        return None

    def interpreter(self) -> str | None:
        for p_type, off, _, size in self.segments:
            if p_type == PT_INTERP:
                return self.data[off:off + size].split(b"\0", 1)[0].decode()
        return None

    def dynamic(self) -> dict[int, list[int]]:
        entries: dict[int, list[int]] = {}
        fmt, size = (self.end + "qQ", 16) if self.is64 else (self.end + "iI", 8)
        for p_type, off, _, filesz in self.segments:
            if p_type != PT_DYNAMIC:
                continue
            for at in range(off, off + filesz, size):
                tag, value = struct.unpack_from(fmt, self.data, at)
                if tag == 0:
                    break
                entries.setdefault(tag, []).append(value)
        return entries

    def string(self, strtab: int, index: int) -> str:
        start = strtab + index
        return self.data[start:self.data.index(b"\0", start)].decode()

    def needed(self) -> tuple[list[str], list[str], list[str]]:
        """(DT_NEEDED names, DT_RPATH dirs, DT_RUNPATH dirs), $ORIGIN expanded."""
        dyn = self.dynamic()
        if DT_STRTAB not in dyn:
            return [], [], []
        strtab = self.offset(dyn[DT_STRTAB][0])
        if strtab is None:
            return [], [], []
        origin = os.path.dirname(os.path.realpath(self.path))

        def dirs(tag: int) -> list[str]:
            found = []
            for index in dyn.get(tag, []):
                for d in self.string(strtab, index).split(":"):
                    if d:
                        found.append(d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
            return found

        return [self.string(strtab, i) for i in dyn.get(DT_NEEDED, [])], dirs(DT_RPATH), dirs(DT_RUNPATH)


def _ld_cache() -> dict[str, list[str]]:
    """soname -> paths, as `ldconfig -p` lists the loader's cache ({} without ldconfig)."""
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", shutil.which("ldconfig") or ""):
        if ldconfig and os.access(ldconfig, os.X_OK):
            try:
                out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30).stdout
            except (OSError, subprocess.TimeoutExpired):
                return {}
            cache: dict[str, list[str]] = {}
            for m in re.finditer(r"^\s+(\S+) \(.*\) => (\S+)$", out, re.M):
                cache.setdefault(m.group(1), []).append(m.group(2))
            return cache
    return {}


def _default_dirs() -> list[str]:
    triplet = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}.get(goarch(), "")
    dirs = [f"/lib/{triplet}", f"/usr/lib/{triplet}"] if triplet else []
    return dirs + ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]


def elf_closure(path: str | Path) -> list[tuple[str, str]]:
    """(host file, path in the image) of the loader and every shared library `path` needs,
    transitively; [] for a static executable. ElfError names a library not found."""
    top = Elf(path)
    interp = top.interpreter()
    if interp is None and not top.needed()[0]:
        return []
    cache = _ld_cache()
    files: dict[str, str] = {}
    if interp is not None:
        files[interp] = os.path.realpath(interp)
    if os.path.exists(LD_SO_CACHE):
        files[LD_SO_CACHE] = LD_SO_CACHE  # the loader in the image then finds libraries as on the host
    pending, seen = [top], {os.path.realpath(top.path)}
    while pending:
        elf = pending.pop()
        needed, rpath, runpath = elf.needed()
        for name in needed:
            if "/" in name:
                candidates = [name]
            else:
                dirs = (rpath if not runpath else []) + runpath
                candidates = [os.path.join(d, name) for d in dirs] + cache.get(name, []) + \
                    [os.path.join(d, name) for d in _default_dirs()]
            found = None
            for candidate in candidates:
                if os.path.isfile(candidate):
                    try:
                        lib = Elf(candidate)
                    except (ElfError, OSError, struct.error):
                        continue
                    if lib.kind == top.kind:
                        found = (candidate, lib)
                        break
            if found is None:
                raise ElfError(f"{elf.path} needs {name}, which the loader would not find on this host")
            candidate, lib = found
            files.setdefault(candidate, os.path.realpath(candidate))
            if os.path.realpath(candidate) not in seen:
                seen.add(os.path.realpath(candidate))
                pending.append(lib)
    return sorted((host, image) for image, host in files.items())
