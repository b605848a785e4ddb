"""The catalogue of Go workloads: their flags, defaults and phases.

This is the Python side's single description of what `go_workloads/cmd/<name>` accepts.
Scenario validation checks parameters against it without building anything; a test runs
each built binary with `-h` and checks that its flags match this table.
"""

from __future__ import annotations

from dataclasses import dataclass

# Parameter kinds, each parsed by harness.define.units:
#   size      "512MiB", "1GiB", "64KiB", plain integers are bytes
#   duration  "500ms", "2s", "3m"
#   int, float, bool, str
#   sizes     comma-separated list of sizes ("8B,16B,32KiB")
#   choice    one of `choices`
KINDS = ("size", "duration", "int", "float", "bool", "str", "sizes", "choice")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    params: tuple[Param, ...]
    phases: tuple[str, ...]  # in the order they occur; optional ones may be absent
    work_phase: str = ""     # the phase whose duration turns the `ops` total into a throughput

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# Flags every workload accepts.
COMMON = (
    Param("metrics-interval", "duration", "100ms", "how often a `metrics` line is written"),
    Param("baseline", "duration", "500ms", "idle time before the work starts, for a baseline reading"),
)

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "alloc-release",
            "The article's experiment: allocate one []byte, drop it, GC, optionally FreeOSMemory, idle.",
            COMMON
            + (
                Param("size", "size", "1GiB", "size of the one []byte"),
                Param("touch", "bool", "true", "write every page; false reproduces the article's snippet"),
                Param("live", "size", "0", "a live heap kept for the whole run, allocated before the spike"),
                Param("hold", "duration", "1s", "how long the spike is held"),
                Param("gcs", "int", "1", "runtime.GC() calls after the reference is dropped"),
                Param("gc-interval", "duration", "0s", "pause between those GC calls"),
                Param("freeos", "bool", "false", "call debug.FreeOSMemory() after the GCs"),
                Param("idle", "duration", "10s", "idle time at the end (scavenger, forced GC every 2 min)"),
            ),
            ("baseline", "live", "allocate", "hold", "release", "freeos", "idle"),
            work_phase="allocate",
        ),
        Workload(
            "freeos-periodic",
            "A steady allocation load that calls debug.FreeOSMemory() every --every (0 = never).",
            COMMON
            + (
                Param("every", "duration", "0s", "period of debug.FreeOSMemory() calls; 0 means never"),
                Param("duration", "duration", "10s", "length of the load phase"),
                Param("obj-size", "size", "64KiB", "size of each allocated object"),
                Param("live", "size", "128MiB", "live set kept by a ring of objects"),
            ),
            ("baseline", "load"),
            work_phase="load",
        ),
        Workload(
            "large-churn",
            "Objects above 32 KiB with mixed sizes and lifetimes; then release and idle.",
            COMMON
            + (
                Param("min-size", "size", "33KiB", "smallest object"),
                Param("max-size", "size", "4MiB", "largest object"),
                Param("live", "size", "256MiB", "target live heap (short- and long-lived together)"),
                Param("long-frac", "float", "0.2", "share of the live heap held by long-lived objects"),
                Param("long-life", "duration", "3s", "mean lifetime of a long-lived object"),
                Param("duration", "duration", "10s", "length of the churn phase"),
                Param("idle", "duration", "5s", "idle time after everything is dropped"),
                Param("seed", "int", "1", "random seed"),
            ),
            ("baseline", "churn", "release", "idle"),
            work_phase="churn",
        ),
        Workload(
            "small-churn",
            "Tiny and small objects at a steady rate, one size after another; throughput and counters per size.",
            COMMON
            + (
                Param("sizes", "sizes", "8B", "object sizes to run, one after another"),
                Param("per-size", "duration", "2s", "how long each size runs"),
                Param("live", "size", "0", "live set kept by a ring of objects of the current size"),
                Param("pointers", "bool", "false", "objects contain a pointer (not eligible for the tiny allocator)"),
                Param("goroutines", "int", "0", "allocating goroutines; 0 means GOMAXPROCS"),
            ),
            ("baseline", "churn"),
            work_phase="churn",
        ),
        Workload(
            "cache-growth",
            "One request stream into an unbounded map cache or a bounded (LRU or TTL) one.",
            COMMON
            + (
                Param("policy", "choice", "unbounded", "cache policy", ("unbounded", "lru", "ttl")),
                Param("rate", "int", "20000", "requests per second"),
                Param("duration", "duration", "10s", "length of the serve phase"),
                Param("value-size", "size", "1KiB", "size of each cached value"),
                Param("capacity", "int", "20000", "entries kept by the lru policy"),
                Param("ttl", "duration", "1s", "lifetime of an entry under the ttl policy"),
                Param("keyspace", "int", "0", "distinct keys (0: every request a new key)"),
            ),
            ("baseline", "serve"),
            work_phase="serve",
        ),
        Workload(
            "pressure",
            "Release memory, then allocate new memory so that new plus lazily freed memory exceeds the limit.",
            COMMON
            + (
                Param("release-size", "size", "512MiB", "memory allocated, touched and released first"),
                Param("freeos", "bool", "true", "call debug.FreeOSMemory() after the release"),
                Param("settle", "duration", "2s", "pause after the release"),
                Param("second-size", "size", "512MiB", "new memory allocated and touched after the release"),
                Param("second-via", "choice", "mmap", "where the new memory comes from", ("mmap", "heap")),
                Param("hold", "duration", "2s", "how long the new memory is held"),
            ),
            ("baseline", "allocate", "release", "settle", "second", "hold"),
            work_phase="second",
        ),
    )
}
