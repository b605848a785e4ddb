"""One cell of a matrix: everything needed to run one workload once, as plain data."""

from __future__ import annotations

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
