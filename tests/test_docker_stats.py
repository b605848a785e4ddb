"""Docker's stats API reader (harness.run.observe.docker_stats) on replies as the daemon sends them, and the
tool table's column beside the computed one. The real daemon: tests/test_backends.py."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analyse.views import tool_table
from harness.run.observe.docker_stats import DockerStats, memory_usage_no_cache, read_time_ns
from tests.frames import MiB

V1 = {"usage": 300 * MiB, "max_usage": 400 * MiB, "limit": 512 * MiB,
      "stats": {"total_inactive_file": 100 * MiB, "inactive_file": 100 * MiB, "cache": 120 * MiB}}
V2 = {"usage": 300 * MiB, "limit": 512 * MiB, "stats": {"inactive_file": 40 * MiB, "active_file": 5 * MiB}}


@pytest.mark.parametrize("stats, expected", [
    (V1, (300 * MiB, 100 * MiB, 200 * MiB)),
    (V2, (300 * MiB, 40 * MiB, 260 * MiB)),
    # docker/cli subtracts only an inactive_file below usage
    ({"usage": 10 * MiB, "stats": {"inactive_file": 20 * MiB}}, (10 * MiB, 0.0, 10 * MiB)),
    ({"usage": 10 * MiB}, (10 * MiB, 0.0, 10 * MiB)),
    ({}, None),   # a stopped container's reply has no memory_stats
])
def test_memory_usage_as_docker_cli_computes_it(stats, expected):
    assert memory_usage_no_cache(stats) == expected


class FakeAPI:
    def __init__(self, replies=(), error=None):
        self.replies, self.error, self.calls = list(replies), error, []

    def stats(self, container, decode, stream):
        self.calls.append((container, decode, stream))
        yield from self.replies
        if self.error:
            raise self.error


def test_read_time_is_the_daemons_stamp_to_the_nanosecond():
    assert read_time_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert read_time_ns("2026-12-05T12:46:20.788404963Z") % 1_000_000_000 == 788404963
    assert read_time_ns("0001-01-01T00:00:00Z") is not None and read_time_ns("garbage") is None


def test_each_reading_of_the_stream_is_recorded_at_the_daemons_read_time():
    got, errors = [], []
    api = FakeAPI([{"read": "2026-12-05T12:46:20.000000000Z", "memory_stats": V2},
                   {"read": "0001-01-01T00:00:00Z", "memory_stats": {}}])   # the container has stopped
    reader = DockerStats(api, "c1", got.extend, errors.append)
    reader.follow()
    assert api.calls == [("c1", True, True)]
    assert [(s, m, v) for _, s, m, v in got] == [("docker", "usage", 300 * MiB), ("docker", "inactive_file", 40 * MiB),
                                                 ("docker", "mem_usage", 260 * MiB)]
    assert {t for t, *_ in got} == {read_time_ns("2026-12-05T12:46:20.000000000Z") - reader.wall_minus_mono_ns}
    assert not errors


def test_a_daemon_error_is_said_not_raised():
    got, errors = [], []
    DockerStats(FakeAPI(error=RuntimeError("gone")), "c1", got.extend, errors.append).follow()
    assert not got and errors == ["docker stats API: RuntimeError: gone"]


def test_tool_table_sets_the_api_beside_the_computed_column_and_their_difference():
    cells = pd.DataFrame({"cell_id": ["a"], "scenario": ["s"], "go_version": ["1.27.3"], "touch": ["true"]})
    summary = pd.DataFrame({"working_set@idle": [250.0 * MiB], "docker_stats@idle": [260.0 * MiB],
                            "rss@idle": [300.0 * MiB]}, index=pd.Index(["a"], name="cell_id"))
    row = tool_table(summary, cells, ("idle",)).iloc[0]
    assert row["docker stats"] == 250 * MiB and row["docker stats (API)"] == 260 * MiB
    assert row["docker stats: API − computed"] == 10 * MiB
