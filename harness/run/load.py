"""A server's load command (`--load`), run on the host to its end while the server runs."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable


def run_load(command: list[str], timeout_s: float, wait: Callable[[float], bool]) -> tuple[bool, int | None, str]:
    """Run the load command on the host to its end: (the program ended meanwhile, its exit code or
    None if it was stopped, its output). It never outlives this call. `wait(seconds)` waits for the
    program, True once it has ended."""
    with tempfile.TemporaryFile() as output:
        try:
            load = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                    process_group=0)
        except OSError as e:
            return False, 127, f"cannot start it: {e}"
        ended = False
        try:
            deadline = time.monotonic() + timeout_s
            while load.poll() is None and time.monotonic() < deadline:
                if wait(0.1):
                    ended = True
                    break
        finally:
            if load.poll() is None:
                try:
                    os.killpg(load.pid, signal.SIGKILL)
                except ProcessLookupError:
                    # Its process group does not exist yet (a child stuck between fork and setpgid): the
                    # child itself, or the wait below would never return.
                    load.kill()
                load.wait()
                code = None
            else:
                code = load.returncode
        output.seek(0)
        text = output.read().decode("utf-8", "replace").strip()
    return ended, code, text
