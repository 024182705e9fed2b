"""Bad answers stop both generators before anything is written, with the reason; answers
at the limits pass."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from .helpers import ANSWERS_FILE, NAME_EXTREMES, TEMPLATE, cookiecutter, copier, tree


def load_hook() -> ModuleType:
    """hooks/pre_gen_project.py as a module (its limits; the Jinja in it is only in strings)."""
    spec = importlib.util.spec_from_file_location(
        "pre_gen_project", TEMPLATE / "hooks" / "pre_gen_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOK = load_hook()

BAD_ANSWERS = [
    ({"project_slug": "Bad Slug", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "1service", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "my--service", "package_name": "ok_pkg"}, "project_slug"),
    ({"package_name": "my-package"}, "package_name"),
    ({"package_name": "class"}, "package_name"),
    ({"package_name": "tests"}, "package_name"),
    (
        {"project_name": 'Say "hi"', "project_slug": "say-hi", "package_name": "ok_pkg"},
        "project_name",
    ),
    (
        {"project_name": "N" * (HOOK.MAX_NAME + 1), "project_slug": "ok", "package_name": "ok_pkg"},
        "project_name",
    ),
    ({"project_slug": "s" * (HOOK.MAX_SLUG + 1), "package_name": "ok_pkg"}, "project_slug"),
    ({"package_name": "p" * (HOOK.MAX_PACKAGE + 1)}, "package_name"),
    ({"author_email": "not-an-email"}, "author_email"),
    ({"description": 'has "quotes"'}, "description"),
    ({"weekly_reset_schedule": "0 0 * *"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "61 0 * * 1"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "0 0 * * 7"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "*/0 * * * *"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "0 0 * * MON"}, "weekly_reset_schedule"),
    ({"python_version": "3.10"}, "python_version"),
]


def ids(case: tuple[dict[str, str], str]) -> str:
    answers, _ = case
    return ",".join(f"{k}={v}" for k, v in answers.items())


@pytest.mark.parametrize("case", BAD_ANSWERS, ids=[ids(c) for c in BAD_ANSWERS])
def test_cookiecutter_refuses(case: tuple[dict[str, str], str], tmp_path: Path) -> None:
    answers, field = case
    out = tmp_path / "out"
    out.mkdir()
    done = cookiecutter(answers, out)
    assert done.returncode != 0
    # The hook's one-line reason (cookiecutter's own for a choice), not a traceback that
    # happens to quote the answer.
    reasons = [
        line for line in done.stderr.splitlines() if line.startswith(("error: ", "ValueError: "))
    ]
    assert any(field in line for line in reasons), done.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("case", BAD_ANSWERS, ids=[ids(c) for c in BAD_ANSWERS])
def test_copier_refuses(case: tuple[dict[str, str], str], tmp_path: Path) -> None:
    answers, field = case
    dest = tmp_path / "project"
    done = copier(answers, dest)
    assert done.returncode != 0
    assert field in done.stderr.strip().splitlines()[-1], done.stderr
    assert not dest.exists()


GOOD_SCHEDULES = ["0 0 * * 1", "*/15 9-17 * * 1-5", "0 6 1,15 * *", "5 4 * 2/3 0"]


@pytest.mark.parametrize("schedule", GOOD_SCHEDULES)
def test_both_accept_valid_schedules(schedule: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert cookiecutter({"weekly_reset_schedule": schedule}, out).returncode == 0
    assert copier({"weekly_reset_schedule": schedule}, tmp_path / "copied").returncode == 0
    for project in (out / "kudos", tmp_path / "copied"):
        assert f'"{schedule}"' in (project / ".railway" / "railway.py").read_text()


def test_the_longest_names_are_at_the_limits() -> None:
    longest = NAME_EXTREMES["longest-names"]
    assert len(longest["project_name"]) == HOOK.MAX_NAME
    assert len(longest["project_slug"]) == HOOK.MAX_SLUG
    assert len(longest["package_name"]) == HOOK.MAX_PACKAGE
    assert {
        len(NAME_EXTREMES["shortest-names"][key]) for key in ("project_slug", "package_name")
    } == {1}


@pytest.mark.parametrize("name", NAME_EXTREMES)
def test_both_accept_the_longest_and_shortest_names(name: str, tmp_path: Path) -> None:
    """Both tools accept the limits themselves, and render the same files there."""
    answers = NAME_EXTREMES[name]
    out, dest = tmp_path / "out", tmp_path / "copied"
    out.mkdir()
    by_cookiecutter = cookiecutter(answers, out)
    assert by_cookiecutter.returncode == 0, by_cookiecutter.stderr
    by_copier = copier(answers, dest)
    assert by_copier.returncode == 0, by_copier.stderr
    copied = tree(dest)
    del copied[ANSWERS_FILE]
    assert copied == tree(out / answers["project_slug"])
