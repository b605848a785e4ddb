import hashlib
import json
import re

import pandas as pd
import pytest

from harness.present import report
from harness.studies.article import ARTICLE
from tests.frames import CellSpec, alloc_release_spec, run_frames


def _specs():
    specs = [alloc_release_spec(f"alloc_release[touch={t},freeos={f},r{r}]", repeat=r, touch=t, freeos=f,
                                stays=False)
             for t in (True, False) for f in (True, False) for r in (0, 1)]
    for m, stays in (("unset", False), ("0", True), ("1", False)):
        spec = alloc_release_spec(f"madvdontneed[madvdontneed={m}]", stays=stays,
                                  axes={"madvdontneed": "" if m == "unset" else m})
        spec.scenario = "madvdontneed"
        specs.append(spec)
    for policy, end in (("unbounded", 330), ("lru", 30)):
        specs.append(CellSpec(f"cache_growth[policy={policy}]", [("baseline", 0), ("serve", 0.5)], 6.0,
                              curves={"rss": [(0, 5), (1, 30), (6, end)], "heap_inuse": [(0, 1), (1, 25), (6, end)]},
                              scenario="cache_growth", workload="cache-growth", axes={"policy": policy},
                              totals={"ops": 100000, "utime_s": 1, "stime_s": 0.1}))
    specs.append(CellSpec("oom_pressure[madvdontneed=0]", [], 1.0, scenario="oom_pressure", workload="pressure",
                          status="skipped", axes={"madvdontneed": "0"}))
    return specs


@pytest.fixture
def run_dir(tmp_path):
    cells, samples, events = run_frames(_specs())
    cells.loc[cells["status"] == "skipped", "reason"] = "docker unavailable"
    cells.to_csv(tmp_path / "cells.csv", index=False)
    samples.to_parquet(tmp_path / "samples.parquet")
    events.to_parquet(tmp_path / "events.parquet")
    for n, cell_id in enumerate(cells["cell_id"][:2]):
        (tmp_path / "cells" / f"{n}").mkdir(parents=True)
        (tmp_path / "cells" / f"{n}" / "cell.json").write_text(json.dumps(
            {"row": {}, "sampler_stats": {"fast_hz": 99.0 + n, "slow_hz": 2.0, "missed": n}}))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "run_id": "test-run", "complete": True, "kernel": "6.18.0", "cgroup_version": 1, "thp": "madvise",
        "swap": 0, "docker_version": "20.10", "backend": "docker", "sampler": {"fast_hz": 100, "slow_hz": 2}}))
    return tmp_path


def _digests(run_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run_dir / "figures").glob("*.png"))}


def test_write_report_produces_every_file(run_dir):
    md = report.write_report(run_dir, ARTICLE)
    assert md == run_dir / "report.md"
    for name in ("report.md", "report.html", "claims.csv", "summary.csv"):
        assert (run_dir / name).stat().st_size > 0, name
    figures = {p.name for p in (run_dir / "figures").glob("*.png")}
    assert {"alloc_release_rss.png", "alloc_release_breakdown.png", "madvdontneed_rss.png",
            "cache_growth_rss.png"} <= figures
    assert "gogc_sweep.png" not in figures  # not run: nothing to draw
    verdicts = pd.read_csv(run_dir / "claims.csv", keep_default_na=False)
    c2 = verdicts[verdicts["claim"] == "C2"].iloc[0]
    assert c2["verdict"] == "partly" and c2["figure"] == "figures/alloc_release_rss.png"
    c3 = verdicts[verdicts["claim"] == "C3"].iloc[0]  # unset was drawn like madvdontneed=1
    assert c3["verdict"] == "partly" and "unset behaves like madvdontneed=1" in c3["evidence"]
    assert verdicts[verdicts["claim"] == "C14"].iloc[0]["verdict"] == "supported"
    c4 = verdicts[verdicts["claim"] == "C4"].iloc[0]
    assert c4["verdict"] == "inconclusive" and c4["figure"] == ""
    assert verdicts[verdicts["claim"] == "C8"].iloc[0]["evidence"] == "not run"
    text = md.read_text()
    assert "## C2 (§1 (code))" in text and "kernel: 6.18.0" in text
    assert "sampler fast_hz: median 99.5 (min 99, max 100) over 2 cells" in text and "docker unavailable" in text
    assert "![C2: figures/alloc_release_rss.png](figures/alloc_release_rss.png)" in text
    summary = pd.read_csv(run_dir / "summary.csv", index_col="cell_id")
    assert "rss@freeos" in summary.columns and len(summary) == len(_specs())


def test_report_is_deterministic(run_dir):
    report.write_report(run_dir, ARTICLE)
    first_md, first_png = (run_dir / "report.md").read_text(), _digests(run_dir)
    first_html = (run_dir / "report.html").read_text()
    report.write_report(run_dir, ARTICLE)
    assert (run_dir / "report.md").read_text() == first_md
    assert _digests(run_dir) == first_png  # byte-identical figures, not just the same names
    assert (run_dir / "report.html").read_text() == first_html


def test_html_is_self_contained(run_dir):
    report.write_report(run_dir, ARTICLE)
    page = (run_dir / "report.html").read_text()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "<link" not in page and "<script" not in page
