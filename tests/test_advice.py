"""goreclaim advise, pure parts: classes, the Pareto front, the choice by objective, the margin,
"inconclusive", the bisection of the limit, the grid and budget. Hand-made frames; each test
flips one outcome."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from harness.analyse import advice
from harness.define.advice_grid import (
    AUTOMEMLIMIT,
    BASELINE,
    DEFAULT_GRIDS,
    DEPLOYED,
    Grid,
    cell_id,
    grid_cells,
    parse_values,
)
from harness.define.axes import AXES, contributions
from harness.define.errors import ScenarioError
from harness.define.scenario import resolve_path
from harness.define.units import UnitError
from harness.drive.advise import fit, make_plan
from harness.drive.plan import load_scenario
from harness.present.advice import (
    advice_document,
    build_blocks,
    configuration_table,
    kubernetes_env,
    memory_qos,
    summary_lines,
)

MiB = 1 << 20
LIMIT = 512 * MiB


def frames(configs: dict[tuple[str, str], list[dict]], limit: int = LIMIT,
           memory_high: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """cells.csv and summary frames from {(gogc, gomemlimit): [one dict per repeat]}; each repeat
    dict may set status, oom, ws (MiB), gc (share), limiter, tput. A share (90%) is of memory_high
    where given, a share of memory.max (90%max) of the limit, as the gomemlimit axis resolves them."""
    cells, summary = [], []
    for (gogc, gomemlimit), repeats in configs.items():
        for r, m in enumerate(repeats):
            cid = f"s[gogc={gogc},gomemlimit={gomemlimit},memory={limit // MiB}MiB,r{r}]"
            of_max = gomemlimit.endswith("%max")
            share = int(gomemlimit.removesuffix("max").rstrip("%")) / 100 if gomemlimit != "off" else None
            of = limit if of_max or memory_high is None else memory_high
            cells.append({"cell_id": cid, "scenario": "s", "workload": "small-churn", "gogc": gogc,
                          "gomemlimit": gomemlimit, "gomemlimit_bytes": int(share * of) if share else None,
                          "memory_high_bytes": memory_high,
                          "memory_limit_bytes": limit, "go_version": "1.27.3", "repeat": r,
                          "status": m.get("status", "oom_killed" if m.get("oom") else "ok"),
                          "oom_killed": bool(m.get("oom"))})
            summary.append({"cell_id": cid, "peak_working_set": m.get("ws", 100) * MiB,
                            "gc_cpu_share": m.get("gc", 0.05), "limiter_engaged": m.get("limiter", 0.0),
                            "throughput": m.get("tput", 1e6),
                            # a server under load: p99 in ms, requests/s, failed requests
                            "load_p99_ns": m.get("p99", float("nan")) * 1e6, "load_rps": m.get("rps", float("nan")),
                            "load_errors": m.get("err", 0.0),
                            # cgroup v2: memory.events high and PSI some avg10
                            "memory_high_events": m.get("high", 0.0), "psi_some_avg10": m.get("psi", 0.0)})
    return pd.DataFrame(cells), pd.DataFrame(summary).set_index("cell_id")


def table_of(configs, performance="throughput", headroom=advice.DEFAULT_HEADROOM):
    cells, summary = frames(configs)
    return advice.configurations(cells, summary, performance, headroom)


def klass(table, gogc, gomemlimit):
    return table[(table["gogc"] == gogc) & (table["gomemlimit"] == gomemlimit)]["class"].iloc[0]


# ---------------------------------------------------------------------------------------- classes

@pytest.mark.parametrize("repeat, expected", [
    ({}, "healthy"),
    ({"oom": True}, "oom_killed"),
    ({"status": "timeout"}, "failed"),
    ({"status": "exited"}, "failed"),
    ({"limiter": 1.0}, "death_spiral"),
    ({"gc": 0.55}, "death_spiral"),
    ({"gc": 0.45}, "healthy"),
    ({"ws": 470}, "over_headroom"),       # 92% of 512 MiB
    ({"ws": 450}, "healthy"),             # 88%
    ({"high": 12, "psi": 0.3}, "throttled"),
    ({"high": 0, "psi": 0.3}, "healthy"),  # stalls without a memory.high crossed are not throttling
])
def test_each_class_from_one_bad_repeat(repeat, expected):
    table = table_of({("100", "off"): [{}, repeat]})
    assert klass(table, "100", "off") == expected
    assert (table["n"] == 2).all()


def test_throttled_ranks_between_death_spiral_and_over_headroom_and_says_how_often():
    assert list(advice.CLASSES).index("throttled") == list(advice.CLASSES).index("death_spiral") + 1
    assert list(advice.CLASSES).index("over_headroom") == list(advice.CLASSES).index("throttled") + 1
    assert klass(table_of({("100", "off"): [{"limiter": 1.0, "high": 5}]}), "100", "off") == "death_spiral"
    table = table_of({("100", "off"): [{"high": 5, "ws": 500, "psi": 0.25}, {"high": 40}]})
    assert klass(table, "100", "off") == "throttled"
    assert table["why"].iloc[0] == "up to 40 memory.high events in 2 of 2; PSI some avg10 up to 25%"
    assert table["high_events_max"].iloc[0] == 40


def test_severity_order_and_headroom_option():
    table = table_of({("100", "off"): [{"oom": True, "limiter": 1.0, "ws": 500}]})
    assert klass(table, "100", "off") == "oom_killed"
    table = table_of({("100", "off"): [{"ws": 420}]}, headroom=0.8)   # 82% > 80%
    assert klass(table, "100", "off") == "over_headroom"
    assert "82.0%" in table["why"].iloc[0]


# ------------------------------------------------------------------------- front and objectives

GRID = {
    ("50", "off"): [{"ws": 60, "gc": 0.10, "tput": 4e5}, {"ws": 62, "gc": 0.11, "tput": 4.1e5}],
    ("100", "off"): [{"ws": 100, "gc": 0.06, "tput": 6e5}, {"ws": 104, "gc": 0.065, "tput": 6.1e5}],
    ("100", "80%"): [{"ws": 110, "gc": 0.07, "tput": 5.0e5}, {"ws": 112, "gc": 0.075, "tput": 5.1e5}],  # dominated
    ("off", "80%"): [{"ws": 400, "gc": 0.01, "tput": 9e5}, {"ws": 405, "gc": 0.012, "tput": 9.1e5}],
    ("off", "95%"): [{"ws": 480, "gc": 0.01, "tput": 9.5e5}, {"ws": 482, "gc": 0.01, "tput": 9.6e5}],  # over
}


def test_front_leaves_out_dominated_and_unhealthy():
    table = table_of(GRID)
    front = advice.pareto_front(table, advice.PERFORMANCE["throughput"])
    named = {(r["gogc"], r["gomemlimit"]) for _, r in table[front].iterrows()}
    assert named == {("50", "off"), ("100", "off"), ("off", "80%")}
    assert klass(table, "off", "95%") == "over_headroom"


@pytest.mark.parametrize("objective, expected", [
    ("memory", ("50", "off")),
    ("throughput", ("off", "80%")),       # the over-headroom one is faster but never chosen
    ("balanced", ("100", "off")),
])
def test_each_objective_flips_the_choice(objective, expected):
    choice = advice.choose(table_of(GRID), objective, advice.PERFORMANCE["throughput"])
    assert choice.status == "recommended", choice.why
    assert (choice.row["gogc"], choice.row["gomemlimit"]) == expected


def test_throughput_without_a_performance_figure_reads_gc_cpu():
    table = table_of(GRID, performance=None)
    choice = advice.choose(table, "throughput", None)
    assert (choice.row["gogc"], choice.row["gomemlimit"]) == ("off", "80%")  # least GC CPU among healthy


def test_overlapping_repeats_are_inconclusive_and_one_repeat_too():
    noisy = {("50", "off"): [{"tput": 4e5}, {"tput": 9e5}], ("100", "off"): [{"tput": 5e5}, {"tput": 8e5}]}
    choice = advice.choose(table_of(noisy), "throughput", advice.PERFORMANCE["throughput"])
    assert choice.status == "inconclusive" and "overlap" in choice.why
    assert choice.tied == ["GOGC=100, GOMEMLIMIT=off"]
    single = {("50", "off"): [{"tput": 4e5}], ("100", "off"): [{"tput": 8e5}]}
    choice = advice.choose(table_of(single), "throughput", advice.PERFORMANCE["throughput"])
    assert choice.status == "inconclusive" and "one repeat" in choice.why
    apart = {("50", "off"): [{"tput": 4e5}, {"tput": 4.2e5}], ("100", "off"): [{"tput": 8e5}, {"tput": 8.1e5}]}
    choice = advice.choose(table_of(apart), "throughput", advice.PERFORMANCE["throughput"])
    assert choice.status == "recommended" and choice.tied == []


# A server under hey: GOGC=off,80% has the least GC CPU but the worst tail; GOGC=200 the best tail and
# requests/s; GOGC=50 the smallest working set.
SERVER = {
    ("50", "off"): [{"ws": 60, "gc": 0.10, "p99": 9.0, "rps": 8000}, {"ws": 61, "gc": 0.10, "p99": 9.5, "rps": 8100}],
    ("200", "off"): [{"ws": 150, "gc": 0.04, "p99": 2.0, "rps": 12000}, {"ws": 152, "gc": 0.04, "p99": 2.2,
                                                                          "rps": 12100}],
    ("off", "80%"): [{"ws": 380, "gc": 0.01, "p99": 6.0, "rps": 10000}, {"ws": 385, "gc": 0.01, "p99": 6.1,
                                                                          "rps": 10050}],
}
LATENCY = advice.PERFORMANCE["load_p99_ns"]


def test_latency_objective_reads_p99_and_requests_not_gc_cpu():
    table = table_of(SERVER, performance="load_p99_ns")
    choice = advice.choose(table, "latency", LATENCY)
    assert choice.status == "recommended", choice.why
    assert (choice.row["gogc"], choice.row["gomemlimit"]) == ("200", "off")
    assert choice.row["rps_median"] == 12050
    # Dominated on working set, p99 and requests/s by none: GOGC=off,80% leaves the front although its GC CPU is
    # the least (GC CPU is not a measure of a server under load).
    front = advice.pareto_front(table, LATENCY)
    assert {(r["gogc"], r["gomemlimit"]) for _, r in table[front].iterrows()} == {("50", "off"), ("200", "off")}
    assert advice.choose(table, "memory", LATENCY).row["gogc"] == "50"


def test_latency_repeats_that_overlap_are_inconclusive():
    noisy = {("50", "off"): [{"p99": 2.0, "rps": 9000}, {"p99": 8.0, "rps": 12000}],
             ("100", "off"): [{"p99": 3.0, "rps": 9500}, {"p99": 7.0, "rps": 11000}]}
    choice = advice.choose(table_of(noisy, performance="load_p99_ns"), "latency", LATENCY)
    assert choice.status == "inconclusive" and "overlap" in choice.why


def test_failed_requests_make_a_configuration_failed():
    table = table_of({("100", "off"): [{"p99": 2.0, "rps": 9000}, {"p99": 2.0, "rps": 9000, "err": 17}]},
                     performance="load_p99_ns")
    assert klass(table, "100", "off") == "failed"
    assert "17 failed requests under load in 1 of 2" in table["why"].iloc[0]


def test_a_server_with_a_load_is_judged_by_its_latency():
    from harness.define.scenario import program_scenario
    from harness.define.workloads import Program

    server = Program(kind="binary", name="srv", binary="/bin/true", ready="tcp:{port}", load=("hey", "x"))
    assert advice.performance_for(program_scenario(server)) == "load_p99_ns"
    quiet = Program(kind="binary", name="srv", binary="/bin/true", ready="tcp:{port}", idle_s=1.0)
    assert advice.performance_for(program_scenario(quiet)) is None


def test_latency_advice_shows_p99_and_requests():
    cells, summary = frames(SERVER)
    result = advice.advise(cells, summary, LIMIT, "latency", "load_p99_ns")
    (choice,) = result.choices
    lines = summary_lines(choice, result)
    assert "latency p99 2.10 ms" in lines[1] and "requests/s 12.1k ops/s" in lines[1], lines
    doc = advice_document(result, {})
    assert doc["recommendations"][0]["load_rps"] == 12050


def test_no_healthy_configuration_is_no_recommendation():
    table = table_of({("100", "off"): [{"oom": True}], ("off", "90%"): [{"ws": 500}]})
    choice = advice.choose(table, "balanced", None)
    assert choice.status == "none healthy" and choice.row is None and choice.env == {}


def test_nearest_unhealthy_neighbour_and_environment():
    table = table_of(GRID)
    choice = advice.choose(table, "throughput", advice.PERFORMANCE["throughput"])
    assert choice.nearest_unhealthy == [{"config": "GOGC=off, GOMEMLIMIT=95%", "class": "over_headroom",
                                         "why": table[table["class"] != "healthy"]["why"].iloc[0], "steps": 1}]
    assert choice.env == {"GOGC": "off", "GOMEMLIMIT": str(int(0.8 * LIMIT))}
    snippet = kubernetes_env(choice, LIMIT)
    assert f'value: "{int(0.8 * LIMIT)}"' in snippet and "memory: 512Mi" in snippet


@pytest.mark.parametrize("share, factor, requests", [(0.8, 0.8, 0), (0.95, 0.9, LIMIT // 2), (0.9, 0.9, 0)])
def test_memory_qos_gives_the_memory_high_the_run_used(share, factor, requests):
    # MemoryQoS: memory.high = requests + memoryThrottlingFactor × (limit − requests)
    got_factor, got_request = memory_qos(LIMIT, int(share * LIMIT))
    assert (got_factor, got_request) == (factor, requests)
    assert abs(got_request + got_factor * (LIMIT - got_request) - share * LIMIT) < MiB


def test_with_memory_high_the_snippet_and_the_advice_name_it():
    table = table_of(GRID)
    choice = advice.choose(table, "throughput", advice.PERFORMANCE["throughput"])
    snippet = kubernetes_env(choice, LIMIT, int(0.8 * LIMIT))
    assert "80% of the 409.6MiB memory.high" in snippet and "memoryThrottlingFactor: 0.8" in snippet
    assert "MemoryQoS: true" in snippet and "requests:\n    memory: 0" in snippet
    cells, summary = frames(GRID)
    result = advice.advise(cells, summary, LIMIT, "throughput", "throughput")
    manifest = {"advise": {"target": "s", "memory_high": "80%", "memory_high_bytes": int(0.8 * LIMIT)}}
    text = "\n".join(str(b.content) for b in build_blocks(result, manifest, cells))
    assert "shares of memory.high" in text and "memory.high 80% of the limit" in text and "throttled:" in text


# What operators deploy beside a memory.high: GOMEMLIMIT at automemlimit's 90% of memory.max.
HIGH = int(0.8 * LIMIT)      # 409.6 MiB
DEPLOYED_GRID = {
    ("100", "off"): [{"ws": 150, "gc": 0.06}, {"ws": 152, "gc": 0.06}],
    ("off", "90%"): [{"ws": 360, "gc": 0.02}, {"ws": 362, "gc": 0.02}],          # 368.6 MiB: below memory.high
    ("off", AUTOMEMLIMIT): [{"ws": 455, "gc": 0.02, "high": 1234, "psi": 0.2},  # 460.8 MiB: above it
                            {"ws": 456, "gc": 0.02, "high": 977}],
    ("100", AUTOMEMLIMIT): [{"ws": 150, "gc": 0.06}, {"ws": 151, "gc": 0.06}],
}


def _memory_high_advice(configs):
    cells, summary = frames(configs, memory_high=HIGH)
    result = advice.advise(cells, summary, LIMIT, "memory", "throughput")
    manifest = {"advise": {"target": "s", "memory_high": "80%", "memory_high_bytes": HIGH}}
    return result, "\n".join(str(b.content) for b in build_blocks(result, manifest, cells))


def test_automemlimit_above_memory_high_is_throttled_and_a_limit_below_it_is_healthy():
    result, text = _memory_high_advice(DEPLOYED_GRID)
    table = result.table
    assert klass(table, "off", AUTOMEMLIMIT) == "throttled" and klass(table, "off", "90%") == "healthy"
    [finding] = advice.memory_high_findings(table, LIMIT, HIGH)
    assert [(r["gogc"], r["gomemlimit"], r["high_events_max"]) for r in finding.throttled] == [
        ("off", AUTOMEMLIMIT, 1234)]
    # GOGC=100 never reaches its limit: healthy, but its GOMEMLIMIT is not below memory.high
    assert [(r["gogc"], r["gomemlimit"]) for r in finding.healthy_below] == [("off", "90%")]
    # beside the throttled GOGC=off, only GOGC=off below memory.high is named, the largest limit first
    wider = {**DEPLOYED_GRID, ("100", "90%"): [{"ws": 150}], ("off", "80%"): [{"ws": 320}]}
    [finding] = advice.memory_high_findings(_memory_high_advice(wider)[0].table, LIMIT, HIGH)
    assert [(r["gogc"], r["gomemlimit"]) for r in finding.healthy_below] == [("off", "90%"), ("off", "80%")]
    assert ("throttled: GOGC=off, GOMEMLIMIT=90%max (460.8MiB, 90% of memory.max, as automemlimit sets it): "
            "up to 1234 memory.high events in 2 of 2") in text
    assert "GOMEMLIMIT 460.8MiB is above memory.high 409.6MiB, throughput 1M ops/s" in text
    assert "healthy: GOGC=off, GOMEMLIMIT=90% = 368.6MiB, below memory.high 409.6MiB: 0 memory.high events" in text
    assert "set GOMEMLIMIT below memory.high" in text
    assert "90% (368.6MiB)" in set(configuration_table(result)["GOMEMLIMIT"])
    choice = result.choices[0]     # the smallest working set among those whose GOMEMLIMIT is below memory.high
    assert choice.row is not None and (choice.row["gogc"], choice.row["gomemlimit"]) == ("off", "90%")
    assert choice.passed_over == ["GOGC=100, GOMEMLIMIT=off", "GOGC=100, GOMEMLIMIT=90%max (460.8MiB, 90% of "
                                  "memory.max, as automemlimit sets it)"]
    assert "Healthy here but passed over: GOGC=100, GOMEMLIMIT=off; " in text
    assert ". With a memory.high, the recommendation is among the healthy configurations whose GOMEMLIMIT" in text


def test_automemlimit_that_stays_below_memory_high_is_healthy_and_named_as_such():
    quiet = {**DEPLOYED_GRID, ("off", AUTOMEMLIMIT): [{"ws": 100, "gc": 0.01}, {"ws": 101, "gc": 0.01}]}
    result, text = _memory_high_advice(quiet)
    assert klass(result.table, "off", AUTOMEMLIMIT) == "healthy"
    assert "throttled: GOGC" not in text and "set GOMEMLIMIT below memory.high" not in text
    choice = result.choices[0]     # the smallest working set, but above memory.high: passed over
    assert choice.row is not None and choice.row["gomemlimit"] == "90%"
    assert "GOGC=off, GOMEMLIMIT=90%max (460.8MiB, 90% of memory.max, as automemlimit sets it)" in choice.passed_over
    # alone, it is recommended: nothing healthy keeps the heap below memory.high
    alone = result.table[result.table["gomemlimit"] == AUTOMEMLIMIT]
    choice = advice.choose(alone, "memory")
    assert choice.row is not None and choice.row["gogc"] == "off" and choice.passed_over == []
    assert choice.env["GOMEMLIMIT"] == str(int(0.9 * LIMIT))
    assert "# 90%max (460.8MiB, 90% of memory.max, as automemlimit sets it)" in kubernetes_env(choice, LIMIT, HIGH)


def test_contexts_get_one_recommendation_each():
    cells, summary = frames(GRID)
    other = cells.copy()
    other["go_version"] = "1.21.13"
    other["cell_id"] = other["cell_id"] + "-121"
    summary2 = summary.copy()
    summary2.index = summary2.index + "-121"
    summary2.loc[summary2.index.str.startswith("s[gogc=50,"), "throughput"] = 2e6   # 1.21: GOGC=50 is fastest
    result = advice.advise(pd.concat([cells, other]), pd.concat([summary, summary2]), LIMIT, "throughput",
                           "throughput")
    picked = {c.context: (c.row["gogc"], c.row["gomemlimit"]) for c in result.choices}
    assert picked == {"go_version=1.27.3": ("off", "80%"), "go_version=1.21.13": ("50", "off")}


def test_advice_document_and_blocks():
    cells, summary = frames(GRID)
    result = advice.advise(cells, summary, LIMIT, "memory", "throughput")
    doc = advice_document(result, {"host": {"hostname": "h"}, "kernel": {"release": "6.18"}})
    assert doc["recommendations"][0]["gogc"] == "50" and doc["recommendations"][0]["status"] == "recommended"
    assert len(doc["configurations"]) == len(GRID)
    text = "\n".join(str(b.content) for b in build_blocks(result, {"advise": {"target": "s"}}, cells))
    assert "GOGC=50" in text and "over headroom" in text
    lines = summary_lines(result.choices[0], result)
    assert lines[0].startswith("GOGC=50") and "peak working set 61 MiB" in lines[1]


# ------------------------------------------------------------------------------ the smallest limit

def test_bisection_narrows_to_the_smallest_healthy_limit():
    healthy_from = 300 * MiB   # the program is healthy from 300 MiB up
    probes = {LIMIT: True}
    while (limit := advice.next_memory_limit(probes, LIMIT)) is not None:
        assert limit % MiB == 0 and limit not in probes
        probes[limit] = limit >= healthy_from
    found = advice.smallest_healthy(probes)
    assert found >= healthy_from and found - healthy_from <= max(8 * MiB, found // 20) + 16 * MiB
    assert len(probes) - 1 <= advice.MIN_MEMORY_STEPS


def test_bisection_needs_a_healthy_start():
    assert advice.next_memory_limit({LIMIT: False}, LIMIT) is None


# ---------------------------------------------------------------------------------- grid and budget

def test_grid_leaves_out_gogc_off_without_a_limit_and_runs_the_defaults_first():
    grid = Grid(("50", "100", "off"), ("off", "90%"), 2)
    assert grid.configs()[0] == BASELINE
    assert ("off", "off") not in grid.configs() and len(grid.configs()) == 5
    assert grid.n_cells == 10
    assert Grid.from_json(grid.to_json()) == grid


def test_default_grids_shrink_and_all_start_with_the_same_cell():
    sizes = [g.n_cells for g in DEFAULT_GRIDS]
    assert sizes == sorted(sizes, reverse=True)
    scenario = load_scenario(resolve_path("gogc_sweep"))
    firsts = {grid_cells(scenario, g, "512MiB", quick=True)[0].cell_id for g in DEFAULT_GRIDS}
    assert firsts == {"gogc_sweep[gogc=100,gomemlimit=off,memory=512MiB,r0]"}


def test_grid_cells_are_interleaved_and_named_by_the_advise_axes():
    scenario = load_scenario(resolve_path("gogc_sweep"))
    cells = grid_cells(scenario, Grid(("50", "100"), ("off", "80%"), 2), "768MiB", quick=True)
    assert [c.repeat for c in cells] == [0] * 4 + [1] * 4
    assert len({c.cell_id for c in cells}) == 8
    assert all("memory=768MiB" in c.cell_id for c in cells)
    eighty = [c for c in cells if c.axis("gomemlimit") == "80%"][0]
    assert eighty.gomemlimit_bytes == int(0.8 * 768 * MiB) and eighty.memory_limit_bytes == 768 * MiB
    assert cell_id(eighty, {"gogc"}) == f"gogc_sweep[gogc={eighty.gogc},r{eighty.repeat}]"


def test_values_must_be_shares_or_off():
    assert parse_values("gomemlimit", "90%,off,70%", "--gomemlimit") == ("70%", "90%", "off")
    assert parse_values("gomemlimit", "90%MAX,off", "--gomemlimit") == ("90%max", "off")
    with pytest.raises(ScenarioError, match="share of the memory limit"):
        parse_values("gomemlimit", "300MiB", "--gomemlimit")
    with pytest.raises(ScenarioError, match="--gogc"):
        parse_values("gogc", "50,,x", "--gogc")


def _args(**kw) -> argparse.Namespace:
    base = dict(target="gogc_sweep", memory="768MiB", budget="10m", matrix=[], go=None, gogc=None, gomemlimit=None,
                headroom=None, repeats=None, objective="balanced", backend=None, quick=False, find_min_memory=False)
    return argparse.Namespace(**{**base, **kw})


def test_budget_picks_the_widest_grid_that_fits():
    plan = make_plan(_args(), None)
    assert plan.performance == "throughput"
    grid, estimate, fits = fit(plan, 13.0)         # 57 cells × 13 s > 10 min; 38 × 13 s fits
    assert fits and grid == DEFAULT_GRIDS[1] and estimate == 38 * 13.0
    grid, _, fits = fit(plan, 1000.0)
    assert not fits and grid == DEFAULT_GRIDS[-1]
    plan = make_plan(_args(find_min_memory=True), None)
    grid, estimate, _ = fit(plan, 13.0)            # the bisection's cells count too
    assert grid == DEFAULT_GRIDS[2] and estimate == (11 * 2 + advice.MIN_MEMORY_STEPS * 2) * 13.0


def test_a_given_grid_keeps_its_values_and_fits_repeats():
    plan = make_plan(_args(gogc="100,off", gomemlimit="off,90%"), None)
    assert [g.repeats for g in plan.candidates] == [3, 2, 1]
    assert {g.gogc for g in plan.candidates} == {("100", "off")}
    plan = make_plan(_args(gogc="100", repeats=4), None)
    assert [g.repeats for g in plan.candidates] == [4]


def test_memory_high_runs_every_cell_with_it_and_gomemlimit_shares_are_of_it():
    plan = make_plan(_args(memory_high="80%", thp="always", swap="0"), None)
    cells = plan.cells(plan.candidates[0])
    assert all(c.limit("memory_high") == int(0.8 * 768 * MiB) for c in cells)
    assert all(dict(c.host_settings) == {"cgroup": "v2", "thp": "always"} for c in cells)
    at_90 = next(c for c in cells if c.axis("gomemlimit") == "90%")
    assert dict(at_90.env)["GOMEMLIMIT"] == str(int(0.9 * int(0.8 * 768 * MiB)))


def test_with_memory_high_the_deployed_configurations_run_beside_every_grid_and_count_in_the_budget():
    assert make_plan(_args(), None).candidates == DEFAULT_GRIDS        # without memory.high: nothing added
    plan = make_plan(_args(memory_high="80%"), None)
    assert all(set(DEPLOYED) <= set(g.configs()) for g in plan.candidates)
    assert [g.n_cells - d.n_cells for g, d in zip(plan.candidates, DEFAULT_GRIDS, strict=True)] == [
        len(DEPLOYED) * d.repeats for d in DEFAULT_GRIDS]
    assert fit(make_plan(_args(), None), 15.0)[0] == DEFAULT_GRIDS[1]     # 38 cells × 15 s fits 10 min
    grid, estimate, _ = fit(plan, 15.0)            # 38 + 2 × 2 cells × 15 s do not; 22 + 4 do
    assert grid == DEFAULT_GRIDS[2].with_deployed() and estimate == 26 * 15.0
    assert Grid.from_json(grid.to_json()) == grid and "as automemlimit sets it" in grid.describe()
    cells = {c.axis("gomemlimit") + "," + c.axis("gogc"): c for c in plan.cells(grid)}
    high = int(0.8 * 768 * MiB)
    # 90%max is of memory.max although the cell has a memory.high; 90% is of memory.high
    assert cells[f"{AUTOMEMLIMIT},off"].gomemlimit_bytes == int(0.9 * 768 * MiB) > high
    assert cells["90%,off"].gomemlimit_bytes == int(0.9 * high) < high
    assert "gomemlimit=90%max" in cells[f"{AUTOMEMLIMIT},off"].cell_id


def test_a_share_of_memory_max_is_a_gomemlimit_spelling():
    assert AXES["gomemlimit"].canonical("90%MAX") == AUTOMEMLIMIT
    with pytest.raises(UnitError, match="NN%max, NN in"):
        AXES["gomemlimit"].canonical("150%max")
    env = dict(contributions({"memory": "1GiB", "gomemlimit": AUTOMEMLIMIT})["env"])
    assert env["GOMEMLIMIT"] == str(int(0.9 * (1 << 30)))     # without a memory.high: the same as 90%
    env = dict(contributions({"memory": "1GiB", "memory_high": "50%", "gomemlimit": AUTOMEMLIMIT})["env"])
    assert env["GOMEMLIMIT"] == str(int(0.9 * (1 << 30)))     # with one: still of memory.max


@pytest.mark.parametrize("kw, words", [
    (dict(memory_high="80%", matrix=["memory_high=70%"]), "--matrix memory_high=...: give it once, with --memory-high"),
    (dict(memory_high="400MiB", find_min_memory=True), "with --find-min-memory give a share"),
    (dict(thp="sometimes"), "--thp 'sometimes'"),
    (dict(memory_high="lots"), "--memory-high 'lots'"),
])
def test_bad_node_options_say_which(kw, words):
    with pytest.raises(ScenarioError) as raised:
        make_plan(_args(**kw), None)
    assert any(words in e for e in raised.value.errors), raised.value.errors


def test_find_min_memory_wants_one_context():
    with pytest.raises(ScenarioError, match="--find-min-memory"):
        make_plan(_args(find_min_memory=True, go=["1.21.13,1.27.3"]), None)


# ------------------------------------------------------------------------------------ real runs

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from harness.drive.cli import main  # noqa: E402

L_M_SCENARIO = """\
description = "A steady live heap of 90 MiB under a 4 KiB churn: its limits are known from first principles."
workload = "small-churn"

