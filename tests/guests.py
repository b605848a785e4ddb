"""What a test that boots a guest kernel needs, said once: qemu and mkfs here, and a Debian kernel
(fetched from Debian's archive and cached on first use). Without them such a test skips, printing why."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

SERIES = "6.1"  # the kernel the guest tests boot (harness.define.hosts.DEFAULT_GUEST_KERNEL's series)


def guest_unavailable(series: str = SERIES) -> str | None:
    """Why no guest of this kernel series can be booted here, None when one can."""
    from harness.build import kernels
    from harness.run import guest

    missing = guest.qemu_available()
    if missing:
        return missing
    try:
        kernels.fetch(series)
    except kernels.KernelError as exc:
        return str(exc)
    return None


def require_guest(what: str, also: str | None = None) -> None:
    """Skip the calling test, printing why, unless a guest can be booted (and `also`, a further reason not
    to, is None)."""
    reason = guest_unavailable() or also
    if reason:
        print(f"{what} skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)


def qemus_of(pid: int) -> list[int]:
    """qemu processes booted by the harness process `pid` (their initramfs is in its scratch)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"qemu-system-x86_64") and any(
                f"/guest-{pid}-".encode() in arg for arg in cmdline):
            found.append(int(proc.name))
    return found


def gone(pid: int, within_s: float = 60.0) -> bool:
    """Whether the process has ended (and is not a zombie) within the bound; a bound only against a hang."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.2)
    return False
