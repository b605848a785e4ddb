"""Scenario files (TOML) -> frozen `Scenario`, validated as a whole.

The format is documented in scenarios/README.md. Every load validates the file completely
and reports all of its errors at once, each as `FILE: key.path: message (valid: ...)`, so a
broken file is fixed in one pass and never surfaces as a traceback.
"""

from __future__ import annotations

import itertools
import re
import shlex
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.define import metrics, units
from harness.define.axes import STANDARD_AXES, axis_text, canonical_value
from harness.define.errors import ScenarioError, did_you_mean
from harness.define.project import SCENARIOS_DIR
from harness.define.workloads import (
    NOT_GO,
    WORKLOADS,
    Program,
    Workload,
    check_executable,
    module_root,
    parse_mount,
    parse_ready,
    program_workload,
)

TOP_KEYS = ("description", "workload", "program", "params", "limits", "matrix", "also", "run", "quick", "expect")
# [program]: exactly one of binary, package, bench names the program; the rest say how it runs.
PROGRAM_KEYS = ("binary", "package", "bench", "module", "run", "benchtime", "args", "mounts", "idle", "grace",
                "ready", "ready_timeout", "load", "metrics_url")
LIMIT_KEYS = ("memory", "cpus")
RUN_KEYS = ("repeats", "timeout", "fast_hz", "slow_hz", "trace_syscalls", "exclusive")
QUICK_KEYS = ("params", "limits", "matrix", "also", "run")
# [[also]]: a sub-matrix of extra cells, the base matrix with these axes replaced (scenarios/README.md).
ALSO_KEYS = ("matrix",)
EXPECT_KEYS = ("where", "metric", "op", "value", "ratio", "of")
OPS = ("<", "<=", ">", ">=", "==", "!=")


@dataclass(frozen=True)
class RunSettings:
    repeats: int = 1
    timeout_s: float = 600.0
    fast_hz: float = 100.0
    slow_hz: float = 2.0
    trace_syscalls: bool = False
    # Whether a cell must have its host to itself (nothing runs beside it on a cluster); None: derived
    # from what its verdicts read (harness.drive.plan.exclusive).
    exclusive: bool | None = None


Matrix = tuple[tuple[str, tuple[str, ...]], ...]   # axis -> values, in file order


@dataclass(frozen=True)
class Variant:
    """What to run: the full scenario, or its `--quick` shrink."""

    params: tuple[tuple[str, str], ...]          # workload flag -> value handed to the workload
    memory: str | None                           # container limit as written ("1536MiB")
    cpus: str | None
    matrix: Matrix
    run: RunSettings
    # Each [[also]] table's matrix: axis -> values replacing (or adding) that axis of `matrix`.
    also: tuple[Matrix, ...] = ()

    def matrix_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.matrix)

    def matrices(self) -> list[dict[str, tuple[str, ...]]]:
        """The base matrix, then each [[also]] sub-matrix (the base with the also's axes replaced)."""
        return [dict(self.matrix)] + [{**dict(self.matrix), **dict(extra)} for extra in self.also]


@dataclass(frozen=True)
class Expectation:
    metric: str                            # "rss@freeos", "oom_killed", ...
    op: str                                # one of OPS
    where: tuple[tuple[str, str], ...] = ()
    value: float | None = None             # absolute bound (sizes in bytes, durations in seconds)
    ratio: float | None = None             # bound = ratio * the same metric in the `of` cell
    of: tuple[tuple[str, str], ...] = ()
    index: int = 0                          # position among the file's [[expect]] tables
    text: str = ""                          # the bound as written, for messages

    @property
    def relative(self) -> bool:
        return bool(self.of)


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    workload: str
    full: Variant
    quick: Variant
    expects: tuple[Expectation, ...] = field(default=())
    program: Program | None = None   # a foreign program instead of a built-in workload

    def variant(self, quick: bool = False) -> Variant:
        return self.quick if quick else self.full

    @property
    def descriptor(self) -> Workload:
        """The workload descriptor the scenario runs: a built-in one, or its program's."""
        return program_workload(self.program) if self.program is not None else WORKLOADS[self.workload]


