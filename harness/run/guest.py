"""A guest machine: a cached Debian kernel booted under qemu, running commands on the host's own files.

Why a guest: cells that need another host (cgroup v2, another kernel) than the machine has run in
a kernel of their own. The guest sees the host's filesystem read-only over 9p at the same paths
(so the project's venv and code run inside unchanged) and the writable directories the caller
names, also at their own paths; /run is a tmpfs, and GUEST_TMP under it an ext4 disk of the guest's
own, every command's $TMPDIR (page cache as on a host, not shmem). The host's /tmp stays visible as it
is: a checkout or a run directory there is found at its own path.

How: a small initramfs of our own (busybox and the kernel's virtio/9p modules; no image from
anywhere else) mounts the host's root, the writable shares, proc, sys, dev and the cgroup
hierarchy the settings ask for, prints a ready line on the serial console and then runs each
command script the host drops into a control directory (one of the writable shares), framing its
output on the console with begin/end lines that carry the exit status. This boots in a few
seconds under software emulation; virtme-ng, which does the same with the host's own userspace,
took 13–20 s here.

KVM is used when it really works (a short probe boot, its answer cached per host boot and kernel);
otherwise qemu's software emulation (TCG). `Guest.accel` records which.

Nothing is left behind: qemu runs in a session of its own (a terminal's Ctrl-C reaches only the
harness, which stops it) and dies with the process that started it (PR_SET_PDEATHSIG), the
scratch directory (initramfs, control files) is removed on every way out, and a start sweeps the
scratch of guests whose harness was killed.
"""

from __future__ import annotations

import collections
import ctypes
import json
import lzma
import os
import queue
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.build import kernels
from harness.build.elf import Elf, ElfError
from harness.build.toolchain import cache_root
from harness.define.hosts import CGROUP_VERSIONS, GUEST_KHUGEPAGED_SCAN_SLEEP_MS, THP_MODES
from harness.run import guest_monitor
from harness.run.placement import thp_mode

