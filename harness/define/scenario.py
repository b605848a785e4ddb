"""Scenario files (TOML) -> frozen `Scenario`, validated as a whole.

The format is documented in scenarios/README.md. Every load validates the file completely
and reports all of its errors at once, each as `FILE: key.path: message (valid: ...)`, so a
broken file is fixed in one pass and never surfaces as a traceback.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.define import units
from harness.define.project import SCENARIOS_DIR
from harness.define.workloads import WORKLOADS, Param, Workload


TOP_KEYS = ("description", "claims", "workload", "params", "limits", "matrix", "run", "quick", "expect")
LIMIT_KEYS = ("memory", "cpus")
RUN_KEYS = ("repeats", "timeout", "fast_hz", "slow_hz", "trace_syscalls")
QUICK_KEYS = ("params", "limits", "matrix", "run")
EXPECT_KEYS = ("where", "metric", "op", "value", "ratio", "of")
OPS = ("<", "<=", ">", ">=", "==", "!=")
CLAIMS = tuple(f"C{i}" for i in range(1, 15)) + ("X1",)

# Axes every scenario may use, besides the flags of its workload.
STANDARD_AXES = ("go", "memory", "cpus", "gogc", "gomemlimit", "madvdontneed", "godebug", "backend")
BACKENDS = ("auto", "docker", "cgroup", "process")
UNSET = "unset"  # leaves the runtime setting to the Go version's default

# Byte-valued summaries take size strings in expectations; *_s take durations in seconds.
_NS_METRICS = ("freeos_p50_ns", "freeos_p99_ns")


class ScenarioError(Exception):
    """Every problem found in one or more scenario files, one line each."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class RunSettings:
    repeats: int = 1
    timeout_s: float = 600.0
    fast_hz: float = 100.0
    slow_hz: float = 2.0
    trace_syscalls: bool = False


@dataclass(frozen=True)
class Variant:
    """What to run: the full scenario, or its `--quick` shrink."""

    params: tuple[tuple[str, str], ...]          # workload flag -> value handed to the workload
    memory: str | None                           # container limit as written ("1536MiB")
    cpus: str | None
    matrix: tuple[tuple[str, tuple[str, ...]], ...]  # axis -> values, in file order
    run: RunSettings

    def matrix_dict(self) -> dict[str, tuple[str, ...]]:
        return dict(self.matrix)


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
    claims: tuple[str, ...]
    workload: str
    full: Variant
    quick: Variant
    expects: tuple[Expectation, ...] = field(default=())

    def variant(self, quick: bool = False) -> Variant:
        return self.quick if quick else self.full


# ---------------------------------------------------------------------------- values


def canonical_param(param: Param, raw: Any) -> str:
    """Validate a workload flag value and return the form handed to the workload."""
    kind = param.kind
    if kind == "size":
        return units.canonical_size(units.parse_size(raw))
    if kind == "sizes":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        if not items or any(str(i).strip() == "" for i in items):
            raise units.UnitError(f"{raw!r}: expected a comma-separated list of sizes such as 8B,16B,32KiB")
        return ",".join(units.canonical_size(units.parse_size(str(i).strip() if isinstance(i, str) else i))
                        for i in items)
    if kind == "duration":
        return units.format_duration(units.parse_duration(raw))
    if kind == "bool":
        return "true" if units.parse_bool(raw) else "false"
    if kind == "int":
        if isinstance(raw, bool) or not re.fullmatch(r"-?[0-9]+", str(raw).strip()):
            raise units.UnitError(f"{raw!r} is not an integer")
        return str(int(str(raw).strip()))
    if kind == "float":
        try:
            if isinstance(raw, bool):
                raise ValueError
            return repr(float(raw)) if not isinstance(raw, str) else str(float(raw))
        except ValueError as exc:
            raise units.UnitError(f"{raw!r} is not a number") from exc
    if kind == "choice":
        if str(raw) not in param.choices:
            raise units.UnitError(f"{raw!r} is not a choice (valid: {', '.join(param.choices)})")
        return str(raw)
    return str(raw)