def parse_program(table: dict[str, Any], base_dir: Path, key: Callable[[str], str]) -> tuple[Program | None, list[str]]:
    """A [program] table (or the same keys from the command line) -> (Program, errors).

    Relative paths are taken from `base_dir`; `key(name)` is how an error names a key
    ("FILE: program.binary" or "--program"). Every error is collected, one line each.
    """
    errors: list[str] = []
    for name in table:
        if name not in PROGRAM_KEYS:
            errors.append(f"{key(name)}: unknown key; {did_you_mean(name, PROGRAM_KEYS)}(valid: "
                          f"{', '.join(PROGRAM_KEYS)})")
    kinds = [k for k in ("binary", "package", "bench") if k in table]
    if len(kinds) != 1:
        errors.append(f"{key('binary')}: name the program with exactly one of binary (an executable), package "
                      "(a Go main package) or bench (a Go package whose benchmarks run)")
        return None, errors
    kind = kinds[0]
    raw = table[kind]
    fields: dict[str, Any] = {}
    if not isinstance(raw, str) or not raw.strip():
        errors.append(f"{key(kind)}: must be a non-empty string")
        return None, errors

    def path_of(text: str) -> str:
        return str((base_dir / Path(text).expanduser()).resolve())

    if kind == "binary":
        try:
            fields["binary"] = check_executable(path_of(raw))
        except units.UnitError as exc:
            errors.append(f"{key(kind)}: {exc}")
        name = Path(raw).name
    else:
        module = table.get("module")
        if module is not None and (not isinstance(module, str) or not Path(path_of(module)).is_dir()):
            errors.append(f"{key('module')}: {module!r} is not a directory (valid: the directory of a Go module)")
            module = None
        if raw.startswith((".", "/", "~")):  # a directory on disk
            directory = path_of(raw)
            root = module_root(directory) if Path(directory).is_dir() else None
            if not Path(directory).is_dir():
                errors.append(f"{key(kind)}: {raw}: no such directory (valid: ./path/to/package inside a Go "
                              "module, or an import path such as encoding/json)")
            elif root is None:
                errors.append(f"{key(kind)}: {raw} is outside any Go module (no go.mod in {directory} or a "
                              "parent directory)")
            fields.update(package=directory, module=path_of(module) if module else (root or ""))
        else:  # an import path, resolved by the go command (the standard library needs no module)
            fields.update(package=raw.strip(), module=path_of(module) if module else "")
        name = Path(raw.rstrip("/")).name or raw
    if kind == "bench":
        run = table.get("run")
        if not isinstance(run, str) or not run.strip():
            errors.append(f"{key('run')}: required with bench: the benchmarks to run, a -test.bench regular "
                          "expression such as BenchmarkCodeDecoder")
        else:
            try:
                re.compile(run)
            except re.error as exc:
                errors.append(f"{key('run')}: {run!r} is not a regular expression ({exc})")
            fields["run"] = run
        benchtime = table.get("benchtime", "")
        if benchtime:
            if not isinstance(benchtime, str) or not re.fullmatch(r"[0-9]+x|[0-9.]+(ns|us|ms|s|m|h)", benchtime):
                errors.append(f"{key('benchtime')}: {benchtime!r} is not a benchtime (valid: a duration such as "
                              "5s, or a count such as 100x)")
            else:
                fields["benchtime"] = benchtime
    else:
        for extra in ("run", "benchtime"):
            if extra in table:
                errors.append(f"{key(extra)}: only with bench")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        errors.append(f"{key('args')}: must be a list of strings")
        args = []
    mounts = []
    raw_mounts = table.get("mounts", [])
    if not isinstance(raw_mounts, list) or not all(isinstance(m, str) for m in raw_mounts):
        errors.append(f"{key('mounts')}: must be a list of strings SRC[:DST][:ro]")
        raw_mounts = []
    for text in raw_mounts:
        try:
            source, sep, rest = text.partition(":")
            mounts.append(parse_mount(path_of(source) + sep + rest))
        except units.UnitError as exc:
            errors.append(f"{key('mounts')}: {exc}")
    timing: dict[str, Any] = {}
    if table.get("ready") is not None:
        try:
            timing["ready"] = parse_ready(table["ready"])
        except units.UnitError as exc:
            errors.append(f"{key('ready')}: {exc}")
    load = table.get("load")
    if isinstance(load, dict):  # [program.load] command = [...]
        unknown = [k for k in load if k != "command"]
        if unknown:
            errors.append(f"{key('load')}.{unknown[0]}: unknown key (valid: command)")
        load = load.get("command")
    if isinstance(load, str):  # --load "CMD": split as a shell would, but run without one
        try:
            load = shlex.split(load)
        except ValueError as exc:
            errors.append(f"{key('load')}: {load!r} cannot be split into words ({exc})")
            load = None
    if load is not None:
        if not isinstance(load, list) or not load or not all(isinstance(a, str) for a in load):
            errors.append(f"{key('load')}: must be a command: a non-empty list of strings")
        else:
            timing["load"] = tuple(load)
    url = table.get("metrics_url")
    if url is not None:
        if not isinstance(url, str) or not re.match(r"https?://", url):
            errors.append(f"{key('metrics_url')}: {url!r} is not an http:// URL (valid: e.g. "
                          "http://127.0.0.1:{port}/debug/vars or a Prometheus /metrics page)")
        else:
            timing["metrics_url"] = url
    for name_, field_ in (("idle", "idle_s"), ("grace", "grace_s"), ("ready_timeout", "ready_timeout_s")):
        if table.get(name_) is not None:
            try:
                timing[field_] = units.parse_duration(table[name_])
            except units.UnitError as exc:
                errors.append(f"{key(name_)}: {exc}")
    if errors:
        return None, errors
    return Program(kind=kind, name=re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or kind, args=tuple(args),
                   mounts=tuple(mounts), **fields, **timing), []


