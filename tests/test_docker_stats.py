"""Docker's stats API reader (harness.run.observe.docker_stats) on replies as the daemon sends them, and the
tool table's column beside the computed one. The real daemon: tests/test_backends.py."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analyse.views import tool_table
from harness.run.observe.docker_stats import DockerStats, memory_usage_no_cache
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
    def __init__(self, reply=None, error=None):
        self.reply, self.error, self.calls = reply, error, []

    def stats(self, container, stream, one_shot):
        self.calls.append((container, stream, one_shot))
        if self.error:
            raise self.error
        return self.reply


def test_a_reading_is_recorded_as_docker_samples():
    got, errors = [], []
    api = FakeAPI({"memory_stats": V2})
    DockerStats(api, "c1", got.extend, errors.append).read()
    assert api.calls == [("c1", False, True)]
    assert [(s, m, v) for _, s, m, v in got] == [("docker", "usage", 300 * MiB), ("docker", "inactive_file", 40 * MiB),
                                                 ("docker", "mem_usage", 260 * MiB)]
    assert not errors


def test_a_daemon_error_is_said_not_raised():
    got, errors = [], []
    DockerStats(FakeAPI(error=RuntimeError("gone")), "c1", got.extend, errors.append).read()
    assert not got and errors == ["docker stats API: RuntimeError: gone"]


def test_tool_table_sets_the_api_beside_the_computed_column_and_their_difference():
    cells = pd.DataFrame({"cell_id": ["a"], "scenario": ["s"], "go_version": ["1.27.3"], "touch": ["true"]})
    summary = pd.DataFrame({"working_set@idle": [250.0 * MiB], "docker_stats@idle": [260.0 * MiB],
                            "rss@idle": [300.0 * MiB]}, index=pd.Index(["a"], name="cell_id"))
    row = tool_table(summary, cells, ("idle",)).iloc[0]
    assert row["docker stats"] == 250 * MiB and row["docker stats (API)"] == 260 * MiB
    assert row["docker stats: API − computed"] == 10 * MiB
