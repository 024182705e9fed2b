"""Bad answers stop both generators before anything is written, with the reason; answers
at the limits pass. The names a package or a slug must not take (hooks/reserved_names.json,
read by both generators) cover what the generated project imports and locks."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import tomllib
from importlib.metadata import distributions, packages_distributions
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.environment import StrictEnvironment
from jinja2 import FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment

import local_extensions
from tools.reserved_names import imported_modules

from .helpers import (
    ANSWER_SETS,
    ANSWERS_FILE,
    CHOICES,
    NAME_EXTREMES,
    TEMPLATE,
    TOOLS,
    cookiecutter,
    copier,
    render_cookiecutter,
    tree,
)

pytestmark = pytest.mark.slow


# The answer checks' limits (hooks/answer_checks.jinja): the longest names it accepts.
MAX_NAME, MAX_SLUG, MAX_PACKAGE = 60, 40, 40
# Answers every check accepts, for a test to change one of.
VALID = {
    "project_name": "Kudos",
    "project_slug": "kudos",
    "package_name": "kudos",
    "description": "",
    "author_name": "A",
    "author_email": "a@example.com",
    "weekly_reset_schedule": "0 0 * * 1",
    **{question: options[0] for question, options in CHOICES.items()},
}
# hooks/pre_gen_project.py as cookiecutter renders it: its strict environment, with the
# extension cookiecutter.json names (the template's loader, the filters copier has).
HOOK = StrictEnvironment(
    context={"cookiecutter": {"_extensions": ["local_extensions.ReservedNames"]}},
    keep_trailing_newline=True,
).from_string((TEMPLATE / "hooks" / "pre_gen_project.py").read_text())


def hook_problems(answers: dict[str, str]) -> list[str]:
    """What the pre-generation hook refuses of `answers` (over VALID): the file rendered
    as cookiecutter renders it, then run as the Python it becomes."""
    rendered = HOOK.render(cookiecutter={**VALID, **answers})
    namespace: dict[str, Any] = {}
    exec(compile(rendered, "pre_gen_project.py", "exec"), namespace)  # noqa: S102 (our hook)
    return list(namespace["PROBLEMS"])


def schedule_problem(schedule: str) -> str | None:
    """The hook's reason for refusing `schedule`, without the question's name."""
    prefix = "weekly_reset_schedule: "
    found = hook_problems({"weekly_reset_schedule": schedule})
    return next((p.removeprefix(prefix) for p in found if p.startswith(prefix)), None)


RESERVED_FILE = TEMPLATE / "hooks" / "reserved_names.json"
RESERVED: dict[str, Any] = json.loads(RESERVED_FILE.read_text(encoding="utf-8"))
REGENERATE = "run `uv run python tools/reserved_names.py` to bring it up to date"

BAD_ANSWERS = [
    ({"project_slug": "Bad Slug", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "1service", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "my--service", "package_name": "ok_pkg"}, "project_slug"),
    ({"package_name": "my-package"}, "package_name"),
    ({"package_name": "class"}, "package_name"),
    ({"package_name": "tests"}, "package_name"),
    # The package would shadow a module the project imports, and the slug names a package
    # in its lock: ruff sorts imports differently and uv.lock no longer parses. (A project
    # *named* httpx gets the default slug httpx-app: see NAMES.)
    ({"project_slug": "httpx", "package_name": "ok_pkg"}, "project_slug"),
    ({"project_slug": "my-service", "package_name": "json"}, "package_name"),
    ({"project_slug": "my-service", "package_name": "jwt"}, "package_name"),  # pyjwt's
    ({"project_slug": "my-service", "package_name": "py"}, "package_name"),  # pytest's (dev)
    ({"project_slug": "my-service", "package_name": "railway_sdk"}, "package_name"),
    ({"project_slug": "pyjwt", "package_name": "ok_pkg"}, "project_slug"),
    (
        {"project_name": 'Say "hi"', "project_slug": "say-hi", "package_name": "ok_pkg"},
        "project_name",
    ),
    (
        {"project_name": "N" * (MAX_NAME + 1), "project_slug": "ok", "package_name": "ok_pkg"},
        "project_name",
    ),
    ({"project_slug": "s" * (MAX_SLUG + 1), "package_name": "ok_pkg"}, "project_slug"),
    ({"package_name": "p" * (MAX_PACKAGE + 1)}, "package_name"),
    ({"author_email": "not-an-email"}, "author_email"),
    ({"description": 'has "quotes"'}, "description"),
    ({"weekly_reset_schedule": "0 0 * *"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "61 0 * * 1"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "0 0 * * 8"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "*/0 * * * *"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "0 0 * * MON"}, "weekly_reset_schedule"),
    ({"weekly_reset_schedule": "*/2 * * * *"}, "weekly_reset_schedule"),
    ({"python_version": "3.10"}, "python_version"),
    ({"python_version": "3.13.1"}, "python_version"),
    ({"auth_provider": "okta"}, "auth_provider"),
    ({"auth_provider": "Auth0"}, "auth_provider"),
    ({"license": "GPL-3.0"}, "license"),
    ({"license": ""}, "license"),
]


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr


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
    # The hook's one-line reason, not a traceback that happens to quote the answer.
    reasons = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert [line for line in reasons if line.startswith(f"error: {field}: ")], done.stderr
    assert_no_traceback(done)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("case", BAD_ANSWERS, ids=[ids(c) for c in BAD_ANSWERS])
def test_copier_refuses(case: tuple[dict[str, str], str], tmp_path: Path) -> None:
    answers, field = case
    dest = tmp_path / "project"
    done = copier(answers, dest)
    assert done.returncode != 0
    assert f"{field}: " in done.stderr.strip().splitlines()[-1], done.stderr
    assert_no_traceback(done)
    assert not dest.exists()


GOOD_SCHEDULES = [
    "0 0 * * 1",
    "0 0 * * 7",  # Sunday, as 0 is
    "*/5 * * * *",  # Railway's shortest interval
    "*/15 9-17 * * 1-5",
    "0 6 1,15 * *",
    "5 4 * 2/3 0",
]


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
    assert len(longest["project_name"]) == MAX_NAME
    assert len(longest["project_slug"]) == MAX_SLUG
    assert len(longest["package_name"]) == MAX_PACKAGE
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


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_both_generators_read_one_list_of_reserved_names() -> None:
    """copier.yml's validators include the file; cookiecutter's hook gets it from the
    extension cookiecutter.json loads."""
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    include = "{% include 'hooks/reserved_names.json' %}"
    checks = (TEMPLATE / "hooks" / "answer_checks.jinja").read_text()
    assert checks.count(include) == 2  # the slug's check and the package's
    for question in ("project_slug", "package_name"):
        assert "{% include 'hooks/answer_checks.jinja' %}" in questions[question]["validator"]
    assert (
        "local_extensions.ReservedNames"
        in json.loads((TEMPLATE / "cookiecutter.json").read_text())["_extensions"]
    )
    assert local_extensions.RESERVED_NAMES_FILE == RESERVED_FILE
    hook = (TEMPLATE / "hooks" / "pre_gen_project.py").read_text()
    assert "{% include 'hooks/answer_checks.jinja' %}" in hook


def copier_env() -> SandboxedEnvironment:
    """A Jinja environment like copier's: the template's root as the loader's, the Ansible
    filters."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATE),
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
    )


