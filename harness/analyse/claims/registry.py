"""The claim registry: the article's claims this harness judges, one file each, and those it cannot test.

A claim file declares its `CLAIM` (statement, scenarios, the summary metrics its numbers table
shows, figure) with a `decide(table, derived) -> Decision` and an `evidence(decision) -> str`.
Adding a claim is one file plus its line in CLAIM_MODULES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from harness.analyse.claims.common import Decision, Derived


@dataclass(frozen=True)
class Claim:
    id: str
    section: str                 # section numbers of the article
    statement: str
    fair_test: str
    scenarios: tuple[str, ...]   # the first decides which Go versions get a row
    metrics: tuple[str, ...]     # the summary metrics the report's numbers table shows
    figure: str                  # figure file name the report draws for this claim
    decide: Callable[[pd.DataFrame, Derived], Decision]
    evidence: Callable[[Decision], str]
    # Why the claim does not apply to a Go version (e.g. GOMEMLIMIT before 1.19), else None.
    not_applicable: Callable[[str], str | None] | None = None
    # The runtime or kernel mechanism behind the verdict, with its reference (Go source file and
    # function, or golang/go issue); shown with every verdict.
    mechanism: str = ""
    # The summary metric whose change across Go versions the report's "what changed when" figure
    # draws for this claim ("" for none).
    version_metric: str = ""


# Claims about other runtimes: outside a Go harness. id -> (statement, why not tested).
NOT_TESTED: dict[str, tuple[str, str]] = {
    "J1": ("JVM GC triggers, G1 `MaxGCPauseMillis`, heap sizing flags (§2.2, 4.5).", "JVM, not Go"),
    "J2": ("JVM `MaxHeapFreeRatio`/`MinHeapFreeRatio` decide when heap goes back to the OS (§3.1).", "JVM, not Go"),
    "J3": (".NET large object heap is not compacted and fragments (§3.2).", ".NET, not Go"),
    "J4": ("Node.js heap snapshots; Python generators use O(1) memory (§5).", "not Go"),
}

# The claim files, in report order. Imported here, after Claim is defined, since each declares one.
from harness.analyse.claims import (
    c01,
    c02,
    c03,
    c04,
    c05,
    c06,
    c07,
    c08,
    c09,
    c10,
    c11,
    c12,
    c13,
    c14,
    x1,
)

CLAIM_MODULES = (c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, x1)
CLAIMS: dict[str, Claim] = {m.CLAIM.id: m.CLAIM for m in CLAIM_MODULES}


def ids() -> list[str]:
    """Every claim id, tested ones first in report order, then the ones not tested."""
    return list(CLAIMS) + list(NOT_TESTED)
