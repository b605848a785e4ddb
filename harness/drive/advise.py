"""goreclaim advise: sweep GOGC × GOMEMLIMIT in a container of the planned size, class every
configuration, recommend one, and optionally bisect the smallest limit that stays healthy.

The run loop is the session's (harness.drive.session): every cell is on disk as it finishes, and
`--resume RUN_DIR` runs only the cells not yet there. The first cell (GOGC=100, no GOMEMLIMIT,
what the program gets with nothing set) is timed and sizes the grid to the budget before the rest
start; the plan is printed with its estimate.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analyse import advice as analysis
from harness.define.advice_grid import (
    ADVISE_AXES,
    DEFAULT_GRIDS,
    GOGC_VALUES,
    GOMEMLIMIT_VALUES,
    Grid,
    grid_cells,
    parse_values,
)
from harness.define.axes import AXES
from harness.define.cell import Cell
from harness.define.errors import ScenarioError
from harness.define.matrix import MatrixError, merge_matrix_options
from harness.define.scenario import Scenario, resolve_path
from harness.define.units import UnitError, format_size, parse_positive_duration, parse_size
from harness.drive.guest_cells import asks_for_host, measure_with_guests
from harness.drive.options import split_go
from harness.drive.plan import load_scenario
from harness.drive.session import RunSession, progress_bar
from harness.run.backends.base import RunResult


@dataclass
class AdvisePlan:
    """Everything the command line says, checked before anything runs."""

    scenario: Scenario
    target: str
    memory: str                      # as written, canonical ("768MiB")
    memory_bytes: int
    budget_s: float
    objective: str
    headroom: float
    performance: str | None
    candidates: tuple[Grid, ...]     # widest first; the budget picks one
    overrides: dict[str, list[str]]
    backend: str | None
    quick: bool
    find_min_memory: bool
    # The node's settings every cell runs with (--memory-high, --thp, --swap) as axis values: {axis: value}.
    node: dict[str, str] = field(default_factory=dict)

    def cells(self, grid: Grid, memory: str | None = None,
              configs: list[tuple[str, str]] | None = None) -> list[Cell]:
        return grid_cells(self.scenario, grid, memory or self.memory, self.overrides, self.backend, self.quick,
                          configs=configs)


def _headroom(text: str) -> float:
    value = text.strip().rstrip("%")
    try:
        share = float(value) / 100
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise ScenarioError([f"--headroom {text!r}: give a share of the limit in (0%, 100%], such as 90%"])
    return share


def node_options(args: argparse.Namespace) -> list[tuple[str, str, str | None]]:
    """(axis, option, value given or None) of the node settings advise passes to every cell."""
    return [("memory_high", "--memory-high", getattr(args, "memory_high", None)),
            ("thp", "--thp", getattr(args, "thp", None)), ("swap", "--swap", getattr(args, "swap", None))]


def make_plan(args: argparse.Namespace, program: Scenario | None) -> AdvisePlan:
    errors: list[str] = []
    if program is not None:
        if args.target:
            raise ScenarioError([f"--program names the target; leave out {args.target!r}"])
        scenario, target = program, program.name
    elif args.target:
        scenario = load_scenario(resolve_path(args.target))
        target = scenario.name
    else:
        raise ScenarioError(["goreclaim advise: name a target: a scenario (gogc_sweep), a scenario file, or "
                             "--program PATH -- ARGS"])
    memory, memory_bytes = "", 0
    if not args.memory:
        errors.append("--memory: required: the container's memory limit, a size such as 512MiB")
    else:
        try:
            memory = AXES["memory"].canonical(args.memory)
            memory_bytes = parse_size(memory)
        except UnitError as exc:
            errors.append(f"--memory {args.memory!r}: {exc}")
    try:
        budget_s = parse_positive_duration(args.budget)
    except UnitError as exc:
        errors.append(f"--budget {args.budget!r}: {exc}")
        budget_s = 0.0
    try:
        overrides = merge_matrix_options(args.matrix)
    except ScenarioError as exc:
        errors.extend(exc.errors)
        overrides = {}
    for axis in ADVISE_AXES:
        if axis in overrides:
            flag = "--memory" if axis == "memory" else f"--{axis}"
            errors.append(f"--matrix {axis}=...: advise sweeps {axis} itself; give its values with {flag}")
    go = split_go(args.go)
    if go:
        overrides["go"] = go
    node: dict[str, str] = {}
    for axis, option, given in node_options(args):
        if given is None:
            continue
        if axis in overrides:
            errors.append(f"--matrix {axis}=...: give it once, with {option}")
            continue
        try:
            node[axis] = AXES[axis].canonical(given)
        except UnitError as exc:
            errors.append(f"{option} {given!r}: {exc}")
    if args.find_min_memory and not node.get("memory_high", "%").endswith("%"):
        errors.append(f"--memory-high {node['memory_high']}: with --find-min-memory give a share of the limit "
                      "(80%), which holds at every limit the bisection tries")
    overrides.update({axis: [value] for axis, value in node.items()})
    gogc = gomemlimit = None
    try:
        gogc = parse_values("gogc", args.gogc, "--gogc") if args.gogc else None
    except ScenarioError as exc:
        errors.extend(exc.errors)
    try:
        gomemlimit = parse_values("gomemlimit", args.gomemlimit, "--gomemlimit") if args.gomemlimit else None
    except ScenarioError as exc:
        errors.extend(exc.errors)
    headroom = analysis.DEFAULT_HEADROOM
    try:
        headroom = _headroom(args.headroom) if args.headroom else headroom
    except ScenarioError as exc:
        errors.extend(exc.errors)
    if errors:
        raise ScenarioError(errors)
    if gogc or gomemlimit or args.repeats:
        gogc, gomemlimit = gogc or GOGC_VALUES, gomemlimit or GOMEMLIMIT_VALUES
        candidates = tuple(Grid(gogc, gomemlimit, r) for r in ((args.repeats,) if args.repeats else (3, 2, 1)))
    else:
        candidates = DEFAULT_GRIDS
    if "memory_high" in node:  # what operators deploy, GOMEMLIMIT off memory.max, runs beside the grid
        candidates = tuple(grid.with_deployed() for grid in candidates)
    plan = AdvisePlan(scenario, target, memory, memory_bytes, budget_s, args.objective, headroom,
                      analysis.performance_for(scenario), candidates, overrides, args.backend, args.quick,
                      args.find_min_memory, node)
    if plan.objective == "latency" and plan.performance != "load_p99_ns":
        raise ScenarioError(["--objective latency: judges a server by its load generator's p99 latency and "
                             "requests/s; give --program PATH --ready CHECK --load \"hey ...\" (or \"wrk --latency "
                             "...\")"])
    first = plan.cells(candidates[0])  # every value is checked here, before a run directory exists
    if not first:
        raise MatrixError(["--gogc/--gomemlimit: no configuration left (GOGC=off runs only with a GOMEMLIMIT)"])
    if plan.find_min_memory and len({_context(c) for c in first}) > 1:
        raise MatrixError(["--find-min-memory: bisects one configuration; give one value of each axis besides "
                           "GOGC and GOMEMLIMIT (one --go version, say)"])
    return plan


def _context(cell: Cell) -> tuple[tuple[str, str], ...]:
    return tuple((a, v) for a, v in cell.axes if a not in ADVISE_AXES)


def fit(plan: AdvisePlan, cell_s: float) -> tuple[Grid, float, bool]:
    """(the widest candidate grid that fits the budget, its estimated seconds, whether it fits)."""
    for grid in plan.candidates:
        estimate = cell_s * (grid.n_cells + (analysis.MIN_MEMORY_STEPS * grid.repeats if plan.find_min_memory else 0))
        if estimate <= plan.budget_s:
            return grid, estimate, True
    grid = plan.candidates[-1]
    return grid, cell_s * grid.n_cells, False


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class Runner:
    """Runs cells through one session with a progress bar; skips the cells already on disk."""

    def __init__(self, session: RunSession, log: Callable[[str], None] = print):
        self.session = session
        self.log = log
        self.finished = session.store.finished()
        self.done = self.total = 0
        self.cell_s = 0.0

    def run(self, cells: list[Cell]) -> None:
        todo = [c for c in cells if c.cell_id not in self.finished]
        if len(todo) < len(cells):
            self.log(f"  {len(cells) - len(todo)} of these cells are already in the run directory: skipped")
        if any(asks_for_host(c) for c in todo):
            # --memory-high, --thp, --swap or --matrix cgroup/kernel: cells this machine is not the host for run
            # in a guest kernel, one boot per group; a cell's time there includes its share of the boot.
            t = time.monotonic()
            for outcome in measure_with_guests(self.session, todo, log=self.log):
                self._done(outcome.result, time.monotonic() - t)
                t = time.monotonic()
            return
        for cell in todo:
            self.session.prepare(cell)
            t = time.monotonic()
            result = self.session.measure(cell).result
            self._done(result, time.monotonic() - t)

    def _done(self, result: RunResult, took: float) -> None:
        self.finished[result.cell.cell_id] = result.status
        self.done += 1
        self.cell_s = took if self.done == 1 else 0.8 * self.cell_s + 0.2 * took
        left = max(0, self.total - self.done) * self.cell_s
        note = f" ({result.reason})" if result.reason else ""
        self.log(f"{progress_bar(self.done, max(self.total, self.done), left)} {result.cell.cell_id} "
                 f"{result.status} {result.wall_s:.1f}s{note}")


def run(plan: AdvisePlan, results: str, argv: list[str], resume: Path | None = None,
        saved: dict[str, Any] | None = None) -> int:
    from harness.present.advice import memory_high_lines, summary_lines, write_advice

    settings = dict(saved or {})
    settings.update(target=plan.target, memory=plan.memory, memory_bytes=plan.memory_bytes, objective=plan.objective,
                    headroom=plan.headroom, performance=plan.performance, budget_s=plan.budget_s,
                    find_min_memory=plan.find_min_memory, argv=argv, command="goreclaim advise " + " ".join(argv),
                    **plan.node)
    if "memory_high" in plan.node:  # in bytes, as the cells have it: the advice reads GOMEMLIMIT shares against it
        settings["memory_high_bytes"] = plan.cells(plan.candidates[0])[0].column("memory_high_bytes")
    manifest_extra = {"scenarios": [plan.scenario.name], "quick": plan.quick, "command": settings["command"],
                      "advise": settings}
    session = RunSession(Path(results), backend=plan.backend or "auto", manifest_extra=manifest_extra,
                         scenarios=(plan.scenario,) if plan.scenario.program is not None else (), resume=resume)
    session.store.update_manifest({"advise": settings})
    runner = Runner(session)
    complete = False
    try:
        if "grid" in settings:
            grid = Grid.from_json(settings["grid"])
            print(f"resuming {session.store.run_dir}: {grid.describe()}")
        else:
            pilot = plan.cells(plan.candidates[0])[0]
            print(f"timing one cell ({pilot.cell_id}) to fit the grid to the budget of {_minutes(plan.budget_s)}")
            runner.total = 1
            runner.run([pilot])
            cell_s = runner.cell_s or float(settings.get("cell_s", 0)) or 1.0
            grid, estimate, fits = fit(plan, cell_s)
            settings.update(grid=grid.to_json(), grid_text=grid.describe(), cell_s=round(cell_s, 2))
            session.store.update_manifest({"advise": settings})
            extra = (f" + up to {analysis.MIN_MEMORY_STEPS * grid.repeats} cells bisecting the limit"
                     if plan.find_min_memory else "")
            print(f"plan: {grid.describe()} = {grid.n_cells} cells{extra}, ≈{cell_s:.1f} s each (the first took "
                  f"{cell_s:.1f} s): ≈{_minutes(estimate)}" + ("" if fits else
                  f", over the budget of {_minutes(plan.budget_s)}: the smallest grid; raise --budget for more"))
        cells = plan.cells(grid)
        runner.total = len([c for c in cells if c.cell_id not in runner.finished]) + runner.done
        runner.run(cells)
        if plan.find_min_memory:
            _bisect(plan, grid, session, runner)
        complete = True
    except KeyboardInterrupt:
        print("interrupted: the finished cells are kept", file=sys.stderr)
    finally:
        run_dir = session.close(complete=complete)
    if not complete:
        print(f"continue with: goreclaim advise --resume {run_dir}")
        return 130
    path, advice = write_advice(run_dir)
    print(f"advice: {path} (and advice.html, advice.json, {run_dir / 'figures' / 'advice_front.png'})")
    for choice in advice.choices:
        for line in summary_lines(choice, advice):
            if line:
                print(line)
    if "memory_high_bytes" in settings:  # the throttled configurations beside the healthy ones below memory.high
        for finding in analysis.memory_high_findings(advice.table, plan.memory_bytes, settings["memory_high_bytes"]):
            print(f"memory.high {format_size(finding.memory_high)}" + (f" ({finding.context})" if finding.context
                                                                        else "") + ":")
            for line in memory_high_lines(finding, advice.performance):
                print(f"  {line}")
    print(run_dir)
    return 0


def _bisect(plan: AdvisePlan, grid: Grid, session: RunSession, runner: Runner) -> None:
    """Halve the interval between the largest unhealthy and the smallest healthy limit for the
    recommended configuration until analysis.next_memory_limit says it is narrow enough."""
    from harness.present.advice import compute

    advice, _ = compute(session.store.run_dir)
    chosen = [(c, c.row) for c in advice.choices if c.row is not None]
    if not chosen:
        print("--find-min-memory: no healthy configuration to bisect the limit for")
        return
    choice, row = chosen[0]
    config = (row["gogc"], row["gomemlimit"])
    print(f"bisecting the memory limit for {analysis.config_name(row)} (healthy at {plan.memory})")
    probes = {plan.memory_bytes: True}
    probes.update({m: c == analysis.HEALTHY for m, c in advice.limits_tried.get(choice.context, {}).items()})
    while (limit := analysis.next_memory_limit(probes, plan.memory_bytes)) is not None:
        cells = plan.cells(Grid((config[0],), (config[1],), grid.repeats), format_size(limit), configs=[config])
        runner.total = runner.done + len([c for c in cells if c.cell_id not in runner.finished])
        runner.run(cells)
        advice, _ = compute(session.store.run_dir)
        klass = advice.limits_tried.get(choice.context, {}).get(limit, "failed")
        probes[limit] = klass == analysis.HEALTHY
        print(f"  {format_size(limit)}: {klass.replace('_', ' ')}")
