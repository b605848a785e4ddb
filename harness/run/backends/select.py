"""Choose the backend: the one asked for, or under `auto` the most faithful one this host offers.

The names are declared in harness.define.backends; this module maps each to its class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.define.backends import BACKEND_NAMES
from harness.run.backends.base import Backend

if TYPE_CHECKING:
    from harness.run.backends.loop import LaunchingBackend


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot run here; the message says why and what to use instead."""


def backend_classes() -> dict[str, type[LaunchingBackend]]:
    """Each backend's class by name, most faithful first (imported only when asked for)."""
    from harness.run.backends.cgroup import CgroupBackend
    from harness.run.backends.docker import DockerBackend
    from harness.run.backends.process import ProcessBackend

    return {"docker": DockerBackend, "cgroup": CgroupBackend, "process": ProcessBackend}


def make_backend(name: str, run_label: str = "") -> Backend:
    if name == "docker":
        from harness.run.backends.docker import DockerBackend

        return DockerBackend(run_label=run_label)
    if name in ("cgroup", "process"):
        return backend_classes()[name]()
    raise ValueError(f"unknown backend {name!r}; valid: {', '.join(BACKEND_NAMES)}")


def backends_applying(limit: str) -> list[str]:
    """The backends that confine a cell with this limit (Cell.limits), most faithful first."""
    return [name for name, cls in backend_classes().items() if limit in cls.limits]


def backends_applying_all(limits: set[str]) -> list[str]:
    """The backends that confine a cell with all these limits, most faithful first."""
    return [name for name, cls in backend_classes().items() if limits <= cls.limits | cls.unconfined]


def select_backend(name: str, run_label: str = "") -> tuple[Backend, str]:
    """(backend, why it was chosen). `auto`: docker if a daemon answers, else a cgroup if one can
    be created, else a plain process (which skips every cell with a memory limit)."""
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; valid: {', '.join(BACKEND_NAMES)}")
    if name != "auto":
        backend = make_backend(name, run_label)
        why_not = backend.available()
        if why_not is not None:
            raise BackendUnavailable(f"backend {name!r} is not available: {why_not}. {_instead(name)}")
        return backend, f"{name}: asked for with --backend {name}"

    reasons: list[str] = []
    for candidate in ("docker", "cgroup"):
        backend = make_backend(candidate, run_label)
        why_not = backend.available()
        if why_not is None:
            skipped = f" ({'; '.join(reasons)})" if reasons else ""
            return backend, f"{candidate}: auto picked the first available of docker, cgroup, process{skipped}"
        reasons.append(f"{candidate} unavailable: {why_not}")
    return make_backend("process", run_label), (
        "process: auto fell back to a plain child process, so cells with a memory limit are skipped ("
        + "; ".join(reasons) + ")"
    )


def _instead(name: str) -> str:
    others = [n for n in ("docker", "cgroup") if n != name]
    return (f"Use --backend {' or '.join(others)} or --backend auto; the process backend runs only "
            f"cells without a memory limit")