def copier_validator(question: str) -> Any:
    """copier.yml's validator for a question, in a Jinja environment like copier's."""
    env = copier_env()
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    return env.from_string(questions[question]["validator"])


@pytest.mark.parametrize("question", ["project_slug", "package_name"])
def test_copier_and_the_hook_refuse_the_same_names(question: str) -> None:
    """Every reserved name and keyword, and names next to them, get the same verdict and
    the same reason from both."""
    names = {*RESERVED["keywords"], *RESERVED["package_names"], "kudos", "acme_rewards", "q"}
    if question == "project_slug":
        names = {name.replace("_", "-") for name in names} | set(RESERVED["project_slugs"])
    validator = copier_validator(question)
    answers = {
        "project_name": "Kudos",
        "project_slug": "kudos",
        "package_name": "kudos",
        "description": "",
        "author_name": "A",
        "author_email": "a@example.com",
        "weekly_reset_schedule": "0 0 * * 1",
        **{question: options[0] for question, options in CHOICES.items()},
    }
    differ = []
    for name in sorted(names):
        by_copier = validator.render({question: name, "_copier_conf": {"data": {}}}).strip()
        by_hook = [
            line
            for line in hook_problems({**answers, question: name})
            if line.startswith(f"{question}:")
        ]
        if [by_copier] != by_hook and (by_copier or by_hook):
            differ.append(f"{name}: copier {by_copier!r}, hook {by_hook!r}")
    assert differ == []


