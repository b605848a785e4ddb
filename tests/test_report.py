import hashlib
import json
import re

import pandas as pd
import pytest

from harness.present import report
from harness.studies.article import ARTICLE
from tests import browser
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


def write_run(tmp_path):
    """A run directory of hand-made cells: alloc_release, madvdontneed, cache_growth and a skipped
    oom_pressure cell."""
    cells, samples, events = run_frames(_specs())
    cells.loc[cells["status"] == "skipped", "reason"] = "docker unavailable"
    cells.to_csv(tmp_path / "cells.csv", index=False)
    samples.to_parquet(tmp_path / "samples.parquet")
    events.to_parquet(tmp_path / "events.parquet")
    for n in range(2):
        (tmp_path / "cells" / f"{n}").mkdir(parents=True)
        (tmp_path / "cells" / f"{n}" / "cell.json").write_text(json.dumps(
            {"row": {}, "sampler_stats": {"fast_hz": 99.0 + n, "slow_hz": 2.0, "missed": n}}))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "run_id": "test-run", "complete": True, "kernel": "6.18.0", "cgroup_version": 1, "thp": "madvise",
        "swap": 0, "docker_version": "20.10", "backend": "docker", "sampler": {"fast_hz": 100, "slow_hz": 2}}))
    return tmp_path


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path)


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
    # The untouched slice is a note (it can never be resident): the touched one decides.
    assert c2["verdict"] == "supported" and c2["figure"] == "figures/alloc_release_rss.png"
    c3 = verdicts[verdicts["claim"] == "C3"].iloc[0]  # unset was drawn like madvdontneed=1
    assert c3["verdict"] == "partly" and "madvdontneed=0 is the default did not hold" in c3["evidence"]
    assert verdicts[verdicts["claim"] == "C14"].iloc[0]["verdict"] == "supported"
    c4 = verdicts[verdicts["claim"] == "C4"].iloc[0]
    assert c4["verdict"] == "inconclusive" and c4["figure"] == ""
    assert verdicts[verdicts["claim"] == "C8"].iloc[0]["evidence"] == "not run"
    text = md.read_text()
    assert "## C2 (§1 (code))" in text and "| kernel | 6.18.0 |" in text
    assert "| sampler fast_hz | median 99.5 (min 99, max 100) over 2 cells |" in text and "docker unavailable" in text
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
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)  # figures inline, links inside
    assert "<link" not in page and "<script" not in page


def test_the_answer_comes_first_and_provenance_last(run_dir):
    """A sentence and a verdict per Go version for every claim before any claim's section; the
    provenance after the last one, as a table with no JSON in it."""
    text = report.write_report(run_dir, ARTICLE).read_text()
    sections = re.findall(r"^## (.*)$", text, flags=re.M)
    assert sections[0] == "Summary"
    assert sections[-1] == "Provenance"
    assert sections.index("X1 (§(added))") > sections.index("What each tool shows")
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert f"| C2 | {ARTICLE.by_id['C2'].plain} |" in summary
    header = next(line for line in summary.splitlines() if line.startswith("| claim |"))
    assert header == "| claim | in plain words | 1.27.3 |"
    assert "| C2 | " in summary and " | supported |" in summary.split("| C2 | ")[1].splitlines()[0]
    assert "| C8 | " in summary and summary.split("| C8 | ")[1].splitlines()[0].endswith("| not run |")
    provenance = text.split("## Provenance")[1].split("\n## ")[0]
    assert "{" not in provenance and "| sampler: fast_hz | 100 |" in provenance
    assert "**Go 1.27.3: supported.** " in text.split("## C2 ")[1]


def test_html_folds_the_evidence_and_lists_the_sections(run_dir):
    report.write_report(run_dir, ARTICLE)
    page = (run_dir / "report.html").read_text()
    verdicts = pd.read_csv(run_dir / "claims.csv", keep_default_na=False)
    judged = verdicts[verdicts["claim"].isin(ARTICLE.by_id)]
    assert page.count("<details>") == len(judged)
    assert '<td class="v partly">partly</td>' in page and '<a href="#C2">C2</a>' in page
    toc = re.search(r'<nav class="toc">(.*?)</nav>', page).group(1)
    assert re.findall(r'href="#([^"]+)"', toc) == re.findall(r'<h2 id="([^"]+)"', page)


def _open(chromium, path, tmp_path_factory, **kw):
    return browser.open_page(chromium, path, browser.REPORT_SCRIPT, tmp_path_factory.mktemp("chromium"), **kw)


