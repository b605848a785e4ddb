"""Sizes, durations, GOGC and GOMEMLIMIT values: one parser for all of the harness.

Sizes use binary units (B, KiB, MiB, GiB, TiB) as Go's GOMEMLIMIT does; KB/MB/GB/TB are
powers of 1000 for those who mean them. Durations follow Go's time.ParseDuration syntax so a
value written in a scenario can be handed to a workload flag unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal


class UnitError(ValueError):
    """A value that cannot be parsed; the message says what would be valid."""


SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
}
# Largest first: format_size picks the biggest unit that reads well.
_BINARY_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))

SIZE_HELP = "a size such as 512MiB, 1.5GiB, 64KiB, 100MB or a plain number of bytes"
DURATION_HELP = "a duration such as 500ms, 2s, 3m, 1m30s, 1h (units ns, us, ms, s, m, h)"

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int) -> int:
    """'1.5GiB' -> 1610612736. Plain integers are bytes; the result must be whole bytes."""
    if isinstance(text, bool):
        raise UnitError(f"{text!r} is not a size; expected {SIZE_HELP}")
    if isinstance(text, int):
        if text < 0:
            raise UnitError(f"{text} is negative; expected {SIZE_HELP}")
        return text
    if not isinstance(text, str):
        raise UnitError(f"{text!r} is not a size; expected {SIZE_HELP}")
    match = _SIZE_RE.match(text)
    if not match:
        raise UnitError(f"{text!r} is not a size; expected {SIZE_HELP}")
    number, unit = match.groups()
    unit = unit or "B"
    if unit not in SIZE_UNITS:
        valid = ", ".join(SIZE_UNITS)
        raise UnitError(f"{text!r}: unknown size unit {unit!r} (valid: {valid}; units are case-sensitive)")
    try:
        value = Decimal(number) * SIZE_UNITS[unit]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise UnitError(f"{text!r} is not a size; expected {SIZE_HELP}") from exc
    if value != value.to_integral_value():
        raise UnitError(f"{text!r} is not a whole number of bytes; expected {SIZE_HELP}")
    return int(value)


def format_size(n: int | float) -> str:
    """1073741824 -> '1GiB', 1610612736 -> '1.5GiB'; below 1 KiB in bytes ('512B').

    Exact where a whole or one-decimal figure is exact, else rounded to one decimal.
    """
    negative = n < 0
    n = abs(n)
    for name, unit in _BINARY_UNITS:
        if n >= unit:
            value = n / unit
            if n % unit == 0:
                text = f"{int(n // unit)}{name}"
            else:
                text = f"{value:.1f}{name}"
            return ("-" if negative else "") + text
    text = f"{int(n)}B" if float(n).is_integer() else f"{n:.1f}B"
    return ("-" if negative else "") + text


def canonical_size(n: int) -> str:
    """The exact form handed to workloads: the largest binary unit that divides n, else bytes."""
    for name, unit in _BINARY_UNITS:
        if n and n % unit == 0:
            return f"{n // unit}{name}"
    return f"{n}B"


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str | int | float) -> float:
    """'500ms' -> 0.5, '1m30s' -> 90.0. A bare '0' is allowed (as in Go); numbers are seconds."""
    if isinstance(text, bool):
        raise UnitError(f"{text!r} is not a duration; expected {DURATION_HELP}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise UnitError(f"{text} is negative; expected {DURATION_HELP}")
        return float(text)
    if not isinstance(text, str):
        raise UnitError(f"{text!r} is not a duration; expected {DURATION_HELP}")
    stripped = text.strip()
    if stripped == "0":
        return 0.0
    pos = 0
    total = Decimal(0)
    while pos < len(stripped):
        match = _DURATION_PART.match(stripped, pos)
        if not match:
            raise UnitError(f"{text!r} is not a duration; expected {DURATION_HELP}")
        number, unit = match.groups()
        total += Decimal(number) * Decimal(repr(_DURATION_UNITS[unit]))
        pos = match.end()
    if pos == 0:
        raise UnitError(f"{text!r} is not a duration; expected {DURATION_HELP}")
    return float(total)


def parse_positive_duration(text: str | int | float) -> float:
    """A duration that must be longer than zero: a timeout, a budget, how long to watch."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise UnitError("must be longer than 0s")
    return seconds


