"""Scenario files and command-line options → the cells to run, as both drivers plan them; and the
study whose claims the drivers judge and report (harness/studies/).

A scenario's claims come from the study: each claim names the scenarios it reads, so whether a
scenario's cells run alone follows from what those claims read.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.analyse.claims import Study
from harness.build.toolchain import experiment_errors
from harness.define.cell import Cell
from harness.define.errors import ScenarioError
from harness.define.matrix import MatrixError, expand, merge_matrix_options
from harness.define.metrics import timing_sensitive
from harness.define.project import SCENARIOS_DIR
from harness.define.scenario import Scenario, discover, load, load_many, resolve_path
from harness.studies.article import ARTICLE

# The study the drivers judge and report: the article's claims.
STUDY: Study = ARTICLE


def load_scenario(path: str | Path) -> Scenario:
    return load(path)


def claims_of(scenario: Scenario) -> tuple[str, ...]:
    """The ids of the study's claims that read the scenario (none for a foreign program)."""
    return () if scenario.program is not None else STUDY.claims_reading(scenario.name)


def timing_reads(scenario: Scenario) -> list[str]:
    """The timing-sensitive metrics (harness.define.metrics, `timing=True`) the scenario's verdicts
    read: those of the claims that read it and of its own [[expect]] checks, as "C8: gc_cpu_s"."""
    claims = STUDY.by_id
    reads = [f"{cid}: {m}" for cid in claims_of(scenario) for m in claims[cid].metrics if timing_sensitive(m)]
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
        paths: list[str | Path] = [resolve_path(a) for a in scenario_args] if scenario_args else list(discover())
        if not paths:
            raise ScenarioError([f"{SCENARIOS_DIR}: no scenario files (*.toml)"])
        scenarios = load_many(paths)
    overrides = merge_matrix_options(matrix_options)
    cells, errors = [], []
    for scenario in scenarios:
        try:
            cells.extend(with_needs(scenario, expand(scenario, overrides, repeats=repeats, go=go, backend=backend,
                                                     quick=quick), quick))
        except ScenarioError as exc:
            errors.extend(exc.errors)
    errors.extend(experiment_errors(sorted({(c.scenario, c.go_version, dict(c.build_env)["GOEXPERIMENT"])
                                            for c in cells if "GOEXPERIMENT" in dict(c.build_env)})))
    if errors:
        raise MatrixError(errors)
    return scenarios, cells
