"""A study's claims judged over a run's summaries: one verdict row per (claim, Go version).

Every verdict is decided here from what the run measured; the report only prints them. A study
(harness/studies/<name>/, declared with the types of study.py) holds one file per claim: its
declaration, its thresholds as named constants, `decide` (the verdict and the facts it rests on)
and `evidence` (the text); common.py holds what every claim file uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from harness.analyse.claims.common import (
    USABLE_STATUSES,
    VERDICTS,
    Decision,
    Derived,
    Inputs,
    axis,
    col,
    combine,
    compare,
    parts_line,
    pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec, NotTested, Study, StudyError
from harness.analyse.summary import RunData, summarize
from harness.define.axes import axis_text, order_key
from harness.define.hosts import UNTIMED_ACCELERATORS
from harness.define.metrics import timing_sensitive
from harness.store.rundir import Run

__all__ = ["USABLE_STATUSES", "VERDICTS", "Claim", "Decision", "Derived", "FigureSpec", "Inputs", "NotTested",
           "Study", "StudyError", "Verdict", "axis", "col", "combine", "compare", "decisions", "evaluate",
           "evaluate_claim",
           "evaluate_inputs", "pct", "span"]

COLUMNS = ["claim", "go_version", "verdict", "evidence", "figure"]


@dataclass(frozen=True)
class Verdict:
    claim: str
    go_version: str
    verdict: str
    evidence: str
    figure: str


def evaluate_claim(claim: Claim, inputs: Inputs) -> list[Verdict]:
    """Verdict rows for one claim: one per Go version among its scenarios' cells."""
    figure = claim.figure.path if claim.figure is not None else ""
    out = []
    for go, decided in decisions(claim, inputs):
        if isinstance(decided, Verdict):
            out.append(decided)
            continue
        unknown = sorted(set(decided.parts) - set(claim.parts))
        if unknown:
            raise StudyError([f"claim {claim.id}: decide returned parts it does not declare: {', '.join(unknown)} "
                              f"(declared: {', '.join(claim.parts)})"])
        text = " ".join(t for t in (claim.evidence(decided), parts_line(decided)) if t)
        out.append(Verdict(claim.id, go, decided.verdict, text, figure))
    return out


def decisions(claim: Claim, inputs: Inputs) -> list[tuple[str, Decision | Verdict]]:
    """Per Go version among a claim's cells: its decision, or the verdict row given without deciding
    (not run, not applicable, no usable cell)."""
    claim_id = claim.id
    figure = claim.figure.path if claim.figure is not None else ""
    table = inputs.table()
    if "scenario" not in table.columns:
        table["scenario"] = ""
    table = table[table["scenario"].isin(claim.scenarios)]
    primary = table[table["scenario"] == claim.scenarios[0]]
    ran_in = primary if not primary.empty else table
    if ran_in.empty:
        return [("", Verdict(claim_id, "", "not-tested", "not run", ""))]
    versions = sorted(set(ran_in["go_version"].map(axis_text)) if "go_version" in ran_in.columns else {""},
                      key=lambda v: order_key("go", v))
    out: list[tuple[str, Decision | Verdict]] = []
    for go in versions:
        rows = table[table["go_version"].map(axis_text) == go] if "go_version" in table.columns else table
        why_not = claim.not_applicable(go) if claim.not_applicable else None
        if why_not:
            out.append((go, Verdict(claim_id, go, "not-applicable", why_not, figure)))
            continue
        status = rows["status"].astype(str) if "status" in rows.columns else pd.Series("ok", index=rows.index)
        usable = rows[status.isin(USABLE_STATUSES)]
        if usable.empty:
            counts = ", ".join(f"{s}×{n}" for s, n in status.value_counts().sort_index().items())
            out.append((go, Verdict(claim_id, go, "inconclusive", f"No cell completed (statuses: {counts}).",
                                    figure)))
            continue
        timed = [m for m in claim.metrics if timing_sensitive(m)]
        if timed and "accel" in usable.columns:
            # Timing under software emulation is not the host's: those cells are left out of a claim on it.
            emulated = usable["accel"].map(axis_text).isin(UNTIMED_ACCELERATORS)
            if emulated.all():
                accels = ", ".join(sorted(set(usable["accel"].map(axis_text))))
                out.append((go, Verdict(claim_id, go, "inconclusive", f"It reads timing ({', '.join(timed)}), "
                                        f"measured only under {accels} (qemu's software emulation: timing is not "
                                        "the host's).", figure)))
                continue
            usable = usable[~emulated]
        out.append((go, claim.decide(usable, inputs.derived)))
    return out


def evaluate_inputs(inputs: Inputs, study: Study) -> pd.DataFrame:
    rows = [v for claim in study.claims for v in evaluate_claim(claim, inputs)]
    rows += [Verdict(n.id, "", "not-tested", n.why, "") for n in study.not_tested]
    return pd.DataFrame([asdict(v) for v in rows], columns=COLUMNS)


def evaluate(run: Run, study: Study, summary: pd.DataFrame | None = None,
             data: RunData | None = None) -> pd.DataFrame:
    """Every claim of a study over a loaded run: claims.csv's rows. `data` is the run already split
    by cell, when the caller has it."""
    if summary is None:
        summary = summarize(run.cells, data if data is not None else run.samples, run.events)
    return evaluate_inputs(Inputs(run.cells, summary, run.events, run.samples, data), study)


