"""`python -m harness.drive.cell_worker DIR`: run the one cell pickled in DIR/cell.pkl (a CellTask)
and write its RunResult to DIR/result.pkl.

A cluster worker's task (harness.drive.cluster) starts it in a process group of its own, so a cell
never runs inside the worker's process: SIGTERM or SIGINT stops the cell the way Ctrl-C stops
`goreclaim run` (the backend removes its container or cgroup, scratch directory and process, and the
result is an `interrupted` cell with what was measured). If the worker that started it dies, the
cell stops the same way by itself: nothing is left running on the host.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import shutil
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from harness.define.cell import Cell

if TYPE_CHECKING:
    from harness.run.backends.base import RunResult

PARENT_POLL_S = 0.5
# How long past its timeout a cell may take before its harness is taken as stuck: the image build and
# the container's start before the workload, the kill wait and the removal after it, under TCG.
HANG_MARGIN_S = 300.0
HANG_EXIT = 3
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


class Watchdog:
    """Gives up on a cell whose harness is stuck in a call that never returns (a daemon that stopped
    answering): past the cell's timeout and HANG_MARGIN_S it writes a failed result saying where the
    main thread was, prints every thread's stack on stderr, and ends the process, whose cell's
    container, cgroup and scratch go with the guest or are found by `goreclaim clean`."""

    def __init__(self, work: Path, cell: Cell, after_s: float):
        self.work, self.cell, self.after_s = work, cell, after_s
        self.main = threading.main_thread().ident
        self.lock = threading.Lock()
        self.finished = False
        self.timer = threading.Timer(after_s, self._give_up)
        self.timer.daemon = True
        self.timer.start()

    def finish(self) -> bool:
        """The cell ended: the watchdog stands down. False when it has already given up on it."""
        with self.lock:
            if self.finished:
                return False
            self.finished = True
            self.timer.cancel()
            return True

    def _give_up(self) -> None:
        from harness.run.backends.base import RunResult
        from harness.run.placement import placement

        with self.lock:
            if self.finished:
                return
            self.finished = True
            frame = sys._current_frames().get(self.main or 0)
            stack = traceback.extract_stack(frame)[-3:] if frame is not None else []
            where = " ← ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack)) or "unknown"
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            reason = (f"the harness was stuck {self.after_s:.0f} s after the cell began, past its timeout, in {where} "
                      "(every thread's stack is on its stderr); the cell was given up")
            _write(self.work / RESULT_FILE, RunResult(cell=self.cell, status="failed", reason=reason,
                                                      placement=placement(self.cell.cpuset)))
            sys.stderr.flush()
            os._exit(HANG_EXIT)


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
    watchdog = Watchdog(work, cell, cell.timeout_s + HANG_MARGIN_S)
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
    if not watchdog.finish():  # it gave up on the cell and is ending the process
        threading.Event().wait()
    if os.getppid() != parent:  # nobody is left to read it
        shutil.rmtree(work, ignore_errors=True)
    else:
        _write(work / RESULT_FILE, result)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
