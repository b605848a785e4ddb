"""The axis registry: every standard axis of a matrix, declared once.

An axis is a setting a matrix varies. The standard ones below apply to every workload; each
workload's flags are axes too, their values canonicalised by the flag's kind
(`harness.define.workloads.Param.canonical`). A declaration says what the axis is, how a value
is validated and written (`canonical`), how values sort (`order`: numbers and sizes by
magnitude, `unset` first, `off` last), what a value contributes to a cell (`contribute`) and
which cells.csv columns hold it.

A contribution is everything a value does to a cell, resolved in the context of the cell's other
values (GOMEMLIMIT 90% is a share of the memory limit): environment variables of the workload,
limits its backend applies, the environment of `go build`, settings the host must have, and
resolved cells.csv columns. The cell carries the merged contributions (harness.define.cell);
run.env and the backends apply them without knowing which axis set what, so adding an axis is
one declaration here.

Values keep the author's spelling ("100ms", "1GiB", "90%") so cell ids and cells.csv read like
the scenario file; only booleans and keywords are normalised. Resolved values (a percentage
of the memory limit in bytes) get a column of their own next to the value as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.define import units
from harness.define.backends import BACKEND_NAMES
from harness.define.cell import EFFECTIVE_EXPERIMENTS, Column, Limit, merge_env, pairs
from harness.define.hosts import CGROUP_VERSIONS, DEFAULT_GUEST_KERNEL, HOST_KERNEL, KERNEL_SERIES, THP_MODES
from harness.define.workloads import Workload

UNSET = "unset"  # leaves the runtime setting to the Go version's default


def axis_text(value: Any) -> str:
    """One spelling for an axis value however it was read: 0.0 -> "0", True -> "true", NaN -> "unset"."""
    if value is None or value is pd.NA:  # pd.NA: a blank in a nullable integer column (gomemlimit_bytes)
        return UNSET
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return UNSET
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "none"):
        return UNSET
    if text in ("True", "False"):
        return text.lower()
    return text


# cells.csv columns whose values may be byte counts, displayed as sizes.
BYTE_COLUMNS = ("gomemlimit", "gomemlimit_bytes", "memory", "memory_limit_bytes", "memory_high_bytes")


def axis_display(column: str, value: Any) -> str:
    """axis_text, with byte counts in size columns written as sizes (314572800 -> "300MiB")."""
    text = axis_text(value)
    if column in BYTE_COLUMNS and text.isdigit():
        return units.format_size(int(text))
    return text


# ---------------------------------------------------------------------------------- ordering

# A sort key is (rank, numbers, text): `unset` first, then numeric values by magnitude, then
# shares (90%), then any other word, then `off` (the setting taken to its limit) last.
OrderKey = tuple[int, tuple[float, ...], str]


def _magnitude(text: str) -> tuple[float, ...] | None:
    """A number, a size or a duration as one comparable number; None for a word."""
    for parse in (float, units.parse_size, units.parse_duration):
        try:
            return (float(parse(text)),)
        except (ValueError, units.UnitError):
            continue
    return None


def generic_order(text: str) -> OrderKey:
    """The order of any axis value: unset < numbers/sizes/durations by magnitude < 90% < words < off."""
    lowered = text.lower()
    if lowered in (UNSET, ""):
        return (0, (), "")
    if lowered == "off":
        return (4, (), lowered)
    if lowered in ("false", "true"):
        return (1, (float(lowered == "true"),), lowered)
    number = _magnitude(text)
    if number is not None:
        return (1, number, text)
    share = _magnitude(text[:-1]) if text.endswith("%") else None
    if share is not None:
        return (2, share, text)
    return (3, (), text)


def _go_order(text: str) -> OrderKey:
    if re.fullmatch(r"1\.[0-9]+(\.[0-9]+)?", text):
        return (1, tuple(float(p) for p in text.split(".")), text)
    return (0 if text == "default" else 3, (), text)


def _backend_order(text: str) -> OrderKey:
    return (1, (float(BACKEND_NAMES.index(text)),), text) if text in BACKEND_NAMES else (3, (), text)


# ---------------------------------------------------------------------------------- canonical forms


def _gogc(text: str) -> str:
    return UNSET if text.lower() == UNSET else units.parse_gogc(text)


def _madvdontneed(text: str) -> str:
    if text.lower() in ("0", "1", UNSET):
        return text.lower()
    raise units.UnitError(f"{text!r} is not a madvdontneed setting (valid: 0, 1, unset)")


# `90%max`: a share of the memory limit (memory.max) even where the cell has a memory.high, as tools
# that read only memory.max set GOMEMLIMIT (automemlimit; harness.define.advice_grid.AUTOMEMLIMIT).
OF_MEMORY_MAX = "max"


def _gomemlimit(text: str) -> str:
    if text.lower() in ("off", UNSET):
        return text.lower()
    share = text[:-len(OF_MEMORY_MAX)] if text.lower().endswith("%" + OF_MEMORY_MAX) else text
    if share.endswith("%"):
        try:
            units.parse_gomemlimit(share, 1 << 30)  # shape only; the share is taken per cell
        except units.UnitError as exc:
            if share == text:
                raise
            raise units.UnitError(f"{text!r}: a share of memory.max is NN%max, NN in (0, 100]") from exc
        return share + (OF_MEMORY_MAX if share != text else "")
    units.parse_size(text)
    return text


def _memory(text: str) -> str:
    if units.parse_size(text) <= 0:
        raise units.UnitError(f"{text!r}: a memory limit must be positive")
    return text


def _cpus(text: str) -> str:
    try:
        if float(text) <= 0:
            raise ValueError
    except ValueError as exc:
        raise units.UnitError(f"{text!r} is not a positive number of CPUs") from exc
    return text


def _go(text: str) -> str:
    if text == "default" or re.fullmatch(r"1\.[0-9]+(\.[0-9]+)?", text) or "/" in text:
        return text
    raise units.UnitError(f"{text!r} is not a Go version (valid: a version like 1.27.3, "
                          "'default', or a path to a go binary or GOROOT)")


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


def _cgroup(text: str) -> str:
    value = text.lower()
    value = f"v{value}" if value in ("1", "2") else value
    if value in CGROUP_VERSIONS:
        return value
    raise units.UnitError(f"{text!r} is not a cgroup version (valid: {', '.join(CGROUP_VERSIONS)})")


def _kernel(text: str) -> str:
    if text.lower() == HOST_KERNEL or text in KERNEL_SERIES:
        return text.lower()
    raise units.UnitError(f"{text!r} is not a kernel (valid: {HOST_KERNEL}, or a Debian series booted as a "
                          f"guest: {', '.join(KERNEL_SERIES)})")


def _kernel_order(text: str) -> OrderKey:
    if text == HOST_KERNEL:
        return (0, (), text)
    return (1, tuple(float(p) for p in text.split(".")), text) if text in KERNEL_SERIES else (3, (), text)


def _memory_high(text: str) -> str:
    if text.endswith("%"):
        _share_of(text, 1 << 30)  # shape only; the share is taken per cell
        return text
    try:
        size = units.parse_size(text)
    except units.UnitError as exc:
        raise units.UnitError(f"{text!r} is neither a share of the memory limit (90%) nor a size") from exc
    if size <= 0:
        raise units.UnitError(f"{text!r}: memory.high must be positive")
    return text


def _share_of(text: str, limit: int) -> int:
    """'90%' of `limit` in bytes; UnitError for a share outside (0, 100]."""
    try:
        percent = float(text[:-1])
    except ValueError as exc:
        raise units.UnitError(f"{text!r} is neither a share of the memory limit (90%) nor a size") from exc
    if not 0 < percent <= 100:
        raise units.UnitError(f"{text!r}: a share of the memory limit must be in (0, 100]")
    return int(limit * percent / 100)


def _thp(text: str) -> str:
    if text.lower() in THP_MODES:
        return text.lower()
    raise units.UnitError(f"{text!r} is not a transparent huge page mode (valid: {', '.join(THP_MODES)})")


def _swap(text: str) -> str:
    if text == "0":
        return text
    if units.parse_size(text) < 0:
        raise units.UnitError(f"{text!r}: a swap size cannot be negative")
    return text


def _backend(text: str) -> str:
    if text in BACKEND_NAMES:
        return text
    raise units.UnitError(f"{text!r} is not a backend (valid: {', '.join(BACKEND_NAMES)})")


# ---------------------------------------------------------------------------------- goexperiment


def canonical_goexperiment(text: str) -> str:
    """A GOEXPERIMENT value as Go accepts it (internal/buildcfg.ParseGOEXPERIMENT): comma-separated
    experiment names, each turned off by a leading "no" (greenteagc, nogreenteagc,nofieldtrack), or
    none; unset builds with the toolchain's defaults. Whether the toolchain knows each name is checked
    against its source when the run is planned (harness.build.toolchain.experiment_errors)."""
    if text.strip().lower() == UNSET:
        return UNSET
    parts = [p.strip().lower() for p in text.split(",")]
    for part in parts:
        if not re.fullmatch(r"[a-z][a-z0-9]*", part):
            raise units.UnitError(f"{text!r}: {part!r} is not an experiment name (valid: unset, or comma-separated "
                                  "names such as greenteagc or nogreenteagc, lower case, as GOEXPERIMENT takes them)")
    return ",".join(parts)


def _goexperiment_setting(value: str, values: Mapping[str, str]) -> Contribution:
    # A build setting: GOEXPERIMENT in the program's environment at run time does nothing.
    return NOTHING if value == UNSET else Contribution(build_env={"GOEXPERIMENT": value})


# ---------------------------------------------------------------------------------- contributions


@dataclass(frozen=True)
class Contribution:
    """What one axis value does to a cell (harness.define.cell names each part)."""

    env: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, Limit] = field(default_factory=dict)
    build_env: Mapping[str, str] = field(default_factory=dict)
    host_settings: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, Column] = field(default_factory=dict)


NOTHING = Contribution()

# (the value, the cell's values of every axis) -> what the value contributes; raises units.UnitError.
Contribute = Callable[[str, Mapping[str, str]], Contribution]


def _nothing(value: str, values: Mapping[str, str]) -> Contribution:
    return NOTHING


def _gogc_setting(value: str, values: Mapping[str, str]) -> Contribution:
    if value == UNSET:
        return NOTHING
    return Contribution(env={"GOGC": value}, columns={"gogc": value})


def _gomemlimit_setting(value: str, values: Mapping[str, str]) -> Contribution:
    if value == UNSET:
        return NOTHING
    memory = values.get("memory")
    limit = units.parse_size(memory) if memory else None
    # A share is of the limit the cell meets first: memory.high where it has one (above it the kernel
    # throttles), else the memory limit; `NN%max` is of the memory limit always.
    if value.endswith("%" + OF_MEMORY_MAX):
        resolved = units.parse_gomemlimit(value[:-len(OF_MEMORY_MAX)], limit)
    else:
        resolved = units.parse_gomemlimit(value, _memory_high_bytes(values) if values.get("memory_high") else limit)
    return Contribution(env={"GOMEMLIMIT": resolved}, columns={
        "gomemlimit": value, "gomemlimit_bytes": int(resolved) if resolved.isdigit() else None})


def _madvdontneed_setting(value: str, values: Mapping[str, str]) -> Contribution:
    if value == UNSET:
        return NOTHING
    return Contribution(env={"GODEBUG": f"madvdontneed={value}"}, columns={"madvdontneed": value})


def _godebug_setting(value: str, values: Mapping[str, str]) -> Contribution:
    return NOTHING if value == "none" else Contribution(env={"GODEBUG": value})


def _host_setting(name: str) -> Contribute:
    """A setting of the host the cell runs on: the cell runs where it holds (a guest when not here)."""
    def contribute(value: str, values: Mapping[str, str]) -> Contribution:
        return Contribution(host_settings={name: value})
    return contribute


def _memory_limit(value: str, values: Mapping[str, str]) -> Contribution:
    limit = units.parse_size(value)  # swap is never allowed: the backends give no more than this
    return Contribution(limits={"memory": limit}, columns={"memory_limit_bytes": limit})


# memory.high and swap need cgroup v2 (memory.high, memory.swap.max): a cell asking for either without
# naming a cgroup version gets v2 (a guest where this host is v1); one naming v1 is bad input.
V2_FIX = "leave cgroup out (it then implies v2) or use --matrix cgroup=v2"


def _memory_high_bytes(values: Mapping[str, str]) -> int:
    """The cell's memory.high in bytes; UnitError for a combination that has none."""
    value = values["memory_high"]
    if values.get("cgroup") == "v1":
        raise units.UnitError(f"memory_high={value}: memory.high is a cgroup v2 file and this cell asks for "
                              f"cgroup v1; {V2_FIX}")
    memory = values.get("memory")
    if not memory:
        raise units.UnitError(f"memory_high={value}: needs a memory limit (memory.high throttles below it); "
                              "add --matrix memory=SIZE or limits.memory")
    limit = units.parse_size(memory)
    high = _share_of(value, limit) if value.endswith("%") else units.parse_size(value)
    if high > limit:
        raise units.UnitError(f"memory_high={value}: {units.format_size(high)} is above the memory limit "
                              f"{memory}, where it never throttles; give at most the limit (or 100%)")
    return high


