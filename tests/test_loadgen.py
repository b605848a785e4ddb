"""A load generator's summary → requests/s, latency percentiles and errors. The fixtures are real outputs of
Debian's hey 0.1.4 and wrk 4.1.0 against `caddy respond` on 127.0.0.1 (tests/data/load/)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.run.loadgen import parse_load_output

DATA = Path(__file__).parent / "data" / "load"
MS = 1e6

# file → tool, requests/s, p50, p90, p99, max (ns), errors, requests
CASES = [
    ("hey_200.txt", "hey", 10736.7547, 0.5 * MS, 1.7 * MS, 8.6 * MS, 23.2 * MS, 0, 2000),
    ("hey_503.txt", "hey", 7092.9897, 0.4 * MS, 1.7 * MS, 3.9 * MS, 3.9 * MS, 300, 300),
    # Every connection refused: no latency was measured, 50 errors.
    ("hey_refused.txt", "hey", 18750.0539, math.nan, math.nan, math.nan, math.nan, 50, 50),
    ("wrk_200.txt", "wrk", 21204.02, 340e3, 3.61 * MS, 14.84 * MS, 32.47 * MS, 0, 42551),
    ("wrk_503.txt", "wrk", 18799.45, 158e3, 2.87 * MS, 15.20 * MS, 23.27 * MS, 18876, 18876),
]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9)


@pytest.mark.parametrize(("name", "tool", "rps", "p50", "p90", "p99", "top", "errors", "requests"), CASES)
def test_parsed_from_a_real_output(name, tool, rps, p50, p90, p99, top, errors, requests):
    report = parse_load_output((DATA / name).read_text())
    assert report is not None and report.tool == tool
    got = (report.requests_per_s, report.p50_ns, report.p90_ns, report.p99_ns, report.max_ns, report.errors,
           report.requests)
    for value, want in zip(got, (rps, p50, p90, p99, top, errors, requests), strict=True):
        assert same(value, want), (name, got)


@pytest.mark.parametrize("text", [
    (DATA / "wrk_refused.txt").read_text(),   # wrk prints one line when it cannot connect
    # wrk without --latency has no percentiles: not parsed rather than parsed without them
    "\n".join(line for line in (DATA / "wrk_200.txt").read_text().splitlines()
              if "%" not in line or "Stdev" in line).replace("Latency Distribution", ""),
    "curl: (7) Failed to connect",
    "",
])
def test_other_output_is_not_parsed(text):
    assert parse_load_output(text) is None


def test_an_unparsed_load_is_kept_and_said(tmp_path):
    from harness.define.cell import Cell
    from harness.define.workloads import Program
    from harness.run.observation import Observation

    program = Program(kind="binary", name="srv", binary="/bin/true", ready="tcp:{port}", load=("curl", "x"))
    obs = Observation(Cell(cell_id="s[r0]", scenario="s", workload="srv", args=(), program=program))
    note = obs.load_ran(["curl", "x"], "curl: (7) Failed to connect", 5)
    assert "neither hey's summary nor wrk --latency's" in note and "load.txt" in note
    assert bytes(obs.output["load"]) == b"curl: (7) Failed to connect"
    ((t, kind, name, value, _),) = [e for e in obs.parser.events if e[1] == "load"]
    assert (t, kind, name, math.isnan(value)) == (5, "load", "unparsed", True)
    assert obs.load_ran(["hey"], (DATA / "hey_200.txt").read_text(), 6) == ""
