"""A study's claims judged over a run's summaries: one verdict row per (claim, Go version), and per
cgroup version and kernel where the claim's cells ran on more than one (cells in guest kernels).

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
from harness.define.axes import UNSET, axis_text, order_key
from harness.define.hosts import UNTIMED_ACCELERATORS
from harness.define.metrics import timing_sensitive
from harness.store.rundir import Run

__all__ = ["USABLE_STATUSES", "VERDICTS", "Claim", "Decision", "Derived", "FigureSpec", "Inputs", "NotTested",
           "Study", "StudyError", "Verdict", "axis", "col", "combine", "compare", "decisions", "evaluate",
           "evaluate_claim",
           "evaluate_inputs", "pct", "span"]

COLUMNS = ["claim", "go_version", "verdict", "evidence", "figure"]
# The host facts a verdict is also given per, in this order, when a claim's cells differ in them: each
# joins only where it tells cells apart that the ones before it do not (a v2 guest with its own kernel
# is split by cgroup version alone). A verdict not split by one still carries its value when all its
# cells share it; claims.csv has their columns only when the verdicts differ in them.
HOST_SPLITS = ("cgroup_version", "kernel")


@dataclass(frozen=True)
class Verdict:
    claim: str
    go_version: str
    verdict: str
    evidence: str
    figure: str
    cgroup_version: str = ""
    kernel: str = ""


# Where a verdict holds: the Go version, and each host split's value ("" where the claim was not split by it).
Where = dict[str, str]


def evaluate_claim(claim: Claim, inputs: Inputs) -> list[Verdict]:
    """Verdict rows for one claim: one per Go version (and host split) among its scenarios' cells."""
    figure = claim.figure.path if claim.figure is not None else ""
    out = []
    for where, decided in decisions(claim, inputs):
        if isinstance(decided, Verdict):
            out.append(decided)
            continue
        unknown = sorted(set(decided.parts) - set(claim.parts))
        if unknown:
            raise StudyError([f"claim {claim.id}: decide returned parts it does not declare: {', '.join(unknown)} "
                              f"(declared: {', '.join(claim.parts)})"])
        text = " ".join(t for t in (claim.evidence(decided), parts_line(decided)) if t)
        out.append(Verdict(claim.id, verdict=decided.verdict, evidence=text, figure=figure, **where))
    return out


def host_splits(rows: pd.DataFrame) -> list[str]:
    """The HOST_SPLITS columns that tell these rows (cells, or verdicts) apart, each beyond the ones
    before it."""
    splits: list[str] = []
    groups = 1
    for column in HOST_SPLITS:
        if column not in rows.columns:
            continue
        n = rows[splits + [column]].map(axis_text).drop_duplicates().shape[0]
        if n > groups:
            splits.append(column)
            groups = n
    return splits


def decisions(claim: Claim, inputs: Inputs) -> list[tuple[Where, Decision | Verdict]]:
    """Per Go version (and host split) among a claim's cells: its decision, or the verdict row given
    without deciding (not run, not applicable, no usable cell)."""
    claim_id = claim.id
    figure = claim.figure.path if claim.figure is not None else ""
    table = inputs.table()
    if "scenario" not in table.columns:
        table["scenario"] = ""
    table = table[table["scenario"].isin(claim.scenarios)]
    primary = table[table["scenario"] == claim.scenarios[0]]
    ran_in = primary if not primary.empty else table
    if ran_in.empty:
        return [({"go_version": ""}, Verdict(claim_id, "", "not-tested", "not run", ""))]
    dims = (["go_version"] if "go_version" in ran_in.columns else []) + host_splits(ran_in)
    keys = sorted(set(ran_in[dims].map(axis_text).itertuples(index=False, name=None)) if dims else {()},
                  key=lambda key: tuple(order_key("go" if d == "go_version" else d, v)
                                        for d, v in zip(dims, key, strict=True)))
    texts = table[dims].map(axis_text)
    out: list[tuple[Where, Decision | Verdict]] = []
    for key in keys:
        rows = table[(texts == list(key)).all(axis=1)] if dims else table
        where = {"go_version": "", **_shared(rows), **dict(zip(dims, key, strict=True))}
        go = where["go_version"]
        why_not = claim.not_applicable(go) if claim.not_applicable else None
        if why_not:
            out.append((where, Verdict(claim_id, verdict="not-applicable", evidence=why_not, figure=figure,
                                       **where)))
            continue
        status = rows["status"].astype(str) if "status" in rows.columns else pd.Series("ok", index=rows.index)
        usable = rows[status.isin(USABLE_STATUSES)]
        if usable.empty:
            counts = ", ".join(f"{s}×{n}" for s, n in status.value_counts().sort_index().items())
            out.append((where, Verdict(claim_id, verdict="inconclusive",
                                       evidence=f"No cell completed (statuses: {counts}).", figure=figure, **where)))
            continue
        timed = [m for m in claim.metrics if timing_sensitive(m)]
        if timed and "accel" in usable.columns:
            # Timing under software emulation is not the host's: those cells are left out of a claim on it.
            emulated = usable["accel"].map(axis_text).isin(UNTIMED_ACCELERATORS)
            if emulated.all():
                accels = ", ".join(sorted(set(usable["accel"].map(axis_text))))
                out.append((where, Verdict(claim_id, verdict="inconclusive",
                                           evidence=f"It reads timing ({', '.join(timed)}), measured only under "
                                           f"{accels} (qemu's software emulation: timing is not the host's).",
                                           figure=figure, **where)))
                continue
            usable = usable[~emulated]
        out.append((where, claim.decide(usable, inputs.derived)))
    return out


def _shared(rows: pd.DataFrame) -> Where:
    """The host facts all these cells share (a verdict says where it was judged even when not split by it)."""
    out = {}
    for column in HOST_SPLITS:
        values = set(rows[column].map(axis_text)) if column in rows.columns else set()
        if len(values) == 1 and (value := values.pop()) not in ("", UNSET):
            out[column] = value
    return out


def evaluate_inputs(inputs: Inputs, study: Study) -> pd.DataFrame:
    rows = [v for claim in study.claims for v in evaluate_claim(claim, inputs)]
    rows += [Verdict(n.id, "", "not-tested", n.why, "") for n in study.not_tested]
    table = pd.DataFrame([asdict(v) for v in rows], columns=COLUMNS[:2] + list(HOST_SPLITS) + COLUMNS[2:])
    judged = table[table["go_version"] != ""]
    return table.drop(columns=[c for c in HOST_SPLITS if c not in host_splits(judged)])


def evaluate(run: Run, study: Study, summary: pd.DataFrame | None = None,
             data: RunData | None = None) -> pd.DataFrame:
    """Every claim of a study over a loaded run: claims.csv's rows. `data` is the run already split
    by cell, when the caller has it."""
    if summary is None:
        summary = summarize(run.cells, data if data is not None else run.samples, run.events)
    return evaluate_inputs(Inputs(run.cells, summary, run.events, run.samples, data), study)


