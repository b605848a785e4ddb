"""A scenario's expectations over a run, cell by cell: the one loop both drivers share.

A per-cell expectation is checked when its cell finishes. A relative one (`of`) compares two
cells, so it is checked by whichever of the pair finishes second; a pair whose other cell never
runs (deselected, interrupted) is reported as not checked, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.analyse.expectations import (
    CellRecord,
    check_cell,
    inconclusive_checks,
    relative_checks,
    settings_of,
    summarize_cell,
)
from harness.define.cell import Cell
from harness.define.scenario import Scenario
from harness.run.backends.base import RunResult


@dataclass
class Checker:
    scenarios: dict[str, Scenario]
    summaries: dict[str, pd.Series] = field(default_factory=dict)   # cell_id -> summary row
    cells: dict[str, Cell] = field(default_factory=dict)             # cells measured so far
    accels: dict[str, str] = field(default_factory=dict)              # cell_id -> what executed its kernel
    inconclusive: list[str] = field(default_factory=list)            # checks a cell's accelerator left open
    # (expectation index, cell id, partner id) of the relative checks already made
    _compared: set[tuple[int, str, str]] = field(default_factory=set)

    def after_cell(self, cell: Cell, result: RunResult) -> list[str]:
        """Failure messages of every expectation this finished cell completes."""
        scenario = self.scenarios[cell.scenario]
        row = summarize_cell(result)
        self.summaries[cell.cell_id] = row
        self.cells[cell.cell_id] = cell
        accel = self.accels[cell.cell_id] = result.placement.get("accel", "native")
        self.inconclusive += inconclusive_checks(scenario, cell, accel)
        messages = [f.message for f in check_cell(scenario, cell, row, accel)]
        return messages + self._relative(scenario, cell)

    def _records(self, scenario: Scenario) -> list[CellRecord]:
        return [(c.cell_id, c.repeat, settings_of(scenario, c)) for c in self.cells.values()
                if c.scenario == scenario.name]

    def _relative(self, scenario: Scenario, cell: Cell) -> list[str]:
        failures, _ = relative_checks(scenario, self._records(scenario), self.summaries, self._compared, self.accels)
        return [f.message for f in failures]

    def unchecked(self) -> list[str]:
        """Relative expectations of measured cells whose partner cell was never measured, and the checks
        that cells run under software emulation leave inconclusive."""
        notes = list(self.inconclusive)
        for scenario in self.scenarios.values():
            _, missing = relative_checks(scenario, self._records(scenario), self.summaries, self._compared,
                                         self.accels)
            notes += missing
        return notes
