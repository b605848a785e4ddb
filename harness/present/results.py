"""What the present stage works from: a run's data split by cell once, and everything the report made.

A 100 Hz run has millions of sample rows; a figure needs a handful of series of a few cells. Filtering
the whole frame for each of them (and computing the phase table again for each panel) is what made
the report slow, so `CellData` splits samples, events and phases by cell once and hands out pieces.
`Results` is the one object every exporter renders from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.analyse.summary import EVENT_COLUMNS, SAMPLE_COLUMNS, phase_table


def _by_cell(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if frame.empty:
        return {}
    # observed=True: with categorical ids, only the cells present (not every category).
    return {str(k): g for k, g in frame.groupby("cell_id", sort=False, observed=True)}


class CellData:
    """Samples, events and the phase table of a run, split by cell once."""

    def __init__(self, samples: pd.DataFrame | None, events: pd.DataFrame | None):
        samples = samples if samples is not None else pd.DataFrame(columns=list(SAMPLE_COLUMNS))
        events = events if events is not None else pd.DataFrame(columns=list(EVENT_COLUMNS))
        self._empty_samples = samples.iloc[0:0]
        self._empty_events = events.iloc[0:0]
        self._samples = _by_cell(samples)
        self._events = _by_cell(events)
        # Without samples, as the figures have always drawn it: a phase with no end event is open.
        phases = phase_table(events)
        self._empty_phases = phases.iloc[0:0]
        self._phases = _by_cell(phases)
        self._series: dict[str, dict[tuple[str, str], pd.DataFrame]] = {}

    def samples(self, cell_id: str) -> pd.DataFrame:
        return self._samples.get(str(cell_id), self._empty_samples)

    def events(self, cell_id: str) -> pd.DataFrame:
        return self._events.get(str(cell_id), self._empty_events)

    def phases(self, cell_id: str) -> pd.DataFrame:
        """The cell's rows of `phase_table` (cell_id, phase, start_s, end_s), in order."""
        return self._phases.get(str(cell_id), self._empty_phases)

    def series(self, cell_id: str, source: str, metric: str) -> pd.DataFrame:
        """One cell's readings of one series: rows (t_s, value, ...) sorted by t_s; empty if never read."""
        cell_id = str(cell_id)
        split = self._series.get(cell_id)
        if split is None:
            rows = self.samples(cell_id)
            split = {(str(s), str(m)): g.sort_values("t_s", kind="stable")
                     for (s, m), g in rows.groupby(["source", "metric"], sort=False, observed=True)}
            self._series[cell_id] = split
        return split.get((source, metric), self._empty_samples)


def cell_data(samples, events=None) -> CellData:
    """A CellData from (samples, events) frames, or the CellData itself when given one."""
    return samples if isinstance(samples, CellData) else CellData(samples, events)


@dataclass
class Block:
    """One piece of the report, rendered alike to Markdown and HTML."""

    kind: str          # h1 | h2 | h3 | p | table | image | list
    content: object    # str, DataFrame, list[str], or (path, alt)


@dataclass
class Results:
    """A run and all the report made of it: what every exporter renders from.

    `run` is the loaded run directory (harness.store.rundir.Run: path, manifest, cells, samples,
    events); `figures` maps each figure drawn (path relative to the run directory) to its PNG bytes.
    """

    run: object
    summary: pd.DataFrame
    verdicts: pd.DataFrame
    figures: dict[str, bytes] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    @property
    def path(self) -> Path | None:
        return getattr(self.run, "path", None)

    @property
    def manifest(self) -> dict:
        return getattr(self.run, "manifest", {}) or {}

    @property
    def cells(self) -> pd.DataFrame:
        return self.run.cells

    @property
    def title(self) -> str:
        return str(self.blocks[0].content) if self.blocks else "goreclaim report"

