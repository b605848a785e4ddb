import math

import numpy as np
import pandas as pd
import pytest

from harness.define import units
from harness.define.axes import (
    AXES,
    STANDARD_AXES,
    axis_display,
    axis_text,
    canonical_value,
    contributions,
    order_key,
    sorted_values,
)
from harness.define.backends import BACKEND_NAMES
from harness.define.workloads import WORKLOADS

ALLOC = WORKLOADS["alloc-release"]


def test_standard_axes_are_the_registry():
    assert STANDARD_AXES == ("go", "memory", "cpus", "gogc", "gomemlimit", "madvdontneed", "godebug", "goexperiment",
                             "backend", "cgroup", "kernel", "memory_high", "thp", "swap")
    assert AXES["gomemlimit"].columns == ("gomemlimit", "gomemlimit_bytes")
    assert AXES["memory"].columns == ("memory", "memory_limit_bytes")
    assert all(a.help for a in AXES.values())


@pytest.mark.parametrize(
    "axis, raw, expected",
    [
        ("gogc", "OFF", "off"), ("gogc", 50, "50"), ("gogc", "0100", "100"), ("gogc", "Unset", "unset"),
        ("madvdontneed", 1, "1"), ("madvdontneed", "UNSET", "unset"),
        ("gomemlimit", "90%", "90%"), ("gomemlimit", "300MiB", "300MiB"), ("gomemlimit", "Off", "off"),
        ("memory", "1536MiB", "1536MiB"), ("cpus", 1.5, "1.5"), ("go", "1.21.13", "1.21.13"),
        ("go", "default", "default"), ("godebug", "gctrace=1, scavtrace=1", "gctrace=1,scavtrace=1"),
        ("godebug", "", "none"), ("backend", "docker", "docker"),
        ("cgroup", "v2", "v2"), ("cgroup", "1", "v1"), ("kernel", "Host", "host"), ("kernel", "6.12", "6.12"),
        ("touch", True, "true"), ("touch", "0", "false"), ("size", "1GiB", "1GiB"), ("idle", "100ms", "100ms"),
    ],
)
def test_canonical_forms(axis, raw, expected):
    assert canonical_value(axis, raw, ALLOC) == expected


