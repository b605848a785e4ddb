"""A scenario's expectations over a run, cell by cell: the one loop both drivers share.

A per-cell expectation is checked when its cell finishes. A relative one (`of`) compares two
cells, so it is checked by whichever of the pair finishes second; a pair whose other cell never
runs (deselected, interrupted) is reported as not checked, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.analyse.expectations import check_cell, compare_pair, relative_pairs, settings_of, summarize_cell
from harness.define.cell import Cell
from harness.define.scenario import Scenario
from harness.run.backends.base import RunResult


@dataclass
class Checker:
    scenarios: dict[str, Scenario]
    summaries: dict[str, object] = field(default_factory=dict)   # cell_id -> summary row
    cells: dict[str, Cell] = field(default_factory=dict)          # cells measured so far
    _compared: set[tuple] = field(default_factory=set)

    def after_cell(self, cell: Cell, result: RunResult) -> list[str]:
        """Failure messages of every expectation this finished cell completes."""
        scenario = self.scenarios[cell.scenario]
        row = summarize_cell(result)
        self.summaries[cell.cell_id] = row
        self.cells[cell.cell_id] = cell
        messages = [f.message for f in check_cell(scenario, cell, row)]
        return messages + self._relative(scenario, cell)

    def _records(self, scenario: Scenario) -> list[tuple[str, int, dict[str, str]]]:
        return [(c.cell_id, c.repeat, settings_of(scenario, c)) for c in self.cells.values()
                if c.scenario == scenario.name]

    def _relative(self, scenario: Scenario, cell: Cell) -> list[str]:
        messages = []
        records = self._records(scenario)
        for expectation in scenario.expects:
            if not expectation.relative:
                continue
            for cell_id, partner_id in relative_pairs(scenario, expectation, records):
                if partner_id is None or cell.cell_id not in (cell_id, partner_id):
                    continue
                key = (scenario.name, expectation.index, cell_id, partner_id)
                if key in self._compared:
                    continue
                self._compared.add(key)
                failure = compare_pair(expectation, cell_id, self.summaries[cell_id], partner_id,
                                       self.summaries[partner_id])
                if failure:
                    messages.append(failure.message)
        return messages

    def unchecked(self) -> list[str]:
        """Relative expectations of measured cells whose partner cell was never measured."""
        notes = []
        for scenario in self.scenarios.values():
            records = self._records(scenario)
            for expectation in scenario.expects:
                if not expectation.relative:
                    continue
                wanted = ", ".join(f"{k}={v}" for k, v in expectation.of)
                notes += [f"{cell_id}: {expectation.metric} vs its {wanted} cell (not run)"
                          for cell_id, partner_id in relative_pairs(scenario, expectation, records)
                          if partner_id is None]
        return notes
