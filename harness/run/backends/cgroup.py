"""The workload as a child process inside a memory cgroup of its own, created for the cell.

For hosts without Docker: the same limit and the same kernel accounting (usage, peak, OOM
kills) as a container, with nothing but a writable cgroup hierarchy.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from harness.define.build import Build
from harness.define.cell import Cell
from harness.run.backends.loop import Launcher
from harness.run.backends.process import ChildLauncher, ProcessBackend
from harness.run.leftovers import CGROUP_PREFIX, owner_tag
from harness.run.observe.cgroupfs import MemoryCgroup
from harness.run.scratch import remove_leftover_scratch

_serial = itertools.count()


class CgroupBackend(ProcessBackend):
    name = "cgroup"
    limits = frozenset({"memory"})

    def available(self) -> str | None:
        from harness.run.observe.cgroupfs import writable_memory_hierarchy

        return writable_memory_hierarchy()

    def cleanup(self, run_id: str) -> list[str]:
        # Cgroup names carry the harness's pid, not the run id: this process's leftovers.
        return remove_leftover_cgroups(f"{CGROUP_PREFIX}{os.getpid()}-") + remove_leftover_scratch()

    def launcher(self, cell: Cell, build: Build, scratch: Path, port: int | None) -> Launcher:
        def make_cgroup() -> MemoryCgroup:
            from harness.run.observe.cgroupfs import create_memory_cgroup

            # Unique per harness process and cell; the prefix lets leftovers be found after a crash.
            # A cell without a limit still gets a cgroup of its own, so its usage is measured.
            return create_memory_cgroup(f"{CGROUP_PREFIX}{owner_tag()}-{next(_serial)}", cell.memory_limit_bytes)

        return ChildLauncher(cell, build, scratch, port, make_cgroup)


def remove_leftover_cgroups(prefix: str = CGROUP_PREFIX) -> list[str]:
    """Remove cgroups a crashed run left behind (all goreclaim's, or those under `prefix`)."""
    from harness.run.observe.cgroupfs import list_leftovers

    removed = []
    for leftover in list_leftovers(prefix):
        leftover.remove()
        removed.append(str(getattr(leftover, "path", leftover)))
    return removed
