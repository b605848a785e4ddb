"""`python -m harness.drive.cell_worker DIR`: run the one cell pickled in DIR/cell.pkl (a CellTask)
and write its RunResult to DIR/result.pkl.

A cluster worker's task (harness.drive.cluster) starts it in a process group of its own, so a cell
never runs inside the worker's process: SIGTERM or SIGINT stops the cell the way Ctrl-C stops
`goreclaim run` (the backend removes its container or cgroup, scratch directory and process, and the
result is an `interrupted` cell with what was measured). If the worker that started it dies, the
cell stops the same way by itself: nothing is left running on the host.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from harness.define.cell import Cell

if TYPE_CHECKING:
    from harness.run.backends.base import RunResult

PARENT_POLL_S = 0.5
TASK_FILE = "cell.pkl"
RESULT_FILE = "result.pkl"


@dataclass(frozen=True)
class CellTask:
    """What a cluster worker hands the cell's process: the cell, its backend, the run it belongs to."""

    cell: Cell
    backend: str
    run_id: str


def write_task(work: Path, task: CellTask) -> None:
    (work / TASK_FILE).write_bytes(pickle.dumps(task))


def read_result(work: Path) -> RunResult | None:
    """The cell's result, None when its process ended without writing one."""
    path = work / RESULT_FILE
    if not path.exists():
        return None
    result: RunResult = pickle.loads(path.read_bytes())
    return result


def _watch_parent(parent: int) -> None:
    """SIGTERM this process once its parent (the worker) is gone: it was reparented."""
    while True:
        threading.Event().wait(PARENT_POLL_S)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _write(path: Path, result: RunResult) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    work = Path(argv[0])
    parent = os.getppid()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()

    from harness.drive.session import CellRunner
    from harness.run.backends.base import RunInterrupted, RunResult
    from harness.run.backends.select import BackendUnavailable
    from harness.run.placement import placement

    task: CellTask = pickle.loads((work / TASK_FILE).read_bytes())
    cell = task.cell
    runner = None
    code = 0
    result: RunResult
    try:
        # Its own label: a cleanup here removes this cell's leftovers, never a neighbour's.
        runner = CellRunner(task.backend, run_label=f"{task.run_id}.{os.getpid()}",
                            log=lambda line: print(line, file=sys.stderr, flush=True))
        result = runner.run(cell)
    except RunInterrupted as stop:
        result, code = stop.result, 130
    except KeyboardInterrupt:
        result = RunResult(cell=cell, status="interrupted", reason="stopped by SIGINT/SIGTERM",
                           placement=placement(cell.cpuset))
        code = 130
    except BackendUnavailable as exc:
        result = RunResult(cell=cell, status="skipped", reason=str(exc), placement=placement(cell.cpuset))
    if runner is not None:
        # Also after a cell that ended well: a container the daemon would not remove at once.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        runner.cleanup()
    if os.getppid() != parent:  # nobody is left to read it
        shutil.rmtree(work, ignore_errors=True)
    else:
        _write(work / RESULT_FILE, result)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
