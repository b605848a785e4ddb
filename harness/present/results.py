"""What the present stage works from: `Results`, the one object every exporter renders from, and
`Block`, one piece of the report rendered alike to Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.store.rundir import Run


def section(manifest: dict, key: str) -> dict:
    """A table of the manifest (host, kernel, cgroup, ...); {} where the run did not record it."""
    found = manifest.get(key)
    return found if isinstance(found, dict) else {}


# The verdict matrix (a "verdicts" block), as every exporter reads it: after the claim and its sentence, the
# column saying which hosts judged the claim (only where the run had more than one), then one column per Go
# version; a cell whose hosts disagree gives each host's verdict, "v1: partly · v2: supported".
JUDGED_ON = "judged on"
HOST_SEPARATOR = " · "


@dataclass
class Block:
    """One piece of the report, rendered alike to Markdown and HTML.

    kinds: h1 | h2 | h3 | p | list | pre (text shown as it is) | table (a DataFrame) | image ((path,
    alt)) | verdicts (a DataFrame: claim, its sentence, then one column of verdicts per Go version,
    coloured in HTML) | details ((summary, verdict, text): a verdict whose text folds away under it in HTML).
    An h2's `anchor` names it in links (a claim's id), and the HTML's table of contents lists the h2s.
    """

    kind: str
    content: Any       # its kind says which shape (above)
    anchor: str = ""


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

