"""The catalogue of workloads: one descriptor per program the harness runs.

A descriptor says how the program is launched (`binary`), which flags it takes (`params`, each
with a kind, a default and help), the phases it goes through, the phase whose duration turns
its `ops` total into a throughput, how much memory it must hold at once for given flags
(`footprint`), and whether it writes the harness's JSON telemetry. Everything downstream
(scenario validation, the matrix, the backends, the analysis) reads a workload through this
descriptor and nothing else, which makes it the seam a foreign program plugs into: a
descriptor built from a command line or a [program] table (`program_workload`), with
`telemetry=False` and the phases the harness marks itself, runs and is sampled like any other.

A new built-in workload is its Go program in `go_workloads/cmd/<name>`, one descriptor here
and a scenario file. A test runs each built binary with `-h` and checks that its flags match
its descriptor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, assert_never

from harness.define import units

# Parameter kinds, each parsed by harness.define.units:
#   size      "512MiB", "1GiB", "64KiB", plain integers are bytes
#   duration  "500ms", "2s", "3m"
#   int, float, bool, str
#   sizes     comma-separated list of sizes ("8B,16B,32KiB")
#   choice    one of `choices`
ParamKind = Literal["size", "duration", "int", "float", "bool", "str", "sizes", "choice"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    default: str
    help: str
    choices: tuple[str, ...] = ()

    def canonical(self, raw: Any) -> str:
        """Validate a value of this flag and return the form handed to the workload."""
        kind = self.kind
        if kind == "size":
            return units.canonical_size(units.parse_size(raw))
        if kind == "sizes":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            if not items or any(str(i).strip() == "" for i in items):
                raise units.UnitError(f"{raw!r}: expected a comma-separated list of sizes such as 8B,16B,32KiB")
            return ",".join(units.canonical_size(units.parse_size(str(i).strip() if isinstance(i, str) else i))
                            for i in items)
        if kind == "duration":
            return units.format_duration(units.parse_duration(raw))
        if kind == "bool":
            return "true" if units.parse_bool(raw) else "false"
        if kind == "int":
            if isinstance(raw, bool) or not re.fullmatch(r"-?[0-9]+", str(raw).strip()):
                raise units.UnitError(f"{raw!r} is not an integer")
            return str(int(str(raw).strip()))
        if kind == "float":
            try:
                if isinstance(raw, bool):
                    raise ValueError
                return repr(float(raw)) if not isinstance(raw, str) else str(float(raw))
            except ValueError as exc:
                raise units.UnitError(f"{raw!r} is not a number") from exc
        if kind == "choice":
            if str(raw) not in self.choices:
                raise units.UnitError(f"{raw!r} is not a choice (valid: {', '.join(self.choices)})")
            return str(raw)
        if kind == "str":
            return str(raw)
        assert_never(kind)


class UnknownWorkload(KeyError):
    """A workload name no descriptor declares; the message lists the ones that exist."""

    def __str__(self) -> str:
        return str(self.args[0])


Footprint = Callable[[Mapping[str, str]], int]


def _no_estimate(flags: Mapping[str, str]) -> int:
    return 0


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    params: tuple[Param, ...]
    phases: tuple[str, ...]  # in the order they occur; optional ones may be absent
    work_phase: str = ""     # the phase whose duration turns the `ops` total into a throughput
    # Bytes the program must hold at once to finish, from its flags with every default filled in;
    # a memory limit at or below it means an OOM kill. The program's own data only (the runtime's
    # overhead comes on top). 0: no estimate, so no limit is refused.
    footprint_of: Footprint = field(default=_no_estimate, compare=False, repr=False)
    binary: str = ""         # the executable it is launched as; "" means its name
    telemetry: bool = True   # writes the harness's JSON telemetry lines (a foreign program does not)

    def __post_init__(self) -> None:
        if not self.binary:
            object.__setattr__(self, "binary", self.name)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def flags(self, params: Mapping[str, str]) -> dict[str, str]:
        """Every flag's value: the defaults, overridden by `params`."""
        return {**{p.name: p.default for p in self.params}, **params}

    def footprint(self, params: Mapping[str, str]) -> int:
        """Bytes this workload must hold at once with these flags (defaults fill the rest)."""
        return self.footprint_of(self.flags(params))


