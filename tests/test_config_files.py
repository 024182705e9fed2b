"""The rendered configuration files, checked by the tools that read them.

compose.yaml, the GitHub workflow and the Dependabot config against their published
schemas (check-jsonschema's vendored copies, so offline), .pre-commit-config.yaml with
pre-commit's own `validate-config`, and every command named in the deploy files against the
project: renaming a module, an object or a script without updating them fails here.
"""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import PROJECT_SETS, TOOLS, check_jsonschema, clean_env, cron_of, run
from .start_commands import SOURCES, Requirements

PROBE = Path(__file__).with_name("venv_probe.py")
WORKFLOW = Path(".github") / "workflows" / "ci.yml"
DEPENDABOT = Path(".github") / "dependabot.yml"


@pytest.fixture(scope="module", params=list(PROJECT_SETS))
def installed(
    request: pytest.FixtureRequest, installed_projects: Callable[[str], Path]
) -> tuple[str, Path]:
    """A project set's name and its render with its own virtualenv, from its committed
    uv.lock (the starter's is the one tests/test_starter.py installs)."""
    return request.param, installed_projects(request.param)


@pytest.mark.parametrize("name", PROJECT_SETS)
@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("compose-spec", "compose.yaml"),
        ("github-workflows", str(WORKFLOW)),
        ("dependabot", str(DEPENDABOT)),
    ],
)
def test_matches_its_schema(
    all_rendered: dict[str, tuple[Path, Path]], name: str, schema: str, path: str
) -> None:
    project, _ = all_rendered[name]
    done = check_jsonschema(schema, project / path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("schema", "path", "typo"),
    [
        ("compose-spec", "compose.yaml", ("services", "api", "restrt")),
        ("github-workflows", str(WORKFLOW), ("jobs", "test", "runs_on")),
        ("dependabot", str(DEPENDABOT), ("updates", 0, "schedul")),
    ],
)
def test_schema_check_catches_a_typo(
    rendered: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    schema: str,
    path: str,
    typo: tuple[str | int, ...],
) -> None:
    project, _ = rendered["default"]
    document = yaml.safe_load((project / path).read_text())
    *parents, key = typo
    for parent in parents:
        document = document[parent]
    document[key] = "always"
    broken = tmp_path / Path(path).name
    broken.write_text(yaml.safe_dump(document))
    done = check_jsonschema(schema, broken)
    assert done.returncode == 1
    assert str(key) in done.stdout


def test_dependabot_watches_what_it_can_read(rendered: dict[str, tuple[Path, Path]]) -> None:
    """Each ecosystem has its files; the Dockerfile's images come from ARGs, which
    Dependabot cannot read (dependabot-core issue 2057), hence no `docker` entry. A literal
    `FROM image:tag` would make one worth having again."""
    project, _ = rendered["default"]
    config = yaml.safe_load((project / DEPENDABOT).read_text())
    ecosystems = {entry["package-ecosystem"]: entry["directory"] for entry in config["updates"]}
    assert ecosystems == {"uv": "/", "github-actions": "/"}
    assert (project / "uv.lock").is_file()
    assert list((project / WORKFLOW.parent).glob("*.yml"))
    froms = [
        line.split()[1]
        for line in (project / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ")
    ]
    assert froms, "no FROM in the Dockerfile"
    assert all(image.startswith("${") for image in froms), froms


def pre_commit_validate(config: Path) -> "subprocess.CompletedProcess[str]":
    """pre-commit's own check of a config file (its schema: keys, types, required ones)."""
    return run([str(TOOLS / "pre-commit"), "validate-config", str(config)], cwd=config.parent)


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_pre_commit_config_is_valid(all_rendered: dict[str, tuple[Path, Path]], name: str) -> None:
    project, _ = all_rendered[name]
    config = project / ".pre-commit-config.yaml"
    done = pre_commit_validate(config)
    assert done.returncode == 0, done.stdout + done.stderr
    entries = [hook["entry"] for hook in yaml.safe_load(config.read_text())["repos"][0]["hooks"]]
    assert entries == [
        "uv run --frozen ruff check --fix",
        "uv run --frozen ruff format",
        "uv lock --check",
        "uv run --frozen mypy",
        "uv run --frozen lint-imports",
    ]


def test_pre_commit_check_catches_a_typo(
    rendered: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    project, _ = rendered["default"]
    document = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hook = document["repos"][0]["hooks"][0]
    hook["nmae"] = hook.pop("name")
    broken = tmp_path / ".pre-commit-config.yaml"
    broken.write_text(yaml.safe_dump(document))
    done = pre_commit_validate(broken)
    assert done.returncode == 1
    assert "Missing required key: name" in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_every_command_named_resolves(installed: tuple[str, Path], source: str) -> None:
    _, project = installed
    commands = SOURCES[source](project)
    assert commands, f"{source} names no command"
    needs = Requirements(project)
    for command in commands:
        needs.of_script(command)
    python = project / ".venv" / "bin" / "python"
    probe = run(
        [str(python), "-I", str(PROBE), *sorted(needs.probes)], cwd=project, env=clean_env()
    )
    assert needs.problems + probe.stdout.splitlines() == []
    assert probe.returncode == 0, probe.stderr


@pytest.mark.slow
def test_the_three_processes_are_among_the_commands_checked(installed: tuple[str, Path]) -> None:
    name, project = installed
    package = next((project / "src").iterdir()).name
    needs = Requirements(project)
    for read in SOURCES.values():
        for command in read(project):
            needs.of_script(command)
    assert {
        f"factory={package}.app:create_app",
        f"object={package}.worker.WorkerSettings",
        f"main={package}.scripts.{cron_of(name)[1]}",
    } <= needs.probes
