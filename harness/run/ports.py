"""A server's port: the cell's own free one ({port}), a fixed one its --ready names, and whether one answers."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from harness.define.cell import Cell
from harness.define.workloads import PORT


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now: the cell's {port}."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cell_port(cell: Cell) -> int | None:
    """A free port for a program that uses {port}; None for any other cell."""
    return free_port() if cell.program is not None and cell.program.uses_port else None


def fixed_port(cell: Cell) -> int | None:
    """The port of a `--ready tcp:PORT` naming a number rather than the cell's {port}."""
    ready = cell.program.ready if cell.program is not None else ""
    return int(ready[4:]) if ready.startswith("tcp:") and ready[4:].isdigit() else None


def port_taken(cell: Cell) -> str:
    """Why the cell's fixed port cannot be its program's: something answers on it already ("" if free)."""
    port = fixed_port(cell)
    if port is None:
        return ""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return (f"port {port} on 127.0.0.1 is already taken by another process, so --ready tcp:{port} "
                    "would not be this program; free it, or let each cell have its own with {port}")
    except OSError:
        return ""


def with_port(texts: Iterable[str], port: int | None) -> list[str]:
    """The texts with {port} replaced by the cell's port (unchanged when it has none)."""
    return [t.replace(PORT, str(port)) if port is not None else t for t in texts]


def answers(port: int) -> bool:
    """Something listens on 127.0.0.1:port and keeps the connection open. Docker's proxy accepts
    on a published port before the program listens, then closes at once: that is not ready."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.settimeout(0.1)
            try:
                return conn.recv(1) != b""  # a server that greets first
            except TimeoutError:
                return True  # held open, waiting for a request
    except OSError:
        return False