def _memory_high_setting(value: str, values: Mapping[str, str]) -> Contribution:
    high = _memory_high_bytes(values)
    return Contribution(limits={"memory_high": high}, host_settings={"cgroup": "v2"},
                        columns={"memory_high": value, "memory_high_bytes": high})


def _thp_setting(value: str, values: Mapping[str, str]) -> Contribution:
    # Its cells.csv column is the mode the cell actually ran with (harness.run.placement), as for kernel.
    return Contribution(host_settings={"thp": value})


def _swap_setting(value: str, values: Mapping[str, str]) -> Contribution:
    size = units.parse_size(value)
    if size == 0:
        return NOTHING  # what every backend does anyway: swap forbidden (memory.swap.max 0, memsw = limit)
    if values.get("cgroup") == "v1":
        raise units.UnitError(f"swap={value}: a cell's swap is its memory.swap.max, a cgroup v2 file, and this "
                              f"cell asks for cgroup v1; {V2_FIX}")
    if not values.get("memory"):
        raise units.UnitError(f"swap={value}: needs a memory limit (without one nothing pushes the cell to "
                              "swap); add --matrix memory=SIZE or limits.memory")
    # The host must have a swap device this large; the cell may use all of it (memory.swap.max).
    return Contribution(limits={"swap": size}, host_settings={"swap": value, "cgroup": "v2"})


