"""X2 (THP always and khugepaged) and X3 (memory.high) on hand-made summaries: each verdict reachable,
each part both ways (the cases also feed test_claims_parts.PART_CASES)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_claims import inputs, one

from harness.analyse import claims
from harness.analyse import summary as analysis
from harness.studies.article import x2, x3
from tests.frames import MiB

GO119, GO121, NEW = "1.19.8", "1.21.13", "1.27.3"
# The shape measured in a TCG guest (kernel 6.1, 64 MiB of 32 KiB objects, 3% kept, FreeOSMemory, fast
# khugepaged): peak about 66 MiB, 6-7 MiB after the release; under always with Go 1.21.13 back to 63 MiB,
# 59 MiB of it huge.
PEAK, AFTER = 66 * MiB, 7 * MiB


def x2_cell(go: str, thp: str, final: float, huge: float, disablethp: bool = False, killed: int = 0,
            after: float = AFTER, huge_after: float = 0.0) -> dict:
    godebug = "gctrace=1,disablethp=1" if disablethp else "gctrace=1"
    scenario = "thp_disablethp" if disablethp else ("thp_madvise" if thp == "madvise" else "thp_collapse")
    return {"scenario": scenario, "go_version": go, "thp": thp, "godebug": godebug,
            "cell_id": f"{scenario}[go={go},thp={thp}]", "peak_rss": PEAK, "rss@freeos": after,
            "final_rss": final, "oom_killed": killed, "huge": huge, "huge_after": huge_after}


def x2_inputs(go: str = NEW, always: tuple[float, float] = (63 * MiB, 58 * MiB),
              disablethp: tuple[float, float] | None = (7 * MiB, 0.0),
              madvise: tuple[float, float] | None = (7 * MiB, 0.0), never_final: float = 7 * MiB,
              killed: int = 0, always_after: tuple[float, float] = (AFTER, 0.0)) -> claims.Inputs:
    """A never cell, an always cell and, when given, disablethp=1 and madvise cells of one Go version.
    Each cell's phases end with freeos at 5 s, then idle to 40 s; its AnonHugePages come as smaps
    samples: 60 MiB at the peak, `huge_after` at the end of freeos, the value given at the end."""
    rows = [x2_cell(go, "never", never_final, 0.0),
            x2_cell(go, "always", *always, killed=killed, after=always_after[0], huge_after=always_after[1])]
    if disablethp is not None:
        rows.append(x2_cell(go, "always", *disablethp, disablethp=True))
    if madvise is not None:
        rows.append(x2_cell(go, "madvise", *madvise))
    samples = pd.DataFrame([(r["cell_id"], t, "smaps", "anon_huge_pages", v) for r in rows
                            for t, v in ((1.0, 60 * MiB), (5.0, r["huge_after"]), (40.0, r["huge"]))],
                           columns=analysis.SAMPLE_COLUMNS)
    events = pd.DataFrame([(r["cell_id"], t, "phase", name, float("nan"), "") for r in rows
                           for t, name in ((0.0, "allocate"), (4.0, "freeos"), (5.0, "idle"), (40.0, "end"))
                           if name != "end"] +
                          [(r["cell_id"], 40.0, "end", "end", float("nan"), "{}") for r in rows],
                          columns=analysis.EVENT_COLUMNS)
    for r in rows:
        del r["huge"], r["huge_after"]
    return inputs(rows, events=events, samples=samples)


def x2_decision(inp: claims.Inputs) -> claims.Decision:
    [(_, d)] = claims.decisions(x2.CLAIM, inp)
    assert isinstance(d, claims.Decision)
    return d


def test_x2_supported_when_always_refills_in_huge_pages_and_the_baselines_stay_down():
    row = one("X2", x2_inputs())
    assert row.verdict == "supported", row.evidence
    assert "THP always:" in row.evidence and "AnonHugePages after FreeOSMemory 0 MiB, at the end 58 MiB" in row.evidence


def test_x2_refuted_when_always_stays_down_like_never():
    """Go up to 1.20: the released ranges marked MADV_NOHUGEPAGE, nothing collapses; no disablethp there."""
    inp = x2_inputs(GO119, always=(8 * MiB, 2 * MiB), disablethp=None, madvise=(8 * MiB, 0.0))
    d = x2_decision(inp)
    assert d.parts == {x2.PARTS[0]: False, x2.PARTS[2]: True}
    row = one("X2", inp)
    assert row.verdict == "partly", row.evidence
    assert "no GODEBUG=disablethp" in row.evidence and "MADV_NOHUGEPAGE" in row.evidence


def test_x2_huge_pages_the_release_left_whole_are_no_refill():
    """Go 1.19 in the guest: 10 MiB of AnonHugePages right after FreeOSMemory, still there at the end,
    RSS 16 MiB throughout: nothing came back, so the part fails even though RSS ends above never's."""
    d = x2_decision(x2_inputs(GO119, always=(16 * MiB, 10 * MiB), always_after=(16 * MiB, 10 * MiB),
                              disablethp=None))
    assert d.parts[x2.PARTS[0]] is False
    assert d.shares["always"][0] == pytest.approx(0.0)


def test_x2_refill_without_huge_pages_is_not_khugepaged():
    """RSS back up under always but AnonHugePages flat: not the mechanism, undecided."""
    d = x2_decision(x2_inputs(always=(63 * MiB, 1 * MiB)))
    assert d.parts[x2.PARTS[0]] is None


def test_x2_disablethp_fails_when_it_refills_too():
    d = x2_decision(x2_inputs(disablethp=(62 * MiB, 56 * MiB)))
    assert d.parts[x2.PARTS[1]] is False


def test_x2_madvise_fails_when_it_refills():
    d = x2_decision(x2_inputs(madvise=(62 * MiB, 56 * MiB)))
    assert d.parts[x2.PARTS[2]] is False


def test_x2_disablethp_is_not_judged_on_a_go_without_it():
    d = x2_decision(x2_inputs(GO119))
    assert x2.PARTS[1] not in d.parts
    assert x2.has_disablethp("1.21.6") and x2.has_disablethp("default") and not x2.has_disablethp("1.21.5")


@pytest.mark.parametrize("inp, case", [
    (lambda: x2_inputs(killed=1), "killed"),
    (lambda: inputs([x2_cell(NEW, "always", 63 * MiB, 0.0) | {"huge": None}]), "one-side"),
])
def test_x2_inconclusive_without_a_baseline_or_a_release(inp, case):
    made = inp()
    rows = claims.decisions(x2.CLAIM, made)
    [(_, d)] = rows
    assert isinstance(d, claims.Decision) and d.verdict == "inconclusive" and d.case == case


def test_x2_thresholds_leave_an_undecided_band():
    assert 0 < x2.LIKE_NEVER_SHARE < x2.REFILLED_SHARE < 1
    share = (30 * MiB - 7 * MiB) / (PEAK - AFTER)   # about 39%: between the two
    assert x2.LIKE_NEVER_SHARE < share < x2.REFILLED_SHARE
    d = x2_decision(x2_inputs(always=(30 * MiB, 22 * MiB)))
    assert d.parts[x2.PARTS[0]] is None and not math.isnan(d.shares["always"][0])


# ---- X3 ---------------------------------------------------------------------------------------------

LIMIT = 512 * MiB


def x3_rows(go: str = NEW, throttled_events: float = 4200, limited_events: float = 0, killed: int = 0,
            limited_killed: int = 0, peak_without: float = 300 * MiB) -> list[dict]:
    """memory.high at the limit (baseline), at 256 MiB without GOMEMLIMIT and with 217 MiB."""
    rows = []
    for high, lim, events, peak, k in ((LIMIT, "unset", 0, 420 * MiB, 0),
                                       (256 * MiB, "unset", throttled_events, peak_without, killed),
                                       (256 * MiB, "217MiB", limited_events, 230 * MiB, limited_killed)):
        rows.append({"scenario": "memory_high_throttle", "go_version": go, "memory_high_bytes": high,
                     "memory_limit_bytes": LIMIT, "gomemlimit": lim,
                     "gomemlimit_bytes": 217 * MiB if lim != "unset" else math.nan,
                     "cell_id": f"memory_high_throttle[go={go},high={high // MiB},gomemlimit={lim}]",
                     "memory_high_events": events, "peak_cgroup": peak, "oom_killed": k, "oom_kill_events": k,
                     "throughput": 1e3, "psi_some_avg10": 0.4 if events else 0.0, "memory_stall_some_s": 2.0})
    return rows


def x3_decision(rows: list[dict]) -> claims.Decision:
    [(_, d)] = claims.decisions(x3.CLAIM, inputs(rows))
    assert isinstance(d, claims.Decision)
    return d


def test_x3_supported_when_throttled_not_killed_and_the_limit_avoids_it():
    row = one("X3", inputs(x3_rows()))
    assert row.verdict == "supported", row.evidence
    assert "memory.high events 4200" in row.evidence and "context, not judged" in row.evidence


def test_x3_killed_instead_of_throttled_fails_the_first_part():
    d = x3_decision(x3_rows(killed=1))
    assert d.parts[x3.PARTS[0]] is False


def test_x3_no_events_although_the_heap_crossed_fails_the_first_part():
    d = x3_decision(x3_rows(throttled_events=0))
    assert d.parts[x3.PARTS[0]] is False


