"""The workload's environment: a short allowlist from the host plus the cell's runtime settings.

The Go runtime reads GOGC, GODEBUG, GOMEMLIMIT (and GOMAXPROCS, GOTRACEBACK, ...) from its
environment, so anything inherited from the shell running the harness would silently change
what a cell measures. Nothing is inherited except the variables below.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping

from harness.define.axes import AXES
from harness.define.cell import Cell
from harness.run.observe.strace import strace_path

# Why each host variable may pass:
#   PATH  the usual search path; a workload never execs anything, but a child without PATH
#         surprises anyone running it by hand, and it cannot change the runtime's behaviour.
#   TZ    time.Local in the workload follows the host's zone, so any wall-clock text it
#         prints reads the same as the harness's logs. No effect on memory.
# Deliberately absent: HOME, LANG/LC_* (the Go runtime reads neither), and every GO* variable.
HOST_ALLOWLIST = ("PATH", "TZ")

# The variables the env-applied axes set (harness.define.axes); by the time a cell runs, GOGC
# and GOMEMLIMIT are resolved to what the runtime parses: a plain decimal or "off".
GOGC, GOMEMLIMIT, GODEBUG = AXES["gogc"].env, AXES["gomemlimit"].env, AXES["godebug"].env
_RESOLVED = re.compile(r"^(off|\d+)$")

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
    if cell.gogc is not None:
        if not _RESOLVED.match(cell.gogc):
            raise ValueError(
                f"cell {cell.cell_id}: gogc={cell.gogc!r} is not valid; use a non-negative integer "
                f"percentage (e.g. '100') or 'off'"
            )
        env[GOGC] = cell.gogc
    godebug = cell.godebug()
    if godebug:
        env[GODEBUG] = godebug
    if cell.gomemlimit is not None:
        if not _RESOLVED.match(cell.gomemlimit):
            raise ValueError(
                f"cell {cell.cell_id}: gomemlimit={cell.gomemlimit!r} is not valid; use a byte "
                f"count as a plain decimal (e.g. '314572800') or 'off'"
            )
        env[GOMEMLIMIT] = cell.gomemlimit
    if cell.trace_syscalls and cell.program is None and tmpdir is not None and strace_path():
        env[WAIT_FOR_TRACER] = posixpath.join(tmpdir, TRACED_FILE)
    return env
