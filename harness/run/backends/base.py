"""The seam every backend implements, and what a run of one cell produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from harness.define.build import Build
from harness.define.cell import Cell
from harness.define.metrics import Event, Sample

# Outcomes of one cell. An OOM kill, a crash or a timeout is a measured outcome,
# not a harness error.
Status = Literal["ok", "oom_killed", "failed", "timeout", "skipped", "interrupted", "exited", "build_failed",
                 "not_ready", "load_failed", "lost", "watched"]
STATUSES: dict[Status, str] = {  # what each status means (a test checks it describes every Status)
    "ok": "the workload ran to its end",
    "oom_killed": "the kernel's OOM killer ended it at the memory limit",
    "failed": "it exited with an error, or the harness could not run it",
    "timeout": "still running at the cell's timeout; killed",
    "skipped": "not run here (no backend or Go version for it); the reason says why",
    "interrupted": "stopped by SIGINT/SIGTERM; what was measured is kept",
    "exited": "a program ended by itself with a non-zero exit code (kept with its output): its outcome",
    "build_failed": "the program could not be built with this cell's Go version; the reason has the output",
    "not_ready": "a server did not pass its --ready check in time; stopped",
    "load_failed": "a server's load command failed (the reason has its output); stopped",
    "lost": "the cluster worker running it died mid-cell (the reason says which); it was queued again once",
    "watched": "a process already running, sampled by `goreclaim watch` without touching it, for the watch's "
               "duration or until it exited or Ctrl-C (the reason says which)",
}
# Cells whose measurements a verdict may read, and cells that make a run fail.
MEASURED: tuple[Status, ...] = ("ok", "oom_killed", "exited", "watched")
ERRORS: tuple[Status, ...] = ("failed", "timeout", "build_failed", "not_ready", "load_failed", "lost")


@dataclass
class RunResult:
    cell: Cell
    status: Status
    reason: str = ""                 # why skipped/failed/timeout, human-readable
    exit_code: int | None = None
    oom_killed: bool = False
    wall_s: float = 0.0
    t0_ns: int = 0                   # CLOCK_MONOTONIC at workload start; t_s = (t_ns - t0_ns) / 1e9
    # Tidy rows (t_ns, source, metric, value): source in proc|cgroup|smaps|runtime|docker.
    samples: list[Sample] = field(default_factory=list)
    # Events (t_ns, kind, name, value, detail_json): kind in
    # start|phase|freeos|end|gc|scav|syscall|oom|exit|sampler.
    events: list[Event] = field(default_factory=list)
    peak_rss_bytes: int | None = None      # kernel VmHWM (max with sampled VmRSS)
    peak_cgroup_bytes: int | None = None   # cgroup max_usage_in_bytes / memory.peak
    stderr_tail: str = ""
    output: dict[str, str] = field(default_factory=dict)  # a program's whole stdout and stderr, by stream
    sampler_stats: dict = field(default_factory=dict)  # achieved Hz per tier, missed deadlines, read cost
    # Where it ran (harness.run.placement): host, kernel, cgroup_version, cpuset.
    placement: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"{self.cell.cell_id}: status {self.status!r} is not one of {', '.join(STATUSES)}")


class Backend(Protocol):
    name: str
    limits: frozenset[str]        # the cell limits (Cell.limits) it confines a cell with
    unconfined: frozenset[str]    # limits it runs a cell without, as it always has

    def available(self) -> str | None:
        """None if this backend can run cells here, else one sentence saying why not."""

    def run(self, cell: Cell, build: Build) -> RunResult:
        """Run the cell to completion (or OOM, timeout, interrupt) while sampling it."""

    def cleanup(self, run_id: str) -> list[str]:
        """Remove whatever this backend left behind for the run (a second Ctrl-C during a cell's
        own cleanup can leave a container or cgroup); returns what was removed."""


class RunInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived during a run; `result` holds what was measured until then.

    A KeyboardInterrupt, so a caller that knows nothing of it still stops; the runner
    catches it to save the partial cell before stopping.
    """

    def __init__(self, result: RunResult):
        super().__init__(f"interrupted during {result.cell.cell_id}")
        self.result = result
