import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

from harness.analyse import summary as analysis
from harness.analyse.summary import split_by_cell
from harness.define.axes import axis_text
from harness.present import plots
from tests.frames import MiB, alloc_release_spec, run_frames


@pytest.fixture
def run():
    specs = [alloc_release_spec(f"a{f}{r}", repeat=r, freeos=f, axes={"touch": "true", "freeos": str(f).lower()})
             for f in (True, False) for r in (0, 1)]
    return run_frames(specs)


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_rss_over_time_has_a_panel_per_configuration_with_phases_and_limit(run):
    cells, samples, events = run
    fig = plots.rss_over_time(split_by_cell(samples, events), cells, "alloc_release: RSS", memory_limit=1536 * MiB)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["freeos=true", "freeos=false"]
    ax = axes[0]
    lines = [line.get_label() for line in ax.get_lines()]
    assert "repeat 0" in lines and "repeat 1" in lines and "memory limit 1536 MiB" in lines
    assert ax.get_ylabel() == "RSS (MiB)"
    assert {"allocate", "release", "idle"} <= {t.get_text().strip() for t in ax.texts}
    rss = next(line for line in ax.get_lines() if line.get_label() == "repeat 0")
    assert max(rss.get_ydata()) == pytest.approx(1034)  # plotted in MiB
    assert fig._suptitle.get_text() == "alloc_release: RSS"


def test_rss_over_time_overlays_one_axis_in_each_panel(run):
    # madvdontneed unset / 0 / 1 in one panel per Go version: here freeos overlaid, touch the panel.
    cells, samples, events = run
    fig = plots.rss_over_time(split_by_cell(samples, events), cells, "t", overlay="freeos")
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["default"]
    lines = [line.get_label() for line in axes[0].get_lines() if not line.get_label().startswith("_")]
    assert lines == ["freeos=true", "freeos=true, r1", "freeos=false", "freeos=false, r1"]


def test_memory_breakdown_draws_rss_heap_and_lazyfree(run):
    cells, samples, events = run
    fig = plots.memory_breakdown(split_by_cell(samples, events), cells.head(1), "gap")
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert {"VmRSS", "heap in use", "heap released", "LazyFree"} <= labels
    assert fig.axes[0].get_ylabel() == "memory (MiB)"


def test_summary_bars_bars_and_error_bars(run):
    cells, samples, events = run
    summary = analysis.summarize(cells, samples, events)
    table = analysis.by_config(summary, cells, ["final_rss", "gc_cycles"])
    fig = plots.summary_bars(table, ["final_rss", "gc_cycles"], x="freeos")
    assert [a.get_title() for a in fig.axes] == ["final_rss", "gc_cycles"]
    assert fig.axes[0].get_ylabel() == "final_rss (MiB)"
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == pytest.approx([14, 1034], abs=1)
    # In the order the configurations ran.
    ran = list(dict.fromkeys(cells["freeos"].map(axis_text)))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ran and len(ran) == 2


def test_summary_bars_with_hue_has_legend(run):
    cells, samples, events = run
    cells = cells.assign(touch=["true", "false", "true", "false"])
    summary = analysis.summarize(cells, samples, events)
    table = analysis.by_config(summary, cells, ["peak_rss"])
    fig = plots.summary_bars(table, "peak_rss", x="freeos", hue="touch")
    # One legend for the figure, below the panels: outside the data.
    assert fig.axes[0].get_legend() is None
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"touch=true", "touch=false"}
    assert len(fig.axes[0].patches) == 4


def test_sizes_throughput_draws_the_markers_it_is_given():
    sizes = pd.DataFrame({"size": [8, 16, 32768, 33792], "pointers": ["false"] * 4,
                          "ops_per_s": [2e7, 1.5e7, 1e5, 9e4], "tiny_allocs": [10, 0, 0, 0],
                          "small_allocs": [10, 10, 10, 0], "large_allocs": [0, 0, 0, 10]})
    fig = plots.sizes_throughput(sizes, "sizes", hue="pointers", markers=((16, "16 B"), (32 * 1024, "32 KiB")))
    texts = {t.get_text().strip() for t in fig.axes[0].texts}
    assert {"16 B", "32 KiB"} <= texts
    assert fig.axes[0].get_lines()[0].get_ydata()[0] == pytest.approx(20)
    # The legend is the figure's, below the panels, not over the points.
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert "pointers=false" in {t.get_text() for t in fig.legends[0].get_texts()}


