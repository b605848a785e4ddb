import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.run.observe.telemetry import TelemetryParser, parse_gctrace, parse_scavtrace

# Captured from a Go 1.27.3 program run with GODEBUG=gctrace=1,scavtrace=1.
GO127_STDERR = """\
gc 1 @0.000s 28%: 0.098+6.9+0.19 ms clock, 0.19+0/4.1/0+0.39 ms cpu, 64->64->64 MB, 64 MB goal, 0 MB stacks, 0 MB globals, 2 P
scav 0 KiB work (bg), 0 KiB work (eager), 3496 KiB now, 99% util
gc 2 @0.162s 1%: 0.19+0.16+0.003 ms clock, 0.39+0/0.053/0.19+0.006 ms cpu, 64->64->0 MB, 128 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
scav 32 KiB work (bg), 0 KiB work (eager), 3464 KiB now, 99% util
gc 11 @0.197s 0%: 0.081+0.092+0.001 ms clock, 0.16+0/0.14/0+0.003 ms cpu, 0->0->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
scav 0 KiB work (bg), 65568 KiB work (eager), 69112 KiB now, 100% util (forced)
"""  # noqa: E501 (the runtime's lines as it wrote them)

# Go 1.15's formats (runtime/mgc.go gcMarkTermination and mgcscavenge.go printScavTrace of that release):
# no stacks/globals in gctrace; scavtrace has a generation number and "KiB total".
GO115_STDERR = """\
gc 1 @0.019s 1%: 0.017+0.52+0.003 ms clock, 0.034+0.10/0.37/0.21+0.007 ms cpu, 4->4->0 MB, 5 MB goal, 2 P
gc 2 @1.204s 0%: 0.006+1.2+0.002 ms clock, 0.012+0/0.33/1.1+0.005 ms cpu, 1024->1024->0 MB, 1025 MB goal, 2 P (forced)
scav 3 262144 KiB work, 1048576 KiB total, 0% util (forced)
"""


def test_gctrace_new_format():
    gc = parse_gctrace(GO127_STDERR.splitlines()[2])
    assert gc["num_gc"] == 2 and gc["forced"]
    assert gc["heap_start_bytes"] == 64 << 20 and gc["heap_end_bytes"] == 64 << 20
    assert gc["heap_live_bytes"] == 0 and gc["goal_bytes"] == 128 << 20
    assert gc["stacks_bytes"] == 0 and gc["globals_bytes"] == 0 and gc["procs"] == 2
    assert gc["at_s"] == pytest.approx(0.162)


def test_gctrace_old_format():
    gc = parse_gctrace(GO115_STDERR.splitlines()[1])
    assert gc["num_gc"] == 2 and gc["forced"]
    assert gc["heap_end_bytes"] == 1024 << 20 and gc["goal_bytes"] == 1025 << 20
    assert "stacks_bytes" not in gc


def test_gctrace_with_note_after_utilisation():
    line = ("gc 5 @1.000s 3% (checking for goroutine leaks): 0.1+0.2+0.01 ms clock, 0.2+0/0.1/0+0.02 ms cpu, "
            "8->9->2 MB, 10 MB goal, 0 MB stacks, 0 MB globals, 2 P")
    assert parse_gctrace(line)["heap_end_bytes"] == 9 << 20


def test_scavtrace_formats():
    new = parse_scavtrace(GO127_STDERR.splitlines()[5])
    assert new["released_bytes"] == 65568 * 1024 and new["released_eager_bytes"] == 65568 * 1024
    assert new["heap_released_bytes"] == 69112 * 1024 and new["forced"]
    old = parse_scavtrace(GO115_STDERR.splitlines()[2])
    assert old["released_bytes"] == 262144 * 1024 and old["heap_released_bytes"] == 1048576 * 1024
    no_gen = parse_scavtrace("scav 12 KiB work, 3400 KiB total, 99% util")
    assert no_gen["released_bytes"] == 12 * 1024 and not no_gen["forced"]
    assert parse_scavtrace("scavenger says hi") is None


@pytest.mark.parametrize("text,gcs,scavs", [(GO127_STDERR, 3, 3), (GO115_STDERR, 2, 1)])
def test_stderr_lines_become_events(text, gcs, scavs):
    p = TelemetryParser()
    for i, line in enumerate(text.splitlines()):
        p.feed_stderr(line + "\n", 1000 + i)
    kinds = [e[1] for e in p.events]
    assert kinds.count("gc") == gcs and kinds.count("scav") == scavs
    gc_events = [e for e in p.events if e[1] == "gc"]
    assert gc_events[0][0] == 1000
    detail = json.loads(gc_events[0][4])
    assert detail["line"] == text.splitlines()[0]
    assert p.stderr_tail() == ""