[params]
sizes = "4KiB"
live = "90MiB"
per-size = "2s"

[limits]
memory = "150MiB"

[run]
repeats = 1
timeout = "1m"
"""


def _advise(tmp_path: Path, *argv: str) -> tuple[int, Path | None]:
    results = tmp_path / "results"
    code = main(["advise", "--results", str(results), *argv])
    runs = sorted(results.iterdir()) if results.is_dir() else []
    return code, (runs[-1] if runs else None)


def test_a_live_heap_of_l_in_a_limit_m_and_resume(tmp_path, limiting_backend, capsys):
    """L = 90 MiB in M = 150 MiB: GOGC=100 without a limit grows the heap toward 2L = 180 MiB > M and
    is OOM-killed; GOMEMLIMIT = 70% of M = 105 MiB lies between L and M and keeps it alive (with 45 MiB
    to the limit for what the runtime and the kernel hold beside the heap)."""
    path = tmp_path / "l_in_m.toml"
    path.write_text(L_M_SCENARIO)
    code, run_dir = _advise(tmp_path, str(path), "--memory", "150MiB", "--gogc", "100", "--gomemlimit", "off,70%",
                            "--repeats", "1", "--backend", limiting_backend)
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads((run_dir / "advice.json").read_text())
    classes = {(c["gogc"], c["gomemlimit"]): c["class"] for c in doc["configurations"]}
    assert classes[("100", "off")] == "oom_killed", classes
    assert classes[("100", "70%")] != "oom_killed", classes
    recommendation = doc["recommendations"][0]
    assert (recommendation["gogc"], recommendation["gomemlimit"]) != ("100", "off")
    assert recommendation["status"] in ("inconclusive", "none healthy")  # one repeat: never more than that
    assert "plan:" in out and "advice:" in out
    for name in ("advice.md", "advice.html", "figures/advice_front.png"):
        assert (run_dir / name).stat().st_size > 0

    # A cell lost in a crash is the only one --resume runs again.
    cell_dirs = sorted((run_dir / "cells").iterdir())
    shutil.rmtree(cell_dirs[-1])
    code = main(["advise", "--resume", str(run_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("] 1/1 ") == 1 and "already in the run directory" in out
    assert len(list((run_dir / "cells").iterdir())) == len(cell_dirs)
    again = json.loads((run_dir / "advice.json").read_text())["configurations"]
    assert {(c["gogc"], c["gomemlimit"]): c["class"] for c in again}[("100", "off")] == "oom_killed"


def test_advise_a_program_from_the_toolchain(tmp_path, limiting_backend, capsys):
    from tests.test_programs import goroot

    root = goroot()
    tree = root / "src" / "cmd" / "vendor"
    code, run_dir = _advise(tmp_path, "--program", str(root / "bin" / "gofmt"), "--memory", "256MiB",
                            "--gogc", "100,off", "--gomemlimit", "off,90%", "--repeats", "1",
                            "--backend", limiting_backend, "--mount", f"{tree}:ro", "--", "-l", str(tree))
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads((run_dir / "advice.json").read_text())
    assert doc["performance"] == "wall_s"
    assert len(doc["configurations"]) == 3
    recommendation = doc["recommendations"][0]
    chosen = [c for c in doc["configurations"]
              if (c["gogc"], c["gomemlimit"]) == (recommendation["gogc"], recommendation["gomemlimit"])]
    assert chosen and chosen[0]["class"] == "healthy"
    assert "GOGC=" in out
