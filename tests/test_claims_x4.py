"""X4 (Green Tea GC) on hand-made cells: each part flips with the numbers, within the spread it is undecided."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analyse import claims
from harness.studies.article import ARTICLE
from tests.frames import MiB

GO = "1.26.6"
# (GC CPU s, mean RSS MiB, peak RSS MiB, throughput ops/s) per build, before the repeat's small offset.
AS_REPORTED = {"greenteagc": (1.0, 330.0, 400.0, 5.0e6), "nogreenteagc": (1.5, 280.0, 340.0, 5.0e6)}


def x4_inputs(numbers: dict[str, tuple[float, float, float, float]] | None = None, go: str = GO,
              spread: float = 0.01) -> claims.Inputs:
    """Two repeats per build; the second repeat `spread` (a share) above the first."""
    rows = []
    for experiment, (gc, mean, peak, tput) in (numbers or AS_REPORTED).items():
        for r in range(2):
            k = 1 + spread * r
            rows.append({"scenario": "greentea", "goexperiment": experiment, "go_version": go, "repeat": r,
                         "cell_id": f"greentea[go={go},goexperiment={experiment},r{r}]", "gc_cpu_s": gc * k,
                         "mean_rss": mean * k * MiB, "peak_rss": peak * k * MiB, "throughput": tput * k,
                         "oom_killed": 0})
    frame = pd.DataFrame([{"status": "ok", **r} for r in rows])
    cell_columns = ["cell_id", "scenario", "goexperiment", "go_version", "repeat", "status"]
    return claims.Inputs(frame[cell_columns], frame.drop(columns=cell_columns[1:]).set_index("cell_id"))


def one(claim_id: str, inp: claims.Inputs):
    rows = claims.evaluate_claim(ARTICLE.by_id[claim_id], inp)
    assert len(rows) == 1, rows
    return rows[0]


# Green Tea costing GC CPU, holding less memory and losing throughput: every part fails.
REVERSED = {"greenteagc": (1.5, 280.0, 340.0, 4.0e6), "nogreenteagc": (1.0, 330.0, 400.0, 5.0e6)}


# (claim, inputs, verdict, texts in its evidence): tests/test_claims.py checks each.
EVIDENCE = [
    ("X4", x4_inputs, "supported", ["GC CPU -33% (lower)", "steady RSS +18% (higher)", "throughput +0% (not lower)"]),
    ("X4", lambda: x4_inputs(REVERSED), "refuted", ["GC CPU +50% (not lower)", "throughput -20% (lower)"]),
]


def test_x4_supported_when_green_tea_lowers_gc_cpu_and_holds_more_memory():
    row = one("X4", x4_inputs())
    assert row.verdict == "supported", row.evidence
    assert "GC CPU -33% (lower)" in row.evidence and "steady RSS +18% (higher)" in row.evidence


def test_x4_refuted_when_every_part_goes_the_other_way():
    row = one("X4", x4_inputs(REVERSED))
    assert row.verdict == "refuted", row.evidence
    assert "throughput -20% (lower)" in row.evidence


def test_x4_a_difference_within_the_spread_between_repeats_decides_nothing():
    # The same 10% gap in GC CPU, with repeats that spread by 30%: the tolerance outgrows the effect.
    numbers = {"greenteagc": (1.0, 330.0, 400.0, 5.0e6), "nogreenteagc": (1.1, 280.0, 340.0, 5.0e6)}
    (_, d), = claims.decisions(_x4(), x4_inputs(numbers, spread=0.3))
    assert d.parts["lower GC CPU"] is None
    assert one("X4", x4_inputs(numbers)).verdict == "supported"   # tight repeats: the same gap counts


def test_x4_needs_both_builds_and_does_not_apply_before_go_1_25():
    only_on = {"greenteagc": AS_REPORTED["greenteagc"]}
    assert one("X4", x4_inputs(only_on)).verdict == "inconclusive"
    row = one("X4", x4_inputs(go="1.21.13"))
    assert row.verdict == "not-applicable", row.evidence


def _x4():
    return ARTICLE.by_id["X4"]


@pytest.mark.parametrize("numbers, part, expected", [
    (AS_REPORTED, "throughput kept", True),
    (REVERSED, "throughput kept", False),
])
def test_x4_throughput_kept_unless_it_falls_by_more_than_the_noise(numbers, part, expected):
    (_, d), = claims.decisions(_x4(), x4_inputs(numbers))
    assert d.parts[part] is expected
