"""Generated projects stay updatable: `copier update` from an earlier template commit.

A scratch git repository holds two commits built from this template's files:

- A, "earlier": the template as it is, but in an older state. The default database
  pool size was 10 (now 5, in `.env.example` and `lib/config.py`), the project had no
  `tests/test_config.py` yet, and it still carried a flake8 config the template has
  since dropped.
- B, "current": the template exactly as it is in this checkout.

The shas are fixed by the content and the pinned commit dates, not by this
repository's history. A project is rendered from A with the real copier CLI,
committed, changed the way users change projects, committed again, and updated to B.
"""

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .helpers import ANSWER_SETS, ANSWERS_FILE, TEMPLATE, clean_env, run

pytestmark = pytest.mark.slow

PROJECT_DIR = "{{cookiecutter.project_slug}}"
PACKAGE_DIR = f"{PROJECT_DIR}/src/{{{{cookiecutter.package_name}}}}"

# What commit A has instead of the current template: (file, text now, text then).
OLDER_TEXT = [
    (f"{PROJECT_DIR}/.env.example", "\nDATABASE_POOL_SIZE=5\n", "\nDATABASE_POOL_SIZE=10\n"),
    (
        f"{PACKAGE_DIR}/lib/config.py",
        "database_pool_size: int = Field(default=5, ge=1)",
        "database_pool_size: int = Field(default=10, ge=1)",
    ),
]
ADDED_LATER = f"{PROJECT_DIR}/tests/test_config.py"
DROPPED_LATER = (f"{PROJECT_DIR}/.flake8", "[flake8]\nmax-line-length = 100\n")

# Files of the project that the update from A to B may change (besides the answers).
TEMPLATE_CHANGED = {".env.example", "src/{pkg}/lib/config.py", "tests/test_config.py", ".flake8"}

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.py[co]", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)

MARKERS = ("<<<<<<<", ">>>>>>>")


def git_env() -> dict[str, str]:
    """Git isolated from the machine's config, with a fixed identity and clock."""
    return clean_env(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Template Test",
        GIT_AUTHOR_EMAIL="template-test@example.com",
        GIT_COMMITTER_NAME="Template Test",
        GIT_COMMITTER_EMAIL="template-test@example.com",
        GIT_AUTHOR_DATE="2025-01-06T09:00:00+00:00",
        GIT_COMMITTER_DATE="2025-01-06T09:00:00+00:00",
    )


def git(cwd: Path, *args: str, date: str | None = None) -> str:
    env = git_env()
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    done = run(["git", *args], cwd=cwd, env=env)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def commit_all(repo: Path, message: str, date: str | None = None) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-gpg-sign", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD").strip()


def make_older(repo: Path) -> None:
    """Turn a copy of the current template into the earlier one (commit A)."""
    for relpath, now, then in OLDER_TEXT:
        path = repo / relpath
        text = path.read_text()
        assert text.count(now) == 1, f"{relpath} no longer has {now!r}: update OLDER_TEXT"
        path.write_text(text.replace(now, then))
    (repo / ADDED_LATER).unlink()
    dropped, content = DROPPED_LATER
    assert not (repo / dropped).exists(), f"{dropped} exists: pick another DROPPED_LATER"
    (repo / dropped).write_text(content)


@dataclass(frozen=True)
class TemplateRepo:
    path: Path
    earlier: str  # sha of commit A
    current: str  # sha of commit B


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    repo = tmp_path_factory.mktemp("template-history") / "template"
    shutil.copytree(TEMPLATE, repo, ignore=IGNORED)
    git(repo, "init", "--quiet", "--initial-branch=main")
    make_older(repo)
    earlier = commit_all(repo, "Earlier template", date="2025-01-06T09:00:00+00:00")
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(TEMPLATE, repo, ignore=IGNORED, dirs_exist_ok=True)
    current = commit_all(repo, "Current template", date="2025-02-03T09:00:00+00:00")
    changed = git(repo, "diff", "--name-only", earlier, current).split()
    expected = {ADDED_LATER, DROPPED_LATER[0], *(relpath for relpath, _, _ in OLDER_TEXT)}
    assert set(changed) == expected
    return TemplateRepo(repo, earlier, current)


def copier(*args: str, cwd: Path) -> tuple[int, str]:
    done = run(["copier", *args], cwd=cwd, env=git_env())
    return done.returncode, done.stdout + done.stderr