# ---------------------------------------------------------------------------- values


def resolve_path(name_or_path: str | Path, scenarios_dir: Path = SCENARIOS_DIR) -> Path:
    """'alloc_release' -> scenarios/alloc_release.toml; paths are taken as they are."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or "/" in text or path.exists():
        return path
    candidate = scenarios_dir / f"{text}.toml"
    if candidate.exists():
        return candidate
    names = sorted(p.stem for p in scenarios_dir.glob("*.toml"))
    hint = did_you_mean(text, names)
    raise ScenarioError([f"{text}: no such scenario; {hint}(valid: {', '.join(names) or 'none found'})"])


def load(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raises ScenarioError with every problem found.

    A scenario does not list the claims that read it: each claim names its scenarios, in its
    study (harness/studies/), and the drivers derive a scenario's claims from that.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{path}: not valid TOML: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read: {exc}"]) from None
    return _Validator(path, data).scenario()


def load_many(paths: list[str | Path]) -> list[Scenario]:
    """Load every file; errors of all files are reported together."""
    scenarios, errors = [], []
    for path in paths:
        try:
            scenarios.append(load(path))
        except ScenarioError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ScenarioError(errors)
    return scenarios


def discover(scenarios_dir: Path = SCENARIOS_DIR) -> list[Path]:
    return sorted(scenarios_dir.glob("*.toml"))


class _Validator:
    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data
        self.errors: list[str] = []

    workload_known = True
    program: Program | None = None

    def err(self, key: str, message: str, valid: list[str] | tuple[str, ...] | None = None) -> None:
        line = f"{self.path}: {key}: {message}"
        if valid is not None:
            line += f" (valid: {', '.join(valid)})"
        self.errors.append(line)

    def unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.err(f"{prefix}{key}", f"unknown key; {did_you_mean(key, allowed)}".rstrip("; "), allowed)

    def table(self, data: dict[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.err(f"{prefix}{key}", f"must be a table, got {type(value).__name__}")
            return {}
        return value

    # -- sections -------------------------------------------------------------

    def scenario(self) -> Scenario:
        data = self.data
        if "claims" in data:
            self.err("claims", "a scenario does not list its claims: each claim names the scenarios it reads, "
                               "in its study (harness/studies/); remove this key")
        self.unknown_keys({k: v for k, v in data.items() if k != "claims"}, TOP_KEYS, "")
        description = data.get("description", "")
        if not isinstance(description, str) or not description.strip():
            self.err("description", "required: one sentence saying what the scenario measures")
            description = str(description or "")

        workload_name = data.get("workload")
        workload = WORKLOADS.get(workload_name) if isinstance(workload_name, str) else None
        program = None
        if "program" in data:
            if workload_name is not None:
                self.err("program", "a scenario runs either a built-in `workload` or a [program], not both")
            program, errors = parse_program(self.table(data, "program"), self.path.parent,
                                            lambda k: f"{self.path}: program.{k}")
            self.errors.extend(errors)
            workload = program_workload(program) if program is not None else Workload("program", "", (), ())
            self.program = program
        elif workload is None:
            hint = did_you_mean(str(workload_name), list(WORKLOADS)) if workload_name else ""
            self.err("workload", f"{'required' if workload_name is None else f'unknown workload {workload_name!r}'}"
                     f"{'; ' + hint.rstrip() if hint else ''}", sorted(WORKLOADS))
            # Check the rest against a stand-in with no flags or phases of its own, so every other
            # error in the file is reported now; errors that only the real workload could judge
            # (its flags, its phases) are left out.
            workload = Workload(str(workload_name), "", (), ())
            self.workload_known = False

        full = self.variant(data, "", workload, base=None)
        quick_table = self.table(data, "quick")
        self.unknown_keys(quick_table, QUICK_KEYS, "quick.")
        quick = self.variant(quick_table, "quick.", workload, base=full)
        expects = self.expectations(data.get("expect", []), workload, full, quick)
        if not self.errors:
            self.check_footprints(workload, full, quick, expects)
        if self.errors:
            raise ScenarioError(self.errors)
        return Scenario(
            name=self.path.stem, path=self.path, description=description.strip(),
            workload=workload.name, full=full, quick=quick, expects=expects,
            program=self.program,
        )

    def variant(self, data: dict[str, Any], prefix: str, workload: Workload, base: Variant | None) -> Variant:
        params = dict(base.params) if base else {}
        for name, raw in self.table(data, "params", prefix).items():
            param = workload.param(name)
            if param is None and not self.workload_known:
                continue
            if param is None:
                valid = [p.name for p in workload.params]
                self.err(f"{prefix}params.{name}",
                         f"{workload.name} has no flag {name!r}; {did_you_mean(name, valid)}".rstrip("; "), valid)
                continue
            try:
                params[name] = param.canonical(raw)
            except units.UnitError as exc:
                self.err(f"{prefix}params.{name}", f"{exc} ({param.kind}: {param.help})")

        limits = self.table(data, "limits", prefix)
        self.unknown_keys(limits, LIMIT_KEYS, f"{prefix}limits.")
        memory = base.memory if base else None
        cpus = base.cpus if base else None
        if "memory" in limits:
            try:
                memory = canonical_value("memory", limits["memory"], workload)
            except units.UnitError as exc:
                self.err(f"{prefix}limits.memory", str(exc))
        if "cpus" in limits:
            try:
                cpus = canonical_value("cpus", limits["cpus"], workload)
            except units.UnitError as exc:
                self.err(f"{prefix}limits.cpus", str(exc))

        matrix = dict(base.matrix) if base else {}
        matrix.update(self.matrix_table(self.table(data, "matrix", prefix), f"{prefix}matrix.", workload, params))
        also = base.also if base else ()
        if "also" in data:
            also = self.also_tables(data["also"], prefix, workload)

        run_table = self.table(data, "run", prefix)
        self.unknown_keys(run_table, RUN_KEYS, f"{prefix}run.")
        run = base.run if base else RunSettings()
        run = self.run_settings(run_table, prefix, run)
        return Variant(params=tuple(params.items()), memory=memory, cpus=cpus,
                       matrix=tuple(matrix.items()), run=run, also=also)

    def also_tables(self, raw: Any, prefix: str, workload: Workload) -> tuple[Matrix, ...]:
        """[[also]] (or quick's `also`, [] for none): each table's validated `matrix`."""
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            self.err(f"{prefix}also", "must be an array of tables: [[also]] with a `matrix = { axis = [values] }`")
            return ()
        out = []
        for index, table in enumerate(raw):
            key = f"{prefix}also[{index}]"
            self.unknown_keys(table, ALSO_KEYS, f"{key}.")
            matrix = self.matrix_table(self.table(table, "matrix", f"{key}."), f"{key}.matrix.", workload, None)
            if not matrix and "matrix" in table and isinstance(table["matrix"], dict) and not table["matrix"]:
                self.err(f"{key}.matrix", "names no axis: give the axes whose values these extra cells take")
            elif "matrix" not in table:
                self.err(f"{key}.matrix", "required: the axes whose values these extra cells take, e.g. "
                                          "matrix = { cgroup = [\"v2\"] }")
            if matrix:
                out.append(tuple(matrix.items()))
        return tuple(out)

    def matrix_table(self, table: dict[str, Any], prefix: str, workload: Workload,
                     params: dict[str, str] | None) -> dict[str, tuple[str, ...]]:
        """A `matrix` table's axes, validated; `params` (the fixed flags) an axis must not repeat, None
        where it may (an [[also]] replaces a fixed flag in its cells)."""
        matrix: dict[str, tuple[str, ...]] = {}
        valid_axes = [a for a in STANDARD_AXES if a not in unapplied_axes(self.program)] + \
            [p.name for p in workload.params]
        for axis, raw_values in table.items():
            key = f"{prefix}{axis}"
            if axis in unapplied_axes(self.program):
                self.err(key, f"does not apply to a binary: it runs as it was built ({NOT_GO} or its own Go "
                              "version); use [program] package or bench to build it per Go version")
                continue
            if axis not in valid_axes:
                if self.workload_known:  # else it may be a flag of the workload meant
                    self.err(key, f"unknown axis; {did_you_mean(axis, valid_axes)}".rstrip("; "), valid_axes)
                continue
            if not isinstance(raw_values, list) or not raw_values:
                self.err(key, "must be a non-empty list of values")
                continue
            values = []
            for i, raw in enumerate(raw_values):
                try:
                    values.append(canonical_value(axis, raw, workload))
                except units.UnitError as exc:
                    self.err(f"{key}[{i}]", str(exc))
            if len(set(values)) != len(values):
                self.err(key, "lists a value twice")
            if params is not None and axis in params:
                self.err(key, f"is also fixed in {prefix.removesuffix('matrix.')}params.{axis}; keep one of them")
            matrix[axis] = tuple(values)
        return matrix

    def run_settings(self, table: dict[str, Any], prefix: str, run: RunSettings) -> RunSettings:
        changes: dict[str, Any] = {}
        if "repeats" in table:
            value = table["repeats"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.err(f"{prefix}run.repeats", f"{value!r} is not a positive integer")
            else:
                changes["repeats"] = value
        if "timeout" in table:
            try:
                changes["timeout_s"] = units.parse_duration(table["timeout"])
                if changes["timeout_s"] <= 0:
                    self.err(f"{prefix}run.timeout", "must be longer than 0s")
            except units.UnitError as exc:
                self.err(f"{prefix}run.timeout", str(exc))
        for name in ("fast_hz", "slow_hz"):
            if name in table:
                value = table[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    self.err(f"{prefix}run.{name}", f"{value!r} is not a positive number of samples per second")
                else:
                    changes[name] = float(value)
        if "trace_syscalls" in table:
            if not isinstance(table["trace_syscalls"], bool):
                self.err(f"{prefix}run.trace_syscalls", f"{table['trace_syscalls']!r} is not a boolean",
                         ("true", "false"))
            else:
                changes["trace_syscalls"] = table["trace_syscalls"]
        if "exclusive" in table:
            if not isinstance(table["exclusive"], bool):
                self.err(f"{prefix}run.exclusive", f"{table['exclusive']!r} is not a boolean: true gives each cell "
                         "its host to itself, false lets cells that only read memory share one")
            else:
                changes["exclusive"] = table["exclusive"]
        return replace(run, **changes)

    def expectations(self, raw: Any, workload: Workload, full: Variant, quick: Variant) -> tuple[Expectation, ...]:
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            self.err("expect", "must be an array of tables: [[expect]]")
            return ()
        plain, per_phase = frozenset(metrics.METRICS), frozenset(metrics.PHASE_METRICS)
        result = []
        for index, table in enumerate(raw):
            key = f"expect[{index}]"
            self.unknown_keys(table, EXPECT_KEYS, f"{key}.")
            metric = table.get("metric")
            if not isinstance(metric, str):
                self.err(f"{key}.metric", "required: a summary metric name such as rss@freeos or oom_killed")
                continue
            self.check_metric(f"{key}.metric", metric, plain, per_phase, workload)
            op = table.get("op")
            if op not in OPS:
                self.err(f"{key}.op", f"{op!r} is not a comparison", OPS)
            where = self.settings(table.get("where", {}), f"{key}.where", workload, full, quick)
            of = self.settings(table.get("of", {}), f"{key}.of", workload, full, quick)
            has_value, has_ratio = "value" in table, "ratio" in table
            value = ratio = None
            text = ""
            if has_value == has_ratio:
                self.err(key, "needs exactly one of `value` (a bound) or `ratio` with `of` (relative to another cell)")
            elif has_value:
                if of:
                    self.err(f"{key}.of", "`of` goes with `ratio`, not with `value`")
                value, text = self.bound(table["value"], f"{key}.value", metric)
            else:
                ratio_raw = table["ratio"]
                if isinstance(ratio_raw, bool) or not isinstance(ratio_raw, (int, float)) or ratio_raw < 0:
                    self.err(f"{key}.ratio", f"{ratio_raw!r} is not a non-negative number")
                else:
                    ratio = float(ratio_raw)
                    text = f"{ratio:g}×"
                if not of:
                    self.err(f"{key}.of", "required with `ratio`: the axis values of the cell compared with")
            result.append(Expectation(metric=metric, op=op if op in OPS else "==", where=where,
                                      value=value, ratio=ratio, of=of, index=index, text=text))
        return tuple(result)

    def check_metric(self, key: str, metric: str, plain: Collection[str], per_phase: Collection[str],
                     workload: Workload) -> None:
        if "@" in metric:
            base, phase = metric.split("@", 1)
            if base not in per_phase:
                self.err(key, f"{base!r} has no per-phase value; {did_you_mean(base, sorted(per_phase))}".rstrip("; "),
                         sorted(per_phase))
            if phase not in workload.phases and self.workload_known:
                self.err(key, f"{workload.name} has no phase {phase!r}; {did_you_mean(phase, workload.phases)}"
                         .rstrip("; "), workload.phases)
        elif metric not in plain:
            valid = sorted(plain) + [f"X@phase for X in {', '.join(sorted(per_phase))}"]
            self.err(key, f"unknown metric {metric!r}; {did_you_mean(metric, sorted(plain))}".rstrip("; "), valid)

    def bound(self, raw: Any, key: str, metric: str) -> tuple[float | None, str]:
        if isinstance(raw, bool):
            self.err(key, f"{raw!r} is not a number")
            return None, ""
        if isinstance(raw, (int, float)):
            return float(raw), f"{raw:g}"
        unit = metrics.metric_unit(metric)
        try:
            return float(unit.parse(raw)), str(raw)
        except (units.UnitError, ValueError) as exc:
            self.err(key, f"{exc} ({metric} is measured in {unit.name})")
            return None, ""

    def settings(self, raw: Any, key: str, workload: Workload, full: Variant,
                 quick: Variant) -> tuple[tuple[str, str], ...]:
        if not isinstance(raw, dict):
            self.err(key, "must be a table of axis = value")
            return ()
        axis_values: dict[str, set[str]] = {}
        for matrix in full.matrices() + quick.matrices():
            for axis, values in matrix.items():
                axis_values.setdefault(axis, set()).update(values)
        axes = list(axis_values)
        valid_keys = list(axes) + [p.name for p in workload.params if p.name not in axes]
        result = []
        for name, value in raw.items():
            if name not in valid_keys:
                if self.workload_known:
                    self.err(f"{key}.{name}", f"not an axis or flag of this scenario; {did_you_mean(name, valid_keys)}"
                             .rstrip("; "), valid_keys)
                continue
            try:
                if name in axes:
                    text = canonical_value(name, value, workload)
                    if text not in axis_values[name]:
                        self.err(f"{key}.{name}", f"{text!r} is not a value of this axis",
                                 sorted(axis_values[name]))
                        continue
                else:
                    param = workload.param(name)
                    assert param is not None  # valid_keys holds only the workload's flags besides the axes
                    text = param.canonical(value)
            except units.UnitError as exc:
                self.err(f"{key}.{name}", str(exc))
                continue
            result.append((name, text))
        return tuple(result)

    def check_footprints(self, workload: Workload, full: Variant, quick: Variant,
                         expects: tuple[Expectation, ...]) -> None:
        for label, variant in (("", full), ("quick.", quick)):
            for config in configurations(variant):
                memory = config.get("memory", variant.memory)
                if memory is None:
                    continue
                params = {**dict(variant.params),
                          **{k: v for k, v in config.items() if workload.param(k) is not None}}
                params = {k: p.canonical(v) for k, v in params.items() if (p := workload.param(k)) is not None}
                need = workload.footprint(params)
                limit = units.parse_size(memory)
                if need < limit:
                    continue
                settings = cell_settings(workload, params, config)
                if any(e.metric == "oom_killed" and matches(e.where, settings) for e in expects):
                    continue
                where = ", ".join(f"{k}={v}" for k, v in config.items()) or "every cell"
                self.err(f"{label}limits.memory" if "memory" not in config else f"{label}matrix.memory",
                         f"{memory} cannot hold the workload's {units.format_size(need)} ({where}); "
                         "raise the limit, shrink the workload, or declare the kill with an "
                         "[[expect]] metric = \"oom_killed\" whose `where` selects these cells")


def unapplied_axes(program: Program | None) -> tuple[str, ...]:
    """Standard axes that do not apply to a program: the Go version of a ready-made binary."""
    return ("go",) if program is not None and not program.versioned else ()


def program_scenario(program: Program, run: RunSettings | None = None) -> Scenario:
    """The scenario `goreclaim run --program` runs: the program, no matrix of its own (the
    command line's --matrix gives it one), one repeat unless `run` says otherwise."""
    variant = Variant(params=(), memory=None, cpus=None, matrix=(), run=run or RunSettings())
    return Scenario(name=program.name, path=Path(f"<{program.kind} {program.binary or program.package}>"),
                    description=f"the {program.kind} {program.binary or program.package}",
                    workload=program.name, full=variant, quick=variant, program=program)


def configurations(variant: Variant) -> list[dict[str, str]]:
    """Every combination of the variant's axis values, as {axis: value}: the base matrix's, then each
    [[also]]'s that the base does not already have."""
    out: list[dict[str, str]] = []
    for matrix in variant.matrices():
        for combo in itertools.product(*matrix.values()):
            config = dict(zip(matrix, combo, strict=True))
            if config not in out:
                out.append(config)
    return out


def cell_settings(workload: Workload, params: dict[str, str], axes: dict[str, str]) -> dict[str, str]:
    """What `where` tables match against: flag defaults, then fixed flags, then axis values."""
    settings = {p.name: p.default for p in workload.params}
    settings.update(params)
    settings.update(axes)
    return settings


def same_value(a: Any, b: Any) -> bool:
    """Axis values compare as written, except that sizes compare by bytes and case is ignored."""
    left, right = axis_text(a), axis_text(b)
    if left.lower() == right.lower():
        return True
    try:
        return units.parse_size(left) == units.parse_size(right)
    except units.UnitError:
        return False


def matches(where: tuple[tuple[str, str], ...], settings: dict[str, str]) -> bool:
    """True if every `where` key has that value in the cell's settings (axes and flags)."""
    return all(name in settings and same_value(settings[name], value) for name, value in where)
