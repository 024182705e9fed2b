"""The Dockerfile itself, read and linted (no build)."""

import json
import shutil
from pathlib import Path

import pytest

from ..helpers import PROJECT_SETS, TEMPLATE, clean_env, run

pytestmark = pytest.mark.image


@pytest.mark.parametrize("answers", list(PROJECT_SETS))
def test_dockerfile_passes_hadolint(
    all_rendered: dict[str, tuple[Path, Path]], answers: str
) -> None:
    project, _ = all_rendered[answers]
    dockerfile = project / "Dockerfile"
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint not found: it is a dev dependency (uv sync)"
    # Any rule left out must say why on the comment line above the pragma.
    lines = dockerfile.read_text().splitlines()
    for number, text in enumerate(lines):
        if "hadolint ignore" in text or "hadolint global ignore" in text:
            above = lines[number - 1].strip() if number else ""
            reason = f"Dockerfile:{number + 1}: explain `{text.strip()}` on the line above"
            assert above.startswith("#"), reason
            assert "hadolint" not in above, reason
    done = run(
        [hadolint, "--no-color", "--failure-threshold", "style", "--format", "tty", "Dockerfile"],
        cwd=project,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout


@pytest.mark.parametrize("answers", list(PROJECT_SETS))
def test_dockerfile_default_base_is_the_official_slim_image(
    all_rendered: dict[str, tuple[Path, Path]], answers: str
) -> None:
    project, _ = all_rendered[answers]
    text = project.joinpath("Dockerfile").read_text()
    defaults = json.loads(TEMPLATE.joinpath("cookiecutter.json").read_text())
    version = PROJECT_SETS[answers].get("python_version", defaults["python_version"])
    assert f"ARG PYTHON_VERSION={version}\n" in text
    assert "ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim\n" in text
    assert text.count("FROM ${BASE_IMAGE} AS ") == 2
