"""A workload's output as lines, each stamped with the monotonic time its last byte arrived."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

# Where a line goes: (the line without its newline, CLOCK_MONOTONIC ns when it arrived).
Feed = Callable[[str, int], None]


class LineSplitter:
    """Bytes in, whole lines out: a line split across chunks is joined, the rest given at `close`."""

    def __init__(self, feed: Feed):
        self._feed = feed
        self._pending = b""

    def add(self, chunk: bytes, now_ns: int) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._feed(line.decode("utf-8", "replace").rstrip("\r"), now_ns)

    def close(self, now_ns: int) -> None:
        if self._pending:
            self._feed(self._pending.decode("utf-8", "replace"), now_ns)
            self._pending = b""


def pump_lines(chunks: Iterable[bytes], feed: Feed) -> None:
    """Split one byte stream into lines until it ends."""
    lines = LineSplitter(feed)
    for chunk in chunks:
        if chunk:
            lines.add(chunk, time.monotonic_ns())
    lines.close(time.monotonic_ns())


def pump_demuxed(frames: Iterable[tuple[bytes | None, bytes | None]], stdout: Feed, stderr: Feed) -> None:
    """Split docker's demultiplexed (stdout, stderr) frames into the lines of each stream until they end."""
    out, err = LineSplitter(stdout), LineSplitter(stderr)
    for out_chunk, err_chunk in frames:
        now = time.monotonic_ns()
        if out_chunk:
            out.add(out_chunk, now)
        if err_chunk:
            err.add(err_chunk, now)
    now = time.monotonic_ns()
    out.close(now)
    err.close(now)