@pytest.mark.parametrize(
    "axis, raw, fragment",
    [
        ("gogc", "lots", "GOGC is a non-negative integer"), ("madvdontneed", "2", "valid: 0, 1, unset"),
        ("gomemlimit", "120%", "(0, 100]"), ("memory", "0", "must be positive"), ("cpus", "-1", "positive number"),
        ("go", "latest", "not a Go version"), ("godebug", "madvdontneed=1", "madvdontneed axis"),
        ("backend", "podman", f"valid: {', '.join(BACKEND_NAMES)}"), ("touch", "perhaps", "valid: true, false"),
        ("bogus", "1", "unknown axis 'bogus'"), ("cgroup", "v3", "valid: v1, v2"),
        ("kernel", "6.6", "valid: host, or a Debian series booted as a guest: 5.10, 6.1, 6.12"),
    ],
)
def test_canonical_rejects_with_the_fix(axis, raw, fragment):
    with pytest.raises(units.UnitError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        canonical_value(axis, raw, ALLOC)


@pytest.mark.parametrize(
    "value, expected",
    [(None, "unset"), (math.nan, "unset"), (pd.NA, "unset"), ("", "unset"), ("nan", "unset"), ("None", "unset"),
     (True, "true"), (np.bool_(False), "false"), ("True", "true"), (0.0, "0"), (2.5, "2.5"),
     (np.int64(3), "3"), (" 90% ", "90%"), ("off", "off")],
)
def test_axis_text(value, expected):
    assert axis_text(value) == expected


@pytest.mark.parametrize(
    "column, value, expected",
    [("gomemlimit", "314572800", "300MiB"), ("gomemlimit", "90%", "90%"), ("gomemlimit_bytes", 1288490188.0, "1.2GiB"),
     ("memory_limit_bytes", 1610612736, "1.5GiB"), ("gogc", "100", "100"), ("gomemlimit", None, "unset")],
)
def test_axis_display(column, value, expected):
    assert axis_display(column, value) == expected


@pytest.mark.parametrize(
    "axis, shuffled, ordered",
    [
        ("gogc", ["off", "300", "50", "unset", "100"], ["unset", "50", "100", "300", "off"]),
        ("gomemlimit", ["off", "1GiB", "90%", "300MiB", "unset", "50%"],
         ["unset", "300MiB", "1GiB", "50%", "90%", "off"]),
        ("memory", ["1536MiB", "2GiB", "512MiB", "1GiB"], ["512MiB", "1GiB", "1536MiB", "2GiB"]),
        ("madvdontneed", ["1", "unset", "0"], ["unset", "0", "1"]),
        ("go", ["1.27.3", "1.21.13", "default", "1.9"], ["default", "1.9", "1.21.13", "1.27.3"]),
        ("cpus", ["2", "0.5", "1"], ["0.5", "1", "2"]),
        ("backend", ["process", "docker", "auto"], ["auto", "docker", "process"]),
        ("gcs", ["10", "2", "1", "0"], ["0", "1", "2", "10"]),  # a workload flag: numbers, not strings
        ("idle", ["1m", "500ms", "10s"], ["500ms", "10s", "1m"]),
        ("touch", ["true", "false"], ["false", "true"]),
        ("policy", ["ttl", "lru", "unbounded"], ["lru", "ttl", "unbounded"]),
    ],
)
def test_values_sort_by_magnitude(axis, shuffled, ordered):
    assert sorted(shuffled, key=lambda v: order_key(axis, v)) == ordered


def test_sorted_values_spells_and_dedups():
    assert sorted_values("gogc", [100.0, "50", "100", None]) == ["unset", "50", "100"]


def test_contributions_resolve_in_the_context_of_the_cell():
    got = contributions({"memory": "1GiB", "cpus": "1.5", "gogc": "50", "gomemlimit": "90%", "madvdontneed": "1",
                         "godebug": "gctrace=1,scavtrace=1", "go": "1.21.13", "backend": "docker", "size": "1GiB"})
    assert got == {
        # GODEBUG gathers madvdontneed's and godebug's settings, in the axes' declaration order.
        "env": (("GODEBUG", "madvdontneed=1,gctrace=1,scavtrace=1"), ("GOGC", "50"),
                ("GOMEMLIMIT", str(int(0.9 * (1 << 30))))),
        "limits": (("cpus", 1.5), ("memory", 1 << 30)),
        "build_env": (), "host_settings": (),
        "columns": (("cpus", 1.5), ("gogc", "50"), ("gomemlimit", "90%"),
                    ("gomemlimit_bytes", int(0.9 * (1 << 30))), ("madvdontneed", "1"),
                    ("memory_limit_bytes", 1 << 30)),
    }
    unset = contributions({"gogc": "unset", "gomemlimit": "unset", "madvdontneed": "unset", "godebug": "none"})
    assert all(part == () for part in unset.values())
    with pytest.raises(units.UnitError, match="needs a memory limit"):
        contributions({"gomemlimit": "90%"})


def test_two_axes_setting_one_plain_variable_is_a_declaration_error(monkeypatch):
    from harness.define.axes import Axis, Contribution

    monkeypatch.setitem(AXES, "gogc_again", Axis("gogc_again", "a second GOGC", str,
                                                 contribute=lambda v, _: Contribution(env={"GOGC": v})))
    with pytest.raises(ValueError, match="axis gogc_again sets GOGC, which another axis sets already"):
        contributions({"gogc": "50", "gogc_again": "60"})


def test_host_axes_contribute_host_settings_in_order():
    assert contributions({"cgroup": "v2", "kernel": "6.1"})["host_settings"] == (("cgroup", "v2"), ("kernel", "6.1"))
    assert sorted_values("kernel", ["6.12", "host", "5.10", "6.1"]) == ["host", "5.10", "6.1", "6.12"]
