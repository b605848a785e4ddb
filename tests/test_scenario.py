import textwrap
from pathlib import Path

import pytest

from harness.define.scenario import ScenarioError, discover, load, load_many, resolve_path

GOOD = """
description = "a small spike"
workload = "alloc-release"
[params]
size = "64MiB"
idle = "1s"
[limits]
memory = "256MiB"
[matrix]
touch = [true, false]
madvdontneed = ["unset", "1"]
[run]
repeats = 2
timeout = "1m"
[quick]
params = { size = "16MiB" }
run = { repeats = 1 }
[[expect]]
where = { madvdontneed = "1", touch = true }
metric = "rss@freeos"
op = "<"
value = "64MiB"
[[expect]]
where = { touch = true }
metric = "peak_rss"
op = ">"
ratio = 2
of = { touch = false }
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load(path)
    for line in info.value.errors:
        assert line.startswith(f"{path}: "), line
    return info.value.errors


def test_good_file_loads(tmp_path):
    s = load(write(tmp_path, GOOD))
    assert s.name == "s" and s.workload == "alloc-release"
    assert dict(s.full.params) == {"size": "64MiB", "idle": "1s"}
    assert dict(s.quick.params) == {"size": "16MiB", "idle": "1s"}
    assert s.full.matrix_dict() == {"touch": ("true", "false"), "madvdontneed": ("unset", "1")}
    assert s.full.run.repeats == 2 and s.quick.run.repeats == 1 and s.full.run.timeout_s == 60
    assert s.expects[0].value == 64 << 20 and s.expects[1].ratio == 2 and s.expects[1].relative


def test_every_shipped_scenario_loads():
    paths = discover()
    assert paths, "no scenario files in scenarios/"
    for path in paths:
        load(path)
    assert [s.name for s in load_many(paths)] == [p.stem for p in paths]


def test_a_scenario_that_lists_claims_is_told_where_they_are_declared(tmp_path):
    """The claim names its scenarios (harness/studies/); a second list in the scenario could disagree."""
    errors = errors_of(tmp_path, 'claims = ["C2"]\n' + GOOD)
    assert errors == [f"{tmp_path / 's.toml'}: claims: a scenario does not list its claims: each claim names "
                      "the scenarios it reads, in its study (harness/studies/); remove this key"]


@pytest.mark.parametrize(
    "change, expected",
    [
        (("[run]", "[runn]"), "runn: unknown key; did you mean 'run'?"),
        (('repeats = 2', 'repeat = 2'), "run.repeat: unknown key; did you mean 'repeats'?"),
        (('workload = "alloc-release"', 'workload = "alloc-relase"'),
         "workload: unknown workload 'alloc-relase'; did you mean 'alloc-release'?"),
        (('size = "64MiB"', 'sizee = "64MiB"'),
         "params.sizee: alloc-release has no flag 'sizee'; did you mean 'size'?"),
        (('size = "64MiB"', 'size = "64 megs"'), "params.size: '64 megs'"),
        (('idle = "1s"', 'idle = "1 sec"'), "params.idle: '1 sec' is not a duration"),
        (('timeout = "1m"', 'timeout = "soon"'), "run.timeout: 'soon' is not a duration"),
        (('repeats = 2', 'repeats = "2"'), "run.repeats: '2' is not a positive integer"),
        (('memory = "256MiB"', 'memory = "lots"'), "limits.memory: 'lots' is not a size"),
        (('madvdontneed = ["unset", "1"]', 'madvdontneed = ["unset", "2"]'),
         "matrix.madvdontneed[1]: '2' is not a madvdontneed setting (valid: 0, 1, unset)"),
        (('touch = [true, false]', 'tuch = [true, false]'), "matrix.tuch: unknown axis; did you mean 'touch'?"),
        (('metric = "rss@freeos"', 'metric = "rss@frees"'),
         "expect[0].metric: alloc-release has no phase 'frees'; did you mean 'freeos'?"),
        (('metric = "rss@freeos"', 'metric = "rsss@freeos"'),
         "expect[0].metric: 'rsss' has no per-phase value; did you mean 'rss'?"),
        (('metric = "peak_rss"', 'metric = "peak_rs"'),
         "expect[1].metric: unknown metric 'peak_rs'; did you mean 'peak_rss'?"),
        (('op = "<"', 'op = "<<"'), "expect[0].op: '<<' is not a comparison (valid: <, <=, >, >=, ==, !=)"),
        (('where = { madvdontneed = "1", touch = true }', 'where = { madvdontneed = "0" }'),
         "expect[0].where.madvdontneed: '0' is not a value of this axis (valid: 1, unset)"),
        (('where = { touch = true }', 'where = { gogc = "50" }'),
         "expect[1].where.gogc: not an axis or flag of this scenario"),
        (('ratio = 2', 'value = 2'), "expect[1].of: `of` goes with `ratio`, not with `value`"),
        (('description = "a small spike"', 'description = ""'), "description: required"),
    ],
)
def test_each_error_names_key_and_fix(tmp_path, change, expected):
    old, new = change
    assert old in GOOD
    errors = errors_of(tmp_path, GOOD.replace(old, new, 1))
    assert any(expected in e for e in errors), errors


def test_all_errors_reported_at_once(tmp_path):
    text = GOOD.replace("[run]", "[runn]").replace('size = "64MiB"', 'size = "x"').replace('op = "<"', 'op = "?"')
    errors = errors_of(tmp_path, text)
    assert len(errors) == 3, errors


def test_touched_spike_larger_than_limit_needs_an_oom_expectation(tmp_path):
    text = GOOD.replace('size = "64MiB"', 'size = "512MiB"').replace('params = { size = "16MiB" }', "")
    errors = errors_of(tmp_path, text)
    assert any("limits.memory: 256MiB cannot hold the workload's 512MiB (touch=true" in e
               and 'metric = "oom_killed"' in e for e in errors), errors
    declared = text + '\n[[expect]]\nwhere = { touch = true }\nmetric = "oom_killed"\nop = "=="\nvalue = 1\n'
    load(write(tmp_path, declared, "declared.toml"))


def test_untouched_spike_may_exceed_the_limit(tmp_path):
    text = GOOD.replace('size = "64MiB"', 'size = "512MiB"').replace("touch = [true, false]", "touch = [false]")
    text = text.split("[[expect]]")[0]
    load(write(tmp_path, text))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load(write(tmp_path, "description = "))
    with pytest.raises(ScenarioError, match="file not found"):
        load(tmp_path / "nope.toml")


def test_resolve_by_name_and_suggestion():
    assert resolve_path("alloc_release").name == "alloc_release.toml"
    with pytest.raises(ScenarioError, match="did you mean 'alloc_release'"):
        resolve_path("alloc_releas")