def canonical_axis_value(axis: str, raw: Any, workload: Workload) -> str:
    """Validate one axis value and return how it is written in cell ids and cells.csv.

    Values keep the author's spelling ("100ms", "1GiB") so ids read like the scenario file;
    only booleans and keywords are normalised.
    """
    text = _as_text(raw)
    if axis == "gogc":
        return UNSET if text.lower() == UNSET else units.parse_gogc(text)
    if axis == "madvdontneed":
        if text.lower() in ("0", "1", UNSET):
            return text.lower()
        raise units.UnitError(f"{raw!r} is not a madvdontneed setting (valid: 0, 1, unset)")
    if axis == "gomemlimit":
        if text.lower() in ("off", UNSET):
            return text.lower()
        if text.endswith("%"):
            units.parse_gomemlimit(text, 1 << 30)  # shape only; the share is taken per cell
            return text
        units.parse_size(text)
        return text
    if axis == "memory":
        if units.parse_size(text) <= 0:
            raise units.UnitError(f"{raw!r}: a memory limit must be positive")
        return text
    if axis == "cpus":
        try:
            if float(text) <= 0:
                raise ValueError
        except ValueError as exc:
            raise units.UnitError(f"{raw!r} is not a positive number of CPUs") from exc
        return text
    if axis == "go":
        if text == "default" or re.fullmatch(r"1\.[0-9]+(\.[0-9]+)?", text) or "/" in text:
            return text
        raise units.UnitError(f"{raw!r} is not a Go version (valid: a version like 1.27.3, "
                              "'default', or a path to a go binary or GOROOT)")
    if axis == "godebug":
        return canonical_godebug(text)
    if axis == "backend":
        if text in BACKENDS:
            return text
        raise units.UnitError(f"{raw!r} is not a backend (valid: {', '.join(BACKENDS)})")
    param = workload.param(axis)
    if param is None:  # pragma: no cover - callers check the axis name first
        raise units.UnitError(f"unknown axis {axis!r}")
    value = canonical_param(param, raw)
    return value if param.kind == "bool" else text


def canonical_godebug(text: str) -> str:
    """One godebug axis value is one GODEBUG string: 'gctrace=1,scavtrace=1'; '' or 'none' for nothing."""
    if text.strip().lower() in ("", "none"):
        return "none"
    parts = [p.strip() for p in text.split(",")]
    for part in parts:
        if not re.fullmatch(r"[a-z][a-z0-9_]*=[^,=\s]+", part):
            raise units.UnitError(f"{text!r}: {part!r} is not a key=value setting "
                                  "(valid: comma-separated settings such as gctrace=1,scavtrace=1)")
        if part.startswith("madvdontneed="):
            raise units.UnitError(f"{text!r}: set madvdontneed with the madvdontneed axis, not in godebug")
    return ",".join(parts)


def _as_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def metric_unit(metric: str) -> str:
    """'bytes', 'seconds', 'ns' or 'number': how a bound written as a string is parsed."""
    base = metric.split("@", 1)[0]
    if base in _NS_METRICS:
        return "ns"
    if base.endswith("_s"):
        return "seconds"
    if "@" in metric or base in ("peak_rss", "peak_cgroup", "mean_rss", "final_rss", "final_lazyfree",
                                 "final_vm_size", "max_vm_size"):
        return "bytes"
    return "number"


def known_metrics() -> tuple[frozenset[str], frozenset[str]]:
    """(plain metric names, X of X@phase) from harness.analyse.summary, which computes them."""
    from harness.analyse.summary import METRICS, PHASE_METRICS

    return frozenset(METRICS), frozenset(PHASE_METRICS)