def copy(template: TemplateRepo, ref: str, answers: dict[str, str], dest: Path) -> Path:
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    args = ["--trust", "--defaults", "--vcs-ref", ref, *data, str(template.path), str(dest)]
    code, output = copier("copy", *args, cwd=dest.parent)
    assert code == 0, output
    return dest


def generate(template: TemplateRepo, answers: dict[str, str], dest: Path) -> Path:
    """`copier copy` from the earlier commit, then the user's first commit."""
    copy(template, template.earlier, answers, dest)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "Generated from the template")
    return dest


def update(project: Path, ref: str, *extra: str) -> tuple[int, str]:
    return copier("update", "--trust", "--defaults", "--vcs-ref", ref, *extra, cwd=project)


# What git, uv and the tools write into a project they run in: not the project's files.
NOT_THE_PROJECTS = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def project_files(project: Path) -> dict[str, str]:
    """Every file of the project outside .git, .venv and caches: relative path -> text."""
    return {
        str(path.relative_to(project)): path.read_text()
        for path in sorted(project.rglob("*"))
        if path.is_file() and not NOT_THE_PROJECTS & set(path.relative_to(project).parts)
    }


def leftovers(project: Path, skip: frozenset[str] = frozenset()) -> list[str]:
    """Conflict markers and merge rejects anywhere in the project."""
    found = []
    for relpath, text in project_files(project).items():
        if relpath.endswith((".rej", ".orig")):
            found.append(relpath)
        elif relpath not in skip:
            found += [
                f"{relpath}: {line}" for line in text.splitlines() if line.startswith(MARKERS)
            ]
    return found


def unmerged(project: Path) -> list[str]:
    return git(project, "diff", "--name-only", "--diff-filter=U").split()


# --- the user's work on the generated project ---------------------------------

GREETINGS_SERVICE = '''\
"""Greetings for colleagues: plain functions, no tables."""


def greeting(name: str, prefix: str) -> str:
    """`<prefix>, <name>!`, with the name's whitespace tidied; an empty name is refused."""
    tidy = " ".join(name.split())
    if not tidy:
        raise ValueError("name must not be empty")
    return f"{prefix}, {tidy}!"
'''

GREETINGS_TEST = """\
import pytest

from {pkg}.features.greetings.service import greeting
from {pkg}.lib.config import Settings


def test_greeting_uses_the_configured_prefix() -> None:
    prefix = Settings().greeting_prefix
    assert greeting("  Ana   Souza ", prefix) == "Hello, Ana Souza!"


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="name"):
        greeting("   ", "Hi")
"""

CONFIG_ANCHOR = '    log_level: str = "INFO"\n'
USER_SETTING = '    # Opening word of the greetings feature.\n    greeting_prefix: str = "Hello"\n'
USER_ENV_LINES = "\n# Opening word of the greetings feature.\nGREETING_PREFIX=Hello\n"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path} no longer has {old!r}"
    path.write_text(text.replace(old, new))


def add_feature_and_setting(project: Path, pkg: str) -> dict[str, str]:
    """A new feature module with its test, a new setting, a changed default."""
    feature = project / "src" / pkg / "features" / "greetings"
    feature.mkdir()
    (feature / "__init__.py").write_text("")
    (feature / "service.py").write_text(GREETINGS_SERVICE)
    (project / "tests" / "test_greetings.py").write_text(GREETINGS_TEST.format(pkg=pkg))
    edit(project / "src" / pkg / "lib" / "config.py", CONFIG_ANCHOR, CONFIG_ANCHOR + USER_SETTING)
    env = project / ".env.example"
    edit(env, "\nLOG_LEVEL=INFO\n", "\nLOG_LEVEL=DEBUG\n")
    env.write_text(env.read_text() + USER_ENV_LINES)
    return {
        f"src/{pkg}/features/greetings/__init__.py": "",
        f"src/{pkg}/features/greetings/service.py": GREETINGS_SERVICE,
        "tests/test_greetings.py": GREETINGS_TEST.format(pkg=pkg),
    }


# --- a clean update: the user's changes do not touch the template's ---------------


@dataclass(frozen=True)
class Updated:
    project: Path
    pkg: str
    before: dict[str, str]  # the project's files just before `copier update`
    added: dict[str, str]  # the files the user added: path -> content


