"""A foreign program -> a Build: a ready binary as it is, or a Go package or its benchmarks built
per Go version (static, offline).

For the docker backend the image holds the executable and what the kernel and the dynamic
loader will open for it: the loader named by PT_INTERP and every DT_NEEDED library, resolved
on the host as the loader does (RPATH, RUNPATH, ld.so.cache, the default directories), so no
base image is needed. A binary's Go version is read from its embedded build information, the
`\\xff Go buildinf:` blob that `go version -m` reads.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from harness.build.toolchain import GO_BUILD_TIMEOUT_S, Toolchain, ToolchainError, cache_root, go_env, goarch, resolve
from harness.define.build import Build
from harness.define.workloads import NOT_GO, Program

BUILDINFO_MAGIC = b"\xff Go buildinf:"
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 1, 5, 15, 29
LD_SO_CACHE = "/etc/ld.so.cache"


class ProgramBuildError(ToolchainError):
    """A program that could not be built or prepared for one Go version; the message carries the
    compiler's output. Its cells are `build_failed`, the others run."""


# --------------------------------------------------------------------------- ELF


class Elf:
    """The few parts of an ELF file a loader looks at first: program headers and the dynamic section."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        with open(path, "rb") as f:
            self.data = f.read()
        ident = self.data[:16]
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise ProgramBuildError(f"{path} is not an ELF executable")
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
    transitively; [] for a static executable. ProgramBuildError names a library not found."""
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
                    except (ProgramBuildError, OSError, struct.error):
                        continue
                    if lib.kind == top.kind:
                        found = (candidate, lib)
                        break
            if found is None:
                raise ProgramBuildError(f"{elf.path} needs {name}, which the loader would not find on this host")
            candidate, lib = found
            files.setdefault(candidate, os.path.realpath(candidate))
            if os.path.realpath(candidate) not in seen:
                seen.add(os.path.realpath(candidate))
                pending.append(lib)
    return sorted((host, image) for image, host in files.items())


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
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(BUILDINFO_MAGIC)
        while at != -1 and at % 16:  # the blob is 16-byte aligned
            at = data.find(BUILDINFO_MAGIC, at + 1)
        if at == -1:
            return None
        ptr_size, flags = data[at + 14], data[at + 15]
        if flags & 2:  # Go 1.18+: the version string follows inline, length-prefixed
            length, start = _uvarint(data, at + 32)
            version = bytes(data[start:start + length]).decode(errors="replace")
        else:  # before 1.18: a pointer to a Go string header (pointer, length)
            elf = Elf(path)
            fmt = (">" if flags & 1 else "<") + ("Q" if ptr_size == 8 else "I")
            (header,) = struct.unpack_from(fmt, data, at + 16)
            header_off = elf.offset(header)
            if header_off is None:
                return None
            ptr, length = struct.unpack_from(fmt[0] + fmt[1] * 2, data, header_off)
            off = elf.offset(ptr)
            version = bytes(data[off:off + length]).decode(errors="replace") if off is not None else ""
    return version.removeprefix("go") or None


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
    closure = tuple(elf_closure(executable)) if is_elf else ()
    digest = _files_hash([str(executable)] + [host for host, _ in closure])
    return Build(go_version=go_version or NOT_GO, bin_dir=executable.parent, source_hash=digest, arch=goarch(),
                 executable=executable, closure=closure, go_program=go_version is not None, workdir=workdir)


def _go(tc: Toolchain, args: list[str], cwd: str, flags: str, what: str) -> str:
    env = {**go_env(tc), "GOFLAGS": flags, "GOPROXY": "off"}  # offline: never fetch a module
    try:
        out = subprocess.run([str(tc.go), *args], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=GO_BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProgramBuildError(f"{what} with Go {tc.version} did not finish within {GO_BUILD_TIMEOUT_S} s") from None
    if out.returncode != 0:
        raise ProgramBuildError(f"{what} with Go {tc.version} failed in {cwd}:\n$ go {' '.join(args)}\n"
                                f"{(out.stdout + out.stderr).strip()}")
    return out.stdout


def benchmarks(test_binary: Path, pattern: str, cwd: str) -> list[str]:
    """The benchmarks of a test binary whose names match `pattern` (its -test.list)."""
    out = subprocess.run([str(test_binary), "-test.list", pattern], cwd=cwd, capture_output=True, text=True,
                         timeout=120, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return [line for line in out.stdout.splitlines() if line.startswith("Benchmark")]


def build_program(program: Program, go_version: str | None = None) -> Build:
    """The Build a program's cells run: a binary as it is; a package or its test binary built with
    Go `go_version` (None: the default). ProgramBuildError says why there is none."""
    if program.kind == "binary":
        path = Path(program.binary)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ProgramBuildError(f"{path}: no longer an executable file")
        return _prepared(path, go_version_of_binary(path))
    tc = resolve(go_version)
    module = program.module or tempfile.gettempdir()  # the standard library builds outside any module
    flags = "-mod=vendor" if (Path(module) / "vendor" / "modules.txt").is_file() else ""
    target = program.package  # a directory or an import path: the go command takes either
    digest = hashlib.sha256(f"{program.kind}\0{module}\0{target}".encode()).hexdigest()[:12]
    out_dir = cache_root() / "programs" / f"{program.name}-{digest}-go{tc.version}-{goarch()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir))
    try:
        name = program.name + (".test" if program.kind == "bench" else "")
        command = ["build", "-trimpath"] if program.kind == "package" else ["test", "-c", "-trimpath"]
        what = "go build" if program.kind == "package" else "go test -c"
        _go(tc, command + ["-o", str(tmp / name), target], module, flags, what)
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
    return _prepared(executable, tc.version, workdir)