def _protocol_lines():
    return [
        {"t": 100, "ev": "start", "workload": "alloc-release", "go_version": "go1.27.3",
         "env": {"GOGC": "", "GODEBUG": "", "GOMEMLIMIT": ""}, "gogc_percent": 100, "memlimit_bytes": -1,
         "gomaxprocs": 2, "pid": 1, "args": {"size": "1GiB"}},
        {"t": 110, "ev": "phase", "name": "baseline"},
        {"t": 120, "ev": "metrics", "m": {"heap_alloc": 1024, "gc_cpu_fraction": 0.01, "num_gc": 0}},
        {"t": 130, "ev": "freeos", "dur_ns": 5000},
        {"t": 140, "ev": "sizes", "size": 16, "ops": 10, "ops_per_s": 2.5e6, "tiny_allocs": 0,
         "small_allocs": 10, "large_allocs": 0},
        {"t": 150, "ev": "end", "totals": {"num_gc": 3, "wall_s": 1.5}},
    ]


def test_stdout_protocol():
    p = TelemetryParser()
    for obj in _protocol_lines():
        p.feed_stdout(json.dumps(obj) + "\n", 999)
    assert p.start["workload"] == "alloc-release" and p.end == {"num_gc": 3, "wall_s": 1.5}
    assert p.samples == [(120, "runtime", "heap_alloc", 1024.0), (120, "runtime", "gc_cpu_fraction", 0.01),
                         (120, "runtime", "num_gc", 0.0)]
    by_kind = {e[1]: e for e in p.events}
    assert by_kind["start"][:3] == (100, "start", "alloc-release") and math.isnan(by_kind["start"][3])
    assert by_kind["phase"][2] == "baseline"
    assert by_kind["freeos"][2:4] == ("freeos", 5000.0)
    assert by_kind["sizes"][2:4] == ("16", 2.5e6) and json.loads(by_kind["sizes"][4])["ops"] == 10
    assert by_kind["end"][2] == "alloc-release" and json.loads(by_kind["end"][4]) == {"num_gc": 3, "wall_s": 1.5}
    assert p.bad_lines == 0


def test_garbage_is_kept_not_fatal():
    p = TelemetryParser()
    p.feed_stdout("hello, not json\n", 1)
    p.feed_stdout('{"t": 5, "ev": "warp"}', 2)               # unknown event
    p.feed_stdout('{"t": 5, "ev": "phase"}', 3)              # missing field
    p.feed_stdout('[1, 2]', 4)
    p.feed_stderr("fatal error: runtime: out of memory", 5)
    p.feed_stderr("gc 1 @garbage", 6)
    assert p.bad_lines == 4 and p.events == [] and p.samples == []
    tail = p.stderr_tail().splitlines()
    assert tail[0] == "hello, not json" and tail[-1] == "gc 1 @garbage"
    assert "fatal error: runtime: out of memory" in tail
    assert p.stderr_tail(2).splitlines() == ["fatal error: runtime: out of memory", "gc 1 @garbage"]


GO = Path(os.environ.get("GORECLAIM_GO", Path(__file__).resolve().parents[1]
                         / ".venv/lib/python3.11/site-packages/go/bin/go"))

_PROGRAM = """package main

import (
	"runtime"
	"runtime/debug"
)

var sink []byte

func main() {
	for i := 0; i < 3; i++ {
		sink = make([]byte, 32<<20)
		for j := 0; j < len(sink); j += 4096 {
			sink[j] = 1
		}
		sink = nil
		runtime.GC()
	}
	debug.FreeOSMemory()
}
"""


def test_real_go_runtime_traces(tmp_path):
    go = GO if GO.exists() else (Path(shutil.which("go")) if shutil.which("go") else None)
    if go is None:
        pytest.skip(f"no Go toolchain at {GO} or on PATH")
    (tmp_path / "main.go").write_text(_PROGRAM)
    (tmp_path / "go.mod").write_text("module tracecheck\n\ngo 1.21\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOGC", "GODEBUG", "GOMEMLIMIT"))}
    env.update(GOCACHE=str(tmp_path / "cache"), GOPATH=str(tmp_path / "gopath"), CGO_ENABLED="0")
    subprocess.run([str(go), "build", "-o", "prog", "."], cwd=tmp_path, env=env, check=True, timeout=300)
    env["GODEBUG"] = "gctrace=1,scavtrace=1"
    out = subprocess.run(["./prog"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    p = TelemetryParser()
    for line in out.stderr.splitlines():
        p.feed_stderr(line, time.monotonic_ns())
    gcs = [e for e in p.events if e[1] == "gc"]
    scavs = [e for e in p.events if e[1] == "scav"]
    assert len(gcs) >= 4, out.stderr          # three runtime.GC() plus the one in FreeOSMemory
    assert p.stderr_tail() == "", "unparsed runtime lines:\n" + p.stderr_tail()
    # FreeOSMemory's forced scavenge returns what is left of the dropped 32 MiB spike: how much depends on what
    # the background scavenger took first (15 MiB once on a busy machine), so only that it is megabytes.
    forced = [json.loads(e[4]) for e in scavs if json.loads(e[4])["forced"]]
    assert forced and forced[-1]["released_bytes"] >= 4 << 20, out.stderr


def test_feed_stdout_says_which_event_it_read():
    p = TelemetryParser()
    assert p.feed_stdout('{"t":1,"ev":"phase","name":"hold"}', 2) == "phase"
    assert p.feed_stdout('{"t":3,"ev":"metrics","m":{"heap_inuse":1}}', 4) == "metrics"
    assert p.feed_stdout("not json", 5) is None
    assert p.feed_stdout('{"t":6,"ev":"nonsense"}', 7) is None