def test_report_html_renders_in_chromium(run_dir, tmp_path_factory):
    """Headless Chromium loads the page: no console error, every figure decoded, every link inside
    the page resolves, the summary's verdicts coloured."""
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium): report.html was not opened")
    report.write_report(run_dir, ARTICLE)
    page = _open(chromium, run_dir / "report.html", tmp_path_factory)
    assert not page.errors, page.errors
    found = page.found
    drawn = sorted((run_dir / "figures").glob("*.png"))
    assert len(found["images"]) == len(drawn) > 0
    assert all(i["complete"] and i["width"] > 0 for i in found["images"]), found["images"]
    assert found["toc"] == ["#" + h for h in found["h2"]] and not found["unresolved"]
    assert found["matrixRows"] == len(ARTICLE.claims) and found["details"] > 0
    assert len(set(found["coloured"])) >= 2   # not-run cells and verdict cells differ
    assert 0 <= found["summaryTop"] < found["matrixBottom"] <= found["screen"]


def test_the_browser_check_sees_a_broken_figure(run_dir, tmp_path_factory):
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium): report.html was not opened")
    report.write_report(run_dir, ARTICLE)
    page = (run_dir / "report.html").read_text()
    broken = run_dir / "broken.html"
    broken.write_text(page.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1))
    found = _open(chromium, broken, tmp_path_factory).found
    assert sum(i["width"] == 0 for i in found["images"]) == 1


def _verdicts(rows):
    """claims.csv rows: (claim, go_version, cgroup_version, verdict)."""
    return pd.DataFrame([{"claim": c, "go_version": g, "cgroup_version": v, "verdict": d, "evidence": "", "figure": ""}
                         for c, g, v, d in rows])


@pytest.mark.parametrize("rows, columns, c4, c11", [
    # one cgroup version: a column per Go version, nothing said of hosts
    ([("C4", "1.27.3", "v1", "refuted"), ("C11", "1.27.3", "v1", "supported")],
     ["1.27.3"], ["refuted"], ["supported"]),
    # both: still a column per Go version; the hosts that judged each claim say where; agreeing hosts one verdict
    ([("C4", "1.27.3", "v1", "refuted"), ("C4", "1.27.3", "v2", "refuted"), ("C11", "1.27.3", "v1", "supported")],
     ["judged on", "1.27.3"], ["v1, v2", "refuted"], ["v1", "supported"]),
    # hosts that disagree: each one's verdict, v1 first; a Go version the claim did not run on stays blank
    ([("C4", "1.27.3", "v2", "refuted"), ("C4", "1.15.15", "v2", "supported"), ("C4", "1.15.15", "v1", "partly"),
      ("C11", "1.27.3", "v1", "supported")],
     ["judged on", "1.15.15", "1.27.3"], ["v1, v2", "v1: partly · v2: supported", "refuted"],
     ["v1", "", "supported"]),
    # cgroup version 2 as a number (older cells.csv) reads v2
    ([("C4", "1.27.3", "1", "refuted"), ("C4", "1.27.3", "2", "supported")],
     ["judged on", "1.27.3"], ["v1, v2", "v1: refuted · v2: supported"], ["", "not run"]),
])
def test_verdict_matrix_gives_each_cgroup_version_where_more_than_one_ran(rows, columns, c4, c11):
    matrix = report.verdict_matrix(_verdicts(rows), ARTICLE).set_index("claim")
    assert list(matrix.columns) == ["in plain words", *columns]
    assert list(matrix.loc["C4", columns]) == c4
    assert list(matrix.loc["C11", columns]) == c11
    versions = [c for c in columns if c != "judged on"]
    assert set(matrix.loc["C1", versions]) == {"not run"}


