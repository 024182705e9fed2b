"""Every combination of the answers that change the output, rendered and checked statically.

The combinations are every choice question in cookiecutter.json (each of its choices)
times a few weekly reset schedules; a new choice question joins the matrix by itself.
`examples` is not an axis: the kudos project is every combination, the starter
(examples=none) two more, one with the first choices and one with the longest names.
The longest and the shortest names the answer checks accept are rendered too
(helpers.NAME_EXTREMES), as every templated line must pass ruff at any name length, and
names typed with typography (curly quotes, dashes) ruff would take for look-alikes.
The checks need no install: syntax, ruff, no leftover Jinja, the Railway graph, the
compose and workflow schemas, the Python version in the Dockerfile and the CI matrix,
and (for the names) `uv lock --check` against the shipped lock.
No answer constrains another, so there is no invalid combination to refuse; an answer
outside its question's choices is refused before anything is written.
"""

import itertools
import re
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from .helpers import (
    CHOICES,
    LEFTOVER,
    NAME_EXTREMES,
    TOOLS,
    answer,
    check_jsonschema,
    clean_env,
    cookiecutter,
    copier,
    render_cookiecutter,
    run,
)
from .railway_config import evaluate, services

pytestmark = pytest.mark.slow

# Choices that change no code (the license: LICENSE and one pyproject line) take their
# values in turn across the combinations instead of multiplying them.
ROTATED = ("license",)
# The example domain (or none): two starter renders, not a second copy of the matrix.
SINGLED_OUT = ("examples",)
MULTIPLIED = {k: v for k, v in CHOICES.items() if k not in ROTATED + SINGLED_OUT}
SCHEDULES = ["0 0 * * 1", "30 3 * * 0", "*/15 9-17 * * 1-5"]
COMBINATIONS = {
    re.sub(r"[ /]", "_", "-".join(values)): dict(
        zip([*MULTIPLIED, "weekly_reset_schedule"], values, strict=True)
    )
    for values in itertools.product(*MULTIPLIED.values(), SCHEDULES)
}
for index, combination in enumerate(COMBINATIONS.values()):
    for question in ROTATED:
        combination[question] = CHOICES[question][index % len(CHOICES[question])]
STARTERS = {
    "starter": {"examples": "none"},
    "starter-longest-names": {**NAME_EXTREMES["longest-names"], "examples": "none"},
}
RENDERS = {**COMBINATIONS, **NAME_EXTREMES, **STARTERS}
WORKFLOWS = Path(".github") / "workflows"


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every combination and name extreme rendered with cookiecutter, two at a time."""
    base = tmp_path_factory.mktemp("matrix")

    def render(combination: str) -> tuple[str, Path]:
        out = base / str(list(RENDERS).index(combination))
        out.mkdir()
        return combination, render_cookiecutter(RENDERS[combination], out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(render, RENDERS))


@pytest.mark.parametrize("combination", RENDERS)
def test_renders_clean_python(matrix: dict[str, Path], combination: str) -> None:
    project = matrix[combination]
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec", dont_inherit=True)
    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in project.rglob("*")
        if path.is_file()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if LEFTOVER.search(line)
    ]
    assert leftovers == []
    for args in (["check"], ["format", "--check"]):
        done = run([str(TOOLS / "ruff"), *args, "--no-cache", "."], cwd=project)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("combination", RENDERS)
def test_deploy_files_follow_the_answers(matrix: dict[str, Path], combination: str) -> None:
    project, answers = matrix[combination], RENDERS[combination]
    python = answer(answers, "python_version")
    dockerfile = (project / "Dockerfile").read_text()
    assert re.findall(r"^ARG PYTHON_VERSION=(.*)$", dockerfile, re.MULTILINE) == [python]
    # CI tests the Docker image's Python and the oldest one the project supports.
    requires = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    oldest = requires["requires-python"].removeprefix(">=")
    workflow = yaml.safe_load((project / WORKFLOWS / "ci.yml").read_text())
    tested = {
        version
        for job in workflow["jobs"].values()
        for version in job.get("strategy", {}).get("matrix", {}).get("python-version", [])
    }
    assert {python, oldest} <= tested
    graph = services(evaluate(project / ".railway" / "railway.py"))
    if answer(answers, "examples") == "none":
        # The starter's cron is its own (a daily sweep), whatever the reset schedule says.
        assert set(graph) == {"api", "worker", "cron"}
        assert graph["cron"]["deploy"]["cronSchedule"] == "15 4 * * *"
        return
    assert set(graph) == {"api", "worker", "cron-weekly"}
    assert graph["cron-weekly"]["deploy"]["cronSchedule"] == answer(
        answers, "weekly_reset_schedule"
    )


@pytest.mark.parametrize("name", [*NAME_EXTREMES, *STARTERS])
def test_the_lock_matches_at_any_name_length(matrix: dict[str, Path], name: str) -> None:
    """The shipped uv.lock names the project by its slug; uv accepts it at both ends."""
    done = run([str(TOOLS / "uv"), "lock", "--check", "--offline"], matrix[name], clean_env())
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("schema", "path"),
    [("compose-spec", Path("compose.yaml")), ("github-workflows", WORKFLOWS / "ci.yml")],
)
def test_every_combination_matches_the_schemas(
    matrix: dict[str, Path], schema: str, path: Path
) -> None:
    done = check_jsonschema(schema, *(project / path for project in matrix.values()))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("question", list(CHOICES))
def test_an_answer_outside_the_choices_is_refused(question: str, tmp_path: Path) -> None:
    out, dest = tmp_path / "out", tmp_path / "copied"
    out.mkdir()
    by_cookiecutter = cookiecutter({question: "not-a-choice"}, out)
    assert by_cookiecutter.returncode != 0
    assert list(out.iterdir()) == []
    by_copier = copier({question: "not-a-choice"}, dest)
    assert by_copier.returncode != 0
    assert question in by_copier.stderr
    assert not dest.exists()
    for done in (by_cookiecutter, by_copier):
        assert "Traceback" not in done.stdout + done.stderr
