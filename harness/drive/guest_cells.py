"""Cells whose host axes (cgroup, kernel, thp, swap) differ from this machine run in a guest kernel, booted
once per group of cells that share the guest's settings; the others run here as always.

A cell asks for a host through its `host_settings` (harness.define.axes: `cgroup` v1|v2, `kernel`
host|5.10|6.1|6.12, `thp` always|madvise|never, `swap` a size; memory_high and swap imply cgroup v2).
Where this machine has what the cell asks (its cgroup version, kernel `host`, its THP mode, at least
that much swap), the cell runs on it. Otherwise the cells sharing one guest setting (kernel series,
cgroup version, THP mode, swap size)
are written as cell-worker task directories (harness.drive.cell_worker) into a directory the guest
can write, one guest is booted for them (harness.run.guest), and one process in it runs them in
order (harness.drive.guest_worker): the same cell worker the cluster runs, with the cell's own
`--backend` (cgroup or process) containing it inside the guest. Each result comes back through
that directory and is saved into the host's run directory as it arrives, as if the cell had run
here; its placement says the guest's kernel, cgroup version and accelerator.

Docker in a guest: where a group has cells asking for `--backend docker` (or `auto`, where this
machine's files hold Docker's engine), the guest worker first starts a Docker engine in the guest
(harness.run.guest_docker), once for the group, and stops it after the last cell. The engine has no
network: a cell whose workload must publish a port (a server with its load generator) is skipped
with the reason. `auto` then picks docker in the guest as it does on a host where a daemon answers.

Ctrl-C: the guest is asked to stop the running cell (it saves an `interrupted` result), then shut
down; a second Ctrl-C, a guest that hangs or panics: qemu is killed, and every cell of the group
without a result is saved as failed or interrupted with the reason. Nothing stays behind (the cells
directory of a harness killed outright, named by its pid, is removed by the next one's guest group).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path

from harness.define.cell import Cell, pairs
from harness.define.hosts import DEFAULT_GUEST_KERNEL, HOST_KERNEL
from harness.define.project import REPO_ROOT
from harness.define.units import parse_size
from harness.drive import guest_worker
from harness.drive.cell_worker import CellTask, read_result, write_task
from harness.drive.session import Outcome, RunSession
from harness.run.backends.base import RunResult, Status
from harness.run.guest import (
    Guest,
    GuestError,
    GuestSettings,
    GuestStalled,
    GuestUnavailable,
    guests_dir,
    usable_kernel,
)
from harness.run.guest_docker import engine_missing
from harness.run.placement import cgroup_version, swap_bytes, thp_mode
from harness.run.ports import fixed_port

# The host settings this module honours; any other stays for the backends to refuse.
HOST_AXES = ("cgroup", "kernel", "thp", "swap")
# How long a stopped guest cell may take to save its interrupted result (and the guest's Docker engine to stop).
STOP_WAIT_S = 90.0
# A group's command may take its cells' timeouts plus this for the boot, the imports and the builds.
GROUP_SLACK_S = 600.0
# A guest that stalls (harness.run.guest.GuestStalled: no heartbeat, or a boot that never finished) is
# given up and its cells without a result run in a new guest, up to this many times; each stall's
# diagnosis is kept in the run directory under STALLS_DIR.
STALL_RETRIES = 2
STALLS_DIR = "guest-stalls"
# Backends a guest can contain a cell with; docker and auto start the guest's Docker engine.
GUEST_BACKENDS = ("auto", "", "cgroup", "process", "docker")
ENGINE_BACKENDS = ("auto", "", "docker")


def asks_for_host(cell: Cell) -> bool:
    """Whether the cell names a host axis (cgroup, kernel, thp, swap), met here or not."""
    return any(name in HOST_AXES for name, _ in cell.host_settings)


def in_guest(cell: Cell) -> bool:
    """Whether the cell must run in a guest kernel: this machine is not the host it asks for."""
    return asks_for_host(cell) and guest_settings(cell, cgroup_version()) is not None


def guest_settings(cell: Cell, here_cgroup: str, here_thp: str | None = None,
                   here_swap: int | None = None) -> GuestSettings | None:
    """The guest a cell needs, None when this machine (its cgroup version, THP mode and swap in bytes,
    read here when not given) is the host it asks for. A guest gets what the cell does not ask for
    from this machine: its cgroup version (v2 with another kernel) and its THP mode (GuestSettings.thp "")."""
    asked = dict(cell.host_settings)
    kernel = asked.get("kernel", HOST_KERNEL)
    cgroup = asked.get("cgroup", here_cgroup if kernel == HOST_KERNEL else "v2")
    thp = asked.get("thp", "")
    swap = parse_size(asked.get("swap", "0"))
    here_thp = thp_mode() if here_thp is None and thp else here_thp
    here_swap = swap_bytes() if here_swap is None and swap else (here_swap or 0)
    thp = "" if thp == here_thp else thp  # a guest takes this machine's mode when not asked for another
    if kernel == HOST_KERNEL and cgroup == here_cgroup and not thp and swap <= here_swap:
        return None
    return GuestSettings(kernel=DEFAULT_GUEST_KERNEL if kernel == HOST_KERNEL else kernel, cgroup=cgroup, thp=thp,
                         swap_mib=-(-swap // (1 << 20)))


def met(cell: Cell) -> Cell:
    """The cell with the host settings that where it runs now honours removed: the backend is then
    left only those it must give (or refuse) itself."""
    return dataclasses.replace(cell, host_settings=pairs(
        (name, value) for name, value in cell.host_settings if name not in HOST_AXES))


def measure_with_guests(session: RunSession, cells: list[Cell], log: Callable[[str], None] = print,
                        ) -> Generator[Outcome, None, None]:
    """Run the cells, each where its host axes say, saving each as it finishes; yields each Outcome.
    The cells for this machine run first, in order, then each guest's group in order."""
    here = cgroup_version()
    groups: dict[GuestSettings, list[Cell]] = {}
    for cell in cells:
        settings = guest_settings(cell, here)
        if settings is None:
            yield session.measure(met(cell))
        else:
            groups.setdefault(settings, []).append(cell)
    for settings, group in groups.items():
        yield from _measure_group(session, settings, group, log)


