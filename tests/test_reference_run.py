"""The committed reference run: its report must regenerate from its stored data alone."""

import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest

from harness.present.report import write_report
from harness.studies.article import ARTICLE
from tests import browser

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
GENERATED = ("report.md", "report.html", "claims.csv", "summary.csv")
# The claims judged by experiment (the others, about other runtimes, are listed as not tested).
GO_CLAIMS = [claim.id for claim in ARTICLE.claims]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    assert REFERENCE.is_dir(), "results/reference/ (the committed reference run) is missing"
    copy = tmp_path_factory.mktemp("reference") / "reference"
    shutil.copytree(REFERENCE, copy)
    for name in GENERATED:
        (copy / name).unlink(missing_ok=True)
    shutil.rmtree(copy / "figures", ignore_errors=True)
    write_report(copy, ARTICLE)
    return copy


@pytest.mark.parametrize("name", ["report.md", "claims.csv", "summary.csv"])
def test_report_regenerates_to_what_is_committed(regenerated, name):
    assert (regenerated / name).read_text() == (REFERENCE / name).read_text(), (
        f"{name} regenerated from results/reference differs from the committed one: "
        f"run `python -m harness report results/reference` and commit the result")


def test_figures_are_the_same_set_of_valid_pngs(regenerated):
    committed = sorted(p.name for p in (REFERENCE / "figures").glob("*.png"))
    assert committed, "the reference run has no figures"
    assert sorted(p.name for p in (regenerated / "figures").glob("*.png")) == committed
    for name in committed:
        width, height = png_size(REFERENCE / "figures" / name)
        assert width >= 400 and height >= 200, (name, width, height)


def test_reference_has_a_verdict_for_every_go_claim_on_every_go_version():
    claims = pd.read_csv(REFERENCE / "claims.csv", dtype=str, keep_default_na=False)
    cells = pd.read_csv(REFERENCE / "cells.csv", dtype=str, keep_default_na=False)
    # Docker everywhere, in the guest's engine too, but for the memory.high cells, which only the cgroup
    # backend confines (auto picks it for them).
    high = cells["memory_high_bytes"] != ""
    assert set(cells.loc[~high, "backend"]) == {"docker"} and set(cells.loc[high, "backend"]) == {"cgroup"}
    assert (claims.loc[claims["claim"].isin(GO_CLAIMS), "verdict"] != "not-tested").all()
    for claim in GO_CLAIMS:
        assert claim in set(claims["claim"]), claim
    # Where a scenario ran on several Go versions, its claims have a row per version.
    for claim in ("C3", "C4", "C11"):
        versions = set(claims.loc[claims["claim"] == claim, "go_version"])
        assert {"1.15.15"} < versions, (claim, versions)


def test_the_reference_page_answers_in_its_first_screen(regenerated, tmp_path_factory):
    """At 1280×900 the summary and the whole verdict matrix are on screen before any scrolling, and
    every one of the reference's figures loads."""
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium): report.html was not opened")
    page = browser.open_page(chromium, regenerated / "report.html", browser.REPORT_SCRIPT,
                             tmp_path_factory.mktemp("chromium"))
    assert not page.errors, page.errors
    found = page.found
    assert found["matrixRows"] == len(ARTICLE.claims)   # one row per claim the study tests
    assert 0 <= found["summaryTop"] < found["matrixBottom"] <= found["screen"], found
    assert len(found["images"]) == len(list((regenerated / "figures").glob("*.png")))
    assert all(i["complete"] and i["width"] > 0 for i in found["images"])
