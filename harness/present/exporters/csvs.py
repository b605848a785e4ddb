"""summary.csv (one row per cell, every summary metric) and claims.csv (one row per verdict)."""

from __future__ import annotations

from harness.present.results import Results


class SummaryCsvExporter:
    name = "summary.csv"
    file_name = "summary.csv"

    def render(self, results: Results) -> bytes:
        return results.summary.to_csv().encode("utf-8")


class ClaimsCsvExporter:
    name = "claims.csv"
    file_name = "claims.csv"

    def render(self, results: Results) -> bytes:
        return results.verdicts.to_csv(index=False).encode("utf-8")
