from pathlib import Path

import pytest

from .helpers import ANSWER_SETS, render_cookiecutter, render_copier


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each answer set rendered by both tools: name -> (cookiecutter dir, copier dir)."""
    result = {}
    for name, answers in ANSWER_SETS.items():
        base = tmp_path_factory.mktemp(f"render-{name}")
        (base / "cc").mkdir()
        result[name] = (
            render_cookiecutter(answers, base / "cc"),
            render_copier(answers, base / "copier"),
        )
    return result
