import textwrap

import pytest

from harness.define.errors import ScenarioError
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


ALSO = """
description = "also test"
workload = "alloc-release"
[params]
size = "64MiB"
[limits]
memory = "256MiB"
[matrix]
go = ["1.15.15", "1.19.8", "default"]
madvdontneed = ["unset", "1"]
# cgroup v2 for two Go versions only
[[also]]
matrix = { cgroup = ["v2"], go = ["1.15.15", "default"] }
[quick]
matrix = { madvdontneed = ["1"] }
"""


def _also(tmp_path, text=ALSO):
    path = tmp_path / "also.toml"
    path.write_text(textwrap.dedent(text))
    return load(path)


def test_also_adds_the_base_with_its_axes_replaced(tmp_path):
    cells = expand(_also(tmp_path))
    ids = [c.cell_id for c in cells]
    base = [i for i in ids if "cgroup" not in i]
    extra = [i for i in ids if "cgroup=v2" in i]
    # The base's ids are as they were without [[also]]; the also's name their cgroup.
    assert len(base) == 6 and "also[go=1.15.15,madvdontneed=unset,r0]" in base
    assert sorted(extra) == sorted(f"also[cgroup=v2,go={g},madvdontneed={m},r0]"
                                   for g in ("1.15.15", "default") for m in ("unset", "1"))
    assert len(set(ids)) == len(ids)
    v2 = next(c for c in cells if c.cell_id == "also[cgroup=v2,go=1.15.15,madvdontneed=1,r0]")
    assert dict(v2.axes)["cgroup"] == "v2" and v2.go_version == "1.15.15"
    # [quick] inherits the also; its own matrix replaces madvdontneed in both.
    quick = [c.cell_id for c in expand(_also(tmp_path), quick=True)]
    assert len(quick) == 3 + 2 and "also[cgroup=v2,go=default,madvdontneed=1,r0]" not in quick
    assert "also[cgroup=v2,go=default,r0]" in quick


def test_an_override_of_an_axis_the_also_names_replaces_it_there_too(tmp_path):
    scenario = _also(tmp_path)
    # --matrix cgroup=v1,v2: every cell on both; the also's cells are the base's, not added twice.
    both = expand(scenario, {"cgroup": ["v1", "v2"]}, quick=True)
    assert sorted(c.cell_id for c in both) == sorted(f"also[cgroup={v},go={g},r0]" for v in ("v1", "v2")
                                                     for g in ("1.15.15", "1.19.8", "default"))
    # --matrix cgroup=v1: the also asks for nothing the base does not have.
    assert len(expand(scenario, {"cgroup": ["v1"]}, quick=True)) == 3
    # --go 1.19.8: the also's go is replaced too, so it adds the one v2 cell of that Go.
    ids = [c.cell_id for c in expand(scenario, go=["1.19.8"], quick=True)]
    assert ids == ["also[r0]", "also[cgroup=v2,go=1.19.8,r0]"]


def test_quick_may_have_its_own_also_or_none(tmp_path):
    none = _also(tmp_path, ALSO.replace('matrix = { madvdontneed = ["1"] }',
                                        'matrix = { madvdontneed = ["1"] }\nalso = []'))
    assert len(expand(none, quick=True)) == 3 and len(expand(none)) == 10
    own = _also(tmp_path, ALSO + '[[quick.also]]\nmatrix = { cgroup = ["v2"], go = ["default"] }\n')
    assert [c.cell_id for c in expand(own, quick=True) if "v2" in c.cell_id] == ["also[cgroup=v2,go=default,r0]"]


@pytest.mark.parametrize("table, message", [
    ('[[also]]\nmatrix = { cgroop = ["v2"] }\n', "also[1].matrix.cgroop: unknown axis; did you mean 'cgroup'?"),
    ('[[also]]\nmatrix = { cgroup = ["v3"] }\n', "also[1].matrix.cgroup[0]: 'v3' is not a cgroup version"),
    ('[[also]]\nmatrics = { cgroup = ["v2"] }\n', "also[1].matrics: unknown key; did you mean 'matrix'?"),
    ('[[also]]\nmatrix = {}\n', "also[1].matrix: names no axis"),
    ('also = { cgroup = ["v2"] }\n', "also: must be an array of tables"),
])
def test_a_bad_also_is_one_line_naming_file_and_key(tmp_path, table, message):
    # A top-level key after [quick] would land in it: put the bad table before [quick].
    without = ALSO.replace('[[also]]\nmatrix = { cgroup = ["v2"], go = ["1.15.15", "default"] }\n', "")
    text = ALSO.replace("[quick]", table + "[quick]") if table.startswith("[[") else table + without
    with pytest.raises(ScenarioError) as caught:
        _also(tmp_path, text)
    assert any(line.startswith(f"{tmp_path / 'also.toml'}: {message}") for line in caught.value.errors), \
        caught.value.errors
