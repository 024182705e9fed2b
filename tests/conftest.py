from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tools import story

from .harness import installed_once, remove_images, rendered_once
from .helpers import ANSWER_SETS, POSTGRES, PROJECT_SETS


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each answer set rendered by both tools: name -> (cookiecutter dir, copier dir).

    Rendered once for the whole run (all workers), and only read: copy one to change it.
    """
    return {name: rendered_once(tmp_path_factory, name) for name in ANSWER_SETS}


@pytest.fixture(scope="session")
def all_rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """`rendered`, and the starter too: every project set in helpers.PROJECT_SETS (the
    starter's render is the one tests/test_starter.py uses)."""
    return {name: rendered_once(tmp_path_factory, name) for name in PROJECT_SETS}


@pytest.fixture(scope="session")
def installed_projects(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Answer set name -> its cookiecutter render, installed (`uv sync --frozen`).

    Each answer set is installed once for the whole run, when a test first asks for it,
    and shared by every test that needs it: only read it (`harness.editable_copy` makes
    a copy to change).
    """
    return lambda name: installed_once(tmp_path_factory, name)


@pytest.fixture
def database() -> Iterator[str]:
    """An empty database of the test's own on the local Postgres, dropped afterwards."""
    try:
        psycopg.connect(POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres is not reachable at {POSTGRES}: {exc}")
    with story.fresh_database(POSTGRES, prefix="template_test") as url:
        yield url


# A test that asks for one of these is slow, whatever its module says: the quick loop
# (`-m "not slow"`) must never install a project or build the image.
SLOW_FIXTURES = {"installed_projects", "installed", "image", "matrix"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test that needs an installed project or the image but is not marked slow."""
    unmarked = [
        item.nodeid
        for item in items
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "mark these slow (pytest.mark.slow), they install a project or build the image: "
            + ", ".join(unmarked)
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Once all is done (in the controller, or the only process): the run's images go."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the others may still use them
    # The run's shared folder, as pytest-xdist reads it to give each worker its own.
    factory: pytest.TempPathFactory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    remove_images(factory.getbasetemp())
