"""One cell of a matrix: everything needed to run one workload once, as plain data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.define.workloads import Program


@dataclass(frozen=True)
class Cell:
    cell_id: str                  # stable and readable, e.g. "alloc_release[gogc=50,madvdontneed=1,r0]"
    scenario: str                 # scenario name (file stem)
    workload: str                 # a key of harness.define.workloads.WORKLOADS
    args: tuple[str, ...]         # the workload's command-line flags, e.g. ("--size=1GiB", "--touch=true")
    gogc: str | None = None       # "50", "off"; None leaves GOGC unset (the runtime default, 100)
    madvdontneed: str | None = None  # "0", "1"; None leaves it to the Go version's default
    gomemlimit: str | None = None    # resolved: bytes as a decimal string, or "off"; None leaves it unset
    godebug_extra: tuple[str, ...] = ()  # e.g. ("gctrace=1", "scavtrace=1")
    memory_limit_bytes: int | None = None  # container limit; swap is never allowed
    cpus: float | None = None
    go_version: str = ""          # as resolved by harness.build.toolchain ("1.27.3")
    backend: str = "auto"         # docker | cgroup | process | auto
    repeat: int = 0
    timeout_s: float = 600.0
    fast_hz: float = 100.0
    slow_hz: float = 2.0
    trace_syscalls: bool = False  # attach strace from the host to record madvise/munmap (C6)
    axes: tuple[tuple[str, str], ...] = field(default=())  # the matrix axis values, for cells.csv
    program: Program | None = None  # a foreign program; `args` are then its own arguments
    exclusive: bool = False       # must have its host to itself (it is judged on CPU time, throughput, latency)
    cpuset: str = ""              # the CPUs it is pinned to ("2-3"); "" leaves it unpinned

    def axis(self, name: str) -> str | None:
        """The value of a matrix axis as the scenario wrote it ("90%"), None if it is not an axis."""
        return dict(self.axes).get(name)

    @property
    def gomemlimit_written(self) -> str:
        """GOMEMLIMIT as written ("90%", "300MiB", "off"), "" when unset; the resolved bytes if no axis set it."""
        if self.gomemlimit is None:
            return ""
        return self.axis("gomemlimit") or self.gomemlimit

    @property
    def gomemlimit_bytes(self) -> int | None:
        """GOMEMLIMIT in bytes; None when it is off or unset."""
        return int(self.gomemlimit) if self.gomemlimit is not None and self.gomemlimit.isdigit() else None

    def godebug(self) -> str:
        parts = []
        if self.madvdontneed is not None:
            parts.append(f"madvdontneed={self.madvdontneed}")
        parts.extend(self.godebug_extra)
        return ",".join(parts)


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
