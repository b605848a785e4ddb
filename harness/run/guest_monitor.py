"""What a stalled guest (harness.run.guest) was doing, asked of qemu's human monitor (HMP) before it is killed.

A guest whose heartbeat stopped can no longer answer through its own console: the monitor is qemu's,
outside the guest. It gives two things:

- each vCPU's instruction pointer (`info registers -a`), named by the kernel's symbols (its
  /proc/kallsyms, kept from a first boot: harness.build.kernels.Kernel.kallsyms; the guest boots with
  `nokaslr`, so those addresses are the running ones), which answers even when the guest's kernel no
  longer takes interrupts;
- the kernel's own account, asked with magic SysRq keys on the emulated keyboard (`sendkey`):
  `9` raises the console log level (the guest boots at 3, which hides everything below KERN_CRIT),
  `l` prints every active CPU's backtrace, `w` every blocked task's, `m` the memory state. The guest
  boots with `sysrq_always_enabled`; Debian's default mask (0x1b6) allows none of the dumps.
"""

from __future__ import annotations

import bisect
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

PROMPT = b"(qemu) "
TIMEOUT_S = 10.0
# The SysRq keys pressed, in order (see the module's docstring).
SYSRQ_KEYS = ("9", "l", "w", "m")


class MonitorError(OSError):
    """The monitor did not answer (qemu gone, or itself stuck)."""


class Monitor:
    """One HMP connection to the abstract unix socket `name` (qemu `-monitor unix:NAME,...,abstract=on`):
    `Monitor(name).command("info registers -a")` returns the text qemu printed."""

    def __init__(self, name: str, timeout_s: float = TIMEOUT_S):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        try:
            self.sock.connect("\0" + name)
            self._until_prompt()  # the banner
        except OSError as exc:
            self.sock.close()
            raise MonitorError(f"qemu's monitor {name} did not answer: {exc}") from None

    def _until_prompt(self) -> str:
        data = b""
        while not data.endswith(PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MonitorError("qemu's monitor closed its connection")
            data += chunk
        return data[: -len(PROMPT)].decode(errors="replace")

    def command(self, line: str) -> str:
        try:
            self.sock.sendall(line.encode() + b"\n")
            text = self._until_prompt()
        except OSError as exc:
            raise MonitorError(f"qemu's monitor did not answer {line!r}: {exc}") from None
        # HMP echoes the command line (with terminal escapes) before its answer.
        return text.split("\n", 1)[1] if "\n" in text else ""

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class SymbolMap:
    """A kernel's text symbols (System.map or /proc/kallsyms lines): addresses to `function+0xoffset`."""

    addresses: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> SymbolMap:
        pairs = []
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                pairs.append((int(parts[0], 16), parts[2]))
        pairs.sort()
        return cls(tuple(a for a, _ in pairs), tuple(n for _, n in pairs))

    def name(self, address: int) -> str:
        i = bisect.bisect_right(self.addresses, address) - 1
        if i < 0 or address - self.addresses[i] > 1 << 20:  # outside the kernel's text: user space
            return f"{address:#x} (not kernel text)"
        return f"{self.names[i]}+{address - self.addresses[i]:#x}"


def instruction_pointers(registers: str) -> list[int]:
    """Each vCPU's RIP from `info registers -a`, in CPU order; EIP for a vCPU not yet in long mode (a boot
    that hung before the kernel's 64-bit entry)."""
    return [int(ip, 16) for ip in re.findall(r"\b[RE]IP=([0-9a-fA-F]+)", registers)]


def diagnose(monitor: str, symbols_file: Path | None, wait_s: float = 10.0) -> str:
    """Where each vCPU is, and the SysRq keys pressed; the kernel's answers then come on the console,
    which the caller reads. One line per fact; a monitor that does not answer is said, never raised."""
    lines = []
    try:
        connection = Monitor(monitor)
    except MonitorError as exc:
        return str(exc)
    try:
        symbols = SymbolMap.read(symbols_file) if symbols_file is not None and symbols_file.is_file() else None
        for sample in range(3):  # a vCPU spinning in one place shows the same RIP each time
            rips = instruction_pointers(connection.command("info registers -a"))
            named = [symbols.name(r) if symbols else f"{r:#x}" for r in rips]
            lines.append(f"vCPU instruction pointers (sample {sample + 1}): " + "; ".join(
                f"CPU {cpu}: {name}" for cpu, name in enumerate(named)))
            time.sleep(0.5)
        for key in SYSRQ_KEYS:
            connection.command(f"sendkey alt-sysrq-{key}")
            time.sleep(wait_s / len(SYSRQ_KEYS))
        lines.append(f"SysRq {', '.join(SYSRQ_KEYS)} pressed; the kernel's answer follows on the console")
    except MonitorError as exc:
        lines.append(str(exc))
    finally:
        connection.close()
    return "\n".join(lines)