def test_by_go_version_without_panels_says_so_in_a_visible_panel():
    fig = plots.by_go_version([], "by version")
    assert fig.axes[0].get_visible() and any("several Go versions" in t.get_text() for t in fig.axes[0].texts)


def test_by_go_version_has_one_legend_below_with_one_colour_per_configuration():
    def table(configs):
        return pd.DataFrame([{"config": f"go={go}, {c}", "go_version": go, "peak_rss_median": 100.0 * MiB,
                              "peak_rss_min": 90.0 * MiB, "peak_rss_max": 110.0 * MiB}
                             for go in ("1.15.15", "1.27.3") for c in configs])
    fig = plots.by_go_version([("a", table(["touch=true", "touch=false"]), "peak_rss"),
                               ("b", table(["touch=false"]), "peak_rss")], "by version")
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["touch=true", "touch=false"]
    # touch=false: the same colour in both panels.
    colours = {ax.get_title(): [p.get_facecolor() for p in ax.patches] for ax in fig.axes if ax.get_visible()}
    assert colours["a"][-1] == colours["b"][0]
    assert fig.axes[0].get_ylabel() == "peak_rss (MiB)" and fig.axes[0].get_xlabel() == "Go version"


def test_a_legend_of_many_configurations_grows_the_figure_and_keeps_the_panels():
    # 45 configurations (a quick run over --matrix gogc=50,100,300) once lifted the panels' bottom
    # above their top: "bottom cannot be >= top".
    table = pd.DataFrame([{"config": f"go={go}, gogc={g}, memory={m}MiB, a-long-axis-name=value-{g}",
                           "go_version": go, "peak_rss_median": 100.0 * MiB, "peak_rss_min": 90.0 * MiB,
                           "peak_rss_max": 110.0 * MiB}
                          for go in ("1.15.15", "1.27.3") for g in range(15) for m in (64, 128, 256)])
    fig = plots.by_go_version([("a", table, "peak_rss")], "by version")
    panel = fig.axes[0].get_position()
    assert len(fig.legends[0].get_texts()) == 45
    assert fig.get_figheight() * panel.height > 1.5   # inches of panel left, whatever the legend
    assert plots.to_png(fig).startswith(b"\x89PNG")


def test_empty_inputs_still_draw():
    empty = pd.DataFrame(columns=analysis.SAMPLE_COLUMNS)
    fig = plots.rss_over_time(split_by_cell(empty, pd.DataFrame(columns=analysis.EVENT_COLUMNS)),
                              pd.DataFrame(columns=["cell_id"]), "nothing")
    assert any("no vm_rss" in t.get_text() for t in fig.axes[0].texts)


