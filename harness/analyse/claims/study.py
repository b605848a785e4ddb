"""What a study declares to the engine: its claims, each with the scenarios it reads and the figure
that shows its evidence, and the claims it cannot test.

A study (harness/studies/<name>/) fills these types; the engine evaluates its claims
(harness.analyse.claims.evaluate) and draws the figures they declare (harness.present.figures).
Everything a declaration names is checked when the study is built: a figure on a scenario its
claim does not read, or a metric or series the registries do not know, is a `StudyError` then, not
a figure missing from the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import pandas as pd

from harness.analyse.claims.common import Decision, Derived
from harness.define.metrics import METRICS, PHASE_METRICS, SERIES, Source


class StudyError(ValueError):
    """A study's declarations that the engine cannot evaluate or draw; one line per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class FigureSpec:
    """A figure a claim declares: which kind of figure (harness.present.figures.FIGURE_KINDS), drawn
    from which scenario's cells, with what. The kind says which of the optional fields it reads."""

    kind: str                                   # rss-over-time | breakdown | bars | sizes
    scenario: str                               # whose cells it draws; one its claim reads
    name: str                                   # the file: figures/<name>.png
    title: str = ""                             # "" for the kind's own ("<scenario>: RSS over time")
    metrics: tuple[str, ...] = ()               # summary metrics, one panel each (bars)
    series: tuple[Source, str] = ("proc", "vm_rss")  # the sampled series over time (rss-over-time)
    x: str = ""                                 # the axis along x (bars)
    hue: str = ""                               # the axis whose values get a bar or line each (bars, sizes)
    overlay: str = ""                           # the axis whose values share a panel (rss-over-time)
    select: tuple[tuple[str, str], ...] = ()    # only cells with these axis values (breakdown)
    max_panels: int = 0                         # 0: the kind's default
    markers: tuple[tuple[float, str], ...] = ()  # vertical lines at x values, labelled (sizes)
    also: tuple[str, ...] = ()                  # more scenarios whose cells join the figure (rss-over-time)
    limit: bool = True                          # draw the cells' memory limit (rss-over-time, breakdown)

    @property
    def path(self) -> str:
        return f"figures/{self.name}.png"

    def given(self) -> set[str]:
        """The optional fields this spec sets (differs from the default)."""
        return {f.name for f in fields(self) if f.name not in ("kind", "scenario", "name", "title")
                and getattr(self, f.name) != f.default}


@dataclass(frozen=True)
class Claim:
    id: str
    section: str                 # section numbers of the source the claim comes from
    statement: str               # the claim in the source's words
    fair_test: str
    scenarios: tuple[str, ...]   # the scenarios it reads; the first decides which Go versions get a row
    metrics: tuple[str, ...]     # the summary metrics the report's numbers table shows
    figure: FigureSpec | None    # the figure the report draws for it
    decide: Callable[[pd.DataFrame, Derived], Decision]
    evidence: Callable[[Decision], str]
    # Why the claim does not apply to a Go version (e.g. GOMEMLIMIT before 1.19), else None.
    not_applicable: Callable[[str], str | None] | None = None
    # The runtime or kernel mechanism behind the verdict, with its reference (Go source file and
    # function, or golang/go issue); shown with every verdict.
    mechanism: str = ""
    # The summary metric whose change across Go versions the report's "what changed when" figure
    # draws for this claim ("" for none).
    version_metric: str = ""
    # The claim in one sentence of plain words, for the report's summary ("" for the statement).
    plain: str = ""
    # The named parts every verdict of the claim combines (Decision.parts), each a test the data can
    # pass or fail; tests/test_claims_parts.py requires each to come out both ways.
    parts: tuple[str, ...] = ()
    # Figures shown after the first, for what it cannot show (X1: a growing live heap over time).
    more_figures: tuple[FigureSpec, ...] = ()

    @property
    def figures(self) -> tuple[FigureSpec, ...]:
        return ((self.figure,) if self.figure is not None else ()) + self.more_figures


@dataclass(frozen=True)
class NotTested:
    """A claim of the source that this harness cannot test, and why."""
    id: str
    statement: str
    why: str


@dataclass(frozen=True)
class Study:
    """The claims one source makes, as the engine evaluates and reports them."""

    name: str
    title: str                            # the report's heading for the study
    intro: str                            # the report's first paragraph
    source: str                           # how a claim's origin is named: "The article"
    claims: tuple[Claim, ...]             # in report order
    not_tested: tuple[NotTested, ...] = ()
    not_tested_title: str = "Claims not tested"
    # Where the "what each tool shows" table looks: scenario -> the phases whose end it reads.
    tool_phases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        errors = problems(self)
        if errors:
            raise StudyError(errors)

    @property
    def by_id(self) -> dict[str, Claim]:
        return {c.id: c for c in self.claims}

    def ids(self) -> list[str]:
        """Every claim id, tested ones first in report order, then the ones not tested."""
        return [c.id for c in self.claims] + [n.id for n in self.not_tested]

    def claims_reading(self, scenario: str) -> tuple[str, ...]:
        """The ids of the claims that read a scenario: the one place a scenario's claims come from."""
        return tuple(c.id for c in self.claims if scenario in c.scenarios)

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for c in self.claims for s in c.scenarios))


def known_metric(name: str) -> bool:
    """Whether a summary metric (`X@phase` included) is in the metric registry."""
    base, at, _ = name.partition("@")
    return base in PHASE_METRICS if at else base in METRICS


def problems(study: Study) -> list[str]:
    """What in a study's declarations names something that does not exist."""
    errors = []
    ids = [c.id for c in study.claims] + [n.id for n in study.not_tested]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    errors += [f"study {study.name}: claim id {i} is declared twice" for i in twice]
    names = [spec.name for c in study.claims for spec in c.figures]
    errors += [f"study {study.name}: figure {n} is declared by two claims" for n in sorted({n for n in names
                                                                                             if names.count(n) > 1})]
    for claim in study.claims:
        where = f"study {study.name}, claim {claim.id}"
        if not claim.scenarios:
            errors.append(f"{where}: scenarios: names no scenario")
        if not claim.parts:
            errors.append(f"{where}: parts: names no part (every verdict is a combination of named parts)")
        errors += [f"{where}: metrics: {m!r} is not a summary metric (harness/define/metrics.py)"
                   for m in claim.metrics if not known_metric(m)]
        if claim.version_metric and not known_metric(claim.version_metric):
            errors.append(f"{where}: version_metric: {claim.version_metric!r} is not a summary metric")
        for spec in claim.figures:
            for scenario in (spec.scenario, *spec.also):
                if scenario not in claim.scenarios:
                    errors.append(f"{where}: figure {spec.name}: scenario {scenario!r} is not one the claim reads "
                                  f"(valid: {', '.join(claim.scenarios)})")
            errors += [f"{where}: figure {spec.name}: metrics: {m!r} is not a summary metric "
                       "(harness/define/metrics.py)" for m in spec.metrics if not known_metric(m)]
            if spec.series not in SERIES:
                errors.append(f"{where}: figure {spec.name}: series: {spec.series!r} is not a sampled series "
                              "(harness/define/metrics.py SERIES)")
    read = set(study.scenarios)
    errors += [f"study {study.name}: tool_phases: scenario {s!r} is read by none of its claims"
               for s in study.tool_phases if s not in read]
    return errors
