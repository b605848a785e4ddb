"""A study's declarations are checked when it is built: every figure a claim declares is drawn or
refused, and a scenario's claims come from the claims alone."""

import dataclasses

import pytest

from harness.analyse.claims import Study, StudyError
from harness.define.project import SCENARIOS_DIR
from harness.define.scenario import discover, load
from harness.drive import plan
from harness.present import report
from harness.present.figures import FIGURE_KINDS, check_figures
from harness.studies.article import ARTICLE
from tests.test_report import write_run

C2 = ARTICLE.by_id["C2"]


def study_with(claim=C2, **changes) -> Study:
    return dataclasses.replace(ARTICLE, **{"claims": (claim,), "not_tested": (), "tool_phases": {}, **changes})


def with_figure(**changes):
    return dataclasses.replace(C2, figure=dataclasses.replace(C2.figure, **changes))


def errors(make) -> list[str]:
    with pytest.raises(StudyError) as info:
        check_figures(make())
    return info.value.errors


def test_the_article_loads_and_every_figure_can_be_drawn():
    check_figures(ARTICLE)
    assert {c.figure.kind for c in ARTICLE.claims} <= set(FIGURE_KINDS)
    assert len({c.figure.path for c in ARTICLE.claims}) == len(ARTICLE.claims)


@pytest.mark.parametrize("change, expected", [
    (dict(scenario="gogc_sweep"), "claim C2: figure alloc_release_rss: scenario 'gogc_sweep' is not one the claim "
                                  "reads (valid: alloc_release)"),
    (dict(kind="bars", metrics=("peak_rss", "peak_rsss"), x="touch"),
     "claim C2: figure alloc_release_rss: metrics: 'peak_rsss' is not a summary metric"),
    (dict(series=("proc", "vm_rsss")), "claim C2: figure alloc_release_rss: series: ('proc', 'vm_rsss') is not a "
                                       "sampled series"),
])
def test_a_figure_on_what_does_not_exist_is_refused_when_the_study_is_built(change, expected):
    with pytest.raises(StudyError) as info:
        study_with(with_figure(**change))
    assert any(expected in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize("change, expected", [
    (dict(kind="heatmap"), "figure alloc_release_rss: unknown kind 'heatmap' (valid: rss-over-time, breakdown, bars, "
                           "sizes, retention, huge-pages, memory-high)"),
    (dict(also=("gogc_sweep",)), "figure alloc_release_rss: scenario 'gogc_sweep' is not one the claim reads"),
    (dict(kind="bars"), "figure alloc_release_rss: a bars figure needs metrics"),
    (dict(x="gogc"), "figure alloc_release_rss: a rss-over-time figure does not read x"),
])
def test_a_figure_its_kind_cannot_draw_is_refused(change, expected):
    found = errors(lambda: study_with(with_figure(**change)))
    assert any(expected in e for e in found), found


def test_a_study_that_cannot_be_drawn_stops_the_report(tmp_path):
    """Evaluation refuses it too: a study built without the article's own check is not drawn half."""
    run_dir = write_run(tmp_path)
    bad = study_with(with_figure(kind="heatmap"))
    with pytest.raises(StudyError, match="unknown kind 'heatmap'"):
        report.write_report(run_dir, bad)
    assert not (run_dir / "report.md").exists()


def test_two_claims_cannot_draw_one_file_and_tool_phases_read_a_claims_scenario():
    c10 = dataclasses.replace(ARTICLE.by_id["C10"], figure=C2.figure)
    with pytest.raises(StudyError, match="figure alloc_release_rss is declared by two claims"):
        dataclasses.replace(ARTICLE, claims=(C2, c10))
    with pytest.raises(StudyError, match="tool_phases: scenario 'gogc_sweep' is read by none of its claims"):
        study_with(tool_phases={"gogc_sweep": ("load",)})


def test_unknown_claim_metrics_are_refused():
    with pytest.raises(StudyError, match="claim C2: metrics: 'lazyfrees@idle' is not a summary metric"):
        study_with(dataclasses.replace(C2, metrics=("peak_rss", "lazyfrees@idle")))


def test_a_scenarios_claims_are_the_claims_that_read_it():
    assert ARTICLE.claims_reading("oom_pressure") == ("C4", "C11")   # C12 reads cgroup_limit only
    assert ARTICLE.claims_reading("idle_scavenger") == ("C1", "C6", "C7", "C10")
    scenario = load(SCENARIOS_DIR / "gogc_sweep.toml")
    assert plan.claims_of(scenario) == ("C8", "X1")


def test_every_scenario_a_claim_reads_is_a_scenario_file():
    files = {p.stem for p in discover()}
    missing = {c.id: [s for s in c.scenarios if s not in files] for c in ARTICLE.claims}
    assert not {k: v for k, v in missing.items() if v}, missing


def test_the_drivers_report_the_article():
    """`goreclaim run`, `goreclaim report` and the pytest plugin hand plan.STUDY to the report."""
    assert plan.STUDY is ARTICLE
