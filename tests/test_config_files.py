"""The rendered configuration files, checked by the tools that read them.

compose.yaml and the GitHub workflow against their published schemas (check-jsonschema's
vendored copies, so offline), and every command named in the deploy files against the
project: renaming a module, an object or a script without updating them fails here.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import ANSWER_SETS, check_jsonschema, clean_env, run
from .start_commands import SOURCES, Requirements

PROBE = Path(__file__).with_name("venv_probe.py")
WORKFLOW = Path(".github") / "workflows" / "ci.yml"


@pytest.fixture(scope="module", params=list(ANSWER_SETS))
def installed(request: pytest.FixtureRequest, installed_projects: Callable[[str], Path]) -> Path:
    """A rendered project with its own virtualenv, from its committed uv.lock."""
    return installed_projects(request.param)


@pytest.mark.parametrize("name", ANSWER_SETS)
@pytest.mark.parametrize(
    ("schema", "path"), [("compose-spec", "compose.yaml"), ("github-workflows", str(WORKFLOW))]
)
def test_matches_its_schema(
    rendered: dict[str, tuple[Path, Path]], name: str, schema: str, path: str
) -> None:
    project, _ = rendered[name]
    done = check_jsonschema(schema, project / path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("schema", "path", "typo"),
    [
        ("compose-spec", "compose.yaml", ("services", "api", "restrt")),
        ("github-workflows", str(WORKFLOW), ("jobs", "test", "runs_on")),
    ],
)
def test_schema_check_catches_a_typo(
    rendered: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    schema: str,
    path: str,
    typo: tuple[str, str, str],
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
    assert key in done.stdout


@pytest.mark.parametrize("source", SOURCES)
def test_every_command_named_resolves(installed: Path, source: str) -> None:
    commands = SOURCES[source](installed)
    assert commands, f"{source} names no command"
    needs = Requirements(installed)
    for command in commands:
        needs.of_script(command)
    python = installed / ".venv" / "bin" / "python"
    probe = run(
        [str(python), "-I", str(PROBE), *sorted(needs.probes)], cwd=installed, env=clean_env()
    )
    assert needs.problems + probe.stdout.splitlines() == []
    assert probe.returncode == 0, probe.stderr


def test_the_three_processes_are_among_the_commands_checked(installed: Path) -> None:
    package = next((installed / "src").iterdir()).name
    needs = Requirements(installed)
    for read in SOURCES.values():
        for command in read(installed):
            needs.of_script(command)
    assert {
        f"factory={package}.app:create_app",
        f"object={package}.worker.WorkerSettings",
        f"main={package}.scripts.run_weekly_reset",
    } <= needs.probes
