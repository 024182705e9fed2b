"""The clean starter (`examples=none`): the architecture without the example domain.

Rendered by both tools (byte-identical), installed once for the run, and held to the
checks the full project passes: ruff, mypy strict, the lock, the migrations against the
models, and its own test suite on real Postgres, Redis and processes. Nothing in it may
name the example domain: a grep over every file and path says so.
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .harness import installed_once, rendered_once
from .helpers import (
    ANSWERS_FILE,
    LEFTOVER,
    STARTER,
    STARTER_ANSWERS,
    TEMPLATE,
    clean_env,
    run,
    tree,
)

NAME = STARTER  # the name tests/harness.py installs it under, shared with the other modules
# How long the starter's suite may take before it counts as hung (about 2 min on two cores).
SUITE_TIMEOUT_SECONDS = 900
# The example domain's words. Each is a whole word or a name the domain coined, so a
# generic word (a token "reset", an "import" statement, an "email") is never one of them.
DOMAIN_WORDS = re.compile(
    r"kudos|wallets?\b|compliments?|allowances?|weekly[ _-]?(reset|renewal|allowance)"
    r"|run_weekly_reset|\bledger|invitations?\b|announcements?|csv[ _-]?imports?"
    r"|user_import|\bcoins?\b|redeemable|idempotency[ _-]key|mailpit|smtp|\boutbox",
    re.IGNORECASE,
)
# The two locks the template ships (tools/relock.py writes both).
LOCKS = TEMPLATE / "templates" / "locks"


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The starter rendered by cookiecutter and by copier, once for the run."""
    return rendered_once(tmp_path_factory, NAME, STARTER_ANSWERS)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter's cookiecutter render, installed once for the run (`uv sync --frozen`)."""
    return installed_once(tmp_path_factory, NAME, STARTER_ANSWERS)


def uv_run(project: Path, *args: str, timeout: float = 600, **env: str) -> tuple[int, str]:
    done = run(["uv", "run", "--frozen", *args], cwd=project, env=clean_env(**env), timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def test_both_tools_render_the_same_starter(renders: tuple[Path, Path]) -> None:
    cookiecutter_project, copier_project = renders
    ours, theirs = tree(cookiecutter_project), tree(copier_project)
    answers = yaml.safe_load(theirs.pop(ANSWERS_FILE)[0])
    assert answers["examples"] == "none"
    # The weekly reset is the example domain's: copier neither asks nor records it.
    assert "weekly_reset_schedule" not in answers
    assert sorted(ours) == sorted(theirs)
    assert [path for path in ours if ours[path] != theirs[path]] == []


def test_the_starter_names_nothing_of_the_example_domain(renders: tuple[Path, Path]) -> None:
    project, _ = renders
    found = []
    for path in sorted(project.rglob("*")):
        relative = str(path.relative_to(project))
        if DOMAIN_WORDS.search(relative):
            found.append(f"{relative}: (path)")
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if DOMAIN_WORDS.search(line) or LEFTOVER.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_the_starter_keeps_the_architecture(renders: tuple[Path, Path]) -> None:
    project, _ = renders
    package = project / "src" / "tenant_desk"
    for kept in (
        "app.py",
        "worker.py",
        "cli.py",
        "scripts/deactivate_dormant_users.py",
        "features/companies/domains.py",
        "features/users/permissions.py",
        "features/health/router.py",
        "features/user_export/router.py",
        "lib/auth.py",
        "lib/pagination.py",
    ):
        assert (package / kept).is_file(), kept
    migrations = sorted(p.name for p in (project / "migrations" / "versions").glob("*.py"))
    assert migrations == ["0001_companies_and_users.py"]
    for kept in ("Dockerfile", "compose.yaml", ".railway/railway.py", ".github/workflows/ci.yml"):
        assert (project / kept).is_file(), kept
    assert not (project / "bench").exists()


def locked(lock: Path) -> dict[str, str]:
    """Every package a template lock pins but the project itself: name -> version."""
    return {
        package["name"]: package["version"]
        for package in tomllib.loads(lock.read_text(encoding="utf-8"))["package"]
        if "editable" not in package["source"]
    }


def test_the_starter_lock_agrees_with_the_kudos_lock() -> None:
    """The starter's lock is the kudos lock less the domain's dependencies (tools/relock.py
    seeds one from the other): a package in both has one version, so relocking one without
    the other fails here, and hooks/reserved_names.json, read from the kudos lock, covers
    the starter's packages too."""
    kudos, starter = locked(LOCKS / "kudos.uv.lock"), locked(LOCKS / "starter.uv.lock")
    assert sorted(set(starter) - set(kudos)) == []
    assert {
        name: (version, kudos[name]) for name, version in starter.items() if kudos[name] != version
    } == {}
    # The domain's mail and uploads, which the starter's pyproject.toml leaves out.
    domain = {"aiosmtpd", "aiosmtplib", "python-multipart"}
    assert domain <= set(kudos)
    assert domain & set(starter) == set()


@pytest.mark.slow
def test_the_lock_is_consistent(installed: Path) -> None:
    done = run(["uv", "lock", "--check"], cwd=installed, env=clean_env())
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_ruff_check_and_format(installed: Path) -> None:
    code, output = uv_run(installed, "ruff", "check", ".")
    assert code == 0, output
    code, output = uv_run(installed, "ruff", "format", "--check", ".")
    assert code == 0, output


@pytest.mark.slow
def test_mypy_strict(installed: Path) -> None:
    code, output = uv_run(installed, "mypy")
    assert code == 0, output
    assert "Success: no issues found" in output


@pytest.mark.slow
def test_migrations_apply_and_match_the_models(installed: Path, database: str) -> None:
    code, output = uv_run(installed, "alembic", "upgrade", "head", DATABASE_URL=database)
    assert code == 0, output
    assert "0001, companies and users" in output
    code, output = uv_run(installed, "alembic", "check", DATABASE_URL=database)
    assert code == 0, output
    assert "No new upgrade operations detected" in output


@pytest.mark.slow
def test_the_starters_test_suite_passes(installed: Path) -> None:
    args = ("pytest", "-q", "-p", "no:cacheprovider")
    code, output = uv_run(installed, *args, timeout=SUITE_TIMEOUT_SECONDS)
    assert code == 0, output
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary
    assert "failed" not in summary
    assert "skipped" not in summary
    assert "error" not in summary
