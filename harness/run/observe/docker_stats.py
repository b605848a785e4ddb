"""Docker's own stats API, followed while a Docker cell runs: what `docker stats` shows.

`docker stats` prints memory_stats.usage less the inactive file pages (docker/cli 20.10
cli/command/container/stats_helpers.go calculateMemUsageUnixNoCache: `total_inactive_file` on
cgroup v1, `inactive_file` on v2, each only when below usage). The harness computes the same formula
from the cgroup's files (the cgroup working set); this reads the daemon's answer at the same phase
ends, so the report can set the two side by side. One-shot reads (API 1.41+) return at once instead of
waiting a second for a CPU delta the harness does not use.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
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


def read_time_ns(text: str) -> int | None:
    """The daemon's RFC 3339 `read` stamp ("2026-12-05T12:46:20.788404963Z", nanoseconds) as Unix ns."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", text or "")
    if m is None:
        return None
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(whole.timestamp()) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


class DockerStats:
    """Docker's stats stream for one container, read in a thread of its own: one reading a second, as the
    daemon collects them and `docker stats` prints them, each stamped with the daemon's own read time moved
    onto CLOCK_MONOTONIC, handed to `record`. The stream ends when the container is removed."""

    def __init__(self, api: Any, container_id: str, record: Callable[[list[Sample]], None],
                 on_error: Callable[[str], None] = lambda _: None):
        self.api, self.container_id, self.record, self.on_error = api, container_id, record, on_error
        self.wall_minus_mono_ns = time.time_ns() - time.monotonic_ns()

    def start(self) -> None:
        threading.Thread(target=self.follow, daemon=True, name="docker-stats").start()

    def follow(self) -> None:
        try:
            for reply in self.api.stats(self.container_id, decode=True, stream=True):
                self.take(reply)
        except Exception as e:  # noqa: BLE001 - the daemon's any error: readings missing, said in the stats
            self.on_error(f"docker stats API: {type(e).__name__}: {e}")

    def take(self, reply: Any) -> None:
        if not isinstance(reply, dict):
            return
        read = memory_usage_no_cache(reply.get("memory_stats") or {})
        at = read_time_ns(str(reply.get("read", "")))
        if read is None or at is None:
            return   # a stopped container's reply: zero time, no memory_stats
        t = at - self.wall_minus_mono_ns
        self.record([(t, "docker", name, value) for name, value in zip((USAGE, INACTIVE_FILE, MEM_USAGE), read,
                                                                      strict=True)])
