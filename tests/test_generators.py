"""One source, two generators: cookiecutter and copier render the same project."""

import json
from pathlib import Path

import pytest
import yaml

from .helpers import (
    ANSWER_SETS,
    ANSWERS_FILE,
    CHOICES,
    LEFTOVER,
    TEMPLATE,
    cookiecutter,
    copier,
    tree,
)


@pytest.mark.parametrize("name", ANSWER_SETS)
def test_both_generators_render_identical_files(
    rendered: dict[str, tuple[Path, Path]], name: str
) -> None:
    by_cookiecutter, by_copier = rendered[name]
    expected = tree(by_cookiecutter)
    actual = tree(by_copier)
    assert ANSWERS_FILE in actual
    del actual[ANSWERS_FILE]
    assert sorted(actual) == sorted(expected)
    different = [path for path in expected if actual[path] != expected[path]]
    assert different == []


@pytest.mark.parametrize("name", ANSWER_SETS)
def test_no_template_syntax_is_left(rendered: dict[str, tuple[Path, Path]], name: str) -> None:
    project, _ = rendered[name]
    leftovers = [
        f"{path}:{number}: {line.strip()}"
        for path, (content, _) in tree(project).items()
        for number, line in enumerate(content.decode().splitlines(), 1)
        if LEFTOVER.search(line)
    ]
    assert leftovers == []


def test_custom_answers_reach_the_files(rendered: dict[str, tuple[Path, Path]]) -> None:
    project, _ = rendered["custom"]
    answers = ANSWER_SETS["custom"]
    assert project.name == answers["project_slug"]
    assert (project / "src" / answers["package_name"] / "worker.py").is_file()
    pyproject = (project / "pyproject.toml").read_text()
    assert f'name = "{answers["project_slug"]}"' in pyproject
    assert answers["description"] in pyproject
    assert f"ARG PYTHON_VERSION={answers['python_version']}" in (project / "Dockerfile").read_text()
    railway = (project / ".railway" / "railway.py").read_text()
    assert answers["weekly_reset_schedule"] in railway
    assert f'"{answers["package_name"]}"' in railway
    assert 'license = "Apache-2.0"' in pyproject
    assert "Apache License\n" in (project / "LICENSE").read_text()


def test_both_tools_print_the_same_next_steps(tmp_path: Path) -> None:
    """The project is not a repository yet: both say how to make it one (same words)."""
    (tmp_path / "cc").mkdir()
    said = [cookiecutter({}, tmp_path / "cc"), copier({}, tmp_path / "kudos")]
    hints = []
    for done in said:
        assert done.returncode == 0, done.stderr
        text = done.stdout + done.stderr
        hints.append(text[text.index("Next: ") :].strip().splitlines()[:3])
    assert hints[0] == hints[1]
    assert hints[0][1].strip() == "cd kudos"
    assert hints[0][2].strip().startswith("git init -b main && git add -A && git commit -m")


@pytest.mark.parametrize("name", ANSWER_SETS)
def test_copier_records_its_answers_for_updates(
    rendered: dict[str, tuple[Path, Path]], name: str
) -> None:
    _, by_copier = rendered[name]
    recorded = yaml.safe_load((by_copier / ANSWERS_FILE).read_text())
    assert {"_commit", "_src_path"} <= set(recorded)
    # The computed `cookiecutter` answer is never asked and never stored.
    assert "cookiecutter" not in recorded
    for key, value in ANSWER_SETS[name].items():
        assert recorded[key] == value


def test_both_tools_ask_the_same_questions_with_the_same_defaults() -> None:
    cookiecutter = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    copier = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    cc_questions = [key for key in cookiecutter if not key.startswith("_")]
    copier_questions = [key for key in copier if not key.startswith("_") and key != "cookiecutter"]
    assert cc_questions == copier_questions
    computed = copier["cookiecutter"]["default"]
    # Its first line is the check of the `--data` answers, Jinja only.
    answers = [line for line in computed.splitlines() if not line.startswith("{%")]
    assert [line.split(":")[0] for line in answers] == cc_questions
    for key in cc_questions:
        cc_default = cookiecutter[key]
        if key in CHOICES:
            # One list of options (hooks/choices.json): copier's menu, the hook's check.
            assert "hooks/choice_menu.jinja" in copier[key]["choices"]
            assert copier[key]["default"] == cc_default == CHOICES[key][0]
        if "{{" not in cc_default:
            assert copier[key]["default"] == cc_default
