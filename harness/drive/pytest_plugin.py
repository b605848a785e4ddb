"""Scenario files as pytest items: `pytest scenarios/ --matrix gogc=50,100,300`.

Each `scenarios/*.toml` is a File collector; each cell of its matrix is an item whose id is
the cell id. Running an item runs the cell for real (one RunSession for the whole pytest
session, opened at the first item, so --collect-only builds and runs nothing), summarises it
and checks the scenario's expectations. A relative expectation (`of`) is checked by the item
that completes its pair; a pair whose other cell was deselected is reported, not failed.

A cell whose host axes (cgroup, kernel) this machine does not have runs in a guest kernel, as with
`goreclaim run` (harness.drive.guest_cells): the selected cells that share a guest's settings run
together when the first of them is reached, in one guest booted for them, and each item then reports
its own cell. A cell that cannot be honoured there (no qemu or kernel, a Docker cell) is skipped with
the reason.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.define.cell import Cell
from harness.define.errors import ScenarioError
from harness.define.scenario import Scenario
from harness.drive.options import CLI_ONLY, add_run_options, split_go
from harness.run.backends.base import ERRORS

if TYPE_CHECKING:   # imported when the first cell runs: collecting alone builds and runs nothing
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from harness.drive.session import Outcome, RunSession


@dataclass
class _State:
    results_dir: Path
    backend: str
    session: RunSession | None = None      # opened at the first item
    unavailable: str | None = None         # why no cell can run here, once known
    scenarios: tuple[Scenario, ...] = ()   # the collected scenarios, for the run's manifest
    # The selected items whose cells run in a guest, by cell id: their group (same guest settings).
    guest_groups: dict[str, list[CellItem]] = field(default_factory=dict)
    guest_outcomes: dict[str, Outcome] = field(default_factory=dict)   # cell id -> its guest result


STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_run_options(parser.getgroup("goreclaim", "goreclaim scenarios").addoption)


def _xdist_active(config: pytest.Config) -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) or bool(getattr(config.option, "numprocesses", None))


def _is_scenario_path(path: Path) -> bool:
    return path.suffix == ".toml" and path.parent.name == "scenarios"


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_active(config) and any(
            _is_scenario_path(Path(a.split("::")[0])) or Path(a.split("::")[0]).name == "scenarios"
            for a in config.args):
        raise pytest.UsageError("scenario cells must not share a machine: run them without -n (pytest-xdist)")
    given = [flag for flag in CLI_ONLY if getattr(config.option, flag.lstrip("-"), None)]
    if given:
        raise pytest.UsageError(f"{', '.join(given)}: only with goreclaim run (pytest runs scenario cells one at a "
                                "time)")
    if config.option.repeats is not None and config.option.repeats < 1:
        raise pytest.UsageError(f"--repeats {config.option.repeats}: must be a positive integer")
    config.stash[STATE] = _State(results_dir=Path(config.option.results), backend=config.option.backend or "auto")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> ScenarioFile | None:
    if _is_scenario_path(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[CellItem]:
        from harness.define.matrix import expand, merge_matrix_options
        from harness.drive.plan import load_scenario

        option = self.config.option
        try:
            scenario = load_scenario(self.path)
            cells = expand(scenario, merge_matrix_options(option.matrix), repeats=option.repeats,
                           go=split_go(option.go), backend=option.backend, quick=option.quick)
        except ScenarioError as exc:
            raise self.CollectError("\n".join(exc.errors)) from None
        for cell in cells:
            yield CellItem.from_parent(self, name=cell.cell_id, scenario=scenario, cell=cell)


class ExpectationFailed(Exception):
    """One or more expectations of a cell did not hold; args[0] is the list of messages."""


class CellDidNotRun(Exception):
    """The cell failed or timed out: a measurement problem, not an expectation."""


class CellItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, cell: Cell, **kwargs: Any):   # kwargs: pytest's Node
        super().__init__(**kwargs)
        self.scenario = scenario
        self.cell = cell

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        session = _session(self.config, state)
        if self.cell.cell_id in state.guest_groups:
            outcome = _guest_outcome(self, state, session)
        else:
            from harness.drive.guest_cells import asks_for_host, met

            # cgroup=v1 on this v1 host: met here, so the backend is not asked for it.
            outcome = session.measure(met(self.cell) if asks_for_host(self.cell) else self.cell, self.scenario)
        result = outcome.result
        if result.status == "skipped":
            pytest.skip(result.reason or "the backend skipped this cell")
        if result.status in ERRORS:
            raise CellDidNotRun(f"{self.cell.cell_id}: {result.status}: {result.reason}"
                                + (f"\n{result.stderr_tail}" if result.stderr_tail else ""))
        if outcome.failures:
            raise ExpectationFailed(outcome.failures)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: TracebackStyle | None = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ExpectationFailed):
            return "\n".join(excinfo.value.args[0])
        if isinstance(excinfo.value, CellDidNotRun):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"cell {self.cell.cell_id}"


def _session(config: pytest.Config, state: _State) -> RunSession:
    if state.unavailable:
        pytest.skip(state.unavailable)
    if state.session is None:
        from harness.drive.session import RunSession
        from harness.run.backends.select import BackendUnavailable

        option = config.option
        extra = {"driver": "pytest", "matrix": list(option.matrix), "quick": option.quick,
                 "command": "pytest " + " ".join(config.invocation_params.args)}
        try:
            state.session = RunSession(state.results_dir, backend=state.backend, manifest_extra=extra,
                                       log=lambda line: None, scenarios=state.scenarios)
        except BackendUnavailable as exc:
            state.unavailable = f"no backend can run cells here: {exc}"
            pytest.skip(state.unavailable)
    return state.session


def _guest_outcome(item: CellItem, state: _State, session: RunSession) -> Outcome:
    """The item's cell's outcome in its guest: the first item of a group runs the whole group (one boot)."""
    if item.cell.cell_id not in state.guest_outcomes:
        from harness.drive.guest_cells import measure_with_guests

        group = state.guest_groups[item.cell.cell_id]
        for other in group:   # its expectations are checked as each cell's result arrives
            session.checker.scenarios.setdefault(other.scenario.name, other.scenario)
        outcomes = measure_with_guests(session, [other.cell for other in group], log=_terminal_log(item.config))
        try:
            for arrived in outcomes:
                state.guest_outcomes[arrived.result.cell.cell_id] = arrived
        finally:
            outcomes.close()   # a Ctrl-C: the guest is stopped, its cells saved as interrupted
    if item.cell.cell_id not in state.guest_outcomes:
        raise CellDidNotRun(f"{item.cell.cell_id}: its guest group ran but returned no result for it")
    return state.guest_outcomes[item.cell.cell_id]


def _terminal_log(config: pytest.Config) -> Callable[[str], None]:
    """A line on the terminal while a test runs (the guest's boot and progress), past output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def log(line: str) -> None:
        if reporter is None:
            return
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return log


def pytest_collection_finish(session: pytest.Session) -> None:
    items = [i for i in session.items if isinstance(i, CellItem)]
    if items and _xdist_active(session.config):
        raise pytest.UsageError("scenario cells must not share a machine: run them without -n (pytest-xdist)")
    state = session.config.stash.get(STATE, None)
    if state is not None:
        state.scenarios = tuple({i.scenario.name: i.scenario for i in items}.values())
        state.guest_groups = _guest_groups(items)


def _guest_groups(items: list[CellItem]) -> dict[str, list[CellItem]]:
    """cell id -> the selected items sharing its guest, for each cell this machine is not the host of."""
    from harness.drive.guest_cells import asks_for_host, guest_settings
    from harness.run.placement import cgroup_version

    if not any(asks_for_host(i.cell) for i in items):
        return {}
    here = cgroup_version()
    groups: dict[object, list[CellItem]] = {}
    for item in items:
        settings = guest_settings(item.cell, here) if asks_for_host(item.cell) else None
        if settings is not None:
            groups.setdefault(settings, []).append(item)
    return {item.cell.cell_id: group for group in groups.values() for item in group}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or state.session is None:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line("")  # the progress line ("[100%]") has no newline yet
    complete = exitstatus != pytest.ExitCode.INTERRUPTED
    run_dir = state.session.close(complete=complete)
    try:
        from harness.drive.plan import STUDY
        from harness.present.report import write_report

        report = write_report(run_dir, STUDY)
        if reporter:
            reporter.write_line(f"goreclaim report: {report}")
    except Exception as exc:  # noqa: BLE001 - the measurements are saved; the report can be redone
        # The cells passed, but a run without its report is not a success: fail the session.
        message = (f"goreclaim report not written ({type(exc).__name__}: {exc}); the measurements are "
                   f"saved: retry with goreclaim report {run_dir}")
        if reporter:
            reporter.write_line(message, red=True)
        else:
            warnings.warn(message, stacklevel=1)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    for note in state.session.checker.unchecked():
        if reporter:
            reporter.write_line(f"goreclaim not checked: {note}")
    if reporter:
        reporter.write_line(f"goreclaim run: {run_dir}")