@pytest.fixture(scope="module")
def updated(template_repo: TemplateRepo, tmp_path_factory: pytest.TempPathFactory) -> Updated:
    answers = ANSWER_SETS["custom"]
    pkg = answers["package_name"]
    project = generate(
        template_repo, answers, tmp_path_factory.mktemp("update") / answers["project_slug"]
    )
    added = add_feature_and_setting(project, pkg)
    commit_all(project, "Greetings feature")
    before = project_files(project)
    code, output = update(project, template_repo.current)
    assert code == 0, output
    return Updated(project, pkg, before, added)


def test_update_changes_only_what_the_template_changed(updated: Updated) -> None:
    assert leftovers(updated.project) == []
    assert unmerged(updated.project) == []
    after = project_files(updated.project)
    before = updated.before
    changed = {path for path in after.keys() | before.keys() if after.get(path) != before.get(path)}
    expected = {path.format(pkg=updated.pkg) for path in TEMPLATE_CHANGED}
    assert changed == expected | {ANSWERS_FILE}


def test_template_changes_arrive(updated: Updated) -> None:
    project = updated.project
    config = (project / "src" / updated.pkg / "lib" / "config.py").read_text()
    assert "database_pool_size: int = Field(default=5, ge=1)" in config
    assert "\nDATABASE_POOL_SIZE=5\n" in (project / ".env.example").read_text()
    assert (project / "tests" / "test_config.py").is_file()
    assert not (project / ".flake8").exists()


def test_user_changes_are_kept(updated: Updated) -> None:
    project = updated.project
    for relpath, content in updated.added.items():
        assert (project / relpath).read_text() == content
    config = (project / "src" / updated.pkg / "lib" / "config.py").read_text()
    assert CONFIG_ANCHOR + USER_SETTING in config
    env = (project / ".env.example").read_text()
    assert "\nLOG_LEVEL=DEBUG\n" in env
    assert env.endswith(USER_ENV_LINES)


def test_answers_record_the_current_commit(updated: Updated, template_repo: TemplateRepo) -> None:
    recorded = yaml.safe_load((updated.project / ANSWERS_FILE).read_text())
    # copier records `git describe --tags --always`: here an abbreviated sha.
    resolved = git(template_repo.path, "rev-parse", "--verify", f"{recorded['_commit']}^{{commit}}")
    assert resolved.strip() == template_repo.current
    assert recorded["_src_path"] == str(template_repo.path)
    for key, value in ANSWER_SETS["custom"].items():
        assert recorded[key] == value


@pytest.fixture(scope="module")
def installed(updated: Updated) -> Path:
    commit_all(updated.project, "Update from the template")
    done = run(["uv", "sync", "--frozen"], cwd=updated.project, env=clean_env())
    assert done.returncode == 0, done.stderr
    return updated.project


def uv_run(project: Path, *args: str) -> tuple[int, str]:
    done = run(["uv", "run", "--frozen", *args], cwd=project, env=clean_env())
    return done.returncode, done.stdout + done.stderr


def test_updated_project_passes_its_static_checks(installed: Path) -> None:
    done = run(["uv", "lock", "--check"], cwd=installed, env=clean_env())
    assert done.returncode == 0, done.stderr
    for args in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        code, output = uv_run(installed, *args)
        assert code == 0, output
    # The project's mypy, over the paths its pyproject.toml names that exist: the
    # template does not ship `bench/` yet (test_generated_project checks that one).
    config = tomllib.loads((installed / "pyproject.toml").read_text())
    paths = [path for path in config["tool"]["mypy"]["files"] if (installed / path).exists()]
    code, output = uv_run(installed, "mypy", *paths)
    assert code == 0, output
    assert "Success: no issues found" in output


# The generated suite's files the update can affect: the user's feature, the settings
# (the user's new one, the template's changed default) and the app booting on them. The
# rest of the suite runs on the same files in test_generated_project's `custom` run:
# `test_updated_project_is_the_current_render_plus_the_users_changes` proves they are
# the same files, so running it again here (about 7 minutes) would check nothing new.
AFFECTED_TESTS = ("tests/test_greetings.py", "tests/test_config.py", "tests/test_health.py")