def test_reserved_names_cover_the_standard_library() -> None:
    """The file holds the union over Pythons 3.11 to 3.13; this checks the running one."""
    missing = set(sys.stdlib_module_names) - set(RESERVED["package_names"])
    assert not missing, f"hooks/reserved_names.json misses stdlib {sorted(missing)}; {REGENERATE}"


def test_reserved_names_cover_the_locked_packages() -> None:
    """Every package in the generated project's uv.lock (runtime and dev): its name as a
    slug, its modules as a package name."""
    lock = tomllib.loads(
        (TEMPLATE / "templates" / "locks" / "kudos.uv.lock").read_text(encoding="utf-8")
    )
    locked = {
        normalize(package["name"])
        for package in lock["package"]
        if "editable" not in package["source"]
    }
    known = set(RESERVED["dependencies"])
    assert locked == known, (
        f"hooks/reserved_names.json does not match the project's uv.lock (new: "
        f"{sorted(locked - known)}, gone: {sorted(known - locked)}); {REGENERATE}"
    )
    assert locked <= set(RESERVED["project_slugs"]), REGENERATE
    modules = set().union(*RESERVED["dependencies"].values())
    assert modules <= set(RESERVED["package_names"]), REGENERATE


def test_locked_modules_match_the_installed_distributions() -> None:
    """Where the template's own environment has a locked package at the locked version, the
    modules the standard library sees in it are the ones the file lists."""
    lock = tomllib.loads(
        (TEMPLATE / "templates" / "locks" / "kudos.uv.lock").read_text(encoding="utf-8")
    )
    versions = {normalize(package["name"]): package.get("version") for package in lock["package"]}
    installed = {normalize(dist.metadata["Name"]): dist.version for dist in distributions()}
    checked: set[str] = set()
    missing: list[str] = []
    for module, dists in packages_distributions().items():
        for dist in map(normalize, dists):
            if module.isidentifier() and versions.get(dist) == installed.get(dist):
                checked.add(dist)
                if module not in RESERVED["dependencies"][dist]:
                    missing.append(f"{dist}: {module}")
    assert checked, "no locked package at its locked version here to compare with"
    assert missing == [], REGENERATE


def test_reserved_names_cover_what_the_project_imports(tmp_path: Path) -> None:
    """Every top-level module the default project's code imports, and its folders."""
    out = tmp_path / "out"
    out.mkdir()
    imported = imported_modules(render_cookiecutter({}, out))
    missing = imported - {"kudos"} - set(RESERVED["package_names"])
    assert not missing, (
        f"the project imports {sorted(missing)}, which hooks/reserved_names.json does not "
        f"reserve; {REGENERATE}"
    )


# Project names in several languages and scripts -> the slug both tools derive (the rules
# are in hooks/names.jinja). The package is the slug with underscores.
NAMES = {
    "Kudos": "kudos",
    "Loja Fácil": "loja-facil",
    "Ärzte Café": "arzte-cafe",
    "Señor Ñandú": "senor-nandu",
    "Straße & Œuvre": "strasse-oeuvre",
    "Łódź Żółć": "lodz-zolc",
    "Joe's Shop": "joes-shop",
    "Москва Кудос": "moskva-kudos",
    "Ελληνικά": "ellinika",
    "🚀 Launch 🚀": "launch",
    "🚀🚀": "my-project",
    "東京": "my-project",
    "!!!": "my-project",
    "2048 Game": "project-2048-game",
    "Httpx": "httpx-app",  # a package in the project's lock
    "Fa\u0301cil": "facil",  # decomposed: `a` and a combining acute
}
RENDERED_NAMES = ["Loja Fácil", "Ärzte Café", "Señor Ñandú", "Москва Кудос", "🚀🚀", "Httpx"]


def test_one_macro_derives_the_names_for_both_tools() -> None:
    """cookiecutter.json and copier.yml both import hooks/names.jinja."""
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    for question, macro in (("project_slug", "slug"), ("package_name", "package")):
        imported = f"{{% from 'hooks/names.jinja' import {macro} %}}"
        assert imported in questions[question]["default"]
        assert imported in defaults[question]


