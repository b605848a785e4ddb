"""The workload as a child process inside a memory cgroup of its own, created for the cell.

For hosts without Docker: the same limit and the same kernel accounting (usage, peak, OOM
kills) as a container, with nothing but a writable cgroup hierarchy.
"""

from __future__ import annotations

import itertools
import os

from harness.run.backends.base import RunResult
from harness.run.backends.common import remove_leftover_scratch
from harness.run.backends.process import run_child
from harness.run.leftovers import owner_tag
from harness.define.cell import Cell
from harness.build.toolchain import Build

CGROUP_PREFIX = "goreclaim-"
_serial = itertools.count()


class CgroupBackend:
    name = "cgroup"

    def available(self) -> str | None:
        from harness.run.observe.cgroupfs import writable_memory_hierarchy

        return writable_memory_hierarchy()

    def cleanup(self, run_id: str) -> list[str]:
        # Cgroup names carry the harness's pid, not the run id: this process's leftovers.
        return remove_leftover_cgroups(f"{CGROUP_PREFIX}{os.getpid()}-") + remove_leftover_scratch()

    def run(self, cell: Cell, build: Build) -> RunResult:
        from harness.run.observe.cgroupfs import create_memory_cgroup

        # Unique per harness process and cell; the owner in it lets a later run remove it after a crash.
        name = f"{CGROUP_PREFIX}{owner_tag()}-{next(_serial)}"
        # No limit on the cell still gets a cgroup of its own, so its usage is measured.
        cgroup = create_memory_cgroup(name, cell.memory_limit_bytes)
        try:
            return run_child(cell, build, cgroup=cgroup)
        finally:
            cgroup.remove()


def remove_leftover_cgroups(prefix: str = CGROUP_PREFIX) -> list[str]:
    """Remove cgroups a crashed run left behind (all goreclaim's, or those under `prefix`)."""
    from harness.run.observe.cgroupfs import list_leftovers

    removed = []
    for leftover in list_leftovers(prefix):
        leftover.remove()
        removed.append(str(getattr(leftover, "path", leftover)))
    return removed
