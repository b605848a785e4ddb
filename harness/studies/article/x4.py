"""X4 (added): what the Green Tea GC does to resident memory, GC CPU and throughput, built in and built out."""

from __future__ import annotations

import pandas as pd

from harness.analyse.claims.common import (
    Decision,
    axis,
    change,
    col,
    decision,
    exceeds,
    go_before,
    judged,
    seconds2,
    signed_pct,
    span,
)
from harness.analyse.claims.study import Claim, FigureSpec

SCENARIO = "greentea"
ON, OFF = "greenteagc", "nogreenteagc"
PARTS = ("lower GC CPU", "higher steady RSS", "higher peak RSS", "throughput kept")
# Each part is one-sided (`exceeds`: by more than the spread between repeats, or not): which build's
# values must exceed the other's, and the metric. "throughput kept": Green Tea changes marking only, so
# throughput must not fall by more than the noise (the part fails where the build without it exceeds).
EXCEEDS: dict[str, tuple[str, str]] = {
    "lower GC CPU": ("off", "gc"),
    "higher steady RSS": ("on", "steady"),
    "higher peak RSS": ("on", "peak"),
    "throughput kept": ("off", "tput"),
}


def _rate(v: float) -> str:
    return f"{v / 1e6:.2f} M/s"


def _group(t: pd.DataFrame) -> dict:
    """The numbers the evidence gives for the cells of one build. Steady RSS is the time-weighted mean of
    VmRSS: the run is a short baseline and then the steady churn."""
    return {"steady": col(t, "mean_rss"), "peak": col(t, "peak_rss"),
            "gc": col(t, "gc_cpu_s"), "tput": col(t, "throughput"), "n": len(t),
            "killed": int(col(t, "oom_killed").fillna(0).sum())}


def decide(t: pd.DataFrame, derived) -> Decision:
    gt = t[t["scenario"] == SCENARIO]
    if gt.empty:
        return decision("inconclusive", "not-run")
    built = axis(gt, "goexperiment")
    on, off = gt[built == ON], gt[built == OFF]
    if on.empty or off.empty:
        return decision("inconclusive", "one-side")
    g_on, g_off = _group(on), _group(off)
    if g_on["killed"] or g_off["killed"]:
        return decision("inconclusive", "killed", on=g_on, off=g_off)
    sides = {"on": g_on, "off": g_off}
    parts: dict[str, bool | None] = {}
    for name, (above, metric) in EXCEEDS.items():
        below = "off" if above == "on" else "on"
        parts[name] = exceeds(sides[above][metric], sides[below][metric])
    # How the evidence names each outcome, Green Tea against without it.
    said = {"lower GC CPU": ("lower", "not lower"), "higher steady RSS": ("higher", "not higher"),
            "higher peak RSS": ("higher", "not higher"), "throughput kept": ("lower", "not lower")}
    outcomes = {name: "within the noise" if p is None else said[name][0 if p else 1] for name, p in parts.items()}
    if parts["throughput kept"] is not None:
        parts["throughput kept"] = not parts["throughput kept"]
    return judged("judged", parts, on=g_on, off=g_off, outcomes=outcomes)


def _side(g: dict) -> str:
    return (f"steady RSS (mean VmRSS) {span(g['steady'])}, peak RSS {span(g['peak'])}, "
            f"GC CPU {span(g['gc'], seconds2)}, throughput {span(g['tput'], _rate)}")


def evidence(d: Decision) -> str:
    if d.case == "not-run":
        return "The greentea scenario did not run."
    if d.case == "one-side":
        return "Needs cells built with greenteagc and with nogreenteagc on the same Go version."
    on, off = d.on, d.off
    if d.case == "killed":
        return (f"OOM-killed: {on['killed']}/{on['n']} with Green Tea, {off['killed']}/{off['n']} without; "
                "nothing to compare.")
    return (f"Built with GOEXPERIMENT={ON}: {_side(on)}; with {OFF}: {_side(off)}. Green Tea against without: "
            f"GC CPU {signed_pct(change(on['gc'], off['gc']))} ({d.outcomes['lower GC CPU']}), steady RSS "
            f"{signed_pct(change(on['steady'], off['steady']))} ({d.outcomes['higher steady RSS']}), peak RSS "
            f"{signed_pct(change(on['peak'], off['peak']))} ({d.outcomes['higher peak RSS']}), throughput "
            f"{signed_pct(change(on['tput'], off['tput']))} ({d.outcomes['throughput kept']}); each read against "
            "the spread between repeats (at least 5%), over every pair of repeats: three quarters of the pairs "
            "beyond it decide, as three quarters not differing that way at all do.")


CLAIM = Claim(
    "X4", "(added)",
    "Not in the article: the Green Tea GC (GOEXPERIMENT=greenteagc, opt-in in Go 1.25, on by default from 1.26, "
    "nogreenteagc to build without it) spends less CPU on GC for a heap of small pointer-holding objects, and a "
    "program built with it holds more resident memory (golang/go#77567, filed twice as #77568: a program used 33 MB "
    "built with 1.26 against 7.8 MB with 1.25, back to about 7.5 MB after 30 minutes; on Windows 11 amd64, "
    "closed waiting for information, the report itself names no cause), without losing throughput.",
    "The same workload, 64 B pointer-holding objects churned over a 128 MiB live set in a 1 GiB container, built "
    "twice per Go version that has both settings, with greenteagc and with nogreenteagc (the build information of "
    "each binary must record the GOEXPERIMENT it was given, or the cell is build_failed), on the host: GC CPU, "
    "steady RSS (time-weighted mean VmRSS, the run being almost all churn), peak RSS and throughput, each compared "
    "with a tolerance from the spread between repeats.",
    plain="Added: Green Tea GC spends less GC CPU but keeps more memory resident.",
    scenarios=(SCENARIO,),
    metrics=("peak_rss", "mean_rss", "gc_cpu_s", "throughput"),
    figure=FigureSpec("bars", SCENARIO, "greentea", metrics=("peak_rss", "mean_rss", "gc_cpu_s", "throughput"),
                      x="go", hue="goexperiment",
                      title="greentea: peak and mean RSS, GC CPU, throughput by Go version and GOEXPERIMENT"),
    version_metric="gc_cpu_s",
    decide=decide, evidence=evidence, parts=PARTS,
    not_applicable=lambda go: "Green Tea arrived, as an experiment, in Go 1.25" if go_before(go, (1, 25)) else None,
    mechanism="Green Tea marks small objects (at most 512 B, those with inline mark bits: "
              "runtime/mgcmark_greenteagc.go gcUsesSpanInlineMarkBits) span by span: a pointer to such an object only "
              "sets its mark bit and queues its span (FIFO, to let more marks accumulate), and a span is scanned later "
              "for all the objects marked in it, for locality (runtime/mgcmark_greenteagc.go, the file's opening "
              "comment); the spans carry their mark bits inline, at their end. Without it, each object is scanned from "
              "a LIFO work buffer as it is found (runtime/mgcmark_nogreenteagc.go). It is a build setting, not a run-"
              "time one: internal/buildcfg.ParseGOEXPERIMENT, whose baseline turns GreenTeaGC on from Go 1.26 "
              "(internal/buildcfg/exp.go); cmd/go records the value as `build GOEXPERIMENT=` and the linker appends "
              "experiments off the baseline to runtime.Version (\"go1.27.3-X:nogreenteagc\", "
              "\"go1.25.5 X:greenteagc\"), which each cell's start event records.")