MARK = "@@goreclaim"
QEMU = "qemu-system-x86_64"
BUSYBOX_PATHS = ("/usr/bin/busybox", "/bin/busybox")  # Debian's busybox-static
# What the initramfs loads to reach the host's files and the scratch disk (and their dependencies, from
# modules.dep).
MODULES = ("virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "crc32c_generic", "ext4")  # ext4 asks for crc32c
# The guest's scratch is an ext4 disk of this size (a sparse file, removed with the guest): page cache on a
# real filesystem, reclaimable and charged as `file`, as on a host; a tmpfs would hold it as shmem. It is
# mounted at GUEST_TMP, every command's $TMPDIR, not over /tmp, which would hide the host's /tmp (where a
# checkout, a venv or a run directory may be).
SCRATCH_DISK_GIB = 16
GUEST_TMP = "/run/goreclaim-tmp"
# No journal, no metadata checksums: a scratch disk lives as long as the guest.
MKFS = ("mkfs.ext4", "-q", "-F", "-O", "^has_journal,^metadata_csum", "-E", "lazy_itable_init=1")
MSIZE = 262144            # 9p message size: fewer round trips for the venv's imports
BOOT_TIMEOUT_S = 180.0    # TCG on a loaded host boots in 5-20 s; one not booted by then has stalled
KVM_PROBE_S = 20.0        # KVM here either boots in about a second or hangs / aborts
HALT_TIMEOUT_S = 20.0
CONSOLE_TAIL = 60         # console lines kept to explain a failure
# The guest's init prints a heartbeat this often, from the initramfs, apart from any command: a guest
# whose kernel still schedules a shell and fires its timers beats. One that has not beaten for STALL_S
# has stopped (seen under TCG: vCPUs busy, no line for an hour), and is given up at once rather than
# at its command's deadline, with what qemu's monitor says it was doing (harness.run.guest_monitor).
BEAT_S = 10
STALL_S = 240.0
STALL_CONSOLE_S = 20.0    # how long the console is read for the kernel's answer to the SysRq keys
# Kernel command line: console on the first serial port, only critical kernel messages on it (a
# panic's line is one), reboot at once on a panic (qemu -no-reboot then exits), and fewer probes. No
# AppArmor: the guest has no apparmor_parser to load Docker's `docker-default` profile, without which
# `docker run` fails in it (harness.run.guest_docker); nothing else in a guest uses a profile. No KASLR
# and every SysRq key: a stalled guest's vCPUs are named by System.map and its kernel asked for
# backtraces (harness.run.guest_monitor).
BASE_CMDLINE = ("console=ttyS0", "apparmor=0", "loglevel=3", "panic=-1", "oops=panic", "reboot=t", "audit=0",
                "mitigations=off", "i8042.noaux", "i8042.nomux", "i8042.nopnp", "i8042.dumbkbd",
                "nowatchdog", "random.trust_cpu=on", "nokaslr", "sysrq_always_enabled")
V1_CONTROLLERS = ("memory", "cpuset", "cpu,cpuacct", "pids")
V2_CONTROLLERS = ("memory", "cpu", "cpuset", "io", "pids")


class GuestError(Exception):
    """The guest could not do what was asked; the message says why in one line (boot timeout,
    kernel panic with its line, qemu's exit, a command's timeout)."""


class GuestStalled(GuestError):
    """The guest stopped beating, or its boot never finished: `diagnosis` holds what qemu's monitor and the
    kernel said about it."""

    def __init__(self, message: str, diagnosis: str):
        super().__init__(message)
        self.diagnosis = diagnosis


class GuestUnavailable(GuestError):
    """No such guest can be had here (no qemu, no kernel, a cgroup version the kernel lacks): nothing
    was booted."""


@dataclass(frozen=True)
class GuestSettings:
    """What a group of cells shares: the guest's kernel, cgroup hierarchy, size and command line."""

    kernel: str = "6.1"              # a Debian series (harness.build.kernels.SERIES)
    cgroup: str = "v2"               # v1: the v1 controllers, each mounted under /sys/fs/cgroup; v2: cgroup2
    memory_mib: int = 2048
    cpus: int = 2
    cmdline: tuple[str, ...] = ()    # further kernel parameters
    thp: str = ""                    # THP enabled and defrag mode (always|madvise|never); "": this machine's
    swap_mib: int = 0                # a swap file this large on the scratch disk; 0: no swap

    def __post_init__(self) -> None:
        if self.cgroup not in CGROUP_VERSIONS:
            raise GuestError(f"cgroup {self.cgroup!r} is not a cgroup version (valid: {', '.join(CGROUP_VERSIONS)})")


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str      # stdout and stderr, interleaved as the command wrote them
    seconds: float


# ---------------------------------------------------------------------------------- initramfs


def _newc(entries: Sequence[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """A cpio archive in the kernel's `newc` format: (path, mode, data, (rdev major, minor))."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, (major, minor)) in enumerate([*entries, ("TRAILER!!!", 0, b"", (0, 0))], 1):
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name) + 1, 0)
        out += b"070701" + b"".join(b"%08x" % f for f in fields) + name.encode() + b"\0"
        pad()
        out += data
        pad()
    return bytes(out)


def _module_order(modules_dir: Path, wanted: Sequence[str]) -> list[Path]:
    """The module files to load for `wanted`, dependencies first (modules.dep); built-in ones are skipped."""
    def name_of(path: str) -> str:
        return re.sub(r"\.ko(\.xz|\.zst|\.gz)?$", "", Path(path).name).replace("-", "_")

    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[name_of(path)] = (path, rest.split())
    builtin = modules_dir / "modules.builtin"
    builtins = {name_of(p) for p in builtin.read_text().split()} if builtin.exists() else set()
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name not in deps:
            if name in builtins:
                return
            raise GuestError(f"kernel module {name} is neither in {modules_dir}/modules.dep nor built in")
        for dep in reversed(deps[name][1]):  # modules.dep lists the last to load first
            visit(name_of(dep))
        ordered.append(name)

    for name in wanted:
        visit(name.replace("-", "_"))
    return [modules_dir / deps[n][0] for n in ordered]


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".zst":
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return data


INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev /newroot
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "@@goreclaim $*" > /dev/console; }
fail() { say "failed $* (kernel: $(dmesg | tail -n 1))"; poweroff -f; }
for m in $(cat /modules.list); do insmod /modules/$m || fail "insmod $m"; done
grep -q goreclaim.probe /proc/cmdline && { say ready probe; poweroff -f; }
R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=__MSIZE__ root $R || fail "mount of the host root"
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs shm $R/dev/shm
mount -t tmpfs run $R/run
mkdir -p $R__GUEST_TMP__
mount -t ext4 /dev/vda $R__GUEST_TMP__ || fail "mount of the scratch disk"
chmod 1777 $R__GUEST_TMP__
for w in $(cat /proc/cmdline); do case $w in
  transparent_hugepage=*) echo ${w#*=} > /sys/kernel/mm/transparent_hugepage/defrag || fail "thp defrag ${w#*=}" ;;
  goreclaim.khugepaged_ms=*) echo ${w#*=} > /sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs \
    || fail "khugepaged scan_sleep_millisecs ${w#*=}" ;;
  goreclaim.swap_mib=*) S=$R__GUEST_TMP__/.goreclaim.swap; fallocate -l $((${w#*=} << 20)) $S && chmod 600 $S \
    && mkswap $S >/dev/null && swapon $S || fail "swap of ${w#*=} MiB" ;;
esac; done
while read tag path; do
  mkdir -p "$R$path" 2>/dev/null  # where the host has no such directory, on a writable mount above it
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=__MSIZE__ $tag "$R$path" || fail "mount of $path"
done < /shares.list
CG=$R/sys/fs/cgroup
if [ "$(cat /cgroup.version)" = v2 ]; then
  mount -t cgroup2 -o nsdelegate cgroup2 $CG || fail "mount of cgroup2"
  for c in __V2__; do echo "+$c" > $CG/cgroup.subtree_control 2>/dev/null; done
else
  mount -t tmpfs -o mode=755 cgroup $CG || fail "mount of the v1 cgroup tmpfs"
  for c in __V1__; do mkdir -p $CG/$c && mount -t cgroup -o $c cgroup $CG/$c || fail "mount of cgroup $c"; done
  [ -d $CG/cpu,cpuacct ] && ln -s cpu,cpuacct $CG/cpu && ln -s cpu,cpuacct $CG/cpuacct
fi
CTL=$(cat /control.path)
[ -f $CG/cgroup.controllers ] && V=cgroup2 || V=cgroup1
# Once per kernel, its text symbols for the host (booted nokaslr: the same addresses every boot).
grep -q goreclaim.kallsyms /proc/cmdline && grep ' [tT] ' /proc/kallsyms > "$R$CTL/.kallsyms" \
  && mv "$R$CTL/.kallsyms" "$R$CTL/kallsyms"
say ready "$(uname -r)" $V
(while :; do sleep __BEAT_S__; say beat; done) &
n=0
while :; do
  if [ -f "$R$CTL/$n.sh" ]; then
    say begin $n
    chroot $R /bin/sh "$CTL/$n.sh" < /dev/null > /dev/console 2>&1
    say end $n $?
    n=$((n + 1))
  elif [ -f "$R$CTL/halt" ]; then
    break
  else
    usleep 50000
  fi
done
sync
poweroff -f
"""


def _static(path: Path) -> bool:
    """Whether an executable needs no loader (Debian's `busybox` is dynamically linked, `busybox-static` not)."""
    try:
        return Elf(path).interpreter() is None
    except (OSError, ElfError):
        return False


def build_initramfs(kernel: kernels.Kernel, shares: Sequence[tuple[str, Path]], control: Path,
                    cgroup: str) -> bytes:
    """The guest's initramfs: busybox, its init, the modules to reach the host, and what to mount."""
    busybox = next((Path(p) for p in BUSYBOX_PATHS if Path(p).is_file() and _static(Path(p))), None)
    if busybox is None:
        raise GuestError("a statically linked busybox (Debian's busybox-static) is needed for the guest's "
                         "initramfs, which has no C library; install busybox-static")
    modules = _module_order(kernel.modules, MODULES)
    init = (INIT.replace("__MSIZE__", str(MSIZE)).replace("__GUEST_TMP__", GUEST_TMP).replace("__BEAT_S__", str(BEAT_S))
            .replace("__V2__", " ".join(V2_CONTROLLERS)).replace("__V1__", " ".join(V1_CONTROLLERS)))
    directory, regular, executable = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        ("bin", directory, b"", (0, 0)), ("dev", directory, b"", (0, 0)),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),  # the kernel opens it for init's output
        ("modules", directory, b"", (0, 0)),
        ("bin/busybox", executable, busybox.read_bytes(), (0, 0)),
        ("init", executable, init.encode(), (0, 0)),
        ("modules.list", regular, "".join(f"{p.name.split('.ko')[0]}.ko\n" for p in modules).encode(), (0, 0)),
        ("shares.list", regular, "".join(f"{tag} {path}\n" for tag, path in shares).encode(), (0, 0)),
        ("control.path", regular, f"{control}\n".encode(), (0, 0)),
        ("cgroup.version", regular, f"{cgroup}\n".encode(), (0, 0)),
    ]
    entries += [(f"modules/{p.name.split('.ko')[0]}.ko", regular, _module_bytes(p), (0, 0)) for p in modules]
    return _newc(entries)


# ---------------------------------------------------------------------------------- qemu


def qemu_available() -> str | None:
    """None when qemu can be run here, else why not."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (Debian's qemu-system-x86)"
    if shutil.which(MKFS[0]) is None:
        return f"{MKFS[0]} is not installed (Debian's e2fsprogs), for the guest's scratch disk"
    return None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the harness dies, even by SIGKILL."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _qemu_command(kernel: kernels.Kernel, initramfs: Path, accel: str, settings: GuestSettings,
                  shares: Sequence[tuple[str, Path]], probe: bool, scratch_disk: Path | None = None,
                  monitor: str | None = None, kallsyms: bool = False) -> list[str]:
    # goreclaim.accel tells the cell in the guest what runs it (harness.run.placement records it).
    cmdline = [*BASE_CMDLINE, f"goreclaim.accel={accel}", *settings.cmdline, *(("goreclaim.probe",) if probe else ()),
               *(("goreclaim.kallsyms",) if kallsyms else ()),
               # Debian's kernels default to THP `always`: a guest takes this machine's mode unless asked for another.
               *((f"transparent_hugepage={thp}",) if (thp := settings.thp or thp_mode()) in THP_MODES else ()),
               *((f"goreclaim.swap_mib={settings.swap_mib}",) if settings.swap_mib else ()),
               f"goreclaim.khugepaged_ms={GUEST_KHUGEPAGED_SCAN_SLEEP_MS}"]
    command = [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-machine", "pc", "-accel", "kvm" if accel == "kvm" else "tcg,thread=multi",
               "-cpu", "host" if accel == "kvm" else "max",
               "-m", str(settings.memory_mib), "-smp", str(settings.cpus),
               "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
               "-kernel", str(kernel.vmlinux), "-initrd", str(initramfs), "-append", " ".join(cmdline)]
    if monitor is not None:
        # An abstract socket: no file to remove, and no path length limit (108 bytes) a deep cache would pass.
        command += ["-monitor", f"unix:{monitor},server=on,wait=off,abstract=on"]
    if not probe:
        command += ["-drive", f"file={scratch_disk},if=virtio,format=raw,cache=unsafe"]
        command += ["-virtfs", "local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap"]
        for tag, path in shares:
            command += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,multidevs=remap"]
    return command


def _host_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def usable_kernel(settings: GuestSettings) -> kernels.Kernel:
    """The kernel for these settings, fetched if need be; GuestUnavailable saying why there is none."""
    missing = qemu_available()
    if missing:
        raise GuestUnavailable(missing)
    try:
        kernel = kernels.fetch(settings.kernel)
    except kernels.KernelError as exc:
        raise GuestUnavailable(str(exc)) from None
    if settings.cgroup == "v1" and kernel.config("CONFIG_MEMCG_V1") == "n":
        raise GuestUnavailable(f"Linux {kernel.release} has no cgroup v1 memory controller (CONFIG_MEMCG_V1 "
                               "is not set): cgroup v1 needs kernel 5.10 or 6.1")
    return kernel


def guests_dir() -> Path:
    return cache_root() / "guests"


def accelerator(kernel: kernels.Kernel, scratch: Path, initramfs: Path) -> tuple[str, str]:
    """("kvm" | "tcg", why): KVM when /dev/kvm boots this kernel, probed once per host boot and kernel."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "no usable /dev/kvm"
    memo = guests_dir() / f"accel-{_host_boot_id()}-{kernel.release}.json"
    try:
        known = json.loads(memo.read_text())
        return known["accel"], known["why"]
    except (OSError, ValueError, KeyError):
        pass
    command = _qemu_command(kernel, initramfs, "kvm", GuestSettings(kernel.series, memory_mib=256, cpus=1),
                            (), probe=True)
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=KVM_PROBE_S,
                             stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        ok = f"{MARK} ready probe" in out.stdout
        why = "a probe boot under KVM reached its shell" if ok else (
            f"a probe boot under KVM failed: {_last_line(out.stderr or out.stdout)}")
    except subprocess.TimeoutExpired:
        ok, why = False, f"a probe boot under KVM hung for {KVM_PROBE_S:.0f} s"
    answer = ("kvm" if ok else "tcg", why)
    memo.write_text(json.dumps({"accel": answer[0], "why": why}) + "\n")
    return answer


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else "no output"


def sweep_leftovers() -> list[Path]:
    """Remove the scratch of guests whose harness is gone (killed): their qemu died with it."""
    removed = []
    base = guests_dir()
    for entry in base.glob("guest-*") if base.is_dir() else ():
        match = re.match(r"guest-([0-9]+)-", entry.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


# ---------------------------------------------------------------------------------- the guest


class Guest:
    """One booted guest: `with Guest(settings, writable=[dir]) as g: g.run([...])`.

    Commands run one at a time, as root, in the host's filesystem (read-only except `writable`),
    with the guest's cgroup hierarchy at /sys/fs/cgroup. A failure (boot timeout, panic, qemu's
    exit, a command's timeout) stops the guest and raises GuestError saying why; so does Ctrl-C
    (KeyboardInterrupt), after the guest is stopped.
    """

    def __init__(self, settings: GuestSettings = GuestSettings(), writable: Sequence[Path] = (),
                 boot_timeout_s: float = BOOT_TIMEOUT_S, log: Callable[[str], None] | None = None,
                 stall_s: float = STALL_S):
        self.settings = settings
        self.stall_s = stall_s
        self.writable = tuple(Path(p).resolve() for p in writable)
        self.boot_timeout_s = boot_timeout_s
        self.log = log or (lambda line: None)
        self.kernel: kernels.Kernel | None = None
        self.accel = ""
        self.accel_why = ""
        self.release = ""          # uname -r in the guest
        self.cgroup_fs = ""        # what /sys/fs/cgroup is in the guest: cgroup2fs | tmpfs (v1)
        self.boot_s = float("nan")
        self.console: collections.deque[str] = collections.deque(maxlen=CONSOLE_TAIL)
        self._transcript: list[str] | None = None   # every console line while a stall is diagnosed
        self.last_beat = float("nan")
        self.scratch: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._events: queue.Queue[tuple[str, ...]] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._count = 0
        self._running: int | None = None   # a submitted command that has not ended
        self._begun: int | None = None

    # -- lifecycle

    def __enter__(self) -> Guest:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Boot; GuestUnavailable when such a guest cannot be had here, GuestError when it fails."""
        self.kernel = usable_kernel(self.settings)
        sweep_leftovers()
        guests_dir().mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"guest-{os.getpid()}-", dir=guests_dir()))
        try:
            self._boot()
        except BaseException:
            self.close()
            raise

    def _boot(self) -> None:
        assert self.scratch is not None and self.kernel is not None
        control = self.scratch / "control"
        control.mkdir()
        # Parents before the directories inside them, or a later mount would hide an earlier one.
        paths = sorted({control, *self.writable}, key=lambda p: len(p.parts))
        shares = [(f"rw{i}", path) for i, path in enumerate(paths)]
        initramfs = self.scratch / "initramfs.cpio"
        initramfs.write_bytes(build_initramfs(self.kernel, shares, control, self.settings.cgroup))
        disk = self.scratch / "tmp.img"
        with open(disk, "wb") as f:
            f.truncate(SCRATCH_DISK_GIB << 30)
        made = subprocess.run([*MKFS, str(disk)], capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            raise GuestError(f"mkfs.ext4 of the guest's scratch disk failed: {_last_line(made.stderr or made.stdout)}")
        self.accel, self.accel_why = accelerator(self.kernel, self.scratch, initramfs)
        symbols = not self.kernel.kallsyms.is_file()
        command = _qemu_command(self.kernel, initramfs, self.accel, self.settings, shares, probe=False,
                                scratch_disk=disk, monitor=self.monitor_name, kallsyms=symbols)
        started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read_console, daemon=True)
        self._reader.start()
        event = self._next_event(started + self.boot_timeout_s, "boot")
        if event[0] != "ready":
            raise self._failure(f"boot: unexpected {' '.join(event)}")
        self.release, self.cgroup_fs = event[1], event[2]
        if symbols and (control / "kallsyms").is_file():
            os.replace(control / "kallsyms", self.kernel.kallsyms)
        self.last_beat = time.monotonic()
        self.boot_s = self.last_beat - started
        self.log(f"guest: Linux {self.release} booted in {self.boot_s:.1f} s under {self.accel} "
                 f"({self.accel_why}), /sys/fs/cgroup is {self.cgroup_fs}")

    def _read_console(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            if line == f"{MARK} beat":  # not a console line worth keeping to explain a failure
                self._events.put(("beat",))
                continue
            self.console.append(line)
            if self._transcript is not None:
                self._transcript.append(line)
            if line.startswith(MARK + " "):
                self._events.put(tuple(line[len(MARK) + 1:].split()))
            else:
                self._events.put(("line", line))
        self._events.put(("exited",))

    def _next_event(self, deadline: float, doing: str) -> tuple[str, ...]:
        """The next console event other than an output line ('line' events are returned too when
        `doing` is a command); GuestError when qemu exits or the deadline passes."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if doing == "boot":  # a boot that hangs is a stall before the first beat: asked the same way
                    raise self._stalled(f"the boot did not finish within {self.boot_timeout_s:.0f} s")
                raise self._failure(f"{doing} did not finish within its timeout")
            if doing != "boot" and (silent_s := time.monotonic() - self.last_beat) > self.stall_s:
                raise self._stalled(f"the guest stopped: no heartbeat for {silent_s:.0f} s")
            try:
                event = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if event[0] == "beat":
                self.last_beat = time.monotonic()
                continue
            if event[0] == "exited":
                raise self._failure(f"qemu exited during {doing}")
            if event[0] == "failed":
                raise self._failure(f"the guest's init failed: {' '.join(event[1:])}")
            if event[0] == "line" and doing == "boot":
                continue
            return event

    @property
    def monitor_name(self) -> str | None:
        """qemu's monitor, an abstract unix socket named after this guest's scratch directory."""
        return f"goreclaim-qemu-{self.scratch.name}" if self.scratch is not None else None

    def _stalled(self, what: str) -> GuestStalled:
        """Ask qemu's monitor and the guest's kernel what the guest is doing, then stop it."""
        before = _last_line(chr(10).join(self.console))
        self._transcript = []
        assert self.monitor_name is not None and self.kernel is not None
        said = guest_monitor.diagnose(self.monitor_name, self.kernel.kallsyms)
        time.sleep(STALL_CONSOLE_S)
        console, self._transcript = self._transcript, None
        self._stop()
        where = next((line.split(": ", 1)[1] for line in said.splitlines() if line.startswith("vCPU")), said)
        message = (f"guest (Linux {self.settings.kernel}, {self.accel}): {what} (vCPUs at {where}); "
                   f"last console line before: {before}")
        return GuestStalled(message, "\n".join([message, "", said, "", "console after the SysRq keys:", *console]))

    def _failure(self, what: str) -> GuestError:
        """Stop the guest; the error says what happened, with a panic's line when there was one."""
        self._stop()
        panic = next((line.strip() for line in self.console if "Kernel panic" in line), None)
        detail = panic or f"last console line: {_last_line(chr(10).join(self.console))}"
        return GuestError(f"guest (Linux {self.settings.kernel}, {self.accel or 'no accelerator yet'}): "
                          f"{what}; {detail}")

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | str = "/",
            timeout_s: float = 600.0, on_line: Callable[[str], None] | None = None) -> CommandResult:
        """Run one command in the guest and wait for it; its output lines go to `on_line` as they come.
        Ctrl-C stops the guest at once (the command still runs in it) and propagates."""
        started = time.monotonic()
        number = self.submit(argv, env, cwd)
        output: list[str] = []
        lines = self.follow(number, started + timeout_s)
        try:
            while True:
                output.append(next(lines))
                if on_line:
                    on_line(output[-1])
        except StopIteration as end:
            return CommandResult(end.value, "\n".join(output), time.monotonic() - started)
        except KeyboardInterrupt:
            self._stop()
            raise

    def submit(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | str = "/") -> int:
        """Hand the guest one command (it runs after the ones before it); its number for `follow`."""
        if self.process is None or self.scratch is None:
            raise GuestError("the guest is not running")
        number = self._count
        self._count += 1
        environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       "HOME": "/root", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": GUEST_TMP,
                       **(env or {})}
        script = (f"cd {shlex.quote(str(cwd))} || exit 125\n"
                  f"exec env -i {' '.join(shlex.quote(f'{k}={v}') for k, v in environment.items())} "
                  f"{shlex.join(argv)}\n")
        control = self.scratch / "control"
        tmp = control / f".{number}.sh"
        tmp.write_text(script)
        os.replace(tmp, control / f"{number}.sh")  # the guest sees the whole script or none
        self._running = number
        return number

    def follow(self, number: int, deadline: float) -> Generator[str, None, int]:
        """The output lines of a submitted command as they come, until it ends (the generator's value is
        its exit status) or the monotonic `deadline` passes (GuestError). A generator left early (Ctrl-C)
        can be followed on by another call."""
        while True:
            event = self._next_event(deadline, f"command {number}")
            if event[0] == "begin" and event[1] == str(number):
                self._begun = number
            elif event[0] == "line" and self._begun == number:
                yield event[1] if len(event) > 1 else ""
            elif event[0] == "end" and event[1] == str(number):
                self._running = None
                return int(event[2])

    def close(self) -> None:
        """Shut the guest down (asked to halt, killed if it does not) and remove its scratch."""
        try:
            # With a command still running, the guest's init would never see the halt: it is killed.
            if (self.process is not None and self.process.poll() is None and self.scratch is not None
                    and self._running is None):
                try:
                    (self.scratch / "control" / "halt").write_text("")
                    self.process.wait(timeout=HALT_TIMEOUT_S)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        finally:
            self._stop()
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)
                self.scratch = None

    def _stop(self) -> None:
        """Kill qemu if it still runs and reap it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self._reader is not None:
            self._reader.join(timeout=10)  # it ends at the pipe's end, once qemu is gone