def _refusal(cell: Cell, settings: GuestSettings) -> str | None:
    where = f"cgroup {settings.cgroup} on Linux {settings.kernel} runs in a guest kernel"
    if cell.backend not in GUEST_BACKENDS:
        return f"{where}, where goreclaim starts no {cell.backend} engine: use --backend cgroup, process or docker"
    if cell.backend == "docker":
        missing = engine_missing()
        if missing:
            return f"{where}: {missing}; use --backend cgroup or process for these cells"
        if publishes_port(cell):
            return (f"{where}, whose Docker engine has no network (no bridge module in the guest): this cell's "
                    "workload must publish a port; use --backend cgroup for it")
    return None


def publishes_port(cell: Cell) -> bool:
    """Whether the cell's container would publish a port (harness.run.backends.docker.container_options)."""
    return (cell.program is not None and cell.program.uses_port) or fixed_port(cell) is not None


def wants_engine(cells: list[Cell]) -> bool:
    """Whether the guest starts a Docker engine for these cells: one asks for docker, or for auto where
    this machine's files hold an engine (with none, auto picks the cgroup backend, as on a host)."""
    return any(c.backend in ENGINE_BACKENDS for c in cells) and engine_missing() is None


def _save(session: RunSession, result: RunResult) -> Outcome:
    session.save(result)
    return session.check(result)


def _measure_group(session: RunSession, settings: GuestSettings, cells: list[Cell],
                   log: Callable[[str], None]) -> Generator[Outcome, None, None]:
    runnable = []
    for cell in cells:
        refused = _refusal(cell, settings)
        if refused:
            yield _save(session, RunResult(cell=cell, status="skipped", reason=refused))
        else:
            runnable.append(cell)
    if not runnable:
        return
    try:
        usable_kernel(settings)
    except GuestUnavailable as exc:  # a combination this machine cannot honour: skipped, never run elsewhere
        for cell in runnable:
            yield _save(session, RunResult(cell=cell, status="skipped",
                                           reason=f"{describe(settings)}: {exc}"))
        return
    for cell in runnable:
        session.prepare(cell)  # built on the host: the guest sees the build cache read-only
    guests_dir().mkdir(parents=True, exist_ok=True)
    sweep_cell_dirs()
    left = runnable
    for attempt in range(1 + STALL_RETRIES):
        left = yield from _one_guest(session, settings, left, log, retry_on_stall=attempt < STALL_RETRIES)
        if not left:
            return


