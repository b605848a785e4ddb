"""Docker's own stats API, read at every phase change of a Docker cell: what `docker stats` shows.

`docker stats` prints memory_stats.usage less the inactive file pages (docker/cli 20.10
cli/command/container/stats_helpers.go calculateMemUsageUnixNoCache: `total_inactive_file` on
cgroup v1, `inactive_file` on v2, each only when below usage). The harness computes the same formula
from the cgroup's files (the cgroup working set); this reads the daemon's answer at the same phase
ends, so the report can set the two side by side. One-shot reads (API 1.41+) return at once instead of
waiting a second for a CPU delta the harness does not use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from harness.define.metrics import Sample

# The series recorded (source "docker"): the API's usage, the inactive file pages docker subtracts,
# and docker stats' own memory usage.
USAGE, INACTIVE_FILE, MEM_USAGE = "usage", "inactive_file", "mem_usage"


def memory_usage_no_cache(memory_stats: dict[str, Any]) -> tuple[float, float, float] | None:
    """(usage, inactive file pages subtracted, what docker stats shows) from a stats reply's memory_stats,
    as docker/cli 20.10 calculateMemUsageUnixNoCache; None when the reply has no usage (container gone)."""
    usage = memory_stats.get("usage")
    if not isinstance(usage, (int, float)) or isinstance(usage, bool):
        return None
    stats = memory_stats.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):   # v1 first, as the CLI checks it
        inactive = stats.get(key)
        if isinstance(inactive, (int, float)) and inactive < usage:
            return float(usage), float(inactive), float(usage - inactive)
    return float(usage), 0.0, float(usage)


class DockerStats:
    """Reads a container's stats once per trigger, in a thread of its own (a phase change must not wait
    for the daemon), and hands the readings, stamped with CLOCK_MONOTONIC, to `record`."""

    def __init__(self, api: Any, container_id: str, record: Callable[[list[Sample]], None],
                 on_error: Callable[[str], None] = lambda _: None):
        self.api, self.container_id, self.record, self.on_error = api, container_id, record, on_error

    def trigger(self) -> None:
        threading.Thread(target=self.read, daemon=True, name="docker-stats").start()

    def read(self) -> None:
        sent = time.monotonic_ns()
        try:
            reply = self.api.stats(self.container_id, stream=False, one_shot=True)
        except Exception as e:  # noqa: BLE001 - the daemon's any error: a missing reading, said in the stats
            self.on_error(f"docker stats API: {type(e).__name__}: {e}")
            return
        got = time.monotonic_ns()
        read = memory_usage_no_cache(reply.get("memory_stats") or {}) if isinstance(reply, dict) else None
        if read is None:
            return
        t = (sent + got) // 2   # the daemon reads the cgroup between the request and its reply
        self.record([(t, "docker", name, value) for name, value in zip((USAGE, INACTIVE_FILE, MEM_USAGE), read,
                                                                      strict=True)])
