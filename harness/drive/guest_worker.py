"""`python -m harness.drive.guest_worker DIR`, in a guest: run the cell worker on each task directory
DIR/NNN/ in order, in this one process, and print `@@cell NNN` once NNN/result.pkl is written.

One process for a group's cells, not one per cell: under software emulation the harness's imports
take seconds, once. Each cell is still the cell worker's (harness.drive.cell_worker): its task file
in, its result file out, a Ctrl-C or SIGTERM stops the cell and leaves an `interrupted` result. The
host asks the guest to stop by creating DIR/stop (it cannot signal a process in the guest): the
running cell stops as after SIGTERM, and no further cell starts.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from harness.drive import cell_worker

STOP_FILE = "stop"
CELL_DONE = "@@cell"
POLL_S = 0.2


def _watch_stop(work: Path) -> None:
    while not (work / STOP_FILE).exists():
        threading.Event().wait(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    work = Path(argv[0])
    threading.Thread(target=_watch_stop, args=(work,), daemon=True).start()
    code = 0
    try:
        import harness.drive.session  # noqa: F401 - the cell worker's imports, once, before the first cell starts

        for task in sorted(p for p in work.iterdir() if p.is_dir()):
            if (work / STOP_FILE).exists():
                break
            print(f"cell {task.name} starts", flush=True)
            code = cell_worker.main([str(task)])
            print(CELL_DONE, task.name, flush=True)
            if code == 130:  # stopped: the cells after it are not started
                break
    except KeyboardInterrupt:  # between two cells: nothing runs
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
