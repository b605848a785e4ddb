import pytest

from harness.define import units
from harness.define.workloads import (
    WORKLOADS,
    Param,
    UnknownWorkload,
    workload,
)


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("alloc-release", {"size": "512MiB", "touch": "true", "live": "128MiB"}, 640 << 20),
        ("alloc-release", {"size": "1GiB", "touch": "false"}, 0),
        ("alloc-release", {}, 1 << 30),  # defaults: a touched 1GiB spike, no live heap
        ("pressure", {"release-size": "640MiB", "second-size": "100MiB"}, 640 << 20),
        ("pressure", {"second-size": "1GiB"}, 1 << 30),
        ("large-churn", {"live": "64MiB"}, 64 << 20),
        ("freeos-periodic", {}, 128 << 20),
        ("small-churn", {}, 0),
        ("cache-growth", {"policy": "lru", "capacity": "1000", "value-size": "1KiB"}, 1000 * 1024),
        ("cache-growth", {"policy": "unbounded", "rate": "100", "duration": "10s", "value-size": "1KiB"}, 1000 * 1024),
        ("cache-growth", {"policy": "ttl", "rate": "100", "ttl": "2s", "value-size": "1KiB"}, 200 * 1024),
        ("cache-growth", {"rate": "100", "duration": "10s", "keyspace": "10", "value-size": "1KiB"}, 10 * 1024),
    ],
)
def test_footprint(name, params, expected):
    assert workload(name).footprint(params) == expected


def test_every_builtin_declares_a_footprint_binary_and_telemetry():
    for w in WORKLOADS.values():
        assert w.footprint({}) >= 0
        assert w.binary == w.name and w.telemetry is True
        assert w.work_phase in w.phases


def test_unknown_workload_is_a_clear_error():
    with pytest.raises(UnknownWorkload, match=r"unknown workload 'alloc-relase' \(valid: alloc-release, "):
        workload("alloc-relase")
    with pytest.raises(KeyError):  # still a lookup failure for callers that catch KeyError
        workload("nope")


@pytest.mark.parametrize(
    "kind, raw, expected",
    [("size", "1024MiB", "1GiB"), ("sizes", ["8B", "32KiB"], "8B,32KiB"), ("duration", "1500ms", "1.5s"),
     ("bool", True, "true"), ("int", " 7 ", "7"), ("float", 0.25, "0.25")],
)
def test_param_canonical(kind, raw, expected):
    assert Param("x", kind, "", "").canonical(raw) == expected


def test_param_canonical_rejects():
    param = WORKLOADS["cache-growth"].param("policy")
    with pytest.raises(units.UnitError, match="valid: unbounded, lru, ttl"):
        param.canonical("fifo")
