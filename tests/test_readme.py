"""The template README's commands, run as written (with the locked tools instead of uvx)."""

import shlex
from pathlib import Path

from .helpers import TEMPLATE, run, tree

# What each tool needs to run without asking: the README's commands are interactive.
NON_INTERACTIVE = {"cookiecutter": ["--no-input"], "copier": ["--defaults"]}


def generate_commands() -> list[list[str]]:
    readme = (TEMPLATE / "README.md").read_text()
    block = readme.split("## Generate a project", 1)[1].split("```sh\n", 1)[1].split("```")[0]
    commands = [shlex.split(line) for line in block.splitlines() if not line.startswith("#")]
    assert [c[:2] for c in commands] == [["uvx", "cookiecutter"], ["uvx", "copier"]], commands
    return [c[1:] + NON_INTERACTIVE[c[1]] for c in commands]


def test_generate_commands_work_from_a_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "template"
    cloned = run(["git", "clone", "--quiet", str(TEMPLATE), str(checkout)], cwd=tmp_path)
    assert cloned.returncode == 0, cloned.stderr
    for command in generate_commands():
        done = run(command, cwd=checkout)
        assert done.returncode == 0, f"{shlex.join(command)}: {done.stdout}{done.stderr}"
    by_cookiecutter, by_copier = tmp_path / "kudos", tmp_path / "my-service"
    assert (by_cookiecutter / "pyproject.toml").is_file(), "the README says ../kudos"
    answers = by_copier / ".copier-answers.yml"
    assert answers.is_file(), "the README says copier writes the folder named"
    answers.unlink()
    assert tree(by_cookiecutter) == tree(by_copier)
