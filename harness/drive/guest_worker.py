"""`python -m harness.drive.guest_worker [--docker] DIR`, in a guest: run the cell worker on each task
directory DIR/NNN/ in order, in this one process, and print `@@cell NNN` once NNN/result.pkl is written.

With --docker it first starts the guest's Docker engine (harness.run.guest_docker), once for all the
cells, prints `@@engine ready SECONDS` (or `@@engine failed REASON`) and stops it after the last cell;
a cell that asked for `--backend docker` where the engine did not start is skipped with its reason,
one with `--backend auto` then runs in a cgroup, as on a host without Docker.

One process for a group's cells, not one per cell: under software emulation the harness's imports
take seconds, once. Each cell is still the cell worker's (harness.drive.cell_worker): its task file
in, its result file out, a Ctrl-C or SIGTERM stops the cell and leaves an `interrupted` result. The
host asks the guest to stop by creating DIR/stop (it cannot signal a process in the guest): the
running cell stops as after SIGTERM, and no further cell starts.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from harness.drive import cell_worker
from harness.run.guest_docker import EngineError, GuestEngine

STOP_FILE = "stop"
CELL_DONE = "@@cell"
ENGINE = "@@engine"
DOCKER_OPTION = "--docker"
POLL_S = 0.2


def _watch_stop(work: Path) -> None:
    while not (work / STOP_FILE).exists():
        threading.Event().wait(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _skip(task: Path, reason: str) -> None:
    """Save the task's cell as skipped, saying why, without running it."""
    from harness.run.backends.base import RunResult
    from harness.run.placement import placement

    cell = pickle.loads((task / cell_worker.TASK_FILE).read_bytes()).cell
    result = RunResult(cell=cell, status="skipped", reason=reason, placement=placement(cell.cpuset))
    tmp = task / f".{cell_worker.RESULT_FILE}.tmp"
    tmp.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, task / cell_worker.RESULT_FILE)


def main(argv: list[str]) -> int:
    work = Path(argv[-1])
    signal.signal(signal.SIGTERM, _interrupt)  # the engine is stopped in order (each cell sets its own)
    threading.Thread(target=_watch_stop, args=(work,), daemon=True).start()
    code = 0
    engine: GuestEngine | None = None
    engine_failed = ""
    try:
        import harness.drive.session  # noqa: F401 - the cell worker's imports, once, before the first cell starts

        if DOCKER_OPTION in argv[:-1]:
            engine = GuestEngine(Path(os.environ.get("TMPDIR") or tempfile.gettempdir()))
            try:
                print(ENGINE, "ready", f"{engine.start():.2f}", flush=True)
            except EngineError as exc:
                engine_failed = f"the guest's Docker engine did not start: {exc}"
                print(ENGINE, "failed", engine_failed, flush=True)
        for task in sorted(p for p in work.iterdir() if p.is_dir()):
            if (work / STOP_FILE).exists():
                break
            if engine_failed and pickle.loads((task / cell_worker.TASK_FILE).read_bytes()).backend == "docker":
                _skip(task, engine_failed)
                print(CELL_DONE, task.name, flush=True)
                continue
            print(f"cell {task.name} starts", flush=True)
            code = cell_worker.main([str(task)])
            print(CELL_DONE, task.name, flush=True)
            if code == 130:  # stopped: the cells after it are not started
                break
    except KeyboardInterrupt:  # between two cells, or while the engine starts: no cell runs
        code = 130
    finally:
        if engine is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second stop must not cut the engine's stop short
            engine.stop()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
