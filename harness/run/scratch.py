"""A cell's scratch directory: its working directory and $TMPDIR, on the host's real filesystem."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.define.cell import Cell
from harness.run.leftovers import SCRATCH_PREFIX, owner_tag

SCRATCH_IN_CONTAINER = "/scratch"


@contextlib.contextmanager
def scratch_dir(cell: Cell) -> Iterator[Path]:
    """A writable directory for the cell's working directory and $TMPDIR, on the host's real
    filesystem (a file written there fills page cache charged to the cell's cgroup, where tmpfs
    would be unreclaimable shmem), kept out of the image and removed when the cell ends."""
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{owner_tag()}-"))
    path.chmod(0o777)  # the workload may run as another user than the harness
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_leftover_scratch() -> list[str]:
    """Scratch directories of this process that a second Ctrl-C kept from being removed."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{os.getpid()}-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed
