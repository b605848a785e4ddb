import math
import textwrap

import pandas as pd
import pytest

from harness.analyse.expectations import check_cell, format_value, inconclusive_checks, relative_checks, settings_of
from harness.define.matrix import expand
from harness.define.scenario import load

MiB = 1 << 20

SCENARIO = """
description = "expectations test"
workload = "alloc-release"
[params]
size = "64MiB"
freeos = true
[limits]
memory = "256MiB"
[matrix]
madvdontneed = ["0", "1"]
touch = [true, false]
[run]
repeats = 2
[[expect]]
where = { madvdontneed = "1", freeos = true, touch = true }
metric = "rss@freeos"
op = "<"
value = "64MiB"
[[expect]]
metric = "oom_killed"
op = "=="
value = 0
[[expect]]
where = { madvdontneed = "1" }
metric = "rss@freeos"
op = "<"
ratio = 0.1
of = { madvdontneed = "0" }
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "ex.toml"
    path.write_text(textwrap.dedent(SCENARIO))
    return load(path)


@pytest.fixture
def cells(scenario):
    return {c.cell_id: c for c in expand(scenario)}


@pytest.mark.parametrize(
    "cell_id, row, messages",
    [
        ("ex[madvdontneed=1,touch=true,r0]", {"rss@freeos": 10 * MiB, "oom_killed": 0}, []),
        ("ex[madvdontneed=1,touch=true,r0]", {"rss@freeos": 512 * MiB, "oom_killed": 0},
         ["ex[madvdontneed=1,touch=true,r0]: rss@freeos = 512 MiB, expected < 64 MiB"]),
        ("ex[madvdontneed=0,touch=true,r1]", {"rss@freeos": 512 * MiB, "oom_killed": 0}, []),  # where does not select
        ("ex[madvdontneed=1,touch=false,r0]", {"rss@freeos": 512 * MiB, "oom_killed": 1},
         ["ex[madvdontneed=1,touch=false,r0]: oom_killed = 1, expected == 0"]),
        ("ex[madvdontneed=1,touch=true,r0]", {"rss@freeos": math.nan, "oom_killed": 0},
         ["ex[madvdontneed=1,touch=true,r0]: rss@freeos = missing (NaN), expected < 64 MiB"]),
        ("ex[madvdontneed=1,touch=true,r0]", {"oom_killed": 0},
         ["ex[madvdontneed=1,touch=true,r0]: rss@freeos = missing (NaN), expected < 64 MiB"]),
    ],
)
def test_check_cell(scenario, cells, cell_id, row, messages):
    failures = check_cell(scenario, cells[cell_id], pd.Series(row))
    assert [f.message for f in failures] == messages


def check_relative(scenario, values, cells):
    """Every relative check over the cells of `values` (cell id -> rss@freeos), as a driver makes them."""
    records = [(c.cell_id, c.repeat, settings_of(scenario, c)) for c in cells.values() if c.cell_id in values]
    return relative_checks(scenario, records, {cell_id: {"rss@freeos": v} for cell_id, v in values.items()})


@pytest.mark.parametrize(
    "values, failing",
    [
        # dontneed cells hold a twentieth of the free ones' RSS: pass
        ({"ex[madvdontneed=0,touch=true,r0]": 600 * MiB, "ex[madvdontneed=1,touch=true,r0]": 30 * MiB}, []),
        # same repeat is required: r1 has no madvdontneed=0 partner, so nothing is compared
        ({"ex[madvdontneed=0,touch=true,r0]": 600 * MiB, "ex[madvdontneed=1,touch=true,r1]": 300 * MiB}, []),
        ({"ex[madvdontneed=0,touch=true,r0]": 600 * MiB, "ex[madvdontneed=1,touch=true,r0]": 300 * MiB},
         [("ex[madvdontneed=1,touch=true,r0]: rss@freeos = 300 MiB, expected < 0.1 × "
          "ex[madvdontneed=0,touch=true,r0] (600 MiB)")]),
        # touch differs: not a pair
        ({"ex[madvdontneed=0,touch=false,r0]": 600 * MiB, "ex[madvdontneed=1,touch=true,r0]": 300 * MiB}, []),
    ],
)
def test_check_relative_with_cells(scenario, cells, values, failing):
    failures, skipped = check_relative(scenario, values, cells)
    assert [f.message for f in failures] == failing
    if not failing and len(values) == 2 and "touch=false" not in "".join(values) and "r1" not in "".join(values):
        assert skipped == []


def test_check_relative_notes_missing_partner(scenario, cells):
    failures, skipped = check_relative(scenario, {"ex[madvdontneed=1,touch=true,r1]": 1.0}, cells)
    assert failures == [] and len(skipped) == 1 and "madvdontneed=0 cell: that cell was not run" in skipped[0]


@pytest.mark.parametrize(
    "metric, value, text",
    [("rss@freeos", 512 * MiB, "512 MiB"), ("gc_cycles", 12.0, "12"), ("release_s", 1.25, "1.25 s"),
     ("freeos_p50_ns", 2_500_000, "2.50 ms"), ("peak_rss", 1029 * MiB + 100, "1029 MiB"),
     ("throughput", 1234.5, "1.23k ops/s"), ("peak_rss", None, "missing (NaN)")],
)
def test_format_value(metric, value, text):
    assert format_value(metric, value) == text


def test_relative_checks_compare_each_pair_once_as_cells_complete(scenario, cells):
    """The incremental form the drivers call after every cell: a pair is compared when its second
    cell is in, once; a cell whose partner has not run yet is listed as unchecked."""
    free, dontneed = "ex[madvdontneed=0,touch=true,r0]", "ex[madvdontneed=1,touch=true,r0]"
    summaries = {dontneed: {"rss@freeos": 300 * MiB}}
    done: set = set()
    records = [(dontneed, 0, settings_of(scenario, cells[dontneed]))]
    failures, unchecked = relative_checks(scenario, records, summaries, done)
    assert failures == [] and len(unchecked) == 1 and unchecked[0].startswith(dontneed)
    summaries[free] = {"rss@freeos": 600 * MiB}
    records.append((free, 0, settings_of(scenario, cells[free])))
    failures, unchecked = relative_checks(scenario, records, summaries, done)
    assert [f.message for f in failures] == [
        f"{dontneed}: rss@freeos = 300 MiB, expected < 0.1 × {free} (600 MiB)"]
    assert unchecked == [] and len(done) == 1
    assert relative_checks(scenario, records, summaries, done) == ([], [])  # already compared


TIMED = """
description = "timing under emulation"
workload = "alloc-release"
[matrix]
madvdontneed = ["0", "1"]
[[expect]]
metric = "wall_s"
op = "<"
value = 1
[[expect]]
metric = "oom_killed"
op = "=="
value = 0
[[expect]]
where = { madvdontneed = "1" }
metric = "wall_s"
op = "<"
ratio = 0.5
of = { madvdontneed = "0" }
"""


def test_timing_under_tcg_is_inconclusive_not_judged(tmp_path):
    path = tmp_path / "timed.toml"
    path.write_text(TIMED)
    scenario = load(path)
    cells = {c.cell_id: c for c in expand(scenario)}
    slow = "timed[madvdontneed=1,r0]"
    row = pd.Series({"wall_s": 30.0, "oom_killed": 1})
    # natively both are judged; under tcg only the memory one, the timing one is a note naming tcg
    assert len(check_cell(scenario, cells[slow], row)) == 2
    (failure,) = check_cell(scenario, cells[slow], row, "tcg")
    assert failure.expectation.metric == "oom_killed"
    (note,) = inconclusive_checks(scenario, cells[slow], "tcg")
    assert note.startswith(slow) and "wall_s" in note and "tcg" in note and "inconclusive" in note
    assert inconclusive_checks(scenario, cells[slow], "kvm") == []
    records = [(c.cell_id, c.repeat, settings_of(scenario, c)) for c in cells.values()]
    summaries = {cell_id: {"wall_s": 30.0} for cell_id in cells}
    failures, notes = relative_checks(scenario, records, summaries, accels={slow: "tcg"})
    assert failures == [] and any("tcg" in n and "inconclusive" in n for n in notes)
    failures, _ = relative_checks(scenario, records, summaries)
    assert len(failures) == 1
