"""The either-way guarantee: every part of every claim comes out both ways.

A verdict is a combination of named parts (Claim.parts, Decision.parts); a part that can only
hold, or only fail, is no test. For every claim of the study, each part it declares must come out
True in some case and False in another, over the reference run's recorded cells (one decision per
Go version, results/reference) and the hand-made runs of the claim tests (the EVIDENCE lists and
PART_CASES below). A part seen only one way fails `test_every_part_comes_out_both_ways`, naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_claims import (
    EVIDENCE,
    c3_rows,
    c8_rows,
    c9_inputs,
    c11_rows,
    inputs,
    x1_growth_inputs,
    x1_inputs,
    x1_rows,
)
from test_claims_release import GO115, GO119, GO121, NEW, c1_cells, c7_cells, inputs_of, spike
from test_claims_residency import c5_inputs, c12_inputs, c13_inputs, c14_inputs
from test_claims_thp_high import x2_inputs, x3_rows
from test_claims_x4 import REVERSED, x4_inputs

from harness.analyse import claims
from harness.analyse.claims import Decision
from harness.store.rundir import load_run
from harness.studies.article import ARTICLE
from tests.frames import MiB

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"

Case = Callable[[], claims.Inputs]


def c3_swapped() -> claims.Inputs:
    """0 frees at once, 1 lazily, unset like 1: every part of C3 fails."""
    rows = c3_rows("1")
    rows[0].update({"rss@freeos": 14 * MiB, "lazyfree@freeos": 0})
    for r in rows[1:]:
        r.update({"rss@freeos": 1030 * MiB, "lazyfree@freeos": 1000 * MiB})
    return inputs(rows)


def c5_not_packed() -> claims.Inputs:
    inp = c5_inputs("1.21.13", 32768)
    ev = inp.events.copy()
    ev["detail"] = [d.replace('"tiny_allocs": 500', '"tiny_allocs": 0') for d in ev["detail"]]
    return claims.Inputs(inp.cells, inp.summary, ev)


def c8_reversed() -> claims.Inputs:
    """GC cycles and GC CPU that rise with GOGC: the two parts the reference always passes, failing."""
    rows = c8_rows()
    for r in rows:
        if r.get("gogc") in ("50", "100", "300"):
            i = ("50", "100", "300").index(r["gogc"])
            r["gc_cycles"], r["gc_cpu_s"] = 10.0 * (i + 1), 1.0 * (i + 1)
    return inputs(rows)


def c9_no_rss_drop() -> claims.Inputs:
    """Calls every 10 ms that lower no RSS."""
    inp = c9_inputs(True, rates=("0s", "10ms"))
    summary = inp.summary.copy()
    periodic = summary.index.str.startswith("freeos_periodic")
    summary.loc[periodic, "mean_rss"] = 300 * MiB
    return claims.Inputs(inp.cells, summary, inp.events, inp.samples)


def c10_rss_agrees() -> claims.Inputs:
    return inputs([{"scenario": "alloc_release", "touch": "true", "freeos": "false", "peak_rss": 1034 * MiB,
                    "rss@release": 1030 * MiB, "heap_inuse@release": 2 * MiB, "pprof_inuse_space": 900 * MiB},
                   {"scenario": "madvdontneed", "madvdontneed": "0", "peak_rss": 1034 * MiB,
                    "rss@freeos": 14 * MiB, "lazyfree@freeos": 0}])


def c11_rss_falls_without_pressure() -> claims.Inputs:
    rows = c11_rows(10)
    rows[0].update({"rss@freeos": 14 * MiB, "lazyfree@freeos": 0})   # madvdontneed=0 dropped them at once
    return inputs(rows)


def x1_killed_without_limit_too() -> claims.Inputs:
    """GOGC=off: killed with the limit as well as without it."""
    rows = x1_rows()
    for limit, killed in (("off", 1), ("80%", 1)):
        rows.append({"scenario": "gogc_sweep", "gogc": "off", "gomemlimit": limit, "go_version": NEW,
                     "cell_id": f"gogc_sweep[gogc=off,gomemlimit={limit},r0]", "peak_rss": 500 * MiB,
                     "oom_killed": killed, "gomemlimit_bytes": np.nan if limit == "off" else 400 * MiB})
    return x1_inputs(rows)


def x1_gogc_off_as_stated() -> claims.Inputs:
    rows = x1_rows()
    for limit, killed in (("off", 1), ("80%", 0)):
        rows.append({"scenario": "gogc_sweep", "gogc": "off", "gomemlimit": limit, "go_version": NEW,
                     "cell_id": f"gogc_sweep[gogc=off,gomemlimit={limit},r0]", "peak_rss": 500 * MiB,
                     "oom_killed": killed, "gomemlimit_bytes": np.nan if limit == "off" else 400 * MiB})
    return x1_inputs(rows)


def x1_no_cost() -> claims.Inputs:
    """A limit below the no-limit peak that lowers nothing and costs nothing."""
    rows = x1_rows(gc_binding=(2.0, 2.01))
    for r in rows:
        if r["gomemlimit"] == "50%":
            r["peak_rss"], r["throughput"] = (400 + r["repeat"]) * MiB, 7e6 + r["repeat"]
    return x1_inputs(rows)


# Hand-made cases for the sides the reference run and the EVIDENCE lists do not show.
PART_CASES: list[tuple[str, Case]] = [
    ("C1", lambda: inputs_of(c1_cells(GO121, 122.0))),
    ("C1", lambda: inputs_of(c1_cells(GO119, 4.0))),
    ("C1", lambda: inputs_of([spike("three", scenario="idle_three_gcs", gcs=3, window=5.0, back_at=0.0, drop_s=0.01),
                              spike("one", back_at=0.0, drop_s=0.01)])),
    ("C1", lambda: inputs_of(c1_cells(GO115, 3.0, lazy=True))),
    ("C2", lambda: inputs([{"scenario": "alloc_release", "freeos": "true", "touch": "true", "rss@baseline": 10 * MiB,
                            "peak_rss": 1034 * MiB, "rss@freeos": 1000 * MiB, "lazyfree@freeos": 0}])),
    ("C3", c3_swapped),
    ("C5", c5_not_packed),
    ("C7", lambda: inputs_of(c7_cells(GO121, None))),
    ("C7", lambda: inputs_of(c7_cells(GO119, 3.0))),
    ("C7", lambda: inputs_of(c7_cells(NEW, None, two_kept=300))),
    ("C8", c8_reversed),
    ("C8", lambda: inputs(c8_rows(throughput=[[1.0e6, 1.02e6], [2.0e6, 2.02e6], [1.5e6, 1.52e6]]))),
    ("C9", c9_no_rss_drop),
    ("C9", lambda: c9_inputs(True, munmaps=300, rates=("0s", "10ms"))),
    ("C9", lambda: c9_inputs(False)),
    ("C10", c10_rss_agrees),
    ("C11", c11_rss_falls_without_pressure),
    ("C12", lambda: c12_inputs(page_cache=0)),
    ("C12", lambda: c12_inputs(small_killed=False)),
    ("C13", lambda: c13_inputs(large_returned=False)),
    ("C14", lambda: c14_inputs(unbounded_grows=False)),
    ("X1", x1_killed_without_limit_too),
    ("X1", x1_gogc_off_as_stated),
    ("X1", x1_no_cost),
    ("X1", lambda: x1_inputs(x1_rows(limiter=0.0, overload_tput=0.8e6))),
    ("X1", x1_growth_inputs),
    ("X1", lambda: x1_growth_inputs(within_killed=1, past_killed=0)),
    ("X4", x4_inputs),
    ("X4", lambda: x4_inputs(REVERSED)),
    ("X2", x2_inputs),
    ("X2", lambda: x2_inputs(GO119, always=(8 * MiB, 2 * MiB), madvise=(62 * MiB, 56 * MiB))),
    ("X2", lambda: x2_inputs(disablethp=(62 * MiB, 56 * MiB))),
    ("X3", lambda: inputs(x3_rows())),
    ("X3", lambda: inputs(x3_rows(killed=1, limited_events=4000))),
]


def decided(claim_id: str, inp: claims.Inputs) -> list[Decision]:
    return [d for _, d in claims.decisions(ARTICLE.by_id[claim_id], inp) if isinstance(d, Decision)]


@pytest.fixture(scope="module")
def reference_inputs() -> claims.Inputs:
    assert REFERENCE.is_dir(), "results/reference/ (the committed reference run) is missing"
    from harness.analyse.summary import summarize

    run = load_run(REFERENCE)
    return claims.Inputs(run.cells, summarize(run.cells, run.samples, run.events), run.events, run.samples)


@pytest.fixture(scope="module")
def outcomes(reference_inputs) -> dict[tuple[str, str], dict[bool, list[str]]]:
    """(claim, part) -> outcome -> where it came out that way."""
    seen: dict[tuple[str, str], dict[bool, list[str]]] = {}

    def note(claim_id: str, where: str, decisions: list[Decision]) -> None:
        for d in decisions:
            for part, value in d.parts.items():
                if value is not None:
                    seen.setdefault((claim_id, part), {True: [], False: []})[value].append(where)

    for claim in ARTICLE.claims:
        for go, d in claims.decisions(claim, reference_inputs):
            if isinstance(d, Decision):
                note(claim.id, f"reference {go}", [d])
    for i, (claim_id, make, _, _) in enumerate(EVIDENCE):
        note(claim_id, f"EVIDENCE[{i}]", decided(claim_id, make()))
    for i, (claim_id, make) in enumerate(PART_CASES):
        note(claim_id, f"PART_CASES[{i}]", decided(claim_id, make()))
    return seen


@pytest.mark.parametrize("claim_id, part", [(c.id, p) for c in ARTICLE.claims for p in c.parts],
                         ids=[f"{c.id}: {p}" for c in ARTICLE.claims for p in c.parts])
def test_every_part_comes_out_both_ways(outcomes, claim_id, part):
    got = outcomes.get((claim_id, part), {True: [], False: []})
    missing = [str(v) for v in (True, False) if not got[v]]
    assert not missing, (f"{claim_id}, part {part!r}: never came out {' or '.join(missing)} (held in: "
                         f"{got[True][:3]}, failed in: {got[False][:3]}); a part that cannot come out both ways is "
                         "no test: add a case to PART_CASES, or make it a note")


def test_every_claim_declares_its_parts_and_decides_only_those(reference_inputs):
    for claim in ARTICLE.claims:
        assert claim.parts, claim.id
        for _, d in claims.decisions(claim, reference_inputs):
            if isinstance(d, Decision):
                assert set(d.parts) <= set(claim.parts), (claim.id, set(d.parts) - set(claim.parts))


def test_a_verdict_is_the_combination_of_its_parts(reference_inputs):
    """No verdict but `inconclusive` is given without parts, and each equals combine(parts)."""
    for claim in ARTICLE.claims:
        for go, d in claims.decisions(claim, reference_inputs):
            if not isinstance(d, Decision):
                continue
            if d.verdict != "inconclusive" or d.parts:
                assert d.verdict == claims.combine(list(d.parts.values())), (claim.id, go, d.verdict, d.parts)


def test_a_decision_with_undeclared_parts_is_a_study_error():
    claim = ARTICLE.by_id["C4"]
    bad = claims.Claim(**{**claim.__dict__, "parts": ("something else",)})
    rows = [{"scenario": "oom_pressure", "madvdontneed": m, "oom_killed": 0} for m in ("0", "1")]
    with pytest.raises(claims.StudyError, match="does not declare"):
        claims.evaluate_claim(bad, inputs(rows))


def test_a_verdict_other_than_inconclusive_needs_parts():
    from harness.analyse.claims.common import decision

    with pytest.raises(AssertionError, match="judged"):
        decision("supported", "as-stated")
    assert json.dumps(decision("inconclusive", "missing").parts) == "{}"
