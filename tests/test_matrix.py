import textwrap

import pytest

from harness.define.matrix import MatrixError, expand, merge_matrix_options, parse_matrix_option
from harness.define.project import DEFAULT_GO
from harness.define.scenario import load

SCENARIO = """
description = "matrix test"
workload = "alloc-release"
[params]
size = "64MiB"
idle = "1s"
[limits]
memory = "256MiB"
[matrix]
touch = [true, false]
madvdontneed = ["unset", "1"]
godebug = ["gctrace=1,scavtrace=1"]
[run]
repeats = 2
[quick]
params = { size = "16MiB" }
matrix = { madvdontneed = ["1"] }
run = { repeats = 1 }
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "mx.toml"
    path.write_text(textwrap.dedent(SCENARIO))
    return load(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gogc=50,100,300", ("gogc", ["50", "100", "300"])),
        ("madvdontneed=0,1", ("madvdontneed", ["0", "1"])),
        ("godebug=gctrace=1,scavtrace=1", ("godebug", ["gctrace=1,scavtrace=1"])),
        (" touch = true ", ("touch", ["true"])),
    ],
)
def test_parse_matrix_option(text, expected):
    assert parse_matrix_option(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [("gogc", "expected AXIS=V1,V2"), ("gocg=50", "did you mean 'gogc'"), ("gogc=50,,100", "empty value")],
)
def test_parse_matrix_option_errors(text, fragment):
    with pytest.raises(MatrixError, match=fragment):
        parse_matrix_option(text)


def test_merge_accumulates_one_axis():
    assert merge_matrix_options(["gogc=50", "gogc=100,50", "touch=true"]) == {"gogc": ["50", "100"], "touch": ["true"]}


def test_default_expansion_ids_order_and_fields(scenario):
    cells = expand(scenario)
    assert [c.cell_id for c in cells[:4]] == [
        "mx[madvdontneed=unset,touch=true,r0]", "mx[madvdontneed=1,touch=true,r0]",
        "mx[madvdontneed=unset,touch=false,r0]", "mx[madvdontneed=1,touch=false,r0]",
    ]
    assert len(cells) == 8 and [c.repeat for c in cells] == [0] * 4 + [1] * 4  # repeats interleave
    first = cells[1]
    assert first.args == ("--size=64MiB", "--touch=true", "--idle=1s")
    assert first.madvdontneed == "1" and cells[0].madvdontneed is None
    assert dict(first.env) == {"GODEBUG": "madvdontneed=1,gctrace=1,scavtrace=1"}
    assert dict(cells[0].env) == {"GODEBUG": "gctrace=1,scavtrace=1"}
    assert first.memory_limit_bytes == 256 << 20 and first.go_version == DEFAULT_GO and first.backend == "auto"
    assert first.axes == (("godebug", "gctrace=1,scavtrace=1"), ("madvdontneed", "1"), ("touch", "true"))
    assert [c.cell_id for c in expand(scenario)] == [c.cell_id for c in cells]  # stable


def test_overrides_replace_and_add_axes(scenario):
    cells = expand(scenario, {"gogc": ["50", "off"], "touch": ["true"]}, repeats=1)
    assert [c.cell_id for c in cells] == [
        "mx[gogc=50,madvdontneed=unset,r0]", "mx[gogc=off,madvdontneed=unset,r0]",
        "mx[gogc=50,madvdontneed=1,r0]", "mx[gogc=off,madvdontneed=1,r0]",
    ]
    assert {c.gogc for c in cells} == {"50", "off"}
    assert all("--touch=true" in c.args for c in cells)


def test_flag_of_another_workload_is_ignored(scenario):
    assert len(expand(scenario, {"policy": ["lru", "ttl"]})) == 8


def test_gomemlimit_percent_is_taken_of_the_memory_axis(scenario):
    cells = expand(scenario, {"memory": ["100MiB", "200MiB"], "gomemlimit": ["50%"]}, repeats=1)
    assert {c.gomemlimit_bytes for c in cells} == {50 << 20, 100 << 20}
    assert {dict(c.env)["GOMEMLIMIT"] for c in cells} == {str(50 << 20), str(100 << 20)}


def test_quick_go_backend(scenario):
    cells = expand(scenario, quick=True, go=["1.21.13", "default"], backend="docker")
    assert [c.cell_id for c in cells] == [
        "mx[go=1.21.13,touch=true,r0]", "mx[go=default,touch=true,r0]",
        "mx[go=1.21.13,touch=false,r0]", "mx[go=default,touch=false,r0]",
    ]
    assert cells[0].go_version == "1.21.13" and cells[1].go_version == DEFAULT_GO
    assert all(c.backend == "docker" and "--size=16MiB" in c.args for c in cells)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"gogc": ["lots"]}, "mx: gogc=lots: 'lots': GOGC is a non-negative integer"),
        ({"madvdontneed": ["2"]}, "valid: 0, 1, unset"),
        ({"touch": ["perhaps"]}, "valid: true, false"),
        ({"bogus": ["1"]}, "axis 'bogus' is unknown"),
        ({"go": ["latest"]}, "not a Go version"),
    ],
)
def test_bad_overrides(scenario, overrides, fragment):
    with pytest.raises(MatrixError, match=fragment.replace("(", r"\(")):
        expand(scenario, overrides)


def test_percent_gomemlimit_without_memory_limit(tmp_path):
    path = tmp_path / "nolimit.toml"
    path.write_text('description = "x"\nworkload = "small-churn"\n[matrix]\ngomemlimit = ["80%"]\n')
    with pytest.raises(MatrixError, match="needs a memory limit"):
        expand(load(path))
