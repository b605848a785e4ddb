"""The FROM-scratch workload image, against the real Docker daemon (skipped without one)."""

from __future__ import annotations

import json
import time

import pytest

from harness.build import image
from harness.build.docker_client import docker_client
from harness.build.image import docker_unavailable, ensure_image, image_tag
from harness.define.workloads import WORKLOADS


@pytest.fixture(scope="module")
def client():
    why = docker_unavailable()
    if why is not None:
        pytest.skip(why)
    return docker_client()


@pytest.fixture(scope="module")
def default_build(go_build):
    return go_build


def test_docker_unavailable_says_why(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    why = docker_unavailable()
    assert why is not None
    assert "unix:///nonexistent/docker.sock" in why and "--backend cgroup" in why


def test_ensure_image_builds_once_then_reuses(client, default_build, monkeypatch):
    from docker.models.images import ImageCollection

    tag = image_tag(default_build)
    assert tag == f"goreclaim-workloads:go{default_build.go_version}-{default_build.source_hash[:12]}"
    import docker

    try:
        client.images.remove(tag, force=True)  # start cold, so the first call really builds
    except docker.errors.ImageNotFound:
        pass
    # Counted rather than timed: a rebuild from the layer cache can give the same image id, and a loaded
    # daemon makes any duration meaningless.
    builds = []
    build = ImageCollection.build

    def counted(self, *args, **kwargs):
        builds.append(kwargs.get("tag"))
        return build(self, *args, **kwargs)

    monkeypatch.setattr(ImageCollection, "build", counted)
    started = time.monotonic()
    assert ensure_image(default_build, client) == tag
    cold_s = time.monotonic() - started
    assert builds == [tag], builds
    first = client.images.get(tag)
    started = time.monotonic()
    assert ensure_image(default_build, client) == tag
    hot_s = time.monotonic() - started
    assert builds == [tag], "the second call rebuilt the image"
    assert client.images.get(tag).id == first.id
    assert first.labels["goreclaim"] == "1"
    assert first.labels["goreclaim.go_version"] == default_build.go_version
    assert first.labels["goreclaim.source_hash"] == default_build.source_hash
    size = image.image_size(tag, client)
    binaries = sum(default_build.binary(w).stat().st_size for w in WORKLOADS)
    # FROM scratch: the image is the binaries and nothing else
    assert binaries <= size < binaries + 64 * 1024
    assert not first.attrs["Config"].get("Entrypoint") and not first.attrs["Config"].get("Cmd")
    print(f"\nimage {tag}: {size / 2**20:.1f} MiB; build {cold_s:.2f} s, reuse {hot_s * 1000:.1f} ms")


def test_alloc_release_runs_in_the_image(client, default_build):
    tag = ensure_image(default_build, client)
    out = client.containers.run(
        tag, entrypoint=["/bin/alloc-release"],
        command=["--size=16MiB", "--idle=0s", "--hold=0s", "--baseline=0s"],
        remove=True, stdout=True, stderr=False, network_disabled=True, mem_limit="256m",
    )
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert events[0]["ev"] == "start" and events[-1]["ev"] == "end"
    assert events[0]["workload"] == "alloc-release"
    assert events[0]["go_version"] == f"go{default_build.go_version}"
    assert all(isinstance(e["t"], int) for e in events)
    phases = [e["name"] for e in events if e["ev"] == "phase"]
    expected = [p for p in WORKLOADS["alloc-release"].phases if p in phases]
    assert phases == expected, "phases out of catalogue order"
    assert {"allocate", "hold", "release", "idle"} <= set(phases)
    peak = max(e["m"]["heap_alloc"] for e in events if e["ev"] == "metrics")
    assert peak >= 16 * 2**20


def test_image_has_no_shell(client, default_build):
    import docker

    tag = ensure_image(default_build, client)
    container = client.containers.create(tag, entrypoint=["/bin/sh", "-c", "true"])
    try:
        with pytest.raises(docker.errors.APIError, match="sh"):
            container.start()
    finally:
        container.remove(force=True)
