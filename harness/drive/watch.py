"""goreclaim watch PID | CONTAINER | CGROUP_PATH: sample a process that is already running, for --duration or
until Ctrl-C (or its exit), into an ordinary run directory of one `watched` cell, then write its report:
where its memory is, over time, and which of the study's findings apply to it.

The process is read, never touched (harness.run.attach). Exit 0: the watch was written; 2: the process
cannot be watched (one line saying why).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from harness.define.errors import ScenarioError
from harness.define.units import UnitError, parse_positive_duration

EXIT_OK, EXIT_USAGE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="PID|CONTAINER|CGROUP_PATH",
                        help="a process id, a running Docker container's name or id, or a memory cgroup's path "
                             "(its process with the largest RSS)")
    parser.add_argument("--duration", default=None, metavar="DURATION",
                        help="how long to watch (30s, 5m); default: until Ctrl-C or the process exits")
    parser.add_argument("--metrics-url", default=None, metavar="URL",
                        help="the process's runtime metrics, polled on the slow tier: expvar memstats "
                             "(http://127.0.0.1:PORT/debug/vars) or a Prometheus page's go_memstats_*/go_gc_*")
    parser.add_argument("--results", default="results", metavar="DIR",
                        help="where the run directory is written (default results/)")
    parser.add_argument("--fast-hz", type=float, default=100.0, metavar="HZ",
                        help="the fast tier's rate: /proc/PID/status and the cgroup (default 100)")
    parser.add_argument("--slow-hz", type=float, default=2.0, metavar="HZ",
                        help="the slow tier's rate: smaps_rollup and the metrics URL (default 2)")


def _stop_on_signals() -> threading.Event:
    """An event Ctrl-C and SIGTERM set: they end the watch (never the process), whenever they come, also when a
    shell started it in the background with SIGINT ignored."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    return stop


def cmd_watch(args: argparse.Namespace) -> int:
    from harness.run.attach import AttachError, resolve, watch, watch_cell

    duration_s = None
    errors = []
    if args.duration is not None:
        try:
            duration_s = parse_positive_duration(args.duration)
        except UnitError as exc:
            errors.append(f"--duration {args.duration!r}: {exc}")
    for flag, hz in (("--fast-hz", args.fast_hz), ("--slow-hz", args.slow_hz)):
        if not hz > 0:
            errors.append(f"{flag} {hz:g}: give a rate above 0")
    if args.metrics_url and not args.metrics_url.startswith(("http://", "https://")):
        errors.append(f"--metrics-url {args.metrics_url!r}: give an http:// or https:// URL")
    if errors:
        raise ScenarioError(errors)
    try:
        target = resolve(args.target)
    except AttachError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from harness.present.report import write_report
    from harness.store.provenance import collect_manifest
    from harness.store.rundir import RunStore

    cell = watch_cell(target, args.metrics_url or "", args.fast_hz, args.slow_hz)
    described = target.describe()
    manifest = collect_manifest(backend="watch", backend_reason="a running process, read without touching it",
                                watch={**described, "metrics_url": args.metrics_url or "",
                                       "duration_s": duration_s},
                                command="goreclaim watch " + " ".join(args.argv), argv=list(args.argv))
    stop = _stop_on_signals()
    store = RunStore.create(Path(args.results), manifest)
    go = f"Go {target.go_version}" if target.go_version else "not a Go program (no Go build information)"
    settings = ", ".join(f"{k}={v}" for k, v in target.env.items() if v) or "no GOGC/GOMEMLIMIT/GODEBUG set"
    print(f"watching {target.named}: {target.exe}, {go}, {settings}"
          + (f", memory cgroup {target.cgroup.path}" if target.cgroup else "")
          + (f" for {args.duration}" if duration_s else "; Ctrl-C ends the watch (not the process)"), flush=True)
    for note in target.notes:
        print(f"  note: {note}", flush=True)
    result = watch(target, cell, duration_s, log=lambda line: print(line, flush=True), stop=stop)
    store.save_cell(result)
    run_dir = store.finish(True, {"cells_run": 1})
    try:
        from harness.drive.plan import STUDY

        print(f"report: {write_report(run_dir, STUDY)}")
    except Exception as exc:  # noqa: BLE001 - the measurements are saved; a report can be redone
        print(f"error: report not written ({type(exc).__name__}: {exc}); the measurements are saved: "
              f"retry with goreclaim report {run_dir}", file=sys.stderr)
        print(run_dir)
        return 1
    print(run_dir)
    return EXIT_OK
