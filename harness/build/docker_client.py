"""The one way goreclaim talks to a Docker engine (images, containers, provenance)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def docker_client(timeout_s: float | None = 60.0) -> DockerClient:
    """A client for the engine at $DOCKER_HOST. `timeout_s=None` for a container's attach stream,
    which stays silent between lines (wait() is given its own timeout)."""
    import docker

    # The stubs say int; the SDK hands the value to requests, which takes seconds as a float or None.
    return docker.from_env(timeout=timeout_s)  # type: ignore[arg-type]