def test_x3_limit_that_does_not_avoid_the_throttling_fails_the_second_part():
    d = x3_decision(x3_rows(limited_events=4000))
    assert d.parts == {x3.PARTS[0]: True, x3.PARTS[1]: False}
    assert one("X3", inputs(x3_rows(limited_events=4000))).verdict == "partly"


def test_x3_a_few_events_with_the_limit_are_undecided():
    d = x3_decision(x3_rows(limited_events=1000))
    assert d.parts[x3.PARTS[1]] is None and x3.PARTS[1] in d.why


def test_x3_inconclusive_when_the_heap_never_crossed_memory_high():
    d = x3_decision(x3_rows(peak_without=200 * MiB, throttled_events=0))
    assert d.verdict == "inconclusive" and d.case == "not-crossed"


def test_x3_inconclusive_without_memory_high_cells():
    rows = [r for r in x3_rows() if r["memory_high_bytes"] == LIMIT]
    d = x3_decision(rows)
    assert d.case == "one-side"
    for r in rows:
        del r["memory_high_bytes"]
    assert x3_decision(rows).case == "no-high"


def test_x3_not_applicable_before_gomemlimit():
    row = one("X3", inputs(x3_rows(go="1.18.10")))
    assert row.verdict == "not-applicable"


# ---- figures ------------------------------------------------------------------------------------------

def _figure_inputs(rows: list[dict], samples: list[tuple[str, float, str, str, float]]):
    from harness.present.figures import FigureInputs

    cells = pd.DataFrame(rows)
    frame = pd.DataFrame(samples, columns=analysis.SAMPLE_COLUMNS)
    events = pd.DataFrame(columns=analysis.EVENT_COLUMNS)
    return FigureInputs(cells, pd.DataFrame(), events, analysis.RunData(frame, events))


def test_x2_figure_draws_rss_solid_and_anon_huge_pages_dashed_per_thp_mode():
    from harness.present.figures import draw_figure

    rows = [{"cell_id": f"c{m}", "scenario": "thp_collapse", "go_version": NEW, "thp": m} for m in ("always", "never")]
    curves = {"always": ((66, 7, 60), (60, 0, 56)), "never": ((66, 7, 6), (60, 0, 2))}
    samples = [(f"c{m}", t, src, metric, v * MiB) for m, (rss, huge) in curves.items()
               for src, metric, values in (("proc", "vm_rss", rss), ("smaps", "anon_huge_pages", huge))
               for t, v in zip((1.0, 5.0, 40.0), values, strict=True)]
    fig = draw_figure(x2.CLAIM.figure, _figure_inputs(rows, samples))
    [ax] = [a for a in fig.axes if a.get_visible()]
    lines = {(line.get_linestyle(), line.get_color()): line for line in ax.get_lines() if line.get_label()[0] != "_"}
    solid = {line.get_label(): line for (style, _), line in lines.items() if style == "-"}
    for mode, huge_end in (("always", 56), ("never", 2)):
        colour = solid[f"thp={mode}"].get_color()
        dashed = lines[("--", colour)]    # AnonHugePages in the colour of its cell
        assert dashed.get_label() == "AnonHugePages (dashed)"
        assert dashed.get_ydata()[-1] == huge_end


def test_x3_figure_draws_cgroup_usage_against_the_memory_high_line():
    from harness.present.figures import draw_figure

    rows = [{"cell_id": f"c{lim}", "scenario": "memory_high_throttle", "go_version": NEW, "gomemlimit": lim,
             "memory_high_bytes": 256 * MiB, "memory_limit_bytes": LIMIT} for lim in ("unset", "217MiB")]
    samples = [(f"c{lim}", t, "cgroup", "usage", v * MiB) for lim, top in (("unset", 282), ("217MiB", 250))
               for t, v in ((1.0, 50), (5.0, top))]
    fig = draw_figure(x3.CLAIM.figure, _figure_inputs(rows, samples))
    [ax] = [a for a in fig.axes if a.get_visible()]
    levels = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"}
    assert levels.get("memory.high 256 MiB") == 256, levels
    assert any(line.get_label() == "memory limit 512 MiB" for line in ax.get_lines())


# Both outcomes of each added claim, with the numbers its evidence must state (tests/test_claims.py).
EVIDENCE = [
    ("X2", x2_inputs, "supported", ["AnonHugePages after FreeOSMemory 0 MiB, at the end 58 MiB"]),
    ("X2", lambda: x2_inputs(GO119, always=(8 * MiB, 2 * MiB), disablethp=None, madvise=(8 * MiB, 0.0)),
     "partly", ["MADV_NOHUGEPAGE"]),
    ("X3", lambda: inputs(x3_rows()), "supported", []),
    ("X3", lambda: inputs(x3_rows(limited_events=4000)), "partly", []),
]