def test_updated_project_is_the_current_render_plus_the_users_changes(
    updated: Updated, rendered: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    _, current_render = rendered["custom"]
    expected = tmp_path / current_render.name
    shutil.copytree(current_render, expected, ignore=IGNORED)
    add_feature_and_setting(expected, updated.pkg)
    after, wanted = project_files(updated.project), project_files(expected)
    # The answers file records the template's source and commit: checked above.
    del after[ANSWERS_FILE], wanted[ANSWERS_FILE]
    assert after == wanted


def test_updated_project_passes_its_tests(installed: Path) -> None:
    args = ("pytest", "-v", "-p", "no:cacheprovider", *AFFECTED_TESTS)
    code, output = uv_run(installed, *args)
    assert code == 0, output
    # The user's tests and the test the template added both ran.
    assert "tests/test_greetings.py::test_greeting_uses_the_configured_prefix PASSED" in output
    assert "tests/test_config.py::" in output
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary
    for word in ("failed", "skipped", "error"):
        assert word not in summary


# --- a conflicting update: the user edited the lines the template changed ---------

CONFLICT = """\
# Connections each api process keeps open (no overflow: DATABASE_MAX_OVERFLOW=0).
<<<<<<< before updating
DATABASE_POOL_SIZE=20
=======
DATABASE_POOL_SIZE=5
>>>>>>> after updating

# Redis, for the arq job queue.
"""
RESOLVED = """\
# Connections each api process keeps open (no overflow: DATABASE_MAX_OVERFLOW=0).
DATABASE_POOL_SIZE=20

# Redis, for the arq job queue.
"""


@pytest.fixture(scope="module")
def conflicting_origin(
    template_repo: TemplateRepo, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A default project whose user raised the pool size that the template lowers."""
    project = generate(template_repo, {}, tmp_path_factory.mktemp("conflict") / "kudos")
    edit(project / ".env.example", "\nDATABASE_POOL_SIZE=10\n", "\nDATABASE_POOL_SIZE=20\n")
    commit_all(project, "Bigger pool")
    return project


@pytest.fixture
def conflicting(conflicting_origin: Path, tmp_path: Path) -> Path:
    """A fresh copy (with its git history) for each test: rendering once is enough."""
    project = tmp_path / conflicting_origin.name
    shutil.copytree(conflicting_origin, project, symlinks=True)
    return project


def test_conflict_is_marked_inline(conflicting: Path, template_repo: TemplateRepo) -> None:
    project = conflicting
    code, output = update(project, template_repo.current)
    # copier 9 exits 0 on merge conflicts: it reports them in the files (and in git's
    # index), not in its exit status, so check for markers after every update.
    assert code == 0, output
    env = (project / ".env.example").read_text()
    assert CONFLICT in env
    assert unmerged(project) == [".env.example"]
    # The index holds both sides, so `git checkout --ours/--theirs` can pick one:
    # stage 2 ("ours") is the user's version, stage 3 ("theirs") the template's.
    assert "\nDATABASE_POOL_SIZE=20\n" in git(project, "show", ":2:.env.example")
    assert "\nDATABASE_POOL_SIZE=5\n" in git(project, "show", ":3:.env.example")
    # git sees the markers too: `git diff --check` fails while any are left.
    assert run(["git", "diff", "--check"], cwd=project, env=git_env()).returncode != 0
    # Everything else merged: the template's other changes arrived, with no markers.
    assert leftovers(project, skip=frozenset({".env.example"})) == []
    config = (project / "src" / "kudos" / "lib" / "config.py").read_text()
    assert "database_pool_size: int = Field(default=5, ge=1)" in config
    assert (project / "tests" / "test_config.py").is_file()

    # Recovery as docs/updating.md describes it: edit the file to the wanted result,
    # `git add` it, check nothing is left, commit.
    (project / ".env.example").write_text(env.replace(CONFLICT, RESOLVED))
    git(project, "add", ".env.example")
    assert unmerged(project) == []
    assert leftovers(project) == []
    git(project, "diff", "--cached", "--check")
    commit_all(project, "Update from the template")
    recorded = yaml.safe_load((project / ANSWERS_FILE).read_text())
    assert git(template_repo.path, "rev-parse", recorded["_commit"]).strip() == (
        template_repo.current
    )


def test_conflict_recovery_by_reverting_and_using_rej_files(
    conflicting: Path, template_repo: TemplateRepo
) -> None:
    project = conflicting
    before = project_files(project)
    code, output = update(project, template_repo.current)
    assert code == 0, output
    assert unmerged(project) == [".env.example"]

    # Undo the whole update: back to the last commit, new template files removed.
    git(project, "reset", "--quiet", "--hard", "HEAD")
    git(project, "clean", "--quiet", "-d", "--force")
    assert project_files(project) == before

    # Again with `--conflict rej`: the file gets the template's version and the user's
    # hunk that did not apply goes to a .rej file next to it.
    code, output = update(project, template_repo.current, "--conflict", "rej")
    assert code == 0, output
    assert (project / ".env.example.rej").is_file()
    rejected = (project / ".env.example.rej").read_text()
    assert "-DATABASE_POOL_SIZE=10\n+DATABASE_POOL_SIZE=20\n" in rejected
    assert "\nDATABASE_POOL_SIZE=5\n" in (project / ".env.example").read_text()
    assert unmerged(project) == []
    assert [p for p in leftovers(project) if not p.endswith(".rej")] == []

    # Apply what the .rej says by hand (here: keep the bigger pool), delete it, commit.
    edit(project / ".env.example", "\nDATABASE_POOL_SIZE=5\n", "\nDATABASE_POOL_SIZE=20\n")
    (project / ".env.example.rej").unlink()
    assert leftovers(project) == []
    commit_all(project, "Update from the template")


def test_recopy_as_last_resort(conflicting: Path, template_repo: TemplateRepo) -> None:
    project = conflicting
    notes = project / "docs" / "notes.md"
    notes.parent.mkdir(exist_ok=True)
    notes.write_text("Only the user's.\n")
    commit_all(project, "Notes")
    code, output = copier(
        "recopy",
        "--trust",
        "--defaults",
        "--overwrite",
        "--vcs-ref",
        template_repo.current,
        cwd=project,
    )
    assert code == 0, output
    # Every template file is the current template's again: no merge, no markers.
    assert leftovers(project) == []
    assert unmerged(project) == []
    assert "\nDATABASE_POOL_SIZE=5\n" in (project / ".env.example").read_text()
    assert (project / "tests" / "test_config.py").is_file()
    # recopy only writes the template's files: the user's own files stay, and so do
    # the files the template has dropped since.
    assert notes.read_text() == "Only the user's.\n"
    assert (project / ".flake8").is_file()
    # The user's edit is gone from the file but not from git: `git diff` shows it, and
    # `git restore -p` / `git checkout -p` brings back the parts to keep.
    diff = git(project, "diff", "--", ".env.example")
    assert "-DATABASE_POOL_SIZE=20\n+DATABASE_POOL_SIZE=5\n" in diff


# --- a project generated by cookiecutter adopts copier ------------------------------


def test_cookiecutter_project_adopts_copier(template_repo: TemplateRepo, tmp_path: Path) -> None:
    """Both tools render the same files, so an answers file is all copier needs."""
    answers = ANSWER_SETS["custom"]
    # The template as cookiecutter saw it when the project was generated (commit A).
    source = tmp_path / "template-then"
    git(tmp_path, "clone", "--quiet", str(template_repo.path), str(source))
    git(source, "checkout", "--quiet", "--detach", template_repo.earlier)
    out = tmp_path / "cookiecutter"
    out.mkdir()
    # Keep cookiecutter's replay files out of the home directory.
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(
        f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'repos'}\n"
    )
    args = ["--no-input", "--config-file", str(config), "-o", str(out), str(source)]
    pairs = [f"{key}={value}" for key, value in answers.items()]
    done = run(["cookiecutter", *args, *pairs], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    project = out / answers["project_slug"]
    assert not (project / ANSWERS_FILE).exists()

    # The adoption, as docs/updating.md describes it: the answers and the commit.
    recorded = {"_commit": template_repo.earlier, "_src_path": str(template_repo.path), **answers}
    (project / ANSWERS_FILE).write_text(yaml.safe_dump(recorded))
    # The check docs/updating.md gives: copier, from that commit with those answers,
    # renders the project as it was generated.
    pristine = tmp_path / "pristine"
    args = ["--trust", "--defaults", "--vcs-ref", template_repo.earlier]
    args += ["--data-file", str(project / ANSWERS_FILE), str(template_repo.path), str(pristine)]
    code, output = copier("copy", *args, cwd=tmp_path)
    assert code == 0, output
    generated = project_files(project)
    expected = project_files(pristine)
    del generated[ANSWERS_FILE], expected[ANSWERS_FILE]
    assert generated == expected
    git(project, "init", "--quiet", "--initial-branch=main")
    commit_all(project, "Generated with cookiecutter; answers for copier")

    code, output = update(project, template_repo.current)
    assert code == 0, output
    assert leftovers(project) == []
    assert unmerged(project) == []
    # Exactly what copier renders at the current commit with the same answers,
    # answers file included.
    reference = copy(template_repo, template_repo.current, answers, tmp_path / "reference")
    assert project_files(project) == project_files(reference)
