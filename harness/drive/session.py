"""Cells → build → backend → store → expectations, one at a time, with progress and a clean stop on Ctrl-C.

The one run loop of both drivers: `goreclaim run` loops over its cells with `measure`, the pytest
plugin calls `measure` once per item. Every cell is saved as soon as it finishes, so an interrupted
or crashed run keeps all the cells before it (and what was measured of the one it stopped in).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd

from harness.define.build import Build
from harness.define.cell import EFFECTIVE_EXPERIMENTS, Cell, Pairs, pairs
from harness.define.scenario import Scenario
from harness.define.workloads import PROGRAM_GODEBUG, Program
from harness.drive.checks import Checker
from harness.run.backends.base import MEASURED, Backend, RunInterrupted, RunResult, Status
from harness.run.backends.select import BackendUnavailable, backends_applying_all, select_backend
from harness.run.placement import placement


@dataclass(frozen=True)
class NoBuild:
    """Why a cell has nothing to run: no Go of its version here, or a build that failed."""

    status: Status   # skipped, failed or build_failed
    reason: str


# What a signal handler slot holds (signal.signal returns the previous one).
SignalHandler = Callable[[int, FrameType | None], Any] | int | None


@dataclass
class Outcome:
    """One measured cell: what ran, and the expectation failures it completes."""

    result: RunResult
    failures: list[str]
    requeued: bool = False   # a `lost` cell queued again on the cluster: another outcome of it follows


class CellRunner:
    """Cells → build → backend → RunResult, with builds and backends cached: what runs a cell,
    in the session's process or in a cluster worker's (harness.drive.cell_worker)."""

    def __init__(self, backend: str = "auto", run_label: str = "", log: Callable[[str], None] = print):
        self.log = log
        self.run_label = run_label
        self.backend, self.backend_reason = select_backend(backend, run_label=run_label)
        self.requested = backend
        self._backends: dict[str, Backend | str] = {self.backend.name: self.backend}
        self._builds: dict[str, Build | NoBuild] = {}

    # -- builds and backends -----------------------------------------------------------------------------

    def _build(self, go_version: str, build_env: Pairs = ()) -> Build | NoBuild:
        """The build for a Go version and build settings, or why there is none. Cached per session.
        A build that fails for its settings (GOEXPERIMENT the compiler rejects) is `build_failed`."""
        from harness.build import toolchain, workload_build

        version = go_version or toolchain.DEFAULT_GO
        key = version + "".join(f"\0{k}={v}" for k, v in build_env)
        if key not in self._builds:
            try:
                tc = toolchain.resolve(version)
            except toolchain.ToolchainError as e:
                self._builds[key] = NoBuild("skipped", f"Go {version} is not available here: {e}")
            else:
                try:
                    self._builds[key] = workload_build.build_with(tc, build_env).build
                except toolchain.ToolchainError as e:
                    status: Status = "build_failed" if build_env else "failed"
                    self._builds[key] = NoBuild(status, f"building the workloads with Go {version} failed: {e}")
        return self._builds[key]

    def _program_build(self, cell: Cell, program: Program) -> Build | NoBuild:
        """A program's Build for the cell's Go version, or why there is none. Cached per session."""
        from harness.build import program as programs
        from harness.build import toolchain

        key = f"{program!r}\0{cell.go_version if program.versioned else ''}\0{cell.build_env}"
        if key not in self._builds:
            try:
                self._builds[key] = programs.build_program(program, cell.go_version if program.versioned else None,
                                                           cell.build_env)
            except programs.ProgramBuildError as e:
                self.log(f"{cell.cell_id}: {e}")
                self._builds[key] = NoBuild("build_failed", str(e))
            except toolchain.ToolchainError as e:
                self._builds[key] = NoBuild("skipped", f"Go {cell.go_version} is not available here: {e}")
        return self._builds[key]

    def _backend_for(self, cell: Cell) -> Backend | str:
        """The session's backend, or the one the cell names; a str is why that one cannot run."""
        name = cell.backend
        if name in ("auto", "") and self.requested in ("auto", ""):
            name = self._auto_for(cell)
        if name in ("auto", "", self.backend.name):
            return self.backend
        if name not in self._backends:
            try:
                self._backends[name], _ = select_backend(name, run_label=self.run_label)
            except (BackendUnavailable, ValueError) as e:
                self._backends[name] = str(e)
        return self._backends[name]

    def _auto_for(self, cell: Cell) -> str:
        """Under auto, the session's backend, unless it lacks a limit the cell has (Docker gives no
        memory.high): then the most faithful available backend that applies them all, if any."""
        asked = {name for name, _ in cell.limits}
        if asked <= self.backend.limits | self.backend.unconfined:
            return self.backend.name
        for name in backends_applying_all(asked):
            backend = self._backends.get(name)
            if backend is None:
                try:
                    backend, _ = select_backend(name, run_label=self.run_label)
                except (BackendUnavailable, ValueError) as e:
                    backend = str(e)
                self._backends[name] = backend
            if not isinstance(backend, str):
                return name
        return self.backend.name  # none can: the session's backend says why it skips the cell

    def prepare(self, cell: Cell) -> None:
        """Build what the cell runs (cached), so that the time of its run is the run alone."""
        if cell.program is None:
            self._build(cell.go_version, cell.build_env)
        else:
            self._program_build(cell, cell.program)

    def run(self, cell: Cell) -> RunResult:
        """Run one cell; harness errors become a `failed` cell. An interrupt raises RunInterrupted
        carrying what was measured (an `interrupted` cell)."""
        backend = self._backend_for(cell)
        build = (self._build(cell.go_version, cell.build_env) if cell.program is None
                 else self._program_build(cell, cell.program))
        if isinstance(backend, str):
            result = RunResult(cell=cell, status="skipped", reason=backend)
        elif isinstance(build, NoBuild):
            result = RunResult(cell=cell, status=build.status, reason=build.reason)
        else:
            # cells.csv then says what actually ran, not "auto" or "" (the default Go).
            cell = dataclasses.replace(cell, backend=backend.name, go_version=build.go_version)
            if build.experiments:  # what its build settings made of the binary, read from it
                cell = dataclasses.replace(cell, columns=pairs({**dict(cell.columns),
                                                                EFFECTIVE_EXPERIMENTS: build.experiments}))
            if cell.program is not None and build.go_program:
                cell = cell.with_env({"GODEBUG": ",".join(PROGRAM_GODEBUG)})
            try:
                result = backend.run(cell, build)
            except RunInterrupted as stop:
                stop.result.placement = placement(cell.cpuset)
                raise
            except KeyboardInterrupt:
                raise RunInterrupted(RunResult(cell=cell, status="interrupted", reason="stopped by SIGINT/SIGTERM",
                                               placement=placement(cell.cpuset))) from None
            except Exception as e:  # noqa: BLE001 - one broken cell must not lose the run
                self.log(f"{cell.cell_id}: harness error:\n{traceback.format_exc()}")
                result = RunResult(cell=cell, status="failed", reason=f"harness error: {type(e).__name__}: {e}")
        result.placement = placement(cell.cpuset)
        return result

    def cleanup(self) -> None:
        """Remove what the backends left behind for the run (best effort, when the run ends). A runner
        without a run label has nothing to tell its own by: it removes nothing, never every run's."""
        if not self.run_label:
            return
        for backend in self._backends.values():
            if isinstance(backend, str):
                continue
            try:
                backend.cleanup(self.run_label)
            except Exception as e:  # noqa: BLE001 - best effort while stopping
                self.log(f"cleanup at the end of the run ({backend.name}): {type(e).__name__}: {e}")