def _size(flags: Mapping[str, str], name: str) -> int:
    return units.parse_size(flags[name])


def _alloc_release_footprint(f: Mapping[str, str]) -> int:
    spike = _size(f, "size") if units.parse_bool(f["touch"]) else 0  # untouched pages are never resident
    return _size(f, "live") + spike


def _pressure_footprint(f: Mapping[str, str]) -> int:
    return max(_size(f, "release-size"), _size(f, "second-size"))


def _live_footprint(f: Mapping[str, str]) -> int:
    return _size(f, "live")


def _small_frag_footprint(f: Mapping[str, str]) -> int:
    # The objects, plus the index of one 8-byte pointer per object the workload keeps meanwhile.
    total = _size(f, "total")
    return total + total // max(_size(f, "obj-size"), 1) * 8


def _cache_growth_footprint(f: Mapping[str, str]) -> int:
    value = _size(f, "value-size")
    if f["policy"] == "lru":
        return int(f["capacity"]) * value
    keep_s = units.parse_duration(f["ttl"] if f["policy"] == "ttl" else f["duration"])
    keys = int(keep_s * int(f["rate"]))
    if int(f["keyspace"]) > 0:
        keys = min(keys, int(f["keyspace"]))
    return keys * value


# Flags every workload accepts.
COMMON = (
    Param("metrics-interval", "duration", "100ms", "how often a `metrics` line is written"),
    Param("baseline", "duration", "500ms", "idle time before the work starts, for a baseline reading"),
)

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "alloc-release",
            "The article's experiment: allocate one []byte, drop it, GC, optionally FreeOSMemory, idle.",
            COMMON
            + (
                Param("size", "size", "1GiB", "size of the one []byte"),
                Param("touch", "bool", "true", "write every page; false reproduces the article's snippet"),
                Param("live", "size", "0", "a live heap kept for the whole run, allocated before the spike"),
                Param("hold", "duration", "1s", "how long the spike is held"),
                Param("gcs", "int", "1", "runtime.GC() calls after the reference is dropped"),
                Param("gc-interval", "duration", "0s", "pause between those GC calls"),
                Param("freeos", "bool", "false", "call debug.FreeOSMemory() after the GCs"),
                Param("idle", "duration", "10s", "idle time at the end (scavenger, forced GC every 2 min)"),
                Param("page-cache", "size", "0", "bytes written to a file, fsynced and read back after the baseline, "
                      "kept in the page cache to the end (cgroup usage counts it, RSS does not)"),
                Param("cache-dir", "str", "", "directory of the page-cache file; empty: $TMPDIR (the cell's scratch "
                      "directory)"),
                Param("heap-profile", "bool", "false", "at the end of release, after its GCs, write a heap profile "
                      "(runtime/pprof) to $TMPDIR/heap-release.pb.gz, which the harness reads"),
            ),
            ("baseline", "pagecache", "live", "allocate", "hold", "release", "freeos", "idle"),
            work_phase="allocate",
            footprint_of=_alloc_release_footprint,
        ),
        Workload(
            "freeos-periodic",
            "A steady allocation load that calls debug.FreeOSMemory() every --every (0 = never).",
            COMMON
            + (
                Param("every", "duration", "0s", "period of debug.FreeOSMemory() calls; 0 means never"),
                Param("duration", "duration", "10s", "length of the load phase"),
                Param("obj-size", "size", "64KiB", "size of each allocated object"),
                Param("live", "size", "128MiB", "live set kept by a ring of objects"),
            ),
            ("baseline", "load"),
            work_phase="load",
            footprint_of=_live_footprint,
        ),
        Workload(
            "large-churn",
            "Objects above 32 KiB with mixed sizes and lifetimes; then release and idle.",
            COMMON
            + (
                Param("min-size", "size", "33KiB", "smallest object"),
                Param("max-size", "size", "4MiB", "largest object"),
                Param("live", "size", "256MiB", "target live heap (short- and long-lived together)"),
                Param("long-frac", "float", "0.2", "share of the live heap held by long-lived objects"),
                Param("long-life", "duration", "3s", "mean lifetime of a long-lived object"),
                Param("duration", "duration", "10s", "length of the churn phase"),
                Param("idle", "duration", "5s", "idle time after everything is dropped"),
                Param("seed", "int", "1", "random seed"),
                Param("keep-long", "bool", "false", "at the end of churn keep the long-lived objects (scattered among "
                      "the freed ones) instead of dropping everything"),
                Param("release-gcs", "int", "1", "runtime.GC() calls after the drop"),
            ),
            ("baseline", "churn", "release", "idle"),
            work_phase="churn",
            footprint_of=_live_footprint,
        ),
        Workload(
            "small-churn",
            "Tiny and small objects at a steady rate, one size after another; throughput and counters per size.",
            COMMON
            + (
                Param("sizes", "sizes", "8B", "object sizes to run, one after another"),
                Param("per-size", "duration", "2s", "how long each size runs"),
                Param("live", "size", "0", "live set kept by a ring of objects of the current size"),
                Param("live-growth", "size", "0", "bytes added to the live heap per second while churning (touched "
                      "64 KiB chunks, kept to the end): the live heap grows toward any limit"),
                Param("pointers", "bool", "false", "objects contain a pointer (not eligible for the tiny allocator)"),
                Param("goroutines", "int", "0", "allocating goroutines; 0 means GOMAXPROCS"),
                Param("shape", "choice", "bytes", "object shape: bytes (make([]byte, size)) or struct16 "
                      "(new(struct{ a int64; b bool }), the article's 16-byte pointer-free example; --sizes 16B)",
                      ("bytes", "struct16")),
            ),
            ("baseline", "churn"),
            work_phase="churn",
            footprint_of=_live_footprint,
        ),
        Workload(
            "cache-growth",
            "One request stream into an unbounded map cache or a bounded (LRU or TTL) one.",
            COMMON
            + (
                Param("policy", "choice", "unbounded", "cache policy", ("unbounded", "lru", "ttl")),
                Param("rate", "int", "20000", "requests per second"),
                Param("duration", "duration", "10s", "length of the serve phase"),
                Param("value-size", "size", "1KiB", "size of each cached value"),
                Param("capacity", "int", "20000", "entries kept by the lru policy"),
                Param("ttl", "duration", "1s", "lifetime of an entry under the ttl policy"),
                Param("keyspace", "int", "0", "distinct keys (0: every request a new key)"),
                Param("drain", "bool", "false", "after serve, delete every entry, run runtime.GC() twice, then idle "
                      "(a map keeps its buckets after deletes, golang/go#20135)"),
                Param("idle", "duration", "5s", "idle time after the drain (with --drain)"),
            ),
            ("baseline", "serve", "drain", "idle"),
            work_phase="serve",
            footprint_of=_cache_growth_footprint,
        ),
        Workload(
            "pressure",
            "Release memory, then allocate new memory so that new plus lazily freed memory exceeds the limit.",
            COMMON
            + (
                Param("release-size", "size", "512MiB", "memory allocated, touched and released first"),
                Param("freeos", "bool", "true", "call debug.FreeOSMemory() after the release"),
                Param("settle", "duration", "2s", "pause after the release"),
                Param("second-size", "size", "512MiB", "new memory allocated and touched after the release"),
                Param("second-via", "choice", "mmap", "where the new memory comes from", ("mmap", "heap")),
                Param("hold", "duration", "2s", "how long the new memory is held"),
            ),
            ("baseline", "allocate", "release", "settle", "second", "hold"),
            work_phase="second",
            footprint_of=_pressure_footprint,
        ),
        Workload(
            "small-frag",
            "Small pointer-free objects, most of them freed at random: spans stay partly used and a "
            "non-moving GC cannot compact them.",
            COMMON
            + (
                Param("total", "size", "512MiB", "bytes of small objects allocated"),
                Param("obj-size", "size", "64B", "size of each pointer-free object (1B to 32KiB)"),
                Param("free-frac", "float", "0.9", "share of the objects dropped, each chosen at random"),
                Param("gcs", "int", "2", "runtime.GC() calls after the drop"),
                Param("freeos", "bool", "false", "call debug.FreeOSMemory() after the GCs, before the idle phase"),
                Param("idle", "duration", "10s", "idle time at the end (scavenger, forced GC every 2 min)"),
                Param("seed", "int", "1", "random seed"),
            ),
            ("baseline", "allocate", "free", "release", "freeos", "idle"),
            work_phase="allocate",
            footprint_of=_small_frag_footprint,
        ),
    )
}


