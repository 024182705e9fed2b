"""Bad answers stop both generators before anything is written, with the reason."""

from pathlib import Path

import pytest

from .helpers import cookiecutter, copier

BAD_ANSWERS = [
    ({"project_slug": "Bad Slug", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "1service", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "my--service", "package_name": "ok_pkg"}, "project_slug"),
    ({"package_name": "my-package"}, "package_name"),
    ({"package_name": "class"}, "package_name"),
    ({"package_name": "tests"}, "package_name"),
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
    assert any(field in line for line in done.stderr.splitlines()), done.stderr
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