class RunSession:
    """One run directory, one backend, any number of cells."""

    def __init__(
        self,
        results_dir: Path,
        backend: str = "auto",
        run_id: str | None = None,
        manifest_extra: dict | None = None,
        log: Callable[[str], None] = print,
        scenarios: Iterable[Scenario] = (),
        resume: Path | None = None,
    ):
        from harness.run.leftovers import sweep
        from harness.store.provenance import collect_manifest
        from harness.store.rundir import RunStore, new_run_id

        self.log = log
        # What killed runs left behind (their harness is gone) goes before this run adds its own.
        swept = sweep(log=lambda line: log(f"{line}: left by a killed run"))
        for failure in swept.failed:
            log(f"could not remove what a killed run left: {failure}")
        self.run_id = Path(resume).name if resume is not None else (run_id or new_run_id())
        self.runner = CellRunner(backend, run_label=self.run_id, log=log)
        self.backend, self.backend_reason = self.runner.backend, self.runner.backend_reason
        log(f"backend {self.backend.name}: {self.backend_reason}")
        scenarios = tuple(scenarios)
        # The programs that ran instead of built-in workloads, each with its scenario (the report's cue).
        programs = [{"scenario": s.name, **s.program.describe()} for s in scenarios if s.program is not None]
        manifest = collect_manifest(
            run_id=self.run_id, backend=self.backend.name, backend_requested=backend,
            backend_reason=self.backend_reason, **({"programs": programs} if programs else {}),
            **(manifest_extra or {}),
        )
        if resume is not None:  # the cells already there stay; the manifest keeps what it said
            self.store = RunStore.reopen(Path(resume))
            self.store.update_manifest({"resumed_utc": [*self.store.manifest.get("resumed_utc", []),
                                                        manifest["date_utc"]]})
        else:
            self.store = RunStore.create(Path(results_dir), manifest, run_id=self.run_id)
        self.cells_run = 0
        self.checker = Checker({s.name: s for s in scenarios})
        self._run_dir: Path | None = None
        self._previous_sigterm: SignalHandler = None
        self._previous_sigint: SignalHandler = None
        self._install_sigterm()

    # -- signals -------------------------------------------------------------------------

    def _install_sigterm(self) -> None:
        # SIGTERM takes the same path as Ctrl-C: stop the workload, keep what was measured.
        if threading.current_thread() is not threading.main_thread():
            return

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
        # A shell starts background jobs with SIGINT ignored, and Python then never raises
        # KeyboardInterrupt; an interrupt must still stop the run cleanly.
        self._previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigterm = None

    # -- cells -----------------------------------------------------------------------------

    def prepare(self, cell: Cell) -> None:
        """Build what the cell runs (cached), so that the time of its run is the run alone."""
        self.runner.prepare(cell)

    def run_cell(self, cell: Cell) -> RunResult:
        """Run one cell and save it before returning. Harness errors become a `failed` cell."""
        try:
            result = self.runner.run(cell)
        except RunInterrupted as stop:
            self.save(stop.result)
            raise
        self.save(result)
        return result

    def measure(self, cell: Cell, scenario: Scenario | None = None) -> Outcome:
        """Run one cell, save it, and check the expectations it completes (a cell that did
        not run to an outcome has none to check)."""
        if scenario is not None:
            self.checker.scenarios.setdefault(scenario.name, scenario)
        return self.check(self.run_cell(cell))

    def check(self, result: RunResult) -> Outcome:
        """The expectations a saved cell completes (a cell that did not run to an outcome has none)."""
        failures = []
        if result.status in MEASURED and result.cell.scenario in self.checker.scenarios:
            failures = self.checker.after_cell(result.cell, result)
        return Outcome(result, failures)

    def check_kept(self, kept: list[Cell], to_run: list[Cell]) -> list[str]:
        """Failures of the expectations of the cells a resumed run keeps, read from the run directory:
        a resumed run checks what an uninterrupted one would. A relative expectation is compared by the
        first cell of its scenario that runs now (Checker.after_cell); with none to run, here."""
        from harness.analyse.expectations import check_cell, relative_checks, settings_of
        from harness.analyse.summary import summarize
        from harness.store.rundir import load_run

        finished = self.store.finished()
        kept = [c for c in kept if c.scenario in self.checker.scenarios and finished.get(c.cell_id) in MEASURED
                and self.checker.scenarios[c.scenario].expects]
        if not kept:
            return []
        run = load_run(self.store.run_dir)
        summary = summarize(run.cells, run.samples, run.events)
        if "accel" in run.cells.columns:  # runs made before it have none: their cells ran natively
            pairs = zip(run.cells["cell_id"], run.cells["accel"], strict=True)
            self.checker.accels.update({str(i): a if isinstance(a, str) and a else "native" for i, a in pairs})
        failures = []
        for cell in kept:
            row = summary.loc[cell.cell_id]
            assert isinstance(row, pd.Series)  # cell ids are unique: one row
            self.checker.summaries[cell.cell_id] = row
            self.checker.cells[cell.cell_id] = cell
            accel = self.checker.accels.get(cell.cell_id, "native")
            failures += [f.message for f in check_cell(self.checker.scenarios[cell.scenario], cell, row, accel)]
        running = {c.scenario for c in to_run}
        for name in dict.fromkeys(c.scenario for c in kept if c.scenario not in running):
            scenario = self.checker.scenarios[name]
            records = [(c.cell_id, c.repeat, settings_of(scenario, c)) for c in kept if c.scenario == name]
            failures += [f.message for f in relative_checks(scenario, records, self.checker.summaries,
                                                            accels=self.checker.accels)[0]]
        return failures

    def save(self, result: RunResult) -> None:
        """Write one finished cell to the run directory (cells appear in the order they are saved)."""
        self.store.save_cell(result)
        self.cells_run += 1

    # -- end -------------------------------------------------------------------------------

    def close(self, complete: bool) -> Path:
        """Finish the store (once; later calls return the same directory)."""
        if self._run_dir is None:
            self._restore_sigterm()
            self._remove_leftovers()
            self._run_dir = Path(self.store.finish(
                complete, {"cells_run": self.cells_run, "backend": self.backend.name}))
        return self._run_dir

    def _remove_leftovers(self) -> None:
        # The backends clean up in their own finally blocks; this is the net for a second Ctrl-C
        # that arrived during that cleanup, and for a container the daemon would not remove then.
        self.runner.cleanup()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


