"""What a load generator said about a server: `hey`'s summary and `wrk --latency`, parsed into numbers.

`--load` runs any command; when its output is the summary of one of these two generators, the
cell gets its requests/s, latency percentiles and error count (harness.define.metrics: load_*).
Any other output is kept whole, and the cell says it was not parsed.

Errors count what an operator counts as a failed request: responses outside 2xx/3xx (wrk's
"Non-2xx or 3xx responses", hey's status code lines) and requests that got no response (wrk's
"Socket errors", hey's "Error distribution").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

NAN = float("nan")


@dataclass(frozen=True)
class LoadReport:
    """One load run's numbers, latencies in nanoseconds; NaN where the generator gave none."""

    tool: str                  # hey | wrk
    requests_per_s: float      # as the generator reports it (hey counts failed requests in it too)
    p50_ns: float
    p90_ns: float
    p99_ns: float
    max_ns: float
    errors: float              # non-2xx/3xx responses + requests without a response
    requests: float            # requests made (wrk: completed; hey: responses + errors)

    def as_detail(self) -> dict[str, float | str]:
        return asdict(self)


_UNIT_NS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9, "secs": 1e9}
_NUMBER = r"([-+0-9.eE]+|NaN)"


def _ns(value: str, unit: str) -> float:
    return float(value) * _UNIT_NS[unit]


def _search(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.M)


def parse_hey(text: str) -> LoadReport | None:
    """hey's summary (rakyll/hey: Summary, Latency distribution, Status code distribution, Error
    distribution) → LoadReport; None when the text is not one."""
    rps = _search(r"^\s*Requests/sec:\s+" + _NUMBER, text)
    if rps is None or "Latency distribution:" not in text:
        return None
    percentiles = {int(p): float(v) * 1e9
                   for p, v in re.findall(r"^\s*(\d+)% in " + _NUMBER + r" secs", text, re.M)}
    slowest = _search(r"^\s*Slowest:\s+" + _NUMBER + " secs", text)
    statuses = {int(code): int(n) for code, n in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", text, re.M)}
    errors_part = text.split("Error distribution:", 1)[1] if "Error distribution:" in text else ""
    no_response = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\s", errors_part, re.M))
    bad_status = sum(n for code, n in statuses.items() if not 200 <= code < 400)
    answered = sum(statuses.values())
    return LoadReport(
        tool="hey", requests_per_s=float(rps.group(1)),
        p50_ns=percentiles.get(50, NAN), p90_ns=percentiles.get(90, NAN), p99_ns=percentiles.get(99, NAN),
        # With no response at all hey prints Slowest 0: no latency was measured.
        max_ns=float(slowest.group(1)) * 1e9 if slowest and answered else NAN,
        errors=float(bad_status + no_response), requests=float(answered + no_response))


_WRK_LATENCY_UNIT = r"(ns|us|µs|ms|s|m|h)"


def parse_wrk(text: str) -> LoadReport | None:
    """`wrk --latency` output (Thread Stats, Latency Distribution, "N requests in", Requests/sec, Socket
    errors, Non-2xx or 3xx responses) → LoadReport; None when the text is not one (without --latency
    wrk prints no percentiles: None too, the cell then says its output was not parsed)."""
    rps = _search(r"^Requests/sec:\s+" + _NUMBER, text)
    if rps is None or "Latency Distribution" not in text:
        return None
    percentiles = {int(p): _ns(v, u) for p, v, u in
                   re.findall(r"^\s*(\d+)%\s+" + _NUMBER + _WRK_LATENCY_UNIT + r"\s*$", text, re.M)}
    stats = _search(r"^\s*Latency\s+" + _NUMBER + _WRK_LATENCY_UNIT + r"\s+" + _NUMBER + r"\S*\s+"
                    + _NUMBER + _WRK_LATENCY_UNIT, text)
    requests = _search(r"^\s*(\d+) requests in", text)
    socket = _search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = _search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = (sum(int(g) for g in socket.groups()) if socket else 0) + (int(non_2xx.group(1)) if non_2xx else 0)
    return LoadReport(
        tool="wrk", requests_per_s=float(rps.group(1)),
        p50_ns=percentiles.get(50, NAN), p90_ns=percentiles.get(90, NAN), p99_ns=percentiles.get(99, NAN),
        max_ns=_ns(stats.group(4), stats.group(5)) if stats else NAN,
        errors=float(errors), requests=float(requests.group(1)) if requests else NAN)


def parse_load_output(text: str) -> LoadReport | None:
    """The numbers of a hey or wrk run, whichever wrote `text`; None for any other output."""
    return parse_hey(text) or parse_wrk(text)
