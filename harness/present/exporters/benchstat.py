"""benchstat.txt: the run in Go's benchmark format (golang.org/x/perf/benchfmt), for `benchstat`.

    goos: linux
    goarch: amd64
    kernel: 6.18.44
    cgroup: v1
    backend: docker
    run-id: 20261125-200257-e68b
    go: 1.27.3
    BenchmarkAllocRelease/freeos=false/touch=true 1 1079189504.0 peak-rss-bytes 31.0 gc-cycles ...

Configuration lines (`key: value`) come first and apply to every line after them; `go:` is repeated
before each Go version's cells, so `benchstat -col go benchstat.txt` sets Go versions side by side.
Each usable cell (status ok or oom_killed) is one line named `Benchmark<Scenario>/<axis=value>/...`:
the scenario in CamelCase and the axes that vary within it (not the Go version, not the repeat: a
repeat is another line of the same name, which benchstat pools). Names hold no spaces.

Values are in the metric unit's base quantity, each followed by its unit name: the metric's name in
dashes with the unit's benchstat suffix (harness.define.units.Unit.benchstat; "B" spelled "bytes",
as Go's sweet does, which benchstat scales as binary sizes):

    peak-rss-bytes, mean-rss-bytes, rss-at-release-bytes (X@phase → x-at-phase), ...
    gc-cpu-sec, cpu-sec, wall-sec, release-sec       seconds (a trailing _s in the name becomes -sec)
    freeos-p50-ns, freeos-p99-ns                     nanoseconds
    throughput-ops/s                                 operations per second
    gc-cycles, minflt, majflt, ops, freeos-calls, oom-killed, gc-cpu-fraction   plain numbers

A metric without a value (NaN) is left out of its line; text metrics are never written.
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd

from harness.analyse.claims import USABLE_STATUSES
from harness.analyse.summary import config_label
from harness.define.axes import axis_text
from harness.define.metrics import METRICS, metric_unit
from harness.present.results import Results, section

_NOT_NAME = re.compile(r"\s+")
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


def camel(scenario: str) -> str:
    """'cache_growth_2' → 'CacheGrowth2'."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-\s]+", scenario) if part)


def unit_name(metric: str) -> str | None:
    """The benchfmt unit of a summary metric; None for a metric that is not a number."""
    unit = metric_unit(metric)
    if unit.name == "text":
        return None
    if metric in METRICS and METRICS[metric].benchfmt:
        return METRICS[metric].benchfmt  # Go's own unit: benchstat compares it with `go test -bench` output
    base, _, phase = metric.partition("@")
    words = base.split("_")
    if len(words) > 1 and words[-1] in ("s", "ns"):
        words = words[:-1]  # the unit says it
    name = "-".join(words) + (f"-at-{phase}" if phase else "")
    suffix = "bytes" if unit.benchstat == "B" else unit.benchstat
    return _NOT_NAME.sub("_", f"{name}-{suffix}" if suffix else name)


def _config_value(value) -> str:
    return " ".join(str(value).split())


def config_lines(manifest: dict) -> list[str]:
    """The run's provenance as benchfmt `key: value` lines."""
    host, kernel, cgroup, harness = (section(manifest, k) for k in ("host", "kernel", "cgroup", "harness"))
    pairs = [
        ("goos", "linux"),  # every backend runs the workloads on Linux
        ("goarch", _GOARCH.get(str(host.get("arch", "")), host.get("arch"))),
        ("kernel", kernel.get("release")),
        ("cgroup", f"v{cgroup['memory_version']}" if cgroup.get("memory_version") else None),
        ("thp", manifest.get("thp") if isinstance(manifest.get("thp"), str) else None),
        ("host-cpus", host.get("cpus")),
        ("backend", manifest.get("backend")),
        ("run-id", manifest.get("run_id")),
        ("harness-commit", harness.get("git_commit")),
    ]
    return [f"{k}: {_config_value(v)}" for k, v in pairs if v is not None and _config_value(v)]


def benchmark_name(scenario: str, label: str, benchmark: str = "") -> str:
    """Benchmark<Scenario>/<axis=value>/...: config_label's pairs without the Go version; a
    program's benchmark keeps its own name (BenchmarkCodeDecoder/gogc=50)."""
    parts = [p for p in label.split(", ") if p and p != "default"
             and not p.startswith(("go_version=", "go="))]
    name = "/".join([benchmark or "Benchmark" + camel(scenario)] + [p.replace("/", "_") for p in parts])
    return _NOT_NAME.sub("_", name)


def _number(value: float) -> str:
    return repr(float(value))


def benchmark_lines(results: Results) -> list[str]:
    cells, summary = results.cells, results.summary
    if cells.empty or "cell_id" not in cells.columns or "scenario" not in cells.columns:
        return []
    cells = cells.reset_index(drop=True)
    if "status" in cells.columns:
        cells = cells[cells["status"].astype(str).isin(USABLE_STATUSES)].reset_index(drop=True)
    labels = config_label(cells) if len(cells) else pd.Series(dtype=object)
    units = {str(m): unit_name(str(m)) for m in summary.columns}
    go = cells["go_version"].map(axis_text) if "go_version" in cells.columns else pd.Series("unset", cells.index)
    custom, written = _custom_metrics(results), set(units.values())
    out: list[str] = []
    for version in dict.fromkeys(go):
        out += ["", f"go: {version}"]
        for i in cells.index[go == version]:
            cell_id = str(cells.at[i, "cell_id"])
            if cell_id not in summary.index:
                continue
            values = []
            for metric, value in summary.loc[cell_id].items():
                unit = units[str(metric)]
                if unit is None or not isinstance(value, (int, float)) or not math.isfinite(value):
                    continue
                values.append(f"{_number(value)} {unit}")
            values += [f"{_number(v)} {_NOT_NAME.sub('_', u)}" for u, v in custom.get(cell_id, {}).items()
                       if u not in written and isinstance(v, (int, float)) and math.isfinite(v)]
            if values:
                benchmark = summary.at[cell_id, "benchmark"] if "benchmark" in summary.columns else ""
                name = benchmark_name(str(cells.at[i, "scenario"]), labels[i], str(benchmark or ""))
                out.append(f"{name} 1 " + " ".join(values))
    return out


def _custom_metrics(results: Results) -> dict[str, dict]:
    """Each program benchmark's own metrics (b.ReportMetric), from its first result line, by cell;
    the events are filtered once, not once per cell."""
    events = results.run.events
    if events.empty:
        return {}
    bench = events[events["kind"].astype(str) == "bench"]
    out: dict[str, dict] = {}
    for cell_id, detail in zip(bench["cell_id"].astype(str), bench["detail"], strict=False):
        if cell_id in out:
            continue
        try:
            out[cell_id] = json.loads(detail).get("metrics", {}) or {}
        except (ValueError, AttributeError, TypeError):
            out[cell_id] = {}
    return out


class BenchstatExporter:
    name = "benchstat"
    file_name = "benchstat.txt"

    def render(self, results: Results) -> bytes:
        lines = config_lines(results.manifest) + benchmark_lines(results)
        return ("\n".join(lines) + "\n").encode("utf-8")
