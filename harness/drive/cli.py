"""goreclaim run|advise|watch|clean|validate|list|report|build (also `python -m harness`)

Exit status: 0 every cell ran (an OOM kill is an outcome, not an error), 1 an expectation
failed or a cell failed or timed out, 2 bad input (scenario files, --matrix values, paths).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.define.axes import STANDARD_AXES
from harness.define.errors import ScenarioError
from harness.define.matrix import expand
from harness.define.scenario import RunSettings, discover, parse_program, program_scenario, resolve_path
from harness.define.units import UnitError, parse_positive_duration
from harness.define.workloads import WORKLOADS
from harness.drive.options import CLI_ONLY, PROGRAM_FLAGS, PROGRAM_OPTIONS, add_run_options, program_table, split_go
from harness.drive.plan import STUDY, claims_of, load_scenario, plan
from harness.run.backends.base import ERRORS
from harness.run.backends.select import BackendUnavailable
from harness.store.rundir import StoreError

if TYPE_CHECKING:
    from harness.drive.session import Outcome

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _program(args: argparse.Namespace):
    """The scenario of the program named by --program (None without it); ScenarioError for a bad one."""
    program_args = getattr(args, "program_args", [])
    if args.program is None:
        given = [flag for flag, value in (("--mount", args.mount), ("--idle", args.idle), ("--grace", args.grace),
                                          ("--ready", args.ready), ("--load", args.load),
                                          ("--ready-timeout", args.ready_timeout),
                                          ("--metrics-url", args.metrics_url), ("--timeout", args.timeout),
                                          ("arguments after --", program_args)) if value]
        if given:
            raise ScenarioError([f"{', '.join(given)}: only with --program PATH (a [program] table in a scenario "
                                 "file has its own args, mounts, idle and grace)"])
        return None
    program, errors = parse_program(program_table(args, program_args), Path.cwd(),
                                    lambda key: PROGRAM_FLAGS.get(key, f"--{key}"))
    run = RunSettings()
    if args.timeout is not None:
        try:
            run = RunSettings(timeout_s=parse_positive_duration(args.timeout))
        except UnitError as exc:
            errors.append(f"--timeout: {exc}")
    if errors or program is None:  # parse_program gives a Program whenever it finds no error
        raise ScenarioError(errors or ["--program: not a program"])
    return program_scenario(program, run)


def _one_after_another(*parts: Callable[[], Generator[Outcome, None, None]]) -> Generator[Outcome, None, None]:
    """The outcomes of each part in turn; a part is started only once the one before has ended, and
    closing this closes the running one (its cells cancelled and cleaned up)."""
    for start in parts:
        yield from start()


def cmd_run(args: argparse.Namespace) -> int:
    resume = None
    if args.resume:
        resume, saved = _resumable(args, "run")
        args = _parse_saved("run", saved["argv"], results=resume.parent)
    if args.workers and args.scheduler:
        raise ScenarioError(["--workers N starts a cluster on this host, --scheduler uses another: give one"])
    scenarios, cells = plan(args.scenarios, args.matrix, args.repeats, split_go(args.go), args.backend,
                            args.quick, program=_program(args))
    from harness.drive.guest_cells import asks_for_host, in_guest
    from harness.drive.session import RunSession, progress_line

    failures: list[str] = []
    bad_cells: list[str] = []
    skipped: list[str] = []
    started = time.monotonic()
    # `argv` is what --resume runs again.
    manifest_extra = {"scenarios": [s.name for s in scenarios], "matrix": list(args.matrix),
                      "quick": args.quick, "command": " ".join(sys.argv), "argv": list(args.argv),
                      "cluster": args.scheduler or (f"local, {args.workers} CPUs" if args.workers else "none")}
    session = RunSession(Path(args.results), backend=args.backend or "auto", manifest_extra=manifest_extra,
                         scenarios=scenarios, resume=resume)
    planned = len(cells)
    if resume is not None:
        finished = session.store.finished()
        kept = [c for c in cells if c.cell_id in finished]
        cells = [c for c in cells if c.cell_id not in finished]
        print(f"resuming {resume}: {len(kept)} of {planned} cells on disk are kept, {len(cells)} to run", flush=True)
        for message in session.check_kept(kept, cells):
            failures.append(message)
            print(f"  FAIL {message}", flush=True)
        for cell in kept:  # the exit status counts them as a run that was never stopped would
            if finished[cell.cell_id] in ERRORS:
                bad_cells.append(f"{cell.cell_id}: {finished[cell.cell_id]} (kept from before)")
            elif finished[cell.cell_id] == "skipped":
                skipped.append(f"{cell.cell_id} (kept from before)")
    complete = False
    if args.workers or args.scheduler:  # cells in parallel, saved as they finish (harness.drive.cluster)
        from harness.drive.cluster import measure_on_cluster
        from harness.drive.guest_cells import measure_with_guests

        # A cluster's workers boot no guest kernel: the cells that need one run here once the
        # cluster's are done, one boot per group as without a cluster.
        on_cluster = [c for c in cells if not in_guest(c)]
        here = [c for c in cells if in_guest(c)]
        parts: list[Callable[[], Generator[Outcome, None, None]]] = []
        if on_cluster:
            parts.append(lambda: measure_on_cluster(session, on_cluster, workers=args.workers,
                                                    scheduler=args.scheduler))
        if here:
            parts.append(lambda: measure_with_guests(session, here))
        outcomes = _one_after_another(*parts)
    elif any(asks_for_host(c) for c in cells):  # the host axes: some cells in a guest kernel
        from harness.drive.guest_cells import measure_with_guests

        outcomes = measure_with_guests(session, cells)
    else:
        outcomes = (session.measure(cell) for cell in cells)
    try:
        i = 0
        for outcome in outcomes:
            result = outcome.result
            i += not outcome.requeued
            print(progress_line(max(i, 1), len(cells), result, time.monotonic() - started), flush=True)
            if result.status in ERRORS and not outcome.requeued:  # a requeued cell's last outcome counts
                bad_cells.append(f"{result.cell.cell_id}: {result.status}: {result.reason}")
            elif result.status == "skipped":
                skipped.append(f"{result.cell.cell_id}: {result.reason}")
            for message in outcome.failures:
                failures.append(message)
                print(f"  FAIL {message}", flush=True)
        complete = True
    except KeyboardInterrupt:
        print("interrupted: keeping the cells measured so far", file=sys.stderr)
    finally:
        outcomes.close()  # a cluster's cells still running are cancelled and cleaned up
        run_dir = session.close(complete=complete)

    for note in session.checker.unchecked():
        print(f"  not checked: {note}")
    report_failed = False
    try:
        from harness.present.report import write_report

        report = write_report(run_dir, STUDY)
        print(f"report: {report}")
    except Exception as exc:  # noqa: BLE001 - the measurements are saved; a report can be redone
        report_failed = True
        print(f"error: report not written ({type(exc).__name__}: {exc}); the measurements are saved: "
              f"retry with goreclaim report {run_dir}", file=sys.stderr)
    ran = f"{len(cells)} cells" if complete else f"{session.cells_run} of {len(cells)} cells (interrupted)"
    if len(cells) < planned:
        ran += f" (and {planned - len(cells)} kept from before)"
    print(f"{ran} in {time.monotonic() - started:.0f}s: {len(failures)} expectation failures, "
          f"{len(bad_cells)} failed/timed out, {len(skipped)} skipped")
    for note in bad_cells + [f"skipped {s}" for s in skipped]:
        print(f"  {note}")
    print(run_dir)
    if not complete:
        print(f"continue with: goreclaim run --resume {run_dir}")
        return 130
    return EXIT_FAILED if failures or bad_cells or report_failed else EXIT_OK


def cmd_advise(args: argparse.Namespace) -> int:
    from harness.drive import advise

    argv, saved, resume = list(args.argv), None, None
    if args.resume:
        resume, saved = _resumable(args, "advise")
        argv = list(saved["argv"])
        args = _parse_saved("advise", argv, results=resume.parent)
    plan = advise.make_plan(args, _program(args))
    return advise.run(plan, args.results, argv, resume=resume, saved=saved)


def _before_dashes(argv: list[str]) -> list[str]:
    return argv[:argv.index("--")] if "--" in argv else argv


def _after_dashes(argv: list[str]) -> list[str]:
    return argv[argv.index("--") + 1:] if "--" in argv else []


def _resumable(args: argparse.Namespace, command: str) -> tuple[Path, dict]:
    """(the run directory, the settings holding its `argv`) for `goreclaim run|advise --resume RUN_DIR`;
    StoreError (exit 2) for a directory that cannot be continued by this command."""
    from harness.store.rundir import load_run

    run_dir = Path(args.resume)
    given = [a for a in args.argv if a not in ("--resume", args.resume, f"--resume={args.resume}")]
    if given:  # the run directory holds the command line; a second one would contradict it
        raise ScenarioError([f"--resume RUN_DIR: give nothing else ({' '.join(given)}); the run directory holds "
                             "the command line it continues"])
    if not (run_dir / "manifest.json").is_file():
        raise StoreError(f"{run_dir}: not a run directory (no manifest.json); --resume continues a run "
                         f"directory made by goreclaim {command}")
    manifest = load_run(run_dir).manifest
    made_by_advise = isinstance(manifest.get("advise"), dict)
    if command == "advise":
        if not made_by_advise or "argv" not in manifest["advise"]:
            raise StoreError(f"{run_dir}: not an advise run (its manifest has no advise settings); "
                             "--resume continues a goreclaim advise run")
        return run_dir, manifest["advise"]
    if made_by_advise:
        raise StoreError(f"{run_dir}: made by goreclaim advise; continue it with goreclaim advise --resume {run_dir}")
    if manifest.get("complete") is True:
        raise StoreError(f"{run_dir}: complete already ({manifest.get('n_cells', 0)} cells); nothing to resume")
    if not isinstance(manifest.get("argv"), list):
        raise StoreError(f"{run_dir}: its manifest has no argv (made before runs kept their command line); "
                         "it cannot be resumed: run it again")
    return run_dir, manifest


def _parse_saved(command: str, argv: list[str], results: Path) -> argparse.Namespace:
    """A command line saved in a manifest, parsed as `main` parses one, writing into `results`."""
    args = parser().parse_args([command, *_before_dashes(argv)])
    args.program_args = _after_dashes(argv)
    args.argv = list(argv)
    args.results = str(results)
    return args


def cmd_clean(args: argparse.Namespace) -> int:
    from harness.run.leftovers import sweep

    swept = sweep(log=print)
    if not swept.removed and not swept.failed:
        print("nothing to remove")
    if swept.unowned:
        print(f"left alone: {len(swept.unowned)} goreclaim container(s) without an owner label (an older "
              f"goreclaim's, or a run still going): {', '.join(swept.unowned)}")
    for failure in swept.failed:
        print(f"error: could not remove {failure}", file=sys.stderr)
    return EXIT_FAILED if swept.failed else EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    errors = []
    for name in args.files:
        try:
            scenario = load_scenario(resolve_path(name))
            expand(scenario)
            expand(scenario, quick=True)
            print(f"{scenario.path}: ok")
        except ScenarioError as exc:
            errors.extend(exc.errors)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    print("scenarios (cells: default / --quick):")
    errors = []
    paths = discover()
    width = max((len(p.stem) for p in paths), default=0)  # a scenario's name is its file's
    for path in paths:
        try:
            scenario = load_scenario(path)
            full, quick = len(expand(scenario)), len(expand(scenario, quick=True))
            print(f"  {scenario.name:<{width}} {','.join(claims_of(scenario)):<12} {full:>3} / {quick:<3} "
                  f"{scenario.workload}: {scenario.description}")
        except ScenarioError as exc:
            errors.extend(exc.errors)
    print("workloads and their flags (each flag is also an axis):")
    for workload in WORKLOADS.values():
        flags = ", ".join(f"{p.name}={p.default}" for p in workload.params)
        print(f"  {workload.name:<16} phases {'>'.join(workload.phases)}\n      {flags}")
    print(f"standard axes: {', '.join(STANDARD_AXES)}")
    print("your own program: goreclaim run --program PATH [--matrix ...] -- ARGS..., or a scenario file with a "
          "[program] table (binary, package or bench; README: Measure your own program)")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"error: {run_dir}: not a run directory", file=sys.stderr)
        return EXIT_USAGE
    from harness.present.report import write_report
    from harness.store.rundir import load_run

    print(write_report(run_dir, STUDY))
    if load_run(run_dir).manifest.get("advise"):
        from harness.present.advice import write_advice

        print(write_advice(run_dir)[0])
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from harness.build.workload_build import build_many
    from harness.define.project import DEFAULT_GO

    versions = split_go(args.go) or [DEFAULT_GO]
    builds = build_many(versions, log=print)
    for build in builds:
        print(f"go {build.go_version}: {build.bin_dir}")
    return EXIT_OK if len(builds) == len(versions) else EXIT_FAILED


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="goreclaim",
        description="Run Go memory-release experiments in memory-limited containers and report on them.")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run scenarios, check their expectations, write the report",
                         description="Run scenarios cell by cell; the last line printed is the run directory. "
                                     "Exit 0: every cell ran (an OOM kill is an outcome); 1: an expectation "
                                     "failed, a cell failed or the report could not be written; "
                                     "2: bad input; 130: interrupted (continue with --resume RUN_DIR).")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                     help="scenario names (alloc_release) or .toml paths; default: every file in scenarios/")
    run.add_argument("--resume", default=None, metavar="RUN_DIR",
                     help="finish an interrupted or killed run with the command line it was started with: the "
                          "cells on disk stay, a cell cut short runs again whole (give no other option)")
    add_run_options(run.add_argument)
    for option in PROGRAM_OPTIONS:
        run.add_argument(option.flag, help=option.help, dest=option.dest, **option.kwargs)
    run.set_defaults(func=cmd_run)

    advise = sub.add_parser(
        "advise", help="the GOMEMLIMIT and GOGC that fit a container, measured",
        description="Sweep GOMEMLIMIT (off, 70-95% of the limit) × GOGC (50, 100, 200, and off with a "
                    "GOMEMLIMIT) in a container of --memory; class every configuration (OOM-killed, death spiral, "
                    "throttled at --memory-high, working set above the headroom, healthy); recommend one by "
                    "--objective; write advice.md, "
                    "advice.html, advice.json and the figure into a run directory. The first cell is timed and "
                    "the grid is fitted to --budget before the rest start. Exit 0: advice written; "
                    "2: bad input; 130: interrupted (continue with --resume RUN_DIR).")
    advise.add_argument("target", nargs="?", metavar="TARGET",
                        help="a scenario name (gogc_sweep) or .toml path; or leave out and use --program")
    advise.add_argument("--memory", metavar="SIZE", help="the container's memory limit (required), e.g. 512MiB")
    advise.add_argument("--budget", default="20m", metavar="DURATION",
                        help="time the sweep may take; the widest default grid that fits is run (default 20m)")
    advise.add_argument("--objective", choices=("throughput", "memory", "balanced", "latency"), default="balanced",
                        help="what the recommendation favours among healthy configurations (default balanced)")
    advise.add_argument("--headroom", default=None, metavar="PCT",
                        help="a working set above this share of the limit is unhealthy (default 90%%)")
    advise.add_argument("--gogc", default=None, metavar="V1,V2",
                        help="GOGC values instead of the default 50,100,200,off")
    advise.add_argument("--gomemlimit", default=None, metavar="V1,V2",
                        help="GOMEMLIMIT values, shares of the limit or off, instead of off,70%%,80%%,90%%,95%%")
    advise.add_argument("--memory-high", default=None, metavar="PCT|SIZE",
                        help="cgroup v2 memory.high for every cell, a share of --memory (80%%) or a size: adds the "
                             "class throttled, GOMEMLIMIT shares become shares of it, and GOGC=off and 100 with "
                             "GOMEMLIMIT=90%%max (90%% of --memory, as automemlimit sets it) run beside the grid "
                             "(cells run on cgroup v2, in a guest kernel on a v1 host)")
    advise.add_argument("--thp", default=None, metavar="MODE",
                        help="the node's transparent huge page mode: always, madvise or never (this machine's by "
                             "default; another runs the cells in a guest kernel)")
    advise.add_argument("--swap", default=None, metavar="SIZE",
                        help="the node's swap, 0 or a size the cells may use (a guest kernel where this machine has "
                             "less; needs cgroup v2)")
    advise.add_argument("--find-min-memory", action="store_true", default=False,
                        help="then bisect the smallest limit at which the recommended settings stay healthy")
    advise.add_argument("--resume", default=None, metavar="RUN_DIR",
                        help="continue an interrupted advise run: only the cells not yet on disk run")
    # One cell at a time: the budget is fitted to the first cell's time.
    add_run_options(advise.add_argument, leave_out=CLI_ONLY)
    for option in PROGRAM_OPTIONS:
        advise.add_argument(option.flag, help=option.help, dest=option.dest, **option.kwargs)
    advise.set_defaults(func=cmd_advise)

    from harness.drive.watch import add_arguments as watch_arguments
    from harness.drive.watch import cmd_watch

    watch = sub.add_parser("watch", help="sample a running process (PID, container or cgroup) without touching it: "
                                         "where its memory is, and the findings that apply",
                           description="Sample a process that is already running with the two-tier sampler, for "
                                       "--duration or until Ctrl-C or its exit, into a run directory of one watched "
                                       "cell, and write its report. It never stops, signals or ptraces the process. "
                                       "Exit 0: written; 2: the process cannot be watched (the line says why).")
    watch_arguments(watch)
    watch.set_defaults(func=cmd_watch)

    clean = sub.add_parser("clean", help="remove what killed runs left behind (containers, memory cgroups, "
                                         "scratch directories), never a live run's",
                           description="Remove the containers, memory cgroups and scratch directories whose "
                                       "goreclaim process is gone (killed, say, by SIGKILL), and list them; run "
                                       "and advise do the same when they start. What a live run owns stays. "
                                       "Exit 0: removed or nothing to remove; 1: a removal failed.")
    clean.set_defaults(func=cmd_clean)

    validate = sub.add_parser("validate", help="check scenario files and report every error")
    validate.add_argument("files", nargs="+", metavar="FILE", help="scenario names or .toml paths")
    validate.set_defaults(func=cmd_validate)

    listing = sub.add_parser("list", help="scenarios with claims and cell counts, workloads with flags, axes")
    listing.set_defaults(func=cmd_list)

    report = sub.add_parser(
        "report", help="write report.md and report.html for a run directory (and the advice of an advise run)")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.set_defaults(func=cmd_report)

    build = sub.add_parser("build", help="build the workloads with one or more Go versions")
    build.add_argument("--go", action="append", metavar="V",
                       help="Go version (1.21.13), 'default' or a go binary path; repeatable or comma list")
    build.set_defaults(func=cmd_build)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `goreclaim run --program PATH -- ARGS...`: everything after `--` is the program's own.
    program_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, program_args = argv[:at], argv[at + 1:]
    args = parser().parse_args(argv)
    args.program_args = program_args
    args.argv = argv[1:] + (["--", *program_args] if program_args else [])
    try:
        return args.func(args)
    except ScenarioError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:  # a run directory or results directory that cannot be used
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