def _one_guest(session: RunSession, settings: GuestSettings, runnable: list[Cell], log: Callable[[str], None],
               retry_on_stall: bool) -> Generator[Outcome, None, list[Cell]]:
    """Boot one guest for these cells and run them in it; the cells to run again in a new guest (those
    without a result when the guest stalled and `retry_on_stall`), else none."""
    work = Path(tempfile.mkdtemp(prefix=f"cells-{os.getpid()}-", dir=guests_dir()))  # whose, by its pid
    names: dict[str, Cell] = {}
    for i, cell in enumerate(runnable):
        name = f"{i:04d}"
        (work / name).mkdir()
        write_task(work / name, CellTask(met(cell), cell.backend or "auto", session.run_id))
        names[name] = cell
    what = describe(settings)
    guest = Guest(settings, writable=[work], log=log)
    done: set[str] = set()

    def arrived(name: str) -> Outcome | None:
        result = read_result(work / name) if name in names and name not in done else None
        if result is None:
            return None
        done.add(name)
        return _save(session, result)

    stopping = ""
    again: list[Cell] = []
    try:
        log(f"{what}: booting for {len(runnable)} cell(s)")
        guest.start()
        guests = session.store.manifest.get("guests", [])
        session.store.update_manifest({"guests": [*guests, _provenance(guest)]})
        budget = sum(c.timeout_s for c in runnable) + GROUP_SLACK_S
        engine = (guest_worker.DOCKER_OPTION,) if wants_engine(runnable) else ()
        number = guest.submit([sys.executable, "-m", guest_worker.__name__, *engine, str(work)], cwd=REPO_ROOT)
        try:
            for line in guest.follow(number, time.monotonic() + budget):
                if line.startswith(guest_worker.CELL_DONE + " "):
                    outcome = arrived(line.split()[1])
                    if outcome is not None:
                        yield outcome
                elif line.startswith(guest_worker.ENGINE + " "):
                    _engine_started(session, line.split(maxsplit=2)[1:], what, log)
                else:
                    log(f"  {what}: {line}")
        except (KeyboardInterrupt, GeneratorExit):
            # Ctrl-C here, or in the caller while it held an outcome: the running cell is asked to stop
            # and save what it measured; a second Ctrl-C stops waiting (qemu is then killed below).
            stopping = "stopped by SIGINT/SIGTERM"
            log(f"{what}: stopping its running cell")
            (work / guest_worker.STOP_FILE).touch()
            try:
                for _ in guest.follow(number, time.monotonic() + STOP_WAIT_S):
                    pass
            except GuestError as exc:  # it did not stop in time, or stalled: killed below; the stop goes on
                log(f"{what}: {exc}")
            raise
    except GuestError as exc:
        stopping = str(exc)
        if isinstance(exc, GuestStalled):
            kept = _keep_stall(session, settings, exc.diagnosis)
            stopping += f" (what it was doing: {kept})"
            again = [names[n] for n in names if n not in done and read_result(work / n) is None] \
                if retry_on_stall else []
        log(f"{what}: {stopping}" + (f"; its {len(again)} cell(s) without a result run again in a new guest"
                                     if again else ""))
    finally:
        guest.close()
        late: list[Outcome] = []  # saved here, yielded below: after a Ctrl-C the caller is gone
        for name in names:
            if name in done:
                continue
            outcome = arrived(name)  # written before the guest ended, not yet announced
            if outcome is not None:
                late.append(outcome)
            elif names[name] not in again:
                status: Status = "interrupted" if stopping.startswith("stopped") else "failed"
                lost = RunResult(cell=names[name], status=status,
                                 reason=f"{what}: {stopping or 'its cell worker wrote no result'}")
                session.save(lost)
                late.append(session.check(lost))
        shutil.rmtree(work, ignore_errors=True)
    yield from late  # reached after a guest failure, not after a Ctrl-C
    return again


def _keep_stall(session: RunSession, settings: GuestSettings, diagnosis: str) -> str:
    """Write a stalled guest's diagnosis into the run directory; its path there."""
    folder = session.store.run_dir / STALLS_DIR
    folder.mkdir(exist_ok=True)
    slug = re.sub(r"[^a-z0-9.]+", "-", describe(settings).lower()).strip("-")
    path = folder / f"{len(list(folder.iterdir())) + 1:02d}-{slug}.txt"
    path.write_text(diagnosis + "\n")
    return str(path.relative_to(session.store.run_dir))


def describe(settings: GuestSettings) -> str:
    """"guest (Linux 6.1, cgroup v2, THP always, swap 256 MiB)": what a group's lines and reasons call it."""
    extra = (f", THP {settings.thp}" if settings.thp else "") + (
        f", swap {settings.swap_mib} MiB" if settings.swap_mib else "")
    return f"guest (Linux {settings.kernel}, cgroup {settings.cgroup}{extra})"


def _engine_started(session: RunSession, said: list[str], what: str, log: Callable[[str], None]) -> None:
    """The guest worker's word on its Docker engine, logged and kept in the run's provenance of this guest."""
    state, detail = (said + [""])[:2]
    log(f"{what}: Docker engine {'answered after ' + detail + ' s' if state == 'ready' else detail}")
    guests = list(session.store.manifest.get("guests", []))
    if guests:
        engine = {"docker_start_s": float(detail)} if state == "ready" else {"docker_failed": detail}
        session.store.update_manifest({"guests": [*guests[:-1], {**guests[-1], **engine}]})


def sweep_cell_dirs() -> list[Path]:
    """Remove the cells directories of harnesses that were killed (their guests died with them)."""
    removed = []
    for entry in guests_dir().glob("cells-*"):
        match = re.match(r"cells-([0-9]+)-", entry.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _provenance(guest: Guest) -> dict[str, object]:
    kernel = guest.kernel
    return {"kernel_series": guest.settings.kernel, "release": guest.release,
            "package": kernel.package if kernel else "", "cgroup": guest.settings.cgroup,
            "accel": guest.accel, "accel_why": guest.accel_why, "boot_s": round(guest.boot_s, 2),
            "memory_mib": guest.settings.memory_mib, "cpus": guest.settings.cpus,
            "thp": guest.settings.thp, "swap_mib": guest.settings.swap_mib}
