"""What the template's tests make once per run and share: renders, installs, the image.

pytest-xdist runs the tests in several worker processes, and a session-scoped fixture
runs once in each. `once` makes a thing once for the whole run instead: the first
worker that asks makes it under a lock in the folder every worker of the run shares;
the others wait for it and reuse it (or fail with the maker's error). Things made once
are only read by the tests that share them; a test that changes a project copies it.
"""

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .helpers import PROJECT_SETS, clean_env, render_cookiecutter, render_copier, run

# Image references built in this run, one a line, removed by the controller at the end.
IMAGES_FILE = "images-built.txt"


def run_root(factory: pytest.TempPathFactory) -> Path:
    """The folder all workers of this run share: each worker's basetemp is inside it."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across the run's processes."""
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder `name` of the run, made by `make(folder)` the first time any worker asks."""
    root = run_root(factory)
    folder, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with locked(root / f"{name}.lock"):
        if failed.exists():
            pytest.fail(f"{name} could not be made:\n{failed.read_text()}", pytrace=False)
        if not done.exists():
            try:
                folder.mkdir()
                make(folder)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}")
                raise
            done.touch()
    return folder


def rendered_once(
    factory: pytest.TempPathFactory, name: str, answers: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """The answer set `name` (or `answers`, named `name`) rendered by both tools:
    (cookiecutter's project, copier's)."""
    chosen = PROJECT_SETS[name] if answers is None else answers

    def make(folder: Path) -> None:
        (folder / "cc").mkdir()
        render_cookiecutter(chosen, folder / "cc")
        render_copier(chosen, folder / "copier")

    folder = once(factory, f"render-{name}", make)
    [project] = [path for path in (folder / "cc").iterdir() if path.is_dir()]
    return project, folder / "copier"


def install(project: Path) -> None:
    """`uv sync --frozen`: exactly what the committed uv.lock says, into project/.venv."""
    done = run(["uv", "sync", "--frozen"], cwd=project, env=clean_env())
    assert done.returncode == 0, done.stderr


def installed_once(
    factory: pytest.TempPathFactory, name: str, answers: dict[str, str] | None = None
) -> Path:
    """A copy of the answer set's cookiecutter render, installed: the run's only install."""
    rendered, _ = rendered_once(factory, name, answers)

    def make(folder: Path) -> None:
        shutil.copytree(rendered, folder / rendered.name, symlinks=True)
        install(folder / rendered.name)

    return once(factory, f"installed-{name}", make) / rendered.name


def editable_copy(project: Path, destination: Path) -> Path:
    """A copy of a rendered project to change, installed on its own (its own .venv)."""
    ignored = shutil.ignore_patterns(".venv", "__pycache__", ".mypy_cache", ".ruff_cache")
    copy = Path(shutil.copytree(project, destination / project.name, ignore=ignored))
    install(copy)
    return copy


def record_image(factory: pytest.TempPathFactory, ref: str) -> None:
    """Note an image built in this run, for `remove_images` at the end."""
    root = run_root(factory)
    with locked(root / f"{IMAGES_FILE}.lock"), (root / IMAGES_FILE).open("a") as refs:
        refs.write(ref + "\n")


def remove_images(root: Path) -> None:
    """Remove the images the run built (called once, by the controller, when all is done)."""
    refs = root / IMAGES_FILE
    for ref in refs.read_text().split() if refs.exists() else []:
        run(["buildah", "rmi", "--force", ref], cwd=root)
