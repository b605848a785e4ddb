"""Boots a guest and runs a command that never ends, for the Ctrl-C and SIGKILL tests of test_guest.py.

usage: guest_driver.py
Prints `QEMU <pid> <scratch>` once the guest is up, then `STOPPED <reason>` if it is interrupted.
"""

import signal
import sys

from harness.run.guest import Guest, GuestSettings


def main() -> int:
    # A shell starts background jobs with SIGINT ignored (a `make test &`); the Ctrl-C test needs it as a
    # terminal gives it, as goreclaim's own run session takes it (harness.drive.session).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    guest = Guest(GuestSettings(memory_mib=512, cpus=1))
    try:
        guest.start()
        assert guest.process is not None
        print("QEMU", guest.process.pid, guest.scratch, flush=True)
        guest.run(["sleep", "3600"], timeout_s=3600)
    except KeyboardInterrupt:
        print("STOPPED Ctrl-C", flush=True)
        return 130
    finally:
        guest.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
