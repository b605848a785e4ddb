"""One cell of a matrix: everything needed to run one workload once, as plain data.

A cell does not name the runtime settings it varies: the axes (harness.define.axes) resolve their
values into what each contributes, and the cell carries the merged contributions, each as sorted
(name, value) pairs so that it stays hashable and pickles as it is:

    env            the workload's environment variables (GOGC, GODEBUG, ...); run.env passes them on
    limits         what the backend confines it with: memory (bytes), cpus
    build_env      the environment of `go build` for its binary (GOEXPERIMENT, ...)
    host_settings  what the host must be for it (cgroup version, THP, swap, kernel, ...)
    columns        what cells.csv records of it besides the axis values as written (resolved bytes)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from harness.define.workloads import Program

V = TypeVar("V")

# Variables whose value is a comma-separated list of settings: the contributions of several
# axes (madvdontneed and godebug both set GODEBUG) are joined in the axes' declaration order.
LIST_VARIABLES = ("GODEBUG", "GOEXPERIMENT")

Pairs = tuple[tuple[str, str], ...]
# The cells.csv column of the experiments a cell's binary records as differing from its toolchain's
# defaults (harness.build.program.experiments_of), set when its build had settings.
EFFECTIVE_EXPERIMENTS = "goexperiment_effective"
Limit = int | float
Column = str | int | float | None


def merge_env(into: dict[str, str], more: Mapping[str, str], who: str = "") -> None:
    """Add `more` to an environment: a list variable gains settings, any other variable set twice is a
    mistake in the declarations (ValueError naming it)."""
    for name, value in more.items():
        if name in into and name in LIST_VARIABLES:
            into[name] = f"{into[name]},{value}"
        elif name in into:
            raise ValueError(f"{who or 'a setting'} sets {name}, which another axis sets already; only "
                             f"{', '.join(LIST_VARIABLES)} take settings from several axes")
        else:
            into[name] = value


@dataclass(frozen=True)
class Cell:
    cell_id: str                  # stable and readable, e.g. "alloc_release[gogc=50,madvdontneed=1,r0]"
    scenario: str                 # scenario name (file stem)
    workload: str                 # a key of harness.define.workloads.WORKLOADS
    args: tuple[str, ...]         # the workload's command-line flags, e.g. ("--size=1GiB", "--touch=true")
    go_version: str = ""          # as resolved by harness.build.toolchain ("1.27.3")
    backend: str = "auto"         # docker | cgroup | process | auto
    repeat: int = 0
    timeout_s: float = 600.0
    fast_hz: float = 100.0
    slow_hz: float = 2.0
    trace_syscalls: bool = False  # attach strace from the host to record madvise/munmap (C6)
    axes: Pairs = field(default=())  # the matrix axis values as written, for cells.csv
    program: Program | None = None  # a foreign program; `args` are then its own arguments
    exclusive: bool = False       # must have its host to itself (it is judged on CPU time, throughput, latency)
    cpuset: str = ""              # the CPUs it is pinned to ("2-3"); "" leaves it unpinned
    # What its axes contribute (harness.define.axes.contributions); see the module's docstring.
    env: Pairs = ()
    limits: tuple[tuple[str, Limit], ...] = ()
    build_env: Pairs = ()
    host_settings: Pairs = ()
    columns: tuple[tuple[str, Column], ...] = ()

    def axis(self, name: str) -> str | None:
        """The value of a matrix axis as the scenario wrote it ("90%"), None if it is not an axis."""
        return dict(self.axes).get(name)

    def limit(self, name: str) -> Limit | None:
        """One of its limits ("memory" in bytes, "cpus"); None when it has none."""
        return dict(self.limits).get(name)

    def column(self, name: str) -> Column:
        """A cells.csv column its axes resolved ("gomemlimit_bytes"); None when no axis set it."""
        return dict(self.columns).get(name)

    def with_env(self, more: Mapping[str, str]) -> Cell:
        """The cell with more environment settings (a Go program's gctrace=1: it writes no telemetry)."""
        env = dict(self.env)
        merge_env(env, more)
        return replace(self, env=pairs(env))

    # The limits every backend and the cluster's scheduler read.
    @property
    def memory_limit_bytes(self) -> int | None:
        value = self.limit("memory")
        return None if value is None else int(value)

    @property
    def cpus(self) -> float | None:
        value = self.limit("cpus")
        return None if value is None else float(value)

    # cells.csv columns harness.store.rundir.cells_row reads by name (the standard axes' resolved values).
    @property
    def gogc(self) -> str | None:
        return _text(self.column("gogc"))

    @property
    def madvdontneed(self) -> str | None:
        return _text(self.column("madvdontneed"))

    @property
    def gomemlimit_written(self) -> str:
        """GOMEMLIMIT as written ("90%", "300MiB", "off"), "" when unset."""
        return _text(self.column("gomemlimit")) or ""

    @property
    def gomemlimit_bytes(self) -> int | None:
        """GOMEMLIMIT in bytes; None when it is off or unset."""
        value = self.column("gomemlimit_bytes")
        return None if value is None else int(value)


def pairs(mapping: Mapping[str, V] | Iterable[tuple[str, V]]) -> tuple[tuple[str, V], ...]:
    """A mapping as the sorted (name, value) pairs a Cell carries."""
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple(sorted(items))


def _text(value: Column) -> str | None:
    return None if value is None else str(value)


# What a cell takes of a host, as Dask resources: each worker (one per host) offers its CPUs, its
# memory in MiB and one `exclusive` token (docs/CLUSTER.md).
CPUS, MEMORY, EXCLUSIVE = "cpus", "memory", "exclusive"
# A shared cell holds this slice of the host's token, an exclusive cell all of it: the scheduler then
# never starts an exclusive cell beside another cell, nor a cell beside an exclusive one, whatever
# the host's size. A power of two, so the worker's sums of slices are exact.
SHARED_SLICE = 2.0 ** -10
MiB = 1 << 20


@dataclass(frozen=True)
class Needs:
    """What one cell needs of the host it runs on."""

    cpus: int          # CPUs it is pinned to when it shares the host
    memory_mib: int    # its memory limit; 0: it has none
    exclusive: bool    # nothing else may run on the host meanwhile

    def resources(self) -> dict[str, float]:
        """The Dask resources a task running the cell takes."""
        return {CPUS: float(self.cpus), MEMORY: float(self.memory_mib),
                EXCLUSIVE: 1.0 if self.exclusive else SHARED_SLICE}

    def fits(self, offered: dict[str, float]) -> bool:
        """Whether a worker offering these resources (in total) can ever run the cell."""
        return all(offered.get(name, 0.0) >= value for name, value in self.resources().items())


def needs(cell: Cell) -> Needs:
    """A cell's needs: its `cpus` rounded up (1 when unset), its memory limit, and whether it must
    have the host to itself; a cell without a memory limit may take the host's whole memory, so it does."""
    cpus = max(1, math.ceil(cell.cpus)) if cell.cpus else 1
    limit = cell.memory_limit_bytes
    memory = math.ceil(limit / MiB) if limit else 0
    return Needs(cpus=cpus, memory_mib=memory, exclusive=cell.exclusive or not limit)