def format_duration(seconds: float) -> str:
    """90 -> '1m30s', 0.5 -> '500ms', 0 -> '0s'; output is valid Go duration syntax."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1e-6:
        return f"{_trim(seconds * 1e9)}ns"
    if seconds < 1e-3:
        return f"{_trim(seconds * 1e6)}us"
    if seconds < 1:
        return f"{_trim(seconds * 1e3)}ms"
    if seconds < 60:
        return f"{_trim(seconds)}s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{int(hours)}h")
    if minutes:
        parts.append(f"{int(minutes)}m")
    if secs:
        parts.append(f"{_trim(secs)}s")
    return "".join(parts)


def _trim(value: float) -> str:
    return f"{round(value, 3):.3f}".rstrip("0").rstrip(".")


GOGC_HELP = "GOGC is a non-negative integer percentage (e.g. 50, 100, 300) or 'off'"


def parse_gogc(text: str | int) -> str:
    """'50' -> '50', 'OFF' -> 'off'."""
    if isinstance(text, bool):
        raise UnitError(f"{text!r}: {GOGC_HELP}")
    value = str(text).strip()
    if value.lower() == "off":
        return "off"
    if not re.fullmatch(r"[0-9]+", value):
        raise UnitError(f"{text!r}: {GOGC_HELP}")
    return str(int(value))


GOMEMLIMIT_HELP = "GOMEMLIMIT is a size (512MiB), a percentage of the memory limit (90%) or 'off'"


def parse_gomemlimit(text: str | int, memory_limit_bytes: int | None) -> str:
    """'512MiB' -> '536870912'; '90%' of the container limit in bytes; 'off' -> 'off'."""
    value = str(text).strip() if not isinstance(text, int) or isinstance(text, bool) else text
    if isinstance(value, str) and value.lower() == "off":
        return "off"
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = Decimal(value[:-1])
        except InvalidOperation as exc:
            raise UnitError(f"{text!r}: {GOMEMLIMIT_HELP}") from exc
        if not 0 < percent <= 100:
            raise UnitError(f"{text!r}: a percentage must be in (0, 100]; {GOMEMLIMIT_HELP}")
        if not memory_limit_bytes:
            raise UnitError(f"{text!r}: a percentage needs a memory limit to be a share of; "
                            "set limits.memory or give GOMEMLIMIT as a size")
        return str(int(Decimal(memory_limit_bytes) * percent / 100))
    try:
        return str(parse_size(value))
    except UnitError as exc:
        raise UnitError(f"{text!r}: {GOMEMLIMIT_HELP}") from exc


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise UnitError(f"{text!r} is not a boolean (valid: true, false)")


# ---------------------------------------------------------------------------- units of measured values

MiB = 1 << 20

# The units a series or summary metric is measured in: the keys of UNITS.
UnitName = Literal["bytes", "s", "ns", "count", "ops/s", "fraction", "percent", "text"]


@dataclass(frozen=True)
class Unit:
    """How a measured quantity is parsed (a bound in a scenario), printed and plotted.

    `format` is the one short form every table, evidence text and message uses; `benchstat` is
    the unit suffix in Go's benchmark format (golang.org/x/perf/benchfmt), where the value is
    written in the unit's base quantity.
    """

    name: UnitName
    plot_scale: float
    plot_label: str
    benchstat: str
    _format: Callable[[float], str]
    _parse: Callable[[str], float]

    def format(self, value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return self._format(float(value))

    def parse(self, text: str | int | float) -> float:
        """A bound as a scenario writes it ('64MiB', '2s', 0.5) in this unit's base quantity."""
        if isinstance(text, bool):
            raise UnitError(f"{text!r} is not a number")
        if isinstance(text, (int, float)):
            return float(text)
        return self._parse(text)


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise UnitError(f"{text!r} is not a number") from None


def _rate(v: float) -> str:
    """1234567 -> '1.23M ops/s'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix} ops/s"
    return f"{v:.3g} ops/s"


UNITS: dict[UnitName, Unit] = {u.name: u for u in (
    Unit("bytes", MiB, "MiB", "B", lambda v: f"{v / MiB:.0f} MiB", lambda t: float(parse_size(t))),
    Unit("s", 1.0, "s", "sec", lambda v: f"{v:.2f} s", parse_duration),
    Unit("ns", 1e6, "ms", "ns", lambda v: f"{v / 1e6:.2f} ms", lambda t: parse_duration(t) * 1e9),
    Unit("count", 1.0, "count", "", lambda v: f"{v:.4g}", _number),
    Unit("ops/s", 1.0, "ops/s", "ops/s", lambda v: _rate(v), _number),
    Unit("fraction", 1.0, "fraction", "", lambda v: f"{v:.4g}", _number),
    Unit("percent", 1.0, "%", "%", lambda v: f"{v:.4g}", _number),
    # A text metric (where gc_cpu_s came from) is no quantity: a bound on it must still be a number.
    Unit("text", 1.0, "", "", lambda v: str(v), _number),
)}
