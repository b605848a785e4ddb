"""The run options, declared once: `goreclaim run` (argparse) and `pytest scenarios/` (pytest's
parser) both read this table, so a flag means the same thing in either driver."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from harness.define.axes import STANDARD_AXES
from harness.define.backends import BACKEND_NAMES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    kwargs: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


RUN_OPTIONS: tuple[Option, ...] = (
    Option("--matrix", "replace (or add) an axis; repeatable. Axes: " + ", ".join(STANDARD_AXES)
           + ", or any flag of the scenario's workload. One godebug value per option.",
           dict(action="append", default=[], metavar="AXIS=V1,V2")),
    Option("--backend", "where cells run (default: auto, the best available that can limit memory)",
           dict(choices=BACKEND_NAMES, default=None)),
    Option("--repeats", "repeats of every configuration (default: the scenario's)",
           dict(type=positive_int, default=None, metavar="N")),
    Option("--go", "Go versions to run (replaces the go axis); repeatable or a comma list",
           dict(action="append", default=None, metavar="V")),
    Option("--results", "parent of run directories (default: results/)",
           dict(default="results", metavar="DIR")),
    Option("--quick", "the scenarios' [quick] variant: small sizes, short idles",
           dict(action="store_true", default=False)),
    Option("--workers", "run cells in parallel on a local Dask cluster with N CPU slots on this host: cells that "
           "only read memory share it, each pinned to CPUs of its own; the others run alone (docs/CLUSTER.md)",
           dict(type=positive_int, default=None, metavar="N")),
    Option("--scheduler", "run cells on an existing Dask cluster (one `dask worker` per host, docs/CLUSTER.md)",
           dict(default=None, metavar="tcp://HOST:8786")),
)
# Options only `goreclaim run` acts on: pytest runs its items one at a time, in its own process.
CLI_ONLY = ("--workers", "--scheduler")


# `goreclaim run --program` only: a program named on the command line (its arguments follow `--`).
PROGRAM_OPTIONS: tuple[Option, ...] = (
    Option("--program", "run this executable instead of scenarios (any program, Go or not): goreclaim run "
           "--program PATH [options] -- ARGS...", dict(default=None, metavar="PATH")),
    Option("--mount", "a host path the program reads or writes, SRC[:DST][:ro] (docker binds it; elsewhere the "
           "program sees it in place); repeatable", dict(action="append", default=[], metavar="SRC[:DST][:ro]")),
    Option("--idle", "leave the program alone this long, then stop it (SIGTERM, then SIGKILL after --grace); "
           "without it the program is a batch job that ends by itself", dict(default=None, metavar="DURATION")),
    Option("--grace", "time between SIGTERM and SIGKILL when stopping the program (default 10s)",
           dict(default=None, metavar="DURATION")),
    Option("--timeout", "stop the program (status timeout) if it runs longer than this (default 10m)",
           dict(default=None, metavar="DURATION")),
    Option("--ready", "a server: wait until it is ready, then load it, idle and stop it: tcp (connect to the "
           "cell's {port} on 127.0.0.1), tcp:PORT, log:REGEX (a line of its output), delay:2s",
           dict(default=None, metavar="CHECK")),
    Option("--ready-timeout", "how long --ready may take before the cell is not_ready (default 30s)",
           dict(default=None, metavar="DURATION")),
    Option("--load", "a command run on the host once the program is ready, for its own duration; {port} is the "
           "cell's port (the program's, published on 127.0.0.1 only)", dict(default=None, metavar="CMD")),
    Option("--metrics-url", "the program's runtime metrics, polled on the slow tier: expvar memstats "
           "(http://127.0.0.1:{port}/debug/vars) or a Prometheus page's go_memstats_*/go_gc_*",
           dict(default=None, metavar="URL")),
)


def program_table(args: argparse.Namespace, program_args: list[str]) -> dict:
    """The [program] table a command line's program options make (see harness.define.scenario)."""
    table = {"binary": args.program, "args": list(program_args), "mounts": list(args.mount)}
    table.update({k: getattr(args, k) for k in ("idle", "grace", "ready", "ready_timeout", "load", "metrics_url")
                  if getattr(args, k) is not None})
    return table


# How an error names a [program] key that came from the command line.
PROGRAM_FLAGS = {"binary": "--program", "args": "arguments after --", "mounts": "--mount", "idle": "--idle",
                 "grace": "--grace", "ready": "--ready", "ready_timeout": "--ready-timeout", "load": "--load",
                 "metrics_url": "--metrics-url"}


def add_run_options(add, leave_out: tuple[str, ...] = ()) -> None:
    """`add` is argparse's `parser.add_argument` or pytest's `group.addoption`."""
    for option in RUN_OPTIONS:
        if option.flag not in leave_out:
            add(option.flag, help=option.help, dest=option.dest, **option.kwargs)


def split_go(values: list[str] | None) -> list[str] | None:
    """--go 1.21.13 --go default, or --go 1.21.13,default."""
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]
