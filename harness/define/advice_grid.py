"""The GOGC × GOMEMLIMIT grid `goreclaim advise` sweeps in one container size, as cells.

A grid is a set of GOGC and GOMEMLIMIT values and a number of repeats. GOGC=off is only run
with a GOMEMLIMIT: without one the runtime never collects (runtime/mgcpacer.go, gcControllerState
heapGoal with gcPercent < 0) and the heap fills any container. The default grids run from the
widest to the smallest; the advise driver takes the first that fits its time budget.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from harness.define.axes import AXES, sorted_values
from harness.define.cell import Cell
from harness.define.errors import ScenarioError
from harness.define.matrix import expand
from harness.define.scenario import Scenario
from harness.define.units import UnitError

# The axes advise sets itself; every cell id names them, so a cell is found again on --resume.
ADVISE_AXES = ("gogc", "gomemlimit", "memory")

GOGC_VALUES = ("50", "100", "200", "off")
# Shares of the container limit: the 90% of automemlimit and the 80% operators moved to after
# OOM kills (nats-io/k8s#965), with a step either side.
GOMEMLIMIT_VALUES = ("off", "70%", "80%", "90%", "95%")
# Run first: the runtime's defaults (GOGC=100, no GOMEMLIMIT), what the program gets unset.
BASELINE = ("100", "off")

# What operators deploy: GOMEMLIMIT at automemlimit's default share of the cgroup's memory.max
# (KimMachineGun/automemlimit, memlimit/memlimit.go: defaultAUTOMEMLIMIT = 0.9), which never reads
# memory.high. With a memory.high these are run beside the grid (whose shares are of memory.high):
# a heap goal between memory.high and memory.max is throttled, not killed. GOGC=off is the Go GC
# guide's "GOMEMLIMIT only" setup, GOGC=100 the runtime default beside it.
AUTOMEMLIMIT = "90%max"
AUTOMEMLIMIT_NOTE = "90% of memory.max, as automemlimit sets it"
DEPLOYED = (("off", AUTOMEMLIMIT), ("100", AUTOMEMLIMIT))


@dataclass(frozen=True)
class Grid:
    gogc: tuple[str, ...]
    gomemlimit: tuple[str, ...]
    repeats: int
    # (gogc, gomemlimit) pairs run beside the product: DEPLOYED where the cells have a memory.high.
    extra: tuple[tuple[str, str], ...] = ()

    def configs(self) -> list[tuple[str, str]]:
        """(gogc, gomemlimit) pairs, the baseline first, without GOGC=off and no GOMEMLIMIT."""
        pairs = [(g, m) for g, m in itertools.product(self.gogc, self.gomemlimit) if not (g == "off" and m == "off")]
        pairs += [pair for pair in self.extra if pair not in pairs]
        return sorted(pairs, key=lambda pair: pair != BASELINE)

    @property
    def n_cells(self) -> int:
        return len(self.configs()) * self.repeats

    def describe(self) -> str:
        extra = [pair for pair in self.extra if pair not in itertools.product(self.gogc, self.gomemlimit)]
        beside = (" + " + ", ".join(f"GOGC={g} GOMEMLIMIT={m}" for g, m in extra)
                  + (f" ({AUTOMEMLIMIT_NOTE})" if any(m == AUTOMEMLIMIT for _, m in extra) else "")) if extra else ""
        return (f"GOGC {', '.join(self.gogc)} × GOMEMLIMIT {', '.join(self.gomemlimit)} "
                f"(GOGC=off only with a GOMEMLIMIT){beside}: {len(self.configs())} configurations × {self.repeats} "
                f"repeat{'s' if self.repeats > 1 else ''}")

    def with_deployed(self) -> Grid:
        """This grid with the configurations operators deploy beside it (DEPLOYED)."""
        return dataclasses.replace(self, extra=self.extra + tuple(p for p in DEPLOYED if p not in self.extra))

    def to_json(self) -> dict[str, Any]:
        return {"gogc": list(self.gogc), "gomemlimit": list(self.gomemlimit), "repeats": self.repeats,
                "extra": [list(pair) for pair in self.extra]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grid:
        return cls(tuple(data["gogc"]), tuple(data["gomemlimit"]), int(data["repeats"]),
                   tuple((str(g), str(m)) for g, m in data.get("extra", ())))


# Widest first. Repeats before breadth: with one repeat no spread is measured, and a choice
# between two configurations could flip on a rerun.
DEFAULT_GRIDS = (
    Grid(GOGC_VALUES, GOMEMLIMIT_VALUES, 3),
    Grid(GOGC_VALUES, GOMEMLIMIT_VALUES, 2),
    Grid(GOGC_VALUES, ("off", "80%", "90%"), 2),
    Grid(("100", "off"), ("off", "80%", "90%"), 2),
    Grid(("100", "off"), ("off", "90%"), 1),
)


def parse_values(axis: str, text: str, option: str) -> tuple[str, ...]:
    """'50,100,off' for --gogc or --gomemlimit -> canonical values in the axis's order."""
    values, errors = [], []
    for raw in (v.strip() for v in text.split(",")):
        if not raw:
            errors.append(f"{option} {text!r}: empty value; give values separated by commas")
            continue
        if axis == "gomemlimit" and raw != "off" and not raw.endswith("%") and not raw.lower().endswith("%max"):
            errors.append(f"{option} {raw!r}: give a share of the memory limit (80%; {AUTOMEMLIMIT} of memory.max "
                          "where a memory.high is set) or off, so the same setting applies at every limit "
                          "--find-min-memory tries")
            continue
        try:
            values.append(AXES[axis].canonical(raw))
        except UnitError as exc:
            errors.append(f"{option} {raw!r}: {exc}")
    if errors:
        raise ScenarioError(errors)
    return tuple(sorted_values(axis, set(values)))


def grid_cells(scenario: Scenario, grid: Grid, memory: str, overrides: dict[str, list[str]] | None = None,
               backend: str | None = None, quick: bool = False,
               configs: list[tuple[str, str]] | None = None) -> list[Cell]:
    """The cells of `grid` (or of `configs`, (gogc, gomemlimit) pairs) in a `memory` container:
    repeat 0 of every configuration first, each id naming gogc, gomemlimit and memory."""
    overrides = {k: v for k, v in (overrides or {}).items() if k not in ADVISE_AXES}
    by_repeat: list[tuple[int, int, Cell]] = []
    for index, (gogc, gomemlimit) in enumerate(configs if configs is not None else grid.configs()):
        cells = expand(scenario, {**overrides, "gogc": [gogc], "gomemlimit": [gomemlimit], "memory": [memory]},
                       repeats=grid.repeats, backend=backend, quick=quick)
        by_repeat.extend((cell.repeat, index, cell) for cell in cells)
    by_repeat.sort(key=lambda item: item[:2])
    cells = [cell for _, _, cell in by_repeat]
    return [dataclasses.replace(cell, cell_id=cell_id(cell, _varying(cells))) for cell in cells]


def _varying(cells: list[Cell]) -> set[str]:
    values: dict[str, set[str]] = {}
    for cell in cells:
        for axis, value in cell.axes:
            values.setdefault(axis, set()).add(value)
    return {axis for axis, seen in values.items() if len(seen) > 1} | set(ADVISE_AXES)


def cell_id(cell: Cell, named: set[str]) -> str:
    label = ",".join([f"{a}={v}" for a, v in sorted(cell.axes) if a in named] + [f"r{cell.repeat}"])
    return f"{cell.scenario}[{label}]"
