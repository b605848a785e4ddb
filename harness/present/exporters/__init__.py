"""One exporter per output format, all behind one interface: `render(results) -> bytes`.

`harness.present.report.write_report` writes every exporter's file into the run directory. A new
format is one module here and one entry in EXPORTERS; each renders from the same `Results`
(harness.present.results), so no two formats can disagree about a number.
"""

from __future__ import annotations

from typing import Protocol

from harness.present.exporters.benchstat import BenchstatExporter
from harness.present.exporters.csvs import ClaimsCsvExporter, SummaryCsvExporter
from harness.present.exporters.html import HtmlExporter
from harness.present.exporters.json_summary import JsonSummaryExporter
from harness.present.exporters.markdown import MarkdownExporter
from harness.present.results import Results


class Exporter(Protocol):
    name: str         # the format, as a user would name it
    file_name: str    # written at the top of the run directory

    def render(self, results: Results) -> bytes:
        """The whole file; the same results give the same bytes."""


EXPORTERS: list[Exporter] = [
    SummaryCsvExporter(),
    ClaimsCsvExporter(),
    MarkdownExporter(),
    HtmlExporter(),
    JsonSummaryExporter(),
    BenchstatExporter(),
]


def exporter(name: str) -> Exporter:
    """The exporter of a format by name ('markdown', 'summary.json', ...) or file name."""
    for found in EXPORTERS:
        if name in (found.name, found.file_name):
            return found
    raise KeyError(f"no exporter {name!r} (known: {', '.join(e.name for e in EXPORTERS)})")
