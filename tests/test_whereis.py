"""A watched process's findings: each applies given its Go version, settings and limits, and names its numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.analyse.whereis import findings

MiB = 1 << 20


def frame(runtime: bool = True, lazyfree: float = 0.0, heap_goal: float = 300 * MiB) -> pd.DataFrame:
    nan = float("nan")
    row = {"t_s": 10.0, "rss": 400 * MiB, "rss_anon": 380 * MiB, "rss_file": 20 * MiB, "lazyfree": lazyfree,
           "anon_huge_pages": 0.0, "heap_live": 150 * MiB if runtime else nan,
           "heap_fragmentation": 10 * MiB if runtime else nan, "heap_free": 120 * MiB if runtime else nan,
           "heap_released": 30 * MiB if runtime else nan, "stacks": 2 * MiB if runtime else nan,
           "runtime_other": 18 * MiB if runtime else nan, "runtime_total": 300 * MiB if runtime else nan,
           "heap_goal": heap_goal if runtime else nan, "num_gc": 40.0 if runtime else nan,
           "not_go": 100 * MiB if runtime else nan}
    first = {**row, "t_s": 0.0, "num_gc": 37.0 if runtime else nan}
    return pd.DataFrame([first, row])


def watch(go: str = "1.22.5", env: dict | None = None, limit: int | None = 512 * MiB) -> dict:
    return {"go_version": go, "env": env or {}, "limits": {"memory_max": limit} if limit else {}}


@pytest.mark.parametrize(("data", "info", "said"), [
    (frame(), watch(), "madvdontneed=1, the default of Go 1.22.5 (since Go 1.16)"),
    (frame(lazyfree=64 * MiB), watch(env={"GODEBUG": "madvdontneed=0"}),
     "madvdontneed=0, as set in GODEBUG, on kernel 6.1: released heap is freed with MADV_FREE"),
    (frame(lazyfree=64 * MiB), watch(env={"GODEBUG": "madvdontneed=0"}), "LazyFree reads 64MiB = 16% of RSS"),
    (frame(), watch(go="1.15.15"), "madvdontneed=0, the default of Go 1.15.15 (Go 1.12 to 1.15)"),
    (frame(heap_goal=600 * MiB), watch(),
     "GOMEMLIMIT is unset in a cgroup limited to 512MiB: the heap is paced by GOGC=100 alone; peak RSS 400MiB "
     "= 78% of the limit; heap goal 600MiB"),
    (frame(heap_goal=600 * MiB), watch(), "exceeds the limit: the kernel can OOM-kill it before the next GC"),
    (frame(), watch(go="1.18.10"), "Go 1.18.10 has no GOMEMLIMIT (it came in Go 1.19)"),
    (frame(), watch(env={"GOMEMLIMIT": "450MiB"}), "GOMEMLIMIT=450MiB in a cgroup limited to 512MiB"),
    (frame(), watch(limit=None), "No memory limit applies to its cgroup and GOMEMLIMIT is unset"),
    (frame(), watch(), "The 120MiB of free heap is the runtime's to give back"),
    (frame(), watch(), "3 GC cycles ran during the 10s watch (NumGC 37 → 40); a GC is forced when none ran for 120s"),
    (frame(), watch(), "RSS − runtime = 100MiB is not Go's"),
    (frame(runtime=False), watch(), "The runtime's own numbers were not read: give --metrics-url"),
    (frame(), watch(go=""), "No Go build information in its binary"),
])
def test_a_finding_applies_with_its_numbers(data, info, said):
    text = " ".join(findings(data, info, "6.1", "madvise", 10.0))
    assert said in text, text


def test_released_heap_taken_back_is_summed_from_the_falls_of_heap_released():
    from harness.analyse.whereis import breakdown

    class Data:
        """Readings at 0, 1, 2, 3 s: HeapReleased 50 → 30 → 40 → 25 MiB (falls of 20 and 15 MiB)."""

        def series(self, cell_id, source, metric):
            values = {("smaps", "rss"): 100, ("runtime", "heap_released"): None}
            released = [50, 30, 40, 25]
            if (source, metric) == ("runtime", "heap_released"):
                return pd.Series([v * MiB for v in released], index=[0.0, 1.0, 2.0, 3.0], dtype=float)
            base = values.get((source, metric), 10)
            return pd.Series([base * MiB] * 4, index=[0.0, 1.0, 2.0, 3.0], dtype=float)

    frame = breakdown(Data(), "c")
    assert list(frame["heap_refaulted"] / MiB) == [0, 20, 20, 35]
    text = " ".join(findings(frame, watch(), "6.1", "madvise", 3.0))
    assert "35MiB of heap the scavenger had released was taken back into use during the watch" in text


def test_what_does_not_apply_is_not_said():
    text = " ".join(findings(frame(), watch(), "6.1", "madvise", 10.0))
    assert "exceeds the limit" not in text and "MADV_FREE and stays" not in text
    assert "No Go build information" not in text
    assert findings(frame().iloc[0:0], watch(), "6.1", "madvise", 10.0)[0].startswith("No slow-tier sample")
