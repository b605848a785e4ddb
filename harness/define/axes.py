"""The axis registry: every standard axis of a matrix, declared once.

An axis is a setting a matrix varies. The standard ones below apply to every workload; each
workload's flags are axes too, their values canonicalised by the flag's kind
(`harness.define.workloads.Param.canonical`). A declaration says what the axis is, how a value
is validated and written (`canonical`), how values sort (`order`: numbers and sizes by
magnitude, `unset` first, `off` last), how the setting reaches the workload (`applied`) and
which cells.csv columns hold it.

Values keep the author's spelling ("100ms", "1GiB", "90%") so cell ids and cells.csv read like
the scenario file; only booleans and keywords are normalised. Resolved values (a percentage
of the memory limit in bytes) get a column of their own next to the value as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.define import units
from harness.define.backends import BACKEND_NAMES
from harness.define.workloads import Workload

UNSET = "unset"  # leaves the runtime setting to the Go version's default

# How an axis reaches the workload.
APPLIED = ("env", "limit", "build", "backend")


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
BYTE_COLUMNS = ("gomemlimit", "gomemlimit_bytes", "memory", "memory_limit_bytes")


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
    if text.endswith("%") and _magnitude(text[:-1]) is not None:
        return (2, _magnitude(text[:-1]), text)
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


def _gomemlimit(text: str) -> str:
    if text.lower() in ("off", UNSET):
        return text.lower()
    if text.endswith("%"):
        units.parse_gomemlimit(text, 1 << 30)  # shape only; the share is taken per cell
        return text
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


def _backend(text: str) -> str:
    if text in BACKEND_NAMES:
        return text
    raise units.UnitError(f"{text!r} is not a backend (valid: {', '.join(BACKEND_NAMES)})")


# ---------------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Axis:
    name: str
    help: str
    applied: str                                  # one of APPLIED
    canonical_text: Callable[[str], str]          # validates; raises units.UnitError with the fix
    order: Callable[[str], OrderKey] = generic_order
    env: str = ""                                 # the variable it is passed in, when applied == "env"
    columns: tuple[str, ...] = ()                 # its cells.csv columns: the value as written, then resolved ones

    def canonical(self, raw: Any) -> str:
        """The value as cell ids and cells.csv write it; raises units.UnitError saying what is valid."""
        return self.canonical_text(_raw_text(raw))


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("go", "Go toolchain the workload is built with: 1.27.3, default, or a path to a go binary or GOROOT",
         "build", _go, _go_order, columns=("go", "go_version")),
    Axis("memory", "container memory limit, a size (swap is never allowed)",
         "limit", _memory, columns=("memory", "memory_limit_bytes")),
    Axis("cpus", "CPUs the container may use, a positive number",
         "limit", _cpus, columns=("cpus",)),
    Axis("gogc", "GOGC: an integer percentage or off; unset leaves the runtime default (100)",
         "env", _gogc, env="GOGC", columns=("gogc",)),
    Axis("gomemlimit", "GOMEMLIMIT: a size, a share of the memory limit (90%) or off; unset leaves it off",
         "env", _gomemlimit, env="GOMEMLIMIT", columns=("gomemlimit", "gomemlimit_bytes")),
    Axis("madvdontneed", "GODEBUG madvdontneed: 0 (MADV_FREE) or 1 (MADV_DONTNEED); unset: the version's default",
         "env", _madvdontneed, env="GODEBUG", columns=("madvdontneed",)),
    Axis("godebug", "further GODEBUG settings, one comma-separated string (gctrace=1,scavtrace=1) or none",
         "env", canonical_godebug, env="GODEBUG", columns=("godebug",)),
    Axis("backend", "where the cell runs: " + ", ".join(BACKEND_NAMES),
         "backend", _backend, _backend_order, columns=("backend",)),
)}

# Axes every scenario may use, besides the flags of its workload.
STANDARD_AXES: tuple[str, ...] = tuple(AXES)

# The environment variables the env-applied axes set, each once, in declaration order.
ENV_VARIABLES: tuple[str, ...] = tuple(dict.fromkeys(a.env for a in AXES.values() if a.applied == "env"))


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


def sorted_values(axis: str, values) -> list[str]:
    """The distinct values of an axis as text, in the axis's order."""
    return sorted({axis_text(v) for v in values}, key=lambda v: order_key(axis, v))
