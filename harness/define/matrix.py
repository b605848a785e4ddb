"""Axes, `--matrix` parsing, the cartesian product, stable cell ids and interleaved order.

An axis is a standard runtime/container setting (harness.define.axes.AXES) or a flag of the scenario's
workload. `--matrix AXIS=V1,V2` replaces that axis's values; an axis the scenario does not
list becomes a new axis of it, except a workload flag its workload does not have (that
override applies only to the scenarios whose workload has the flag).

Cell ids name only the axes with more than one value, sorted by name, then the repeat:
`alloc_release[gogc=50,madvdontneed=1,r0]`. A scenario's [[also]] sub-matrices add cells: the base
matrix with the also's axes replaced, after the command line's overrides (an override of an axis the
also names replaces it there too); a cell the base already has is not added twice, and an also's
cells name its axes in their ids as well (`madvdontneed[cgroup=v2,go=1.15.15,r0]`). Sorting makes the
id independent of the order in which axes were given. Cells are ordered repeat by repeat, so that drift of the machine
spreads evenly over configurations instead of landing on one of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from harness.define import units
from harness.define.axes import AXES, canonical_value, contributions
from harness.define.backends import DEFAULT_BACKEND
from harness.define.cell import Cell
from harness.define.errors import ScenarioError, did_you_mean
from harness.define.project import DEFAULT_GO
from harness.define.scenario import Scenario, Variant, unapplied_axes
from harness.define.workloads import WORKLOADS, Workload


class MatrixError(ScenarioError):
    """A --matrix, --go, --backend or --repeats value that cannot be used."""


def all_axes() -> list[str]:
    """Standard axes, then every flag of every workload."""
    flags = sorted({p.name for w in WORKLOADS.values() for p in w.params})
    return list(AXES) + [f for f in flags if f not in AXES]


def parse_matrix_option(text: str) -> tuple[str, list[str]]:
    """'gogc=50,100,300' -> ('gogc', ['50', '100', '300'])."""
    axis, sep, values = text.partition("=")
    axis = axis.strip()
    if not sep or not axis:
        raise MatrixError([f"--matrix {text!r}: expected AXIS=V1,V2,... such as gogc=50,100,300"])
    valid = all_axes()
    if axis not in valid:
        raise MatrixError([f"--matrix {text!r}: unknown axis {axis!r}; {did_you_mean(axis, valid)}"
                           f"(valid: {', '.join(valid)})"])
    # godebug values themselves contain commas: one --matrix godebug=... is one value.
    items = [values.strip()] if axis == "godebug" else [v.strip() for v in values.split(",")]
    if not items or any(v == "" for v in items) and axis != "godebug":
        raise MatrixError([f"--matrix {text!r}: empty value; give one or more values separated by commas"])
    return axis, items


def merge_matrix_options(options: Iterable[str]) -> dict[str, list[str]]:
    """Several --matrix options; the same axis given twice accumulates its values."""
    merged: dict[str, list[str]] = {}
    for option in options:
        axis, values = parse_matrix_option(option)
        merged.setdefault(axis, [])
        merged[axis].extend(v for v in values if v not in merged[axis])
    return merged


def effective_matrix(scenario: Scenario, overrides: dict[str, list[str]] | None = None,
                     go: list[str] | None = None, backend: str | None = None,
                     quick: bool = False) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """(axes -> values, fixed params) of the base matrix after the command line is applied to the scenario."""
    return effective_matrices(scenario, overrides, go, backend, quick)[0][:2]


def effective_matrices(scenario: Scenario, overrides: dict[str, list[str]] | None = None,
                       go: list[str] | None = None, backend: str | None = None,
                       quick: bool = False) -> list[tuple[dict[str, tuple[str, ...]], dict[str, str], frozenset[str]]]:
    """(axes -> values, fixed params, axes its cell ids name besides the varying ones) of the base matrix
    and of each [[also]], after the command line is applied to each."""
    variant = scenario.variant(quick)
    requested = _requested(scenario, overrides, go, backend)
    out = []
    for index, matrix in enumerate(variant.matrices()):
        extra = dict(variant.also[index - 1]) if index else {}
        merged = {**matrix, **requested}
        params = {k: v for k, v in variant.params if k not in merged}
        out.append((merged, params, frozenset(extra)))
    return out


def _requested(scenario: Scenario, overrides: dict[str, list[str]] | None, go: list[str] | None,
               backend: str | None) -> dict[str, tuple[str, ...]]:
    """The command line's axes -> canonical values that apply to this scenario's workload."""
    workload = scenario.descriptor
    matrix: dict[str, tuple[str, ...]] = {}
    requested = dict(overrides or {})
    if go:
        requested["go"] = list(go)
    if backend:
        requested["backend"] = [backend]
    errors = []
    known = all_axes()
    for axis, raw_values in requested.items():
        if axis not in known:
            errors.append(f"{scenario.name}: axis {axis!r} is unknown; {did_you_mean(axis, known)}"
                          f"(valid: {', '.join(known)})")
            continue
        if axis in unapplied_axes(scenario.program):
            errors.append(f"{scenario.name}: the {axis} axis does not apply to a binary: it runs as it was "
                          "built; use [program] package or bench to build it per Go version")
            continue
        if axis not in AXES and workload.param(axis) is None:
            continue  # another workload's flag
        values = []
        for raw in raw_values:
            try:
                value = canonical_value(axis, raw, workload)
            except units.UnitError as exc:
                errors.append(f"{scenario.name}: {axis}={raw}: {exc}")
                continue
            if value not in values:
                values.append(value)
        if not values:
            continue
        matrix[axis] = tuple(values)
    if errors:
        raise MatrixError(errors)
    return matrix


def expand(scenario: Scenario, overrides: dict[str, list[str]] | None = None, repeats: int | None = None,
           go: list[str] | None = None, backend: str | None = None, quick: bool = False) -> list[Cell]:
    """Every cell of the scenario, repeat 0 of every configuration first, then repeat 1, ..."""
    workload = scenario.descriptor
    variant = scenario.variant(quick)
    matrices = effective_matrices(scenario, overrides, go, backend, quick)
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1):
        raise MatrixError([f"--repeats {repeats!r}: must be a positive integer"])
    count = repeats or variant.run.repeats
    base_varying = {a for a, values in matrices[0][0].items() if len(values) > 1}
    errors: list[str] = []
    failed: dict[str, list[str]] = {}   # why a configuration cannot be -> the configurations it applies to
    configs: list[tuple[dict[str, str], dict[str, Any], list[str]]] = []
    for matrix, params, named in matrices:
        names = list(matrix)
        # The base's varying axes, and an also's own: its cells are told apart from the base's by them.
        varying = sorted(base_varying | named | {a for a in names if len(matrix[a]) > 1})
        for combo in itertools.product(*(matrix[a] for a in names)):
            config = dict(zip(names, combo, strict=True))
            if any(config == seen for seen, _, _ in configs):
                continue   # an also's cell the base (or an earlier also) already has
            try:
                configs.append((config, _settings(config, params, variant, workload, DEFAULT_GO), varying))
            except units.UnitError as exc:
                failed.setdefault(str(exc), []).append(_label(config, names))
    # One line per reason: a bad combination (memory_high with cgroup=v1) is said once, not once a cell.
    errors += [f"{scenario.name}[{labels[0]}]: {why}" if len(labels) == 1
               else f"{scenario.name}: {why} ({len(labels)} configurations)"
               for why, labels in failed.items()]
    if errors:
        raise MatrixError(errors)

    cells = []
    for repeat in range(count):
        for config, settings, varying in configs:
            label = ",".join([f"{a}={config[a]}" for a in varying] + [f"r{repeat}"])
            cells.append(Cell(
                cell_id=f"{scenario.name}[{label}]",
                scenario=scenario.name,
                workload=workload.name,
                repeat=repeat,
                timeout_s=variant.run.timeout_s,
                fast_hz=variant.run.fast_hz,
                slow_hz=variant.run.slow_hz,
                trace_syscalls=variant.run.trace_syscalls,
                axes=tuple(sorted(config.items())),
                program=scenario.program,
                **{**settings, **({"args": scenario.program.command_args()} if scenario.program else {})},
            ))
    return cells


def _label(config: dict[str, str], names: list[str]) -> str:
    return ",".join(f"{a}={config[a]}" for a in names)


def _settings(config: dict[str, str], params: dict[str, str], variant: Variant, workload: Workload,
              default_go: str) -> dict[str, Any]:
    """The Cell fields of one configuration: its flags, and what its axes contribute; the scenario's
    [limits] stand for the memory and cpus axes it does not vary."""
    flags = dict(params)
    for name, value in config.items():
        param = workload.param(name)
        if param is not None:
            flags[name] = param.canonical(value)
    args = tuple(f"--{p.name}={flags[p.name]}" for p in workload.params if p.name in flags)
    limits = {name: value for name, value in (("memory", variant.memory), ("cpus", variant.cpus)) if value}
    values = {**{name: AXES[name].canonical(value) for name, value in limits.items()}, **config}
    go = config.get("go", "default")
    return dict(
        args=args,
        go_version=default_go if go == "default" else go,
        backend=config.get("backend", DEFAULT_BACKEND),
        **contributions(values),
    )
