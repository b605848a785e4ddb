"""A Build -> a docker image FROM scratch holding /bin/<workload>, tagged by Go version, sources and build settings;
a program's Build -> one holding its executable, loader and libraries at their host paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness.build.docker_client import docker_client, docker_host
from harness.define.build import Build
from harness.define.project import DOCKERFILE

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.images import Image

IMAGE_REPO = "goreclaim-workloads"
PROGRAM_REPO = "goreclaim-program"
# A program's image: the files of its ELF closure, each at the path the loader opens.
PROGRAM_DOCKERFILE = "FROM scratch\nCOPY root/ /\n"


class ImageError(RuntimeError):
    """The image could not be built; the message carries the builder's output."""


def image_tag(build: Build) -> str:
    """A program's image is tagged by its files; the workloads' by Go version, sources and build settings
    (the binaries of a GOEXPERIMENT build are other binaries)."""
    if build.executable is not None:
        return f"{PROGRAM_REPO}:{build.source_hash[:16]}"
    tag = f"{IMAGE_REPO}:go{build.go_version}-{build.source_hash[:12]}"
    if build.build_env:
        settings = "\0".join(f"{k}={v}" for k, v in build.build_env)
        tag += f"-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"
    return tag


def program_files(build: Build) -> list[tuple[str, str]]:
    """(host file, path in the image) of a program's image: its executable where it is on the host,
    then its loader and libraries."""
    return [(str(build.executable), str(build.executable))] + list(build.closure)


def image_labels(build: Build) -> dict[str, str]:
    labels = {"goreclaim": "1", "goreclaim.go_version": build.go_version, "goreclaim.source_hash": build.source_hash}
    if build.build_env:
        labels["goreclaim.build_env"] = " ".join(f"{k}={v}" for k, v in build.build_env)
    return labels


def _client(client: DockerClient | None = None) -> DockerClient:
    return client if client is not None else docker_client()


def docker_unavailable(client: DockerClient | None = None) -> str | None:
    """None if a Docker daemon answers, else one sentence saying why not."""
    try:
        import docker  # noqa: F401 - only whether the SDK is installed
    except ImportError:
        return "the docker Python package is not installed: pip install docker, or use --backend cgroup"
    try:
        c = client if client is not None else docker_client(timeout_s=10)
        c.ping()
    except Exception as e:  # noqa: BLE001 - the SDK raises several unrelated types for "nobody home"
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        return f"no Docker daemon answers at {docker_host()} ({reason}): start dockerd or use --backend cgroup"
    return None


def _existing(client: DockerClient, tag: str) -> Image | None:
    import docker

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def ensure_image(build: Build, client: DockerClient | None = None) -> str:
    """The tag of an image holding the build's binaries; built once per (Go version, sources)."""
    import docker

    client = _client(client)
    tag = image_tag(build)
    image = _existing(client, tag)
    if image is not None and image.labels.get("goreclaim.source_hash") == build.source_hash:
        return tag
    if build.executable is not None:
        return _program_image(client, build, tag)
    binaries = sorted(p for p in build.bin_dir.iterdir() if p.is_file()) if build.bin_dir.is_dir() else []
    if not binaries:
        raise ImageError(f"{build.bin_dir} holds no binaries to put in image {tag}")
    if not DOCKERFILE.is_file():
        raise ImageError(f"{DOCKERFILE} is missing: the image is built from it")
    with tempfile.TemporaryDirectory(prefix="goreclaim-image-") as ctx:
        ctx_dir = Path(ctx)
        shutil.copy2(DOCKERFILE, ctx_dir / "Dockerfile")
        (ctx_dir / "bin").mkdir()
        for b in binaries:
            shutil.copy2(b, ctx_dir / "bin" / b.name)
            os.chmod(ctx_dir / "bin" / b.name, 0o755)
        try:
            client.images.build(
                path=ctx, tag=tag, rm=True, forcerm=True, pull=False,
                labels=image_labels(build),
                buildargs={"GO_VERSION": build.go_version, "SOURCE_HASH": build.source_hash},
            )
        except docker.errors.BuildError as e:
            log = "".join(chunk.get("stream", "") or chunk.get("error", "") for chunk in e.build_log)
            raise ImageError(f"docker build of {tag} failed: {e.msg}\n{log.strip()}") from e
        except docker.errors.APIError as e:
            raise ImageError(f"docker build of {tag} failed: {e.explanation or e}") from e
    return tag


def _program_image(client: DockerClient, build: Build, tag: str) -> str:
    import docker

    with tempfile.TemporaryDirectory(prefix="goreclaim-image-") as ctx:
        ctx_dir = Path(ctx)
        (ctx_dir / "Dockerfile").write_text(PROGRAM_DOCKERFILE)
        for host, inside in program_files(build):
            dest = ctx_dir / "root" / inside.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(host, dest)  # the content, symbolic links followed
            os.chmod(dest, 0o755)
        try:
            client.images.build(path=ctx, tag=tag, rm=True, forcerm=True, pull=False, labels=image_labels(build))
        except (docker.errors.BuildError, docker.errors.APIError) as e:
            raise ImageError(f"docker build of {tag} failed: {getattr(e, 'msg', None) or e}") from e
    return tag


def image_size(tag: str, client: DockerClient | None = None) -> int:
    """Size of the image in bytes, as the daemon reports it."""
    return int(_client(client).images.get(tag).attrs["Size"])
