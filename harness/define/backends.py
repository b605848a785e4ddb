"""The backends a cell can run under, by name: scenario validation, the matrix, the command line
and `harness.run.backends.select` (which maps each name to its class) all read them from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendName:
    name: str
    description: str


BACKENDS: dict[str, BackendName] = {b.name: b for b in (
    BackendName("auto", "the most faithful one this host offers: docker, else cgroup, else process"),
    BackendName("docker", "a container per cell with its memory limit (the article's setting)"),
    BackendName("cgroup", "a child process in a cgroup of its own with the memory limit"),
    BackendName("process", "a plain child process; cells with a memory limit are skipped"),
)}

BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
DEFAULT_BACKEND = "auto"