def test_phase_names_do_not_overprint_when_phases_are_milliseconds_apart():
    events = pd.DataFrame([("c", t, "phase", name, np.nan, "") for t, name in
                           ((0.0, "baseline"), (0.5, "allocate"), (0.501, "hold"), (0.502, "release"),
                            (100.0, "idle"))] + [("c", 140.0, "end", "w", np.nan, "{}")],
                          columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", t, "proc", "vm_rss", 1.0) for t in (0.0, 140.0)], columns=analysis.SAMPLE_COLUMNS)
    cells = pd.DataFrame([{"cell_id": "c", "scenario": "s"}])
    fig = plots.rss_over_time(split_by_cell(samples, events), cells, "t")
    named = sorted(t.get_text().strip() for t in fig.axes[0].texts)
    assert named == ["idle", "release"]   # of the cluster at 0-0.5 s the last is named: the phase then on
    assert len(fig.axes[0].get_lines()) >= 5 + 1   # every boundary still drawn, plus the RSS line


def test_summary_bars_keep_configurations_apart_when_another_axis_varies():
    # gogc added with --matrix to a scenario whose figure is drawn by freeos: four configurations.
    table = pd.DataFrame({"freeos": ["false", "true", "false", "true"], "gogc": ["50", "50", "300", "300"],
                          "config": ["freeos=false, gogc=50", "freeos=true, gogc=50",
                                     "freeos=false, gogc=300", "freeos=true, gogc=300"],
                          "gc_cycles_median": [1.0, 2.0, 3.0, 4.0], "gc_cycles_min": [1.0, 2.0, 3.0, 4.0],
                          "gc_cycles_max": [1.0, 2.0, 3.0, 4.0]})
    fig = plots.summary_bars(table, "gc_cycles", x="freeos")
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["gogc=50", "gogc=300"]


def test_gcs_and_kills_are_marked_and_the_limit_is_drawn_where_bars_reach_it():
    events = pd.DataFrame([("c", 1.0, "phase", "run", np.nan, ""),
                           ("c", 2.0, "gc", "gc1", 1.0, json.dumps({"forced": True})),
                           ("c", 3.0, "gc", "gc2", 1.0, json.dumps({"forced": False}))],
                          columns=analysis.EVENT_COLUMNS)
    samples = pd.DataFrame([("c", t, "proc", "vm_rss", 100.0 * MiB) for t in (0.0, 4.0)],
                           columns=analysis.SAMPLE_COLUMNS)
    cells = pd.DataFrame([{"cell_id": "c", "scenario": "s", "oom_killed": True}])
    fig = plots.rss_over_time(split_by_cell(samples, events), cells, "t", memory_limit=128 * MiB)
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"runtime.GC() or FreeOSMemory (gctrace: forced)",
            "GC the runtime started: heap goal, or the periodic GC 2 min after the last", "OOM kill",
            "memory limit 128 MiB"} <= labels
    table = pd.DataFrame({"x": ["a"], "config": ["x=a"], "peak_rss_median": [100.0 * MiB],
                          "peak_rss_min": [100.0 * MiB], "peak_rss_max": [100.0 * MiB]})
    near = plots.summary_bars(table, "peak_rss", x="x", memory_limit=128 * MiB)
    far = plots.summary_bars(table, "peak_rss", x="x", memory_limit=1024 * MiB)
    assert any(line.get_label() == "memory limit 128 MiB" for line in near.axes[0].get_lines())
    assert not far.legends   # a limit ten times the bars would squash them: left out


def test_retention_bars_draw_the_goal_the_verdict_reads():
    table = pd.DataFrame([{"go_version": "1.21.13", "x": gcs, "hue": "gomemlimit=off", "retained": kept * MiB,
                           "goal": 141 * MiB, "limit_goal": np.nan} for gcs, kept in (("1", 640), ("2", 141))])
    fig = plots.retention_bars(table, "gcs", "t")
    assert sorted(p.get_height() for p in fig.axes[0].patches) == pytest.approx([141, 640])
    goals = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("retention goal")]
    assert list(goals[0].get_ydata()) == pytest.approx([141, 141])
    assert fig.axes[0].get_ylabel() == "heap kept, HeapSys − HeapReleased (MiB)"


def test_tool_views_of_a_run_where_no_phase_ended_is_an_empty_figure():
    """Every cell OOM-killed before its first phase ended: the tool table is empty, the figure says so."""
    from harness.analyse.views import TOOL_VIEWS
    from harness.present.report import tool_rows

    cells = pd.DataFrame({"cell_id": ["a[r0]"], "scenario": ["s"], "go_version": ["1.27.3"], "status": ["oom_killed"]})
    summary = pd.DataFrame(index=pd.Index(["a[r0]"], name="cell_id"))
    table = tool_rows(summary, cells, {"s": ("idle",)})
    assert table.empty
    fig = plots.tool_views(table, [v.name for v in TOOL_VIEWS], "t")
    assert [t.get_text() for t in fig.axes[0].texts] == ["no per-phase readings in this run"]


def test_each_configuration_of_the_by_version_figure_looks_unlike_every_other():
    """Its one legend names every configuration of every panel (24 in the reference run): ten colours
    repeated made a Green Tea bar look like a FreeOSMemory one."""
    styles = [plots._config_style(i) for i in range(80)]
    assert len({(s["color"], s["hatch"]) for s in styles}) == 80
