"""Rendering with the real cookiecutter and copier CLIs, and running commands."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
ANSWERS_FILE = ".copier-answers.yml"
# The local Postgres server (trust auth), as .ci/run starts it; tests make databases on it.
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
# The template's own virtualenv (the one running the tests): its ruff, check-jsonschema...
TOOLS = Path(sys.executable).parent
# Jinja left in a rendered file. `${{ ... }}` is GitHub Actions and Railway syntax, on purpose.
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|%\}")

ANSWER_SETS: dict[str, dict[str, str]] = {
    "default": {},
    # Every answer changed, so a variable used in the wrong place shows up.
    "custom": {
        "project_name": "Acme Rewards",
        "project_slug": "acme-rewards",
        "package_name": "acme_rewards",
        "description": "Rewards for the people of Acme.",
        "author_name": "Ana Souza",
        "author_email": "ana@acme.example",
        "python_version": "3.11",
        "weekly_reset_schedule": "30 3 * * 0",
        "auth_provider": "oidc",
        "license": "Apache-2.0",
    },
}

# The clean starter (examples=none), with a name of its own so that a leftover "kudos"
# shows, and the default description, which must not name the domain either. Rendered,
# installed and checked by tests/test_starter.py, once per run.
STARTER_ANSWERS: dict[str, str] = {"project_name": "Tenant Desk", "examples": "none"}
STARTER = "starter"
# Every project the template's tests install or deploy: the example project's answer sets
# and the starter, by name (harness.rendered_once renders each once per run).
PROJECT_SETS: dict[str, dict[str, str]] = {**ANSWER_SETS, STARTER: STARTER_ANSWERS}


def cron_of(name: str) -> tuple[str, str]:
    """A project set's cron: its compose and Railway service, and its script module (the
    example project's weekly reset, the starter's dormant-users run)."""
    return (
        ("cron", "deactivate_dormant_users")
        if name == STARTER
        else ("cron-weekly", "run_weekly_reset")
    )


# The options of the choice questions: copier.yml's menus, the hook's check.
CHOICES: dict[str, list[str]] = json.loads((TEMPLATE / "hooks" / "choices.json").read_text())

# The longest and the shortest names the answer checks accept (MAX_NAME, MAX_SLUG and
# MAX_PACKAGE, hooks/answer_checks.jinja's limits; a one-letter name), with a description long
# enough to wrap and an empty one: every templated line must pass ruff at both ends. And
# a name and description in Portuguese typography (curly quotes and apostrophes, dashes,
# a no-break space...), which land in a docstring and a string ruff checks for look-alike
# characters. Rendered and checked statically by tests/test_option_matrix.py, never installed.
NAME_EXTREMES: dict[str, dict[str, str]] = {
    "longest-names": {
        "project_name": "Very Long Recognition Platform for the Whole Company Group A",
        "project_slug": "very-long-recognition-platform-for-acmex",
        "package_name": "very_long_recognition_platform_for_acmey",
        "description": " ".join(["A description far longer than the project's line limit."] * 4),
        "author_name": "Maria Aparecida dos Santos Oliveira de Albuquerque Cavalcanti",
        "author_email": "maria.aparecida.dos.santos.oliveira@subsidiary.acme.example",
        "python_version": "3.11",
        "weekly_reset_schedule": "*/15 9-17 * * 1-5",
        "auth_provider": "oidc",
        "license": "proprietary",
    },
    "shortest-names": {
        "project_name": "Q",
        "project_slug": "q",
        "package_name": "q",
        "description": "",
    },
    "typographic-names": {
        "project_name": "Reconhecimento d’Equipe – São Paulo",
        "project_slug": "reconhecimento-sp",
        "package_name": "reconhecimento_sp",
        "description": (
            "“Elogios” entre colegas — API, worker e cron; não é só ‘kudos’: 2×3 moedas,"
            "\u00a0d´água, −1 por semana…"
        ),
        "author_name": "João D’Ávila",
    },
}


def answer(answers: dict[str, str], key: str) -> str:
    """The value a render used: the given answer, else cookiecutter.json's default."""
    if key in answers:
        return answers[key]
    default = json.loads((TEMPLATE / "cookiecutter.json").read_text())[key]
    assert "{{" not in str(default), f"{key}'s default is computed from other answers"
    return str(default)


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without its virtualenv, so `uv` uses the project's own."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    env.update(extra)
    return env


def cookiecutter(answers: dict[str, str], out_dir: Path) -> subprocess.CompletedProcess[str]:
    pairs = [f"{key}={value}" for key, value in answers.items()]
    return run(
        ["cookiecutter", "--no-input", "-o", str(out_dir), str(TEMPLATE), *pairs],
        cwd=out_dir.parent,
    )


def copier(answers: dict[str, str], dest: Path) -> subprocess.CompletedProcess[str]:
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    # --vcs-ref HEAD: the template's checked-out state (plus uncommitted changes), not a tag.
    return run(
        [
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            *data,
            str(TEMPLATE),
            str(dest),
        ],
        cwd=dest.parent,
    )


def render_cookiecutter(answers: dict[str, str], out_dir: Path) -> Path:
    done = cookiecutter(answers, out_dir)
    assert done.returncode == 0, done.stderr
    [project] = [p for p in out_dir.iterdir() if p.is_dir()]
    return project


def render_copier(answers: dict[str, str], dest: Path) -> Path:
    done = copier(answers, dest)
    assert done.returncode == 0, done.stderr
    return dest


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: relative path -> (content, permission bits)."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    """Validate files with check-jsonschema against one of its vendored (offline) schemas."""
    return run(
        [str(TOOLS / "check-jsonschema"), "--builtin-schema", f"vendor.{schema}", *map(str, files)],
        cwd=TEMPLATE,
    )
