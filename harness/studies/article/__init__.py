"""The article's claims on Go memory release, as the study goreclaim runs by default.

Adding a claim is its file here (`CLAIM`: statement, scenarios, metrics, figure; `decide`,
`evidence`, thresholds as constants), its entry in CLAIM_MODULES, and its scenario
(scenarios/<name>.toml) when it reads a new one. A scenario's claims are derived from the claims'
`scenarios` (Study.claims_reading); nothing else lists them.
"""

from __future__ import annotations

from harness.analyse.claims.study import NotTested, Study
from harness.present.figures import check_figures
from harness.studies.article import c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, x1

# The claim files, in report order.
CLAIM_MODULES = (c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, x1)

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
