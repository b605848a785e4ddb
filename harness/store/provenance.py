"""Provenance of a run: what it ran on and with, collected once at its start into the manifest.

Each `collect_*` function describes one thing; a failure becomes an "unavailable: ..." value,
never a failed run (as pyperf's _collect_metadata does).
"""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from harness.build.docker_client import docker_client


def _safe(collect: Callable[[], object]) -> object:
    try:
        return collect()
    except Exception as e:  # noqa: BLE001 - provenance is best effort; say what failed
        return f"unavailable: {type(e).__name__}: {e}"


def collect_harness() -> dict[str, Any]:
    from harness import __version__
    from harness.define.project import REPO_ROOT as repo

    out: dict[str, Any] = {"version": __version__, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5)
            out["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


def collect_host() -> dict[str, Any]:
    """The machine a run's figures hold for: CPUs (all, and those this process may use), memory and
    swap (none: no page ever leaves RAM, so RSS and cgroup usage are not blurred by swapping)."""
    return {"hostname": socket.gethostname(), "arch": platform.machine(),
            "cpus": psutil.cpu_count(logical=True), "cpus_physical": psutil.cpu_count(logical=False),
            "cpus_usable": len(psutil.Process().cpu_affinity()),
            "mem_total_bytes": psutil.virtual_memory().total, "swap_total_bytes": psutil.swap_memory().total,
            "load_avg_1m": round(psutil.getloadavg()[0], 2)}


def collect_kernel() -> dict[str, Any]:
    u = os.uname()
    return {"release": u.release, "version": u.version}


def collect_cgroup() -> dict[str, Any]:
    from harness.run.observe.cgroupfs import memory_cgroup_of

    cg = memory_cgroup_of("self")
    return {"memory_version": cg.version, "own_memory_cgroup": str(cg.path)}


def collect_thp() -> str:
    text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else text.strip()


def collect_docker(timeout_s: float = 2.0) -> dict[str, Any] | None:
    client = docker_client(timeout_s=timeout_s)
    try:
        v = client.version()
        return {"engine": v.get("Version"), "api": v.get("ApiVersion"),
                "cgroup_driver": client.info().get("CgroupDriver")}
    finally:
        client.close()


def collect_python() -> dict[str, Any]:
    return {"version": platform.python_version(), "implementation": platform.python_implementation(),
            "executable": sys.executable}


def collect_manifest(**extra: object) -> dict[str, Any]:
    """Provenance of a run: harness, host, kernel, cgroup, THP, swap, Docker, Python, date; plus extra."""
    manifest = {
        "harness": _safe(collect_harness),
        "host": _safe(collect_host),
        "kernel": _safe(collect_kernel),
        "cgroup": _safe(collect_cgroup),
        "thp": _safe(collect_thp),
        "docker": _safe(collect_docker),
        "python": _safe(collect_python),
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "started_monotonic_ns": time.monotonic_ns(),
    }
    manifest.update(extra)
    return manifest