def test_tool_table_puts_each_configuration_on_v1_and_v2_side_by_side():
    ids = [f"{m}-{v}" for m in ("0", "1") for v in ("v1", "v2")]
    cells = pd.DataFrame({"cell_id": ids, "scenario": "madvdontneed", "go_version": "1.27.3", "status": "ok",
                          "madvdontneed": [i.split("-")[0] for i in ids], "cgroup": [i.split("-")[1] for i in ids],
                          "cgroup_version": [i.split("-")[1] for i in ids], "accel": ["none", "tcg"] * 2,
                          "kernel": ["6.18.44", "6.1.0-57-amd64"] * 2})
    rss = {"0-v1": 132, "0-v2": 133, "1-v1": 4, "1-v2": 8}
    summary = pd.DataFrame({"rss@freeos": [rss[i] * 2**20 for i in ids]}, index=pd.Index(ids, name="cell_id"))
    table = report.tool_rows(summary, cells, {"madvdontneed": ("freeos",)})
    assert list(table.columns[:4]) == ["config", "go_version", "cgroup", "phase"]
    assert list(zip(table["config"], table["cgroup"], table["top / ps"] / 2**20, strict=True)) == [
        ("madvdontneed=0", "v1", 132), ("madvdontneed=0", "v2", 133),
        ("madvdontneed=1", "v1", 4), ("madvdontneed=1", "v2", 8)]
    # the figure shows only the label: the host goes into it
    labels = list(report._host_labelled(table)["config"][:2])
    assert labels == ["cgroup v1, madvdontneed=0", "cgroup v2, madvdontneed=0"]
    one_host = report.tool_rows(summary, cells[cells["cgroup"] == "v1"], {"madvdontneed": ("freeos",)})
    assert "cgroup" not in one_host.columns and list(one_host["config"]) == ["madvdontneed=0", "madvdontneed=1"]


@pytest.mark.parametrize("hosts, says_kernels", [
    ([("v1", "6.18.44", "native")], False),                       # one host: the manifest's kernel and cgroup
    ([("v1", "6.18.44", "native"), ("v2", "6.1.0-57-amd64", "tcg")], True),
])
def test_limitations_name_every_kernel_and_cgroup_version_the_cells_ran_on(hosts, says_kernels):
    cells = pd.DataFrame([{"cgroup_version": v, "kernel": k, "accel": a} for v, k, a in hosts])
    manifest = {"kernel": {"release": "6.18.44"}, "cgroup": {"memory_version": 1}}
    items = report.limitations(manifest, cells)
    expected = ("Kernels and cgroup versions: cgroup v1, kernel 6.18.44, accelerator native; cgroup v2, kernel "
                "6.1.0-57-amd64, accelerator tcg.")
    assert items[0].startswith(expected) == says_kernels
    assert any(i.startswith("Memory cgroup version 1 only") for i in items) != says_kernels


def test_timing_metrics_of_cells_under_tcg_are_marked_in_numbers_and_cells(tmp_path):
    run_dir = write_run(tmp_path)
    cells = pd.read_csv(run_dir / "cells.csv")
    madv = cells["scenario"] == "madvdontneed"
    # The madvdontneed cells ran in a guest under TCG; the others natively.
    cells = cells.assign(cgroup_version=1, kernel="6.18.0", accel="native")
    cells.loc[madv, ["cgroup_version", "kernel", "accel"]] = [2, "6.1.0-57-amd64", "tcg"]
    cells.to_csv(run_dir / "cells.csv", index=False)
    report.write_report(run_dir, ARTICLE)
    summary = pd.read_csv(run_dir / "summary.csv", index_col="cell_id", keep_default_na=False)
    assert set(summary.loc[cells.loc[madv, "cell_id"], "untimed"]) == {"tcg"}
    assert set(summary.loc[cells.loc[~madv, "cell_id"], "untimed"]) == {""}
    md = (run_dir / "report.md").read_text()
    cells_section = md.split("## Cells", 1)[1].split("## Provenance", 1)[0]
    marked = [line for line in cells_section.splitlines() if "not timed (tcg)" in line]
    assert len(marked) == madv.sum() and all("madvdontneed[" in line for line in marked)
    assert "under tcg (qemu's software emulation" in cells_section


def test_numbers_table_marks_only_timing_metrics_of_untimed_configurations():
    by_config = pd.DataFrame({"config": ["a", "b"], "go_version": "1.27.3", "n": 1, "cell_ids": ["a0", "b0"],
                              "peak_rss_median": [2**20] * 2, "peak_rss_min": [2**20] * 2, "peak_rss_max": [2**20] * 2,
                              "wall_s_median": [2.0] * 2, "wall_s_min": [2.0] * 2, "wall_s_max": [2.0] * 2})
    table = report.numbers_table(by_config, ["peak_rss", "wall_s"], {"b0": "tcg"})
    assert not table["peak_rss"].str.endswith(report.UNTIMED_MARK).any()
    assert list(table["wall_s"].str.endswith(report.UNTIMED_MARK)) == [False, True]
