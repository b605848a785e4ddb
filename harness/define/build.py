"""A Build: what a cell executes. The built-in workloads' static binaries for one Go version, or a
foreign program (harness.build.program) with the files an image needs besides it.

Defined here, before the build stage, because every later stage passes it along: the backends run
it, the session keys cells by it, the store records its Go version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Build:
    go_version: str      # "1.27.3"; a foreign binary's own Go version, or "not a Go program"
    bin_dir: Path        # holds one static binary per workload, named as the workload
    source_hash: str     # hash of go_workloads/ sources (of a program: of its files)
    arch: str            # GOARCH
    # A foreign program: its executable, run in place, and the files an image needs besides it
    # (loader and shared libraries) as (host path, path in the image).
    executable: Path | None = None
    closure: tuple[tuple[str, str], ...] = ()
    go_program: bool = True
    workdir: str = ""    # where it runs instead of the scratch directory (a test binary: its package)
    # The settings of `go build` it was built with (a cell's build_env: GOEXPERIMENT), and the
    # experiments its binaries record as differing from the toolchain's defaults ("nogreenteagc";
    # "baseline": none; "": not read, a build without settings).
    build_env: tuple[tuple[str, str], ...] = ()
    experiments: str = ""

    def binary(self, workload: str) -> Path:
        return self.executable if self.executable is not None else self.bin_dir / workload