def workload(name: str) -> Workload:
    """The descriptor called `name`; UnknownWorkload (listing the valid names) if there is none."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UnknownWorkload(f"unknown workload {name!r} (valid: {', '.join(sorted(WORKLOADS))})") from None


# ---------------------------------------------------------------------------------- foreign programs
#
# A program nobody here wrote is one more workload: a descriptor with no flags of its own
# (its arguments are passed through as written), `telemetry=False`, and the phases the harness
# marks itself. `Program` says how to get the executable; the build stage turns it into one.

ProgramKind = Literal["binary", "package", "bench"]
# Phases the harness marks for a program, in order: `start` at launch, `ready` once it answers
# (--ready), `load` while the load command runs (--load), `idle` while it is left alone (--idle),
# `stop` when it is sent SIGTERM. A batch program has only `start`.
PROGRAM_PHASES = ("start", "ready", "load", "idle", "stop")
# Added to a Go program's GODEBUG: its GC cycles, heaps and GC CPU then come from stderr.
PROGRAM_GODEBUG = ("gctrace=1", "scavtrace=1")
NOT_GO = "not a Go program"
DEFAULT_GRACE_S = 10.0
DEFAULT_READY_TIMEOUT_S = 30.0
PORT = "{port}"  # in args, ready and load: the cell's own free port on 127.0.0.1
READY_FORMS = "tcp (the cell's {port}), tcp:PORT, log:REGEX (a line of its output) or delay:DURATION"


def parse_ready(text: str) -> str:
    """A --ready value, checked; units.UnitError saying what is valid."""
    kind, _, rest = str(text).partition(":")
    if kind == "tcp" and (rest in ("", PORT) or rest.isdigit() and 0 < int(rest) < 65536):
        return f"tcp:{rest or PORT}"
    if kind == "log" and rest:
        try:
            re.compile(rest)
        except re.error as exc:
            raise units.UnitError(f"{text!r}: {rest!r} is not a regular expression ({exc})") from None
        return text
    if kind == "delay" and rest:
        units.parse_duration(rest)
        return text
    raise units.UnitError(f"{text!r} is not a readiness check (valid: {READY_FORMS})")


@dataclass(frozen=True)
class Mount:
    source: str          # absolute path on the host
    target: str          # absolute path the program sees; the source's own path by default
    read_only: bool = False

    def text(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class Program:
    kind: ProgramKind
    name: str                         # cells.csv's `workload` and the scenario's default name
    binary: str = ""                  # binary: absolute path of the executable
    package: str = ""                 # package/bench: "./dir" resolved to an absolute dir, or an import path
    module: str = ""                  # package/bench: the directory the go command runs in
    run: str = ""                     # bench: -test.bench regular expression
    benchtime: str = ""               # bench: -test.benchtime ("5s", "100x"); "" leaves Go's default
    args: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    idle_s: float | None = None       # None: a batch program, it ends by itself (unless it serves)
    grace_s: float = DEFAULT_GRACE_S  # SIGTERM, then SIGKILL this much later
    ready: str = ""                   # parse_ready's form; "" : nothing to wait for
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    load: tuple[str, ...] = ()        # a command run on the host once it is ready, {port} substituted
    metrics_url: str = ""             # its expvar or Prometheus page, polled on the slow tier

    @property
    def serves(self) -> bool:
        """A server: waited for, loaded, then stopped by the harness rather than ending by itself."""
        return bool(self.ready or self.load)

    @property
    def uses_port(self) -> bool:
        return any(PORT in text for text in (*self.args, self.ready, *self.load, self.metrics_url))

    @property
    def versioned(self) -> bool:
        """Built by goreclaim per Go version (the go axis applies); a binary is what it is."""
        return self.kind != "binary"

    def command_args(self) -> tuple[str, ...]:
        """The arguments the executable is started with."""
        if self.kind != "bench":
            return self.args
        flags = ["-test.run=^$", f"-test.bench={self.run}", "-test.benchmem"]
        if self.benchtime:
            flags.append(f"-test.benchtime={self.benchtime}")
        return tuple(flags) + self.args

    def describe(self) -> dict[str, Any]:
        """The program as the manifest records it."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "args": list(self.args),
               "mounts": [m.text() for m in self.mounts], "idle_s": self.idle_s, "grace_s": self.grace_s}
        if self.serves:
            out.update(ready=self.ready, ready_timeout_s=self.ready_timeout_s, load=list(self.load))
        if self.metrics_url:
            out["metrics_url"] = self.metrics_url
        out.update({k: v for k, v in (("binary", self.binary), ("package", self.package), ("module", self.module),
                                      ("run", self.run), ("benchtime", self.benchtime)) if v})
        return out


