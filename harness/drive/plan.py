"""Scenario files and command-line options → the cells to run, as both drivers plan them.

Scenarios are loaded here rather than in the define stage alone because their `claims` lists are
checked against the claim registry, which lives in the analyse stage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.analyse.claims import CLAIMS
from harness.define.cell import Cell
from harness.define.errors import ScenarioError
from harness.define.matrix import MatrixError, expand, merge_matrix_options
from harness.define.metrics import timing_sensitive
from harness.define.project import SCENARIOS_DIR
from harness.define.scenario import Scenario, discover, load, load_many, resolve_path


def claim_ids() -> tuple[str, ...]:
    return tuple(CLAIMS)


def load_scenario(path: str | Path) -> Scenario:
    return load(path, claim_ids=claim_ids())


def timing_reads(scenario: Scenario) -> list[str]:
    """The timing-sensitive metrics (harness.define.metrics, `timing=True`) the scenario's verdicts
    read: those of the claims it lists and of its own [[expect]] checks, as "C8: gc_cpu_s"."""
    reads = [f"{cid}: {m}" for cid in scenario.claims if cid in CLAIMS for m in CLAIMS[cid].metrics
             if timing_sensitive(m)]
    reads += [f"expect: {e.metric}" for e in scenario.expects if timing_sensitive(e.metric)]
    return list(dict.fromkeys(reads))


def exclusive(scenario: Scenario, quick: bool = False) -> bool:
    """Whether the scenario's cells must have their host to themselves: `[run] exclusive` when the
    file says, else a foreign program (its verdict is the user's: CPU and time may matter), else
    whether a verdict reads a timing-sensitive metric. Cells that only read memory share a host."""
    written = scenario.variant(quick).run.exclusive
    if written is not None:
        return written
    if scenario.program is not None:
        return True
    return bool(timing_reads(scenario))


def with_needs(scenario: Scenario, cells: list[Cell], quick: bool = False) -> list[Cell]:
    """The scenario's cells, each marked exclusive or not (see `exclusive`)."""
    alone = exclusive(scenario, quick)
    return [dataclasses.replace(c, exclusive=alone) for c in cells]


def plan(scenario_args: list[str], matrix_options: list[str], repeats: int | None = None,
         go: list[str] | None = None, backend: str | None = None,
         quick: bool = False, program: Scenario | None = None) -> tuple[list[Scenario], list[Cell]]:
    """(scenarios, cells) for a command line; raises ScenarioError for anything unusable.

    With `program` (goreclaim run --program: harness.define.scenario.program_scenario) it is the
    one scenario."""
    if program is not None:
        if scenario_args:
            raise ScenarioError([f"--program runs the program alone; leave out the scenarios "
                                 f"({', '.join(scenario_args)})"])
        scenarios = [program]
    else:
        paths = [resolve_path(a) for a in scenario_args] if scenario_args else discover()
        if not paths:
            raise ScenarioError([f"{SCENARIOS_DIR}: no scenario files (*.toml)"])
        scenarios = load_many(paths, claim_ids=claim_ids())
    overrides = merge_matrix_options(matrix_options)
    cells, errors = [], []
    for scenario in scenarios:
        try:
            cells.extend(with_needs(scenario, expand(scenario, overrides, repeats=repeats, go=go, backend=backend,
                                                     quick=quick), quick))
        except ScenarioError as exc:
            errors.extend(exc.errors)
    if errors:
        raise MatrixError(errors)
    return scenarios, cells
