"""The Go module itself: vet, its own tests, and each binary's flags against harness/workloads.py."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness.build import toolchain, workload_build
from harness.define import units
from harness.define.project import GO_WORKLOADS
from harness.define.workloads import WORKLOADS, Param


@pytest.fixture(scope="module")
def default_toolchain():
    return toolchain.resolve()


@pytest.fixture(scope="module")
def default_build(default_toolchain):
    return workload_build.build_with(default_toolchain).build


def run_go(tc, *args, timeout=600):
    return subprocess.run([str(tc.go), *args], cwd=GO_WORKLOADS, env=toolchain.go_env(tc),
                          capture_output=True, text=True, timeout=timeout)


def test_go_vet(default_toolchain):
    out = run_go(default_toolchain, "vet", "./...")
    assert out.returncode == 0, f"go vet ./... failed:\n{out.stdout}{out.stderr}"


def test_go_test(default_toolchain):
    out = run_go(default_toolchain, "test", "-count=1", "./...")
    assert out.returncode == 0, f"go test ./... failed:\n{out.stdout}{out.stderr}"


# ----------------------------------------------------------------- `-h` in the flag package's format

_FLAG = re.compile(r"^  -(?P<name>[^\s]+)(?: (?P<type>\S+))?(?:\t(?P<usage>.*))?$")
_DEFAULT = re.compile(r"\(default (?P<value>.*)\)$")


def parse_flag_usage(text: str) -> dict[str, dict]:
    """The standard library's PrintDefaults output -> {name: {type, usage, default}}.

    Each flag is "  -name type" (bool flags have no type) followed by usage lines indented
    "    \\t"; a non-zero default ends the usage as "(default X)", quoted for string flags.
    """
    flags: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        m = _FLAG.match(line)
        if m:
            current = {"type": m["type"], "usage": m["usage"] or "", "default": None}
            flags[m["name"]] = current
        elif line.startswith("    \t") and current is not None:
            current["usage"] = (current["usage"] + "\n" + line[5:]).strip()
    for f in flags.values():
        d = _DEFAULT.search(f["usage"])
        if d:
            value = d["value"]
            f["default"] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return flags


def test_parse_flag_usage_reads_the_flag_package_format():
    text = (
        "Usage of x:\n"
        "  -b\tshort bool\n"
        "  -name string\n    \tsome name (default \"bob\")\n"
        "  -size value\n    \tsize of it\n    \tsecond line (default 1GiB)\n"
        "  -touch\n    \twrite pages (default true)\n"
        "  -wait duration\n    \thow long\n"
    )
    assert parse_flag_usage(text) == {
        "b": {"type": None, "usage": "short bool", "default": None},
        "name": {"type": "string", "usage": 'some name (default "bob")', "default": "bob"},
        "size": {"type": "value", "usage": "size of it\nsecond line (default 1GiB)", "default": "1GiB"},
        "touch": {"type": None, "usage": "write pages (default true)", "default": "true"},
        "wait": {"type": "duration", "usage": "how long", "default": None},
    }


def _canonical(param: Param, text: str):
    """A default in comparable form; the Go side may spell a size or duration differently."""
    if param.kind == "size":
        return units.parse_size(text)
    if param.kind == "duration":
        return units.parse_duration(text)
    if param.kind == "sizes":
        return tuple(units.parse_size(s) for s in text.split(",") if s)
    if param.kind == "bool":
        return units.parse_bool(text)
    if param.kind == "int":
        return int(text)
    if param.kind == "float":
        return float(text)
    return text


def _is_zero(param: Param) -> bool:
    """The flag package prints no default for a zero value."""
    value = _canonical(param, param.default)
    return value in (0, 0.0, False, "", ())


def help_text(binary) -> str:
    out = subprocess.run([str(binary), "-h"], capture_output=True, text=True, timeout=30, env={})
    assert out.returncode in (0, 2), f"{binary} -h exited {out.returncode}: {out.stderr}"
    return out.stderr + out.stdout


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_flags_match_the_catalogue(default_build, name):
    workload = WORKLOADS[name]
    text = help_text(default_build.binary(name))
    flags = parse_flag_usage(text)
    assert set(flags) == {p.name for p in workload.params}, f"{name} -h:\n{text}"
    for param in workload.params:
        printed = flags[param.name]
        where = f"{name} -{param.name} (harness/workloads.py default {param.default!r})"
        if param.kind == "bool":
            assert printed["type"] is None, f"{where}: a bool flag should take no value, got {printed['type']}"
        if _is_zero(param):
            assert printed["default"] is None, f"{where}: Go prints default {printed['default']!r}"
        else:
            assert printed["default"] is not None, f"{where}: Go prints no default (a zero value)"
            assert _canonical(param, printed["default"]) == _canonical(param, param.default), (
                f"{where}: Go's default is {printed['default']!r}")