@pytest.mark.parametrize("name", NAMES)
def test_default_names_in_copiers_environment(name: str) -> None:
    """The whole table, rendered with copier.yml's own default expressions (fast)."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATE),
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
    )
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    slug = env.from_string(questions["project_slug"]["default"]).render(project_name=name)
    package = env.from_string(questions["package_name"]["default"]).render(project_slug=slug)
    assert (slug, package) == (NAMES[name], NAMES[name].replace("-", "_"))
    assert (
        hook_problems({"project_name": name, "project_slug": slug, "package_name": package}) == []
    )


@pytest.mark.parametrize("name", RENDERED_NAMES)
def test_both_tools_derive_the_same_names(name: str, tmp_path: Path) -> None:
    """The real CLIs, given only the project name: the same slug and package, the same files."""
    out, dest = tmp_path / "out", tmp_path / "copied"
    out.mkdir()
    by_cookiecutter = cookiecutter({"project_name": name}, out)
    assert by_cookiecutter.returncode == 0, by_cookiecutter.stdout + by_cookiecutter.stderr
    by_copier = copier({"project_name": name}, dest)
    assert by_copier.returncode == 0, by_copier.stderr
    slug = NAMES[name]
    assert [p.name for p in out.iterdir()] == [slug]
    assert (dest / "src" / slug.replace("-", "_")).is_dir()
    copied = tree(dest)
    del copied[ANSWERS_FILE]
    assert copied == tree(out / slug)


SCHEDULES = {
    "0 0 * * 1": None,
    "0 0 * * 0": None,
    "0 0 * * 7": None,
    "0 0 * * 0-7": None,
    "*/5 * * * *": None,
    "55,0 * * * *": None,
    "59,1 3 * * *": None,  # 23:59 and 00:01 are not both runs: hour 3 only
    "0 0 * * 8": "invalid day-of-week",
    "0 0 * * MON": "uses names",
    "0 0 1 JAN *": "uses names",
    "*/2 * * * *": "runs every 2 minute(s)",
    "* * * * *": "runs every 1 minute(s)",
    "0,3 * * * *": "runs every 3 minute(s)",
    "58,1 * * * *": "runs every 3 minute(s)",  # across the hour
    "59,1 23,0 * * *": "runs every 2 minute(s)",  # across midnight
    "0 0 * *": "must have 5 fields",
    "0 0 * * * *": "must have 5 fields",
    "60 0 * * *": "invalid minute",
    "5-3 * * * *": "invalid minute",
    "*/0 * * * *": "invalid minute",
    "0 0 0 * *": "invalid day-of-month",
    "@weekly": "must have 5 fields",
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_hook_and_copier_judge_schedules_alike(schedule: str) -> None:
    """Railway's cron rules, in the hook (Python) and in copier's validator (Jinja)."""
    by_hook = schedule_problem(schedule)
    by_copier = copier_validator("weekly_reset_schedule").render(
        weekly_reset_schedule=schedule, _copier_conf={"data": {}}
    )
    assert by_copier.strip() == (f"weekly_reset_schedule: {by_hook}" if by_hook else "")
    expected = SCHEDULES[schedule]
    if expected is None:
        assert by_hook is None
    else:
        assert by_hook is not None
        assert expected in by_hook
        if expected == "uses names":
            assert "0 and 7 are Sunday" in by_hook
        if expected.startswith("runs every"):
            assert "at least 5 minutes" in by_hook


@pytest.mark.parametrize("schedule", ["*/2 * * * *", "0 0 * * MON"])
def test_both_tools_refuse_a_schedule_in_one_line(schedule: str, tmp_path: Path) -> None:
    out, dest = tmp_path / "out", tmp_path / "copied"
    out.mkdir()
    reason = schedule_problem(schedule)
    assert reason is not None
    for done in (
        cookiecutter({"weekly_reset_schedule": schedule}, out),
        copier({"weekly_reset_schedule": schedule}, dest),
    ):
        assert done.returncode != 0
        assert "Traceback" not in done.stdout + done.stderr
        assert reason in done.stderr.strip().splitlines()[-1]
    assert list(out.iterdir()) == []
    assert not dest.exists()


# How long the terminal must stay silent for a prompt to count as drawn in full.
QUIET_SECONDS = 0.2


def ready_within(fd: int, seconds: float) -> bool:
    """Whether the terminal has more to read within `seconds`."""
    return bool(select.select([fd], [], [], seconds)[0])


def interact(args: list[str], steps: list[tuple[str, str]], timeout: float = 60) -> tuple[int, str]:
    """Run a CLI in a terminal: wait for each text to show up after the previous answer, then
    type its answer; Enter for the rest. Returns the exit status and everything the terminal
    showed (colour and cursor codes removed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the terminal as its streams
        os.execvp(args[0], args)  # noqa: S606 - the real CLI, as the other tests run it
    log, since, pending = b"", 0, list(steps)
    deadline = time.monotonic() + timeout

    def shown(start: int = 0) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", log[start:].decode(errors="replace"))

    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                log += os.read(fd, 65536)
            except OSError:  # the CLI has exited and closed the terminal
                break
        if pending and pending[0][0] in shown(since) and not ready_within(fd, QUIET_SECONDS):
            # The prompt is drawn in full (its default filled in) once the terminal goes
            # quiet: Ctrl-U clears that default, then the answer.
            os.write(fd, ("\x15" + pending.pop(0)[1] + "\r").encode())
            since = len(log)
        elif not pending and not ready:
            os.write(fd, b"\r")
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown()


def test_interactive_copier_asks_again_for_a_bad_slug(tmp_path: Path) -> None:
    dest = tmp_path / "project"
    code, shown = interact(
        [str(TOOLS / "copier"), "copy", "--trust", "--vcs-ref", "HEAD", str(TEMPLATE), str(dest)],
        [
            ("Project name", "Loja Fácil"),
            ("Project slug", "Bad Slug"),
            ("Project slug", "loja-facil"),  # asked again
        ],
    )
    assert code == 0, shown[-2000:]
    # The reason, cut to the terminal's width (copier shows it under the prompt).
    assert "Validation error for question 'project_slug'" in shown
    assert "Traceback" not in shown
    assert (dest / "src" / "loja_facil").is_dir()


CHOICE_ANSWERS = ["3.13", "3.11", "3.10", "3.13.1", "auth0", "oidc", "Auth0", "okta", "MIT"]
CHOICE_ANSWERS += ["Apache-2.0", "apache-2.0", "GPL-3.0", "proprietary", "", " MIT"]
CHOICE_ANSWERS += ["kudos", "none", "None", "minimal"]
# Every choice question answered (with its first option) where the answer set leaves it out.
FIRST_CHOICES = {question: options[0] for question, options in CHOICES.items()}


@pytest.mark.parametrize("question", list(CHOICES))
def test_copier_and_the_hook_refuse_the_same_choices(question: str) -> None:
    """One list of options (hooks/choices.json) and the same words from both."""
    checks = copier_env().get_template("hooks/answer_checks.jinja")
    differ = []
    for value in CHOICE_ANSWERS:
        by_copier = checks.render(question=question, **{question: value})
        answers = {**FIRST_CHOICES, **ANSWER_SETS["custom"], question: value}
        by_hook = hook_problems(answers)
        if [by_copier.strip()] != by_hook and (by_copier.strip() or by_hook):
            differ.append(f"{value!r}: copier {by_copier!r}, hook {by_hook!r}")
    assert differ == []


def test_copiers_menus_show_the_options() -> None:
    """The menu of a question is hooks/choices.json's options; a `--data` value outside
    them is added only to be refused (test_copier_refuses)."""
    env = copier_env()
    questions = yaml.safe_load((TEMPLATE / "copier.yml").read_text())
    for question, options in CHOICES.items():
        menu = env.from_string(questions[question]["choices"])
        assert json.loads(menu.render(_copier_conf={"data": {}})) == options
        given = {"data": {question: "bad"}}
        assert json.loads(menu.render(_copier_conf=given)) == [*options, "bad"]


def test_interactive_cookiecutter_refuses_a_bad_choice_in_one_line(tmp_path: Path) -> None:
    """Cookiecutter asks every question before its pre-generation hook runs
    (cookiecutter.main: prompt_for_config, then generate_files runs the hook), so it cannot
    ask again: the hook's one line, a non-zero exit, and nothing written."""
    out = tmp_path / "out"
    out.mkdir()
    code, shown = interact(
        [str(TOOLS / "cookiecutter"), "-o", str(out), str(TEMPLATE)],
        [
            *((prompt, "") for prompt in ("Project name", "Project slug", "Python package")),
            ("Example domain", ""),
            *((prompt, "") for prompt in ("One-line", "Author name", "Author email")),
            ("Python version", "3.10"),
            ("Weekly reset", ""),
            ("Identity provider", ""),
            ("License", "GPL-3.0"),
        ],
    )
    assert code != 0, shown[-2000:]
    assert "error: python_version: '3.10' must be one of 3.13, 3.12, 3.11" in shown
    assert "error: license: 'GPL-3.0' must be one of MIT, Apache-2.0, proprietary" in shown
    assert "Traceback" not in shown
    assert list(out.iterdir()) == []
