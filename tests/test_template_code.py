"""The template's own code (hooks, tests, tools) meets the bar it sets for projects."""

from .helpers import TEMPLATE, clean_env, run


def test_ruff_check_and_format() -> None:
    for args in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        done = run(["uv", "run", "--frozen", *args], cwd=TEMPLATE, env=clean_env())
        assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict() -> None:
    done = run(["uv", "run", "--frozen", "mypy"], cwd=TEMPLATE, env=clean_env())
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (TEMPLATE / "README.md").read_text()
    command = readme.split("## Test the template", 1)[1].split("```sh\n", 1)[1].split("\n")[0]
    assert command == "uv run pytest"
    ci_lines = (TEMPLATE / ".ci" / "run").read_text().splitlines()
    assert any(line.startswith(command) for line in ci_lines)