def _mmss(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_bar(done: int, n: int, left_s: float, width: int = 24) -> str:
    """`[#########---------------] 12/38 6:05 left`."""
    filled = int(round(width * done / n)) if n else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{n} {_mmss(left_s)} left"


def progress_line(i: int, n: int, result: RunResult, elapsed_s: float) -> str:
    """`[i/n] <cell_id> <status> <wall>s elapsed m:ss eta m:ss (reason)`; the eta assumes the
    remaining cells take as long as the finished ones did on average."""
    line = (f"[{i}/{n}] {result.cell.cell_id} {result.status} {result.wall_s:.1f}s "
            f"elapsed {_mmss(elapsed_s)} eta {_mmss(elapsed_s / i * (n - i))}")
    return f"{line} ({result.reason})" if result.reason else line


def run_cells(
    cells: Iterable[Cell], results_dir: Path, backend: str = "auto",
    progress: Callable[[str], None] = print,
) -> Path:
    """Run the cells in order into a new run directory; returns it."""
    cells = list(cells)
    n = len(cells)
    with RunSession(Path(results_dir), backend=backend, log=progress) as session:
        started = time.monotonic()
        for i, cell in enumerate(cells, 1):
            result = session.run_cell(cell)
            progress(progress_line(i, n, result, time.monotonic() - started))
    return session.close(complete=True)
