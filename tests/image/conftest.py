"""The image tests' fixtures: the project, its image (built once per run), containers.

Each test runs on both variants, the full project (the default answers) and the starter,
unless it parametrizes `variant` itself (`indirect`) to one of them; each variant's image
is built once per run.
"""

import json
import os
import signal
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from ..harness import once, record_image, rendered_once
from ..helpers import STARTER, TEMPLATE, cron_of, run
from .containers import Container, Image, Process, build, check, make_base_image
from .deploy import REDIS_URL, Service, Starter, railway_services


@pytest.fixture(scope="session", params=["default", STARTER])
def variant(request: pytest.FixtureRequest) -> str:
    """The project set under test: the full project or the starter."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def project(variant: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The variant's project as cookiecutter renders it (shared, only read: the build
    context; the starter's is the render tests/test_starter.py checks)."""
    return rendered_once(tmp_path_factory, variant)[0]


@pytest.fixture(scope="session")
def cron(variant: str) -> str:
    """The variant's cron service (compose and Railway)."""
    return cron_of(variant)[0]


@pytest.fixture(scope="session")
def image(variant: str, project: Path, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The project's image, built once per run on the local base (removed at the run's end)."""

    def make(folder: Path) -> None:
        base_image = make_base_image()
        ref = f"localhost/kudos-template-test/{project.name}:{uuid.uuid4().hex[:8]}"
        build(project, base_image, ref)
        record_image(tmp_path_factory, ref)
        inspected = json.loads(check(["buildah", "inspect", "--type", "image", ref]))
        folder.joinpath("config.json").write_text(json.dumps(inspected["OCIv1"]["config"]))
        folder.joinpath("ref").write_text(ref)

    folder = once(tmp_path_factory, f"image-{variant}", make)
    pyproject = tomllib.loads(project.joinpath("pyproject.toml").read_text())
    package = pyproject["tool"]["uv"]["build-backend"]["module-name"]
    config = json.loads(folder.joinpath("config.json").read_text())
    return Image(folder.joinpath("ref").read_text(), project, package, config)


@pytest.fixture(scope="module")
def railway(project: Path, cron: str) -> dict[str, Service]:
    """The app services of .railway/railway.py, evaluated with railway-sdk."""
    return railway_services(project, cron)


@pytest.fixture
def containers(image: Image) -> Iterator[Callable[[], Container]]:
    """Working containers of the image, removed (their processes ended) afterwards."""
    made: list[Container] = []

    def make() -> Container:
        name = f"kudos-template-test-{uuid.uuid4().hex[:10]}"
        check(["buildah", "from", "--pull=never", "--name", name, image.ref])
        container = Container(name)
        made.append(container)
        return container

    yield make
    for container in made:
        for process in container.processes:
            if process.buildah.poll() is None:
                try:
                    process.stop(signal.SIGTERM, timeout=10)
                except AssertionError:
                    os.killpg(process.buildah.pid, signal.SIGKILL)
                    process.buildah.wait()
        run(["buildah", "rm", container.name], cwd=TEMPLATE)


@pytest.fixture
def start(
    railway: dict[str, Service],
    containers: Callable[[], Container],
    database: str,
    queue_name: str,
    tmp_path: Path,
) -> Starter:
    """Start a service as Railway does (see `deploy.Starter`), its output in tmp_path."""

    def start(name: str, *, container: Container | None = None, port: int | None = None) -> Process:
        service = railway[name]
        return (container or containers()).start(
            service.command, service.env(database, queue_name, port), tmp_path / f"{name}.log"
        )

    return start


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue of this test's own; its keys are deleted afterwards."""
    name = f"template-image-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [name, *client.scan_iter(f"{name}:*")]
        client.delete(*keys)
    finally:
        client.close()
