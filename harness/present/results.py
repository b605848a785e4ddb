"""What the present stage works from: `Results`, the one object every exporter renders from, and
`Block`, one piece of the report rendered alike to Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.store.rundir import Run


@dataclass
class Block:
    """One piece of the report, rendered alike to Markdown and HTML."""

    kind: str          # h1 | h2 | h3 | p | table | image | list | pre (text shown as it is)
    content: object    # str, DataFrame, list[str], or (path, alt)


@dataclass
class Results:
    """A run and all the report made of it: what every exporter renders from.

    `run` is the loaded run directory (path, manifest, cells, samples, events); `figures` maps each
    figure drawn (path relative to the run directory) to its PNG bytes.
    """

    run: Run
    summary: pd.DataFrame
    verdicts: pd.DataFrame
    figures: dict[str, bytes] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def manifest(self) -> dict:
        return self.run.manifest

    @property
    def cells(self) -> pd.DataFrame:
        return self.run.cells

    @property
    def title(self) -> str:
        return str(self.blocks[0].content) if self.blocks else "goreclaim report"

