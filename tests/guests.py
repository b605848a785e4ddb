"""What a test that boots a guest kernel needs, said once: qemu and mkfs here, and a Debian kernel
(fetched from Debian's archive and cached on first use). Without them such a test skips, printing why."""

from __future__ import annotations

import sys

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