def _cpus_limit(value: str, values: Mapping[str, str]) -> Contribution:
    return Contribution(limits={"cpus": float(value)}, columns={"cpus": float(value)})


# ---------------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Axis:
    name: str
    help: str
    canonical_text: Callable[[str], str]          # validates; raises units.UnitError with the fix
    order: Callable[[str], OrderKey] = generic_order
    # What a value does to a cell. `go` and `backend` contribute nothing: they choose the toolchain
    # and the backend (Cell.go_version, Cell.backend) rather than set anything.
    contribute: Contribute = _nothing
    columns: tuple[str, ...] = ()                 # its cells.csv columns: the value as written, then resolved ones

    def canonical(self, raw: Any) -> str:
        """The value as cell ids and cells.csv write it; raises units.UnitError saying what is valid."""
        return self.canonical_text(_raw_text(raw))


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("go", "Go toolchain the workload is built with: 1.27.3, default, or a path to a go binary or GOROOT",
         _go, _go_order, columns=("go", "go_version")),
    Axis("memory", "container memory limit, a size (swap is never allowed)",
         _memory, contribute=_memory_limit, columns=("memory", "memory_limit_bytes")),
    Axis("cpus", "CPUs the container may use, a positive number",
         _cpus, contribute=_cpus_limit, columns=("cpus",)),
    Axis("gogc", "GOGC: an integer percentage or off; unset leaves the runtime default (100)",
         _gogc, contribute=_gogc_setting, columns=("gogc",)),
    Axis("gomemlimit", "GOMEMLIMIT: a size, a share of the memory limit (90%; of memory_high where the cell has "
         "one), a share of the memory limit even then (90%max, as automemlimit sets it) or off; unset leaves it off",
         _gomemlimit, contribute=_gomemlimit_setting, columns=("gomemlimit", "gomemlimit_bytes")),
    Axis("madvdontneed", "GODEBUG madvdontneed: 0 (MADV_FREE) or 1 (MADV_DONTNEED); unset: the version's default",
         _madvdontneed, contribute=_madvdontneed_setting, columns=("madvdontneed",)),
    Axis("godebug", "further GODEBUG settings, one comma-separated string (gctrace=1,scavtrace=1) or none",
         canonical_godebug, contribute=_godebug_setting, columns=("godebug",)),
    # Its second column is what the built binary records (harness.build.program.experiments_of).
    Axis("goexperiment", "GOEXPERIMENT the workload (or the program's package) is built with: experiment names, "
         "comma-separated, no<name> to turn one off (greenteagc, nogreenteagc); unset: the Go version's defaults",
         canonical_goexperiment, contribute=_goexperiment_setting, columns=("goexperiment", EFFECTIVE_EXPERIMENTS)),
    Axis("backend", "where the cell runs: " + ", ".join(BACKEND_NAMES),
         _backend, _backend_order, columns=("backend",)),
    Axis("cgroup", "the host's cgroup version: v1 or v2; a version this machine has not runs in a guest kernel "
         f"(Debian {DEFAULT_GUEST_KERNEL} unless kernel says)",
         _cgroup, contribute=_host_setting("cgroup"), columns=("cgroup",)),
    # Its cells.csv column is the kernel the cell actually ran on (harness.run.placement), as for any cell.
    Axis("kernel", f"the host's kernel: {HOST_KERNEL} (this machine's) or a Debian series booted as a guest: "
         + ", ".join(KERNEL_SERIES), _kernel, _kernel_order, contribute=_host_setting("kernel"), columns=("kernel",)),
)}

