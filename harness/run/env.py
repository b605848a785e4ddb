"""The workload's environment: a short allowlist from the host plus what the cell's axes set.

The Go runtime reads GOGC, GODEBUG, GOMEMLIMIT (and GOMAXPROCS, GOTRACEBACK, ...) from its
environment, so anything inherited from the shell running the harness would silently change
what a cell measures. Nothing is inherited except the variables below.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping

from harness.define.cell import Cell
from harness.run.observe.strace import strace_path

# Why each host variable may pass:
#   PATH  the usual search path; a workload never execs anything, but a child without PATH
#         surprises anyone running it by hand, and it cannot change the runtime's behaviour.
#   TZ    time.Local in the workload follows the host's zone, so any wall-clock text it
#         prints reads the same as the harness's logs. No effect on memory.
# Deliberately absent: HOME, LANG/LC_* (the Go runtime reads neither), and every GO* variable.
HOST_ALLOWLIST = ("PATH", "TZ")

# A built-in workload given this waits, before its start line, for the file it names in its scratch
# directory (go_workloads/internal/telemetry/tracer.go), which the harness creates once strace has
# attached to every thread (observe.strace.SyscallTrace.attach): a traced cell's calls are all in the
# trace, however late the attach comes on a busy host. Set only when strace is there to attach.
WAIT_FOR_TRACER = "GORECLAIM_WAIT_FOR_TRACER"
TRACED_FILE = ".goreclaim-traced"


def child_env(cell: Cell, host: Mapping[str, str] | None = None, tmpdir: str | None = None) -> dict[str, str]:
    """The complete environment for the cell's workload. `host` defaults to os.environ."""
    host = os.environ if host is None else host
    env = {name: host[name] for name in HOST_ALLOWLIST if name in host}
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir  # the cell's scratch directory, as the workload sees it
    # Resolved by the axes (harness.define.axes) to what the runtime parses: GOGC=50, GOMEMLIMIT in
    # bytes, GODEBUG with every axis's settings joined.
    env.update(cell.env)
    if cell.trace_syscalls and cell.program is None and tmpdir is not None and strace_path():
        env[WAIT_FOR_TRACER] = posixpath.join(tmpdir, TRACED_FILE)
    return env
