"""Shared fixtures: one way to get a build of the workloads, one way to get a backend or skip,
and `harness.define.units.MiB` as the one MiB. Tests that need Docker, a cgroup or a Go toolchain
skip with the reason when there is none."""

from __future__ import annotations

import pytest


def _workload_build():
    """The default Go build of go_workloads/, or a skip saying why there is none."""
    from harness.build import toolchain, workload_build

    try:
        return workload_build.build()
    except toolchain.ToolchainError as e:
        pytest.skip(f"no workload build: {e}")


def _backend_or_skip(name: str = "auto"):
    """The backend `name` (auto: what `goreclaim run` would pick, as long as it can limit memory),
    or a skip saying why it cannot run here."""
    from harness.run.backends.select import BackendUnavailable, make_backend, select_backend

    if name == "auto":
        try:
            backend, _ = select_backend("auto", run_label="probe")
        except BackendUnavailable as exc:
            pytest.skip(f"no backend can run cells here: {exc}")
        if backend.name == "process":
            pytest.skip("no backend here can apply a memory limit (needs Docker or a writable memory cgroup)")
        return backend
    backend = make_backend(name)
    why_not = backend.available()
    if why_not is not None:
        pytest.skip(f"backend {name} unavailable here: {why_not}")
    return backend


@pytest.fixture(scope="session")
def go_build():
    """The default Go build, made (or found in the cache) once per test session."""
    return _workload_build()


@pytest.fixture
def backend_or_skip():
    """backend_or_skip(name="auto") -> a Backend that can run here, else the test is skipped."""
    return _backend_or_skip


@pytest.fixture
def limiting_backend(backend_or_skip) -> str:
    """The name of the backend `auto` picks, when it can limit memory (else the test is skipped)."""
    return backend_or_skip("auto").name