AXES.update({a.name: a for a in (
    Axis("memory_high", "cgroup v2 memory.high (throttling and reclaim above it, no kill): a share of the memory "
         "limit (90%) or a size; needs a memory limit and implies cgroup v2",
         _memory_high, contribute=_memory_high_setting, columns=("memory_high", "memory_high_bytes")),
    Axis("thp", f"the host's transparent huge page mode: {', '.join(THP_MODES)}; another mode than this "
         "machine's runs in a guest kernel", _thp, contribute=_thp_setting, columns=("thp",)),
    Axis("swap", "a swap device of this size on the host (0 or a size); the cell may swap all of it "
         "(memory.swap.max); not 0 needs a memory limit and implies cgroup v2, so it runs in a guest kernel here",
         _swap, contribute=_swap_setting, columns=("swap",)),
)})

# Axes every scenario may use, besides the flags of its workload.
STANDARD_AXES: tuple[str, ...] = tuple(AXES)


def contributions(values: Mapping[str, str]) -> dict[str, tuple[tuple[str, object], ...]]:
    """What a cell's axis values ({axis: canonical value}) contribute, merged in the axes' declaration
    order, as the Cell fields that carry them (env, limits, build_env, host_settings, columns).
    Values of names that are not axes (a workload's flags) contribute nothing here."""
    env: dict[str, str] = {}
    merged: dict[str, dict[str, object]] = {"limits": {}, "build_env": {}, "host_settings": {}, "columns": {}}
    for axis in AXES.values():
        if axis.name not in values:
            continue
        given = axis.contribute(values[axis.name], values)
        merge_env(env, given.env, f"axis {axis.name}")
        for part, into in merged.items():
            for name, value in getattr(given, part).items():
                if name in into and into[name] != value:  # two axes may agree (memory_high and swap imply v2)
                    raise ValueError(f"axis {axis.name} sets {part} {name}, which another axis sets already")
                into[name] = value
    return {"env": pairs(env), **{part: pairs(into) for part, into in merged.items()}}


def _raw_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def canonical_value(axis: str, raw: Any, workload: Workload) -> str:
    """Validate one value of a standard axis or a flag of `workload`; return it as cell ids write it.

    A flag's value is checked by its kind; booleans are normalised, every other flag value keeps
    its spelling (the workload receives the canonical form through its arguments).
    """
    if axis in AXES:
        return AXES[axis].canonical(raw)
    param = workload.param(axis)
    if param is None:
        raise units.UnitError(f"unknown axis {axis!r}")
    value = param.canonical(raw)
    return value if param.kind == "bool" else _raw_text(raw)


def order_key(axis: str, text: Any) -> OrderKey:
    """Sort key of one axis value (any spelling axis_text accepts): gogc 50 < 100 < 300 < off."""
    value = axis_text(text)
    return AXES[axis].order(value) if axis in AXES else generic_order(value)


def sorted_values(axis: str, values: Iterable[Any]) -> list[str]:
    """The distinct values of an axis as text, in the axis's order."""
    return sorted({axis_text(v) for v in values}, key=lambda v: order_key(axis, v))
