"""The article's claims on Go memory release, as the study goreclaim runs by default.

Adding a claim is its file here (`CLAIM`: statement, plain sentence, scenarios, metrics, figure;
`decide`, `evidence`, thresholds as constants) and its scenario (scenarios/<name>.toml) when it
reads a new one. Every module of this package is a claim, in the report in file-name order (c01 …
c14, then the added claims x1, x2, x3). A scenario's claims are derived from the claims' `scenarios`
(Study.claims_reading); nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil

from harness.analyse.claims.study import NotTested, Study, StudyError
from harness.present.figures import check_figures

# The claim files, in report order.
CLAIM_MODULES = tuple(importlib.import_module(f"{__name__}.{m.name}")
                      for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name))
_WITHOUT_CLAIM = [m.__name__ for m in CLAIM_MODULES if not hasattr(m, "CLAIM")]
if _WITHOUT_CLAIM:
    raise StudyError([f"{name}: declares no CLAIM (every module of {__name__} is a claim)" for name in _WITHOUT_CLAIM])

# Claims about other runtimes: outside a Go harness.
NOT_TESTED = (
    NotTested("J1", "JVM GC triggers, G1 `MaxGCPauseMillis`, heap sizing flags (§2.2, 4.5).", "JVM, not Go"),
    NotTested("J2", "JVM `MaxHeapFreeRatio`/`MinHeapFreeRatio` decide when heap goes back to the OS (§3.1).",
              "JVM, not Go"),
    NotTested("J3", ".NET large object heap is not compacted and fragments (§3.2).", ".NET, not Go"),
    NotTested("J4", "Node.js heap snapshots; Python generators use O(1) memory (§5).", "not Go"),
)

# Where the "what each tool shows" table looks: scenario -> the phases whose end it reads (the
# phases after which the tools disagree most: LazyFree after FreeOSMemory, page cache, a freed heap).
TOOL_PHASES = {
    "madvdontneed": ("freeos",),
    "cgroup_limit": ("pagecache",),
    "alloc_release": ("release", "idle"),
}

ARTICLE = Study(
    name="article",
    title="goreclaim report",
    intro=("Each claim of the article was tested by experiment in memory-limited runs; every verdict below is "
           "computed from this run's measurements."),
    source="The article",
    claims=tuple(m.CLAIM for m in CLAIM_MODULES),
    not_tested=NOT_TESTED,
    not_tested_title="Claims about other runtimes (not tested)",
    tool_phases=TOOL_PHASES,
)
check_figures(ARTICLE)  # every figure the claims declare can be drawn, or the study does not load