def program_workload(program: Program) -> Workload:
    """The descriptor a program runs under: no flags, the harness's phases, no telemetry."""
    return Workload(program.name, f"the {program.kind} {program.binary or program.package}", (),
                    PROGRAM_PHASES, binary=program.binary or program.name, telemetry=False)


def parse_mount(text: str) -> Mount:
    """'SRC[:DST][:ro]' -> Mount; units.UnitError saying what is valid. SRC must exist."""
    parts = str(text).split(":")
    read_only = False
    if len(parts) > 1 and parts[-1] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if not 1 <= len(parts) <= 2 or not parts[0]:
        raise units.UnitError(f"{text!r} is not a mount (valid: SRC, SRC:DST, SRC:ro or SRC:DST:ro, "
                              "absolute or relative host path SRC, absolute DST)")
    source = os.path.abspath(os.path.expanduser(parts[0]))
    target = parts[1] if len(parts) == 2 else source
    if not os.path.exists(source):
        raise units.UnitError(f"{text!r}: {source} does not exist on this host")
    if not target.startswith("/"):
        raise units.UnitError(f"{text!r}: the target {target!r} must be an absolute path")
    return Mount(source, os.path.normpath(target), read_only)


def check_executable(path: str) -> str:
    """The absolute path of an executable file; units.UnitError naming what is wrong."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise units.UnitError(f"{path}: no such file (valid: a path to an executable file)")
    if not os.path.isfile(full):
        raise units.UnitError(f"{path}: not a file (valid: a path to an executable file)")
    if not os.access(full, os.X_OK):
        raise units.UnitError(f"{path}: not executable (chmod +x it, or give another file)")
    return full


def module_root(directory: str) -> str | None:
    """The directory holding the go.mod that `directory` belongs to, None if it is in no module."""
    for d in (Path(directory), *Path(directory).parents):
        if (d / "go.mod").is_file():
            return str(d)
    return None
