"""What is in the image: its user, its packages, and nothing for development."""

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from ..helpers import TEMPLATE, run
from .containers import Container, Image, check

pytestmark = [pytest.mark.slow, pytest.mark.image]


def test_processes_run_as_a_non_root_user(
    image: Image, containers: Callable[[], Container]
) -> None:
    assert image.config.get("User"), "the image sets no USER: its processes run as root"
    done = containers().run(["id", "-u"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != "0"


def dist_names(lines: str) -> set[str]:
    """Normalised names from `uv export` requirement lines."""
    names = set()
    for line in lines.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-", ".")):
            name = line.split("==")[0].split("[")[0].split(";")[0].strip()
            names.add(name.lower().replace("_", "-").replace(".", "-"))
    return names


def test_image_has_no_dev_dependencies_tests_or_caches(
    image: Image, containers: Callable[[], Container]
) -> None:
    project = image.project
    export = ["uv", "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-header"]
    everything = dist_names(check([*export, "--all-groups", "--directory", str(project)]))
    runtime = dist_names(check([*export, "--no-dev", "--directory", str(project)]))
    dev_only = everything - runtime
    assert {"pytest", "mypy", "ruff"} <= dev_only
    dev_group = dev_dependencies(project)

    container = containers()
    root = Path(check(["buildah", "mount", container.name]).strip())
    try:
        app = root / "app"
        [site] = list((app / ".venv" / "lib").glob("python3*/site-packages"))
        installed = {
            path.name.split("-")[0].lower().replace("_", "-").replace(".", "-")
            for path in site.glob("*.dist-info")
        }
        assert not installed & dev_only, f"dev dependencies in the image: {installed & dev_only}"
        assert installed - runtime <= {project.name}, installed - runtime

        outside_venv = [p for p in app.rglob("*") if ".venv" not in p.relative_to(app).parts]
        names = {p.relative_to(app).as_posix() for p in outside_venv}
        assert not [n for n in names if n.split("/")[0] == "tests"], "tests/ is in the image"
        assert not [p for p in outside_venv if p.name == "__pycache__"]
        package_files = {p.name for p in (site / image.package).rglob("*")}
        project_tests = {p.name for p in (project / "tests").iterdir() if p.name != "__init__.py"}
        assert not package_files & project_tests, package_files & project_tests

        junk = {".git", ".cache", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".env", "uv.lock"}
        found = [p for p in app.rglob("*") if p.name in junk]
        found += [p for p in (root / "root").glob(".cache/*")]
        assert not found, f"in the image: {found}"
        assert not [p for p in (app / ".venv" / "bin").iterdir() if p.name in {"pip", "uv", "uvx"}]
    finally:
        run(["buildah", "umount", container.name], cwd=TEMPLATE)

    # And as the processes see it: the dev tools neither import nor run.
    modules = [name.replace("-", "_") for name in dev_group]
    probe = (
        "import importlib.util, json, shutil, sys;"
        f"m = {modules!r};"
        "print(json.dumps([x for x in m if importlib.util.find_spec(x)]"
        " + [x for x in m if shutil.which(x)]))"
    )
    done = container.run(["python", "-c", probe])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def dev_dependencies(project: Path) -> list[str]:
    """The names in pyproject.toml's dev dependency group."""
    groups = tomllib.loads(project.joinpath("pyproject.toml").read_text())["dependency-groups"]
    return [
        req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for req in groups["dev"]
    ]
