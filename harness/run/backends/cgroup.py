"""The workload as a child process inside a memory cgroup of its own, created for the cell.

For hosts without Docker: the same limit and the same kernel accounting (usage, peak, OOM
kills) as a container, with nothing but a writable cgroup hierarchy. On cgroup v2 it also applies a
cell's memory.high (the memory_high axis) and lets it swap up to its swap limit (memory.swap.max; the
swap axis), both written before the workload's first instruction.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from harness.define.build import Build
from harness.define.cell import Cell
from harness.run.backends.base import Status
from harness.run.backends.loop import Launcher
from harness.run.backends.process import ChildLauncher, ProcessBackend
from harness.run.leftovers import CGROUP_PREFIX, owner_tag
from harness.run.observe.cgroupfs import MemoryCgroup
from harness.run.placement import cgroup_version
from harness.run.scratch import remove_leftover_scratch

_serial = itertools.count()


class CgroupBackend(ProcessBackend):
    name = "cgroup"
    limits = frozenset({"memory", "memory_high", "swap"})
    # The limits only cgroup v2 has files for (memory.high, memory.swap.max).
    V2_LIMITS = {"memory_high": "memory.high", "swap": "memory.swap.max"}

    def available(self) -> str | None:
        from harness.run.observe.cgroupfs import writable_memory_hierarchy

        return writable_memory_hierarchy()

    def cleanup(self, run_id: str) -> list[str]:
        # Cgroup names carry the harness's pid, not the run id: this process's leftovers.
        return remove_leftover_cgroups(f"{CGROUP_PREFIX}{os.getpid()}-") + remove_leftover_scratch()

    def unfit(self, cell: Cell, build: Build) -> tuple[Status, str] | None:
        v2_only = [f"{name} ({file})" for name, file in self.V2_LIMITS.items() if cell.limit(name) is not None]
        here = cgroup_version()
        if v2_only and here != "v2":
            return "skipped", (f"needs {', '.join(v2_only)}, which only cgroup v2 has; this host's cgroup is "
                               f"{here}: ask for --matrix cgroup=v2 (a guest kernel runs it)")
        return super().unfit(cell, build)

    def launcher(self, cell: Cell, build: Build, scratch: Path, port: int | None) -> Launcher:
        def make_cgroup() -> MemoryCgroup:
            from harness.run.observe.cgroupfs import create_memory_cgroup

            # Unique per harness process and cell; the prefix lets leftovers be found after a crash.
            # A cell without a limit still gets a cgroup of its own, so its usage is measured.
            cgroup = create_memory_cgroup(f"{CGROUP_PREFIX}{owner_tag()}-{next(_serial)}", cell.memory_limit_bytes)
            try:
                for name, file in self.V2_LIMITS.items():
                    value = cell.limit(name)
                    if value is not None:
                        (cgroup.path / file).write_text(f"{int(value)}\n")
            except BaseException:
                cgroup.remove(1.0)
                raise
            return cgroup

        return ChildLauncher(cell, build, scratch, port, make_cgroup)


def remove_leftover_cgroups(prefix: str = CGROUP_PREFIX) -> list[str]:
    """Remove cgroups a crashed run left behind (all goreclaim's, or those under `prefix`)."""
    from harness.run.observe.cgroupfs import list_leftovers

    removed = []
    for leftover in list_leftovers(prefix):
        leftover.remove()
        removed.append(str(getattr(leftover, "path", leftover)))
    return removed