def _suggest(word: str, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(valid), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


# ---------------------------------------------------------------------------- footprint


def footprint_bytes(workload: str, params: dict[str, str]) -> int:
    """Memory the workload must hold at once to finish; a limit at or below it means an OOM kill.

    An estimate of the workload's own data only (runtime overhead comes on top), used to
    refuse scenarios that would be killed without saying they expect it.
    """
    spec = WORKLOADS[workload]

    def get(name: str) -> str:
        if name in params:
            return params[name]
        return spec.param(name).default

    def size(name: str) -> int:
        return units.parse_size(get(name))

    if workload == "alloc-release":
        touched = units.parse_bool(get("touch"))
        return size("live") + (size("size") if touched else 0)
    if workload == "pressure":
        return max(size("release-size"), size("second-size"))
    if workload in ("large-churn", "freeos-periodic", "small-churn"):
        return size("live")
    if workload == "cache-growth":
        value = size("value-size")
        policy = get("policy")
        if policy == "lru":
            return int(get("capacity")) * value
        keys = int(units.parse_duration(get("duration")) * int(get("rate")))
        if policy == "ttl":
            keys = int(units.parse_duration(get("ttl")) * int(get("rate")))
        if int(get("keyspace")) > 0:
            keys = min(keys, int(get("keyspace")))
        return keys * value
    return 0


# ---------------------------------------------------------------------------- loading


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
    hint = _suggest(text, names)
    raise ScenarioError([f"{text}: no such scenario; {hint}(valid: {', '.join(names) or 'none found'})"])


def load(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raises ScenarioError with every problem found."""
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
    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data
        self.errors: list[str] = []

    workload_known = True

    def err(self, key: str, message: str, valid: list[str] | tuple[str, ...] | None = None) -> None:
        line = f"{self.path}: {key}: {message}"
        if valid is not None:
            line += f" (valid: {', '.join(valid)})"
        self.errors.append(line)

    def unknown_keys(self, table: dict, allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.err(f"{prefix}{key}", f"unknown key; {_suggest(key, allowed)}".rstrip("; "), allowed)

    def table(self, data: dict, key: str, prefix: str = "") -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.err(f"{prefix}{key}", f"must be a table, got {type(value).__name__}")
            return {}
        return value

    # -- sections -------------------------------------------------------------

    def scenario(self) -> Scenario:
        data = self.data
        self.unknown_keys(data, TOP_KEYS, "")
        description = data.get("description", "")
        if not isinstance(description, str) or not description.strip():
            self.err("description", "required: one sentence saying what the scenario measures")
            description = str(description or "")

        claims = data.get("claims", [])
        if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
            self.err("claims", "must be a list of claim ids", CLAIMS)
            claims = []
        for i, claim in enumerate(claims):
            if claim not in CLAIMS:
                self.err(f"claims[{i}]", f"unknown claim {claim!r}", CLAIMS)

        workload_name = data.get("workload")
        workload = WORKLOADS.get(workload_name) if isinstance(workload_name, str) else None
        if workload is None:
            hint = _suggest(str(workload_name), list(WORKLOADS)) if workload_name else ""
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
            claims=tuple(claims), workload=workload.name, full=full, quick=quick, expects=expects,
        )

    def variant(self, data: dict, prefix: str, workload: Workload, base: Variant | None) -> Variant:
        params = dict(base.params) if base else {}
        for name, raw in self.table(data, "params", prefix).items():
            param = workload.param(name)
            if param is None and not self.workload_known:
                continue
            if param is None:
                valid = [p.name for p in workload.params]
                self.err(f"{prefix}params.{name}",
                         f"{workload.name} has no flag {name!r}; {_suggest(name, valid)}".rstrip("; "), valid)
                continue
            try:
                params[name] = canonical_param(param, raw)
            except units.UnitError as exc:
                self.err(f"{prefix}params.{name}", f"{exc} ({param.kind}: {param.help})")

        limits = self.table(data, "limits", prefix)
        self.unknown_keys(limits, LIMIT_KEYS, f"{prefix}limits.")
        memory = base.memory if base else None
        cpus = base.cpus if base else None
        if "memory" in limits:
            try:
                memory = canonical_axis_value("memory", limits["memory"], workload)
            except units.UnitError as exc:
                self.err(f"{prefix}limits.memory", str(exc))
        if "cpus" in limits:
            try:
                cpus = canonical_axis_value("cpus", limits["cpus"], workload)
            except units.UnitError as exc:
                self.err(f"{prefix}limits.cpus", str(exc))

        matrix = dict(base.matrix) if base else {}
        valid_axes = list(STANDARD_AXES) + [p.name for p in workload.params]
        for axis, raw_values in self.table(data, "matrix", prefix).items():
            key = f"{prefix}matrix.{axis}"
            if axis not in valid_axes:
                if self.workload_known:  # else it may be a flag of the workload meant
                    self.err(key, f"unknown axis; {_suggest(axis, valid_axes)}".rstrip("; "), valid_axes)
                continue
            if not isinstance(raw_values, list) or not raw_values:
                self.err(key, "must be a non-empty list of values")
                continue
            values = []
            for i, raw in enumerate(raw_values):
                try:
                    values.append(canonical_axis_value(axis, raw, workload))
                except units.UnitError as exc:
                    self.err(f"{key}[{i}]", str(exc))
            if len(set(values)) != len(values):
                self.err(key, "lists a value twice")
            if axis in params:
                self.err(key, f"is also fixed in {prefix or ''}params.{axis}; keep one of them")
            matrix[axis] = tuple(values)

        run_table = self.table(data, "run", prefix)
        self.unknown_keys(run_table, RUN_KEYS, f"{prefix}run.")
        run = base.run if base else RunSettings()
        run = self.run_settings(run_table, prefix, run)
        return Variant(params=tuple(params.items()), memory=memory, cpus=cpus,
                       matrix=tuple(matrix.items()), run=run)

    def run_settings(self, table: dict, prefix: str, run: RunSettings) -> RunSettings:
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
        return replace(run, **changes)

    def expectations(self, raw: Any, workload: Workload, full: Variant, quick: Variant) -> tuple[Expectation, ...]:
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            self.err("expect", "must be an array of tables: [[expect]]")
            return ()
        try:
            plain, per_phase = known_metrics()
        except ImportError:  # analysis not importable: metric names cannot be checked here
            plain, per_phase = None, None
        result = []
        for index, table in enumerate(raw):
            key = f"expect[{index}]"
            self.unknown_keys(table, EXPECT_KEYS, f"{key}.")
            metric = table.get("metric")
            if not isinstance(metric, str):
                self.err(f"{key}.metric", "required: a summary metric name such as rss@freeos or oom_killed")
                continue
            if plain is not None:
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

    def check_metric(self, key: str, metric: str, plain, per_phase, workload: Workload) -> None:
        if "@" in metric:
            base, phase = metric.split("@", 1)
            if base not in per_phase:
                self.err(key, f"{base!r} has no per-phase value; {_suggest(base, sorted(per_phase))}".rstrip("; "),
                         sorted(per_phase))
            if phase not in workload.phases and self.workload_known:
                self.err(key, f"{workload.name} has no phase {phase!r}; {_suggest(phase, workload.phases)}"
                         .rstrip("; "), workload.phases)
        elif metric not in plain:
            valid = sorted(plain) + [f"X@phase for X in {', '.join(sorted(per_phase))}"]
            self.err(key, f"unknown metric {metric!r}; {_suggest(metric, sorted(plain))}".rstrip("; "), valid)

    def bound(self, raw: Any, key: str, metric: str) -> tuple[float | None, str]:
        if isinstance(raw, bool):
            self.err(key, f"{raw!r} is not a number")
            return None, ""
        if isinstance(raw, (int, float)):
            return float(raw), f"{raw:g}"
        unit = metric_unit(metric)
        try:
            if unit == "bytes":
                return float(units.parse_size(raw)), str(raw)
            if unit in ("seconds", "ns"):
                seconds = units.parse_duration(raw)
                return (seconds * 1e9 if unit == "ns" else seconds), str(raw)
            return float(raw), str(raw)
        except (units.UnitError, ValueError) as exc:
            self.err(key, f"{exc} ({metric} is measured in {unit})")
            return None, ""

    def settings(self, raw: Any, key: str, workload: Workload, full: Variant, quick: Variant):
        if not isinstance(raw, dict):
            self.err(key, "must be a table of axis = value")
            return ()
        axes = {**dict(quick.matrix), **dict(full.matrix)}
        axis_values = {a: set(full.matrix_dict().get(a, ())) | set(quick.matrix_dict().get(a, ())) for a in axes}
        valid_keys = list(axes) + [p.name for p in workload.params if p.name not in axes]
        result = []
        for name, value in raw.items():
            if name not in valid_keys:
                if self.workload_known:
                    self.err(f"{key}.{name}", f"not an axis or flag of this scenario; {_suggest(name, valid_keys)}"
                             .rstrip("; "), valid_keys)
                continue
            try:
                if name in axes:
                    text = canonical_axis_value(name, value, workload)
                    if text not in axis_values[name]:
                        self.err(f"{key}.{name}", f"{text!r} is not a value of this axis",
                                 sorted(axis_values[name]))
                        continue
                else:
                    text = canonical_param(workload.param(name), value)
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
                params = {k: canonical_param(workload.param(k), v) for k, v in params.items()}
                need = footprint_bytes(workload.name, params)
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


def configurations(variant: Variant) -> list[dict[str, str]]:
    """Every combination of the variant's axis values, as {axis: value}."""
    names = [a for a, _ in variant.matrix]
    return [dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in variant.matrix))]


def cell_settings(workload: Workload, params: dict[str, str], axes: dict[str, str]) -> dict[str, str]:
    """What `where` tables match against: flag defaults, then fixed flags, then axis values."""
    settings = {p.name: p.default for p in workload.params}
    settings.update(params)
    settings.update(axes)
    return settings


def same_value(a: Any, b: Any) -> bool:
    """Axis values compare as written, except that sizes compare by bytes and case is ignored."""
    left, right = _as_text(a).lower(), _as_text(b).lower()
    if left == right:
        return True
    try:
        return units.parse_size(_as_text(a)) == units.parse_size(_as_text(b))
    except units.UnitError:
        return False


def matches(where: tuple[tuple[str, str], ...], settings: dict[str, str]) -> bool:
    """True if every `where` key has that value in the cell's settings (axes and flags)."""
    return all(name in settings and same_value(settings[name], value) for name, value in where)
