"""The architecture guide (docs/, mkdocs.yml): it builds, what it names exists, its how-tos work.

- `mkdocs build --strict` passes: no broken links or anchors, no page left out of the nav.
- Every file path, module, command module, setting and Railway setting the pages name in
  backticks (and in `sh`/`console` blocks) exists in a project rendered with the default
  answers (`<pkg>` is its package name; other `<placeholders>` match any name). Paths
  and modules a how-to creates are accepted in that how-to only.
- Each how-to is followed literally on a rendered, installed project, the default one and
  the starter (`examples=none`), each with its own package name: blocks with a
  `title="path"` are written (whole files) or applied (`diff` blocks: ` `/`-` lines are
  the text replaced, ` `/`+` lines its replacement, found exactly once), and every `sh`
  block is run from the project folder, with DATABASE_URL on a database created empty
  for the how-tos; it must exit 0 ("add a feature" generates its migration there with
  the real `alembic revision --autogenerate`). `console` and untitled blocks are
  illustrations and are not run. The Portuguese how-tos must carry the same blocks.
"""

import posixpath
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools import story

from .harness import editable_copy, rendered_once
from .helpers import POSTGRES, STARTER_ANSWERS, TEMPLATE, TOOLS, clean_env, run
from .railway_config import evaluate, services

DOCS = TEMPLATE / "docs"
PACKAGE = "kudos"
PAGES = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))
HOWTOS = ["howto/add-a-feature.md", "howto/add-a-worker-job.md", "howto/add-a-cron-job.md"]
# The variants the how-tos are followed on, with their package: the full project (the
# default answers) and the starter (test_starter's answers, rendered under the same name).
VARIANTS = {"default": PACKAGE, "starter": "tenant_desk"}

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
TITLE = re.compile(r'title="([^"]+)"')
# File-like names: a known extension (or a folder, with a trailing slash).
# (`.example` only as `.env.example`: `acme.example` is an example domain, not a file.)
EXTENSION = re.compile(
    r"\.(?:py|md|toml|yaml|yml|ini|txt|sh|lock|json|mako|typed)$|\.env\.example$"
)
PATHLIKE = re.compile(r"[\w.<>*/-]+(?:::\w+)?")
PLACEHOLDER = re.compile(r"<[\w-]+>")
MODULE_REF = re.compile(r"<pkg>((?:\.\w+)+)(?::(\w+))?")
SETTING = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
CAMEL = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)+")
CLASS_ATTR = re.compile(r"\b([A-Z][a-z]\w*)\.([a-z_]\w*)\b")


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    body: str


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a page, in order, with their indentation removed."""
    found = []
    for match in FENCE.finditer(text):
        indent = match["indent"]
        lines = [line.removeprefix(indent) for line in match["body"].splitlines()]
        info = match["info"].strip()
        title = TITLE.search(info)
        found.append(Block(info.split(" ")[0], title[1] if title else None, "\n".join(lines)))
    return found


def page_text(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def created_paths(page: str) -> set[str]:
    return {b.title.replace("<pkg>", PACKAGE) for b in blocks(page_text(page)) if b.title}


# --------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with `mkdocs build --strict` (warnings are errors)."""
    built = tmp_path_factory.mktemp("docs-site") / "site"
    started = time.monotonic()
    done = run(
        [str(TOOLS / "mkdocs"), "build", "--strict", "--site-dir", str(built)],
        cwd=TEMPLATE,
        env=clean_env(NO_MKDOCS_2_WARNING="1"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    return built


def test_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "pt" / "index.html").is_file()


# Material's language switcher entries and the head's hreflang links.
HREFLANG = re.compile(r'<(?:a|link rel="alternate") href="([^"]*)" hreflang="(\w+)"')
SUB_PATH = "/template-docs"


def test_language_switcher_links_to_the_same_page_in_the_other_language(site: Path) -> None:
    """From every page, served under a sub-path (a GitHub Pages project site), each
    language's link is relative and opens a built page: the page's own translation, or
    that language's home when it has none (the English-only reference pages)."""
    pages = sorted(site.rglob("index.html"))
    assert len(pages) >= len(PAGES)
    for page in pages:
        folder = page.parent.relative_to(site).as_posix().removeprefix(".")
        portuguese = folder == "pt" or folder.startswith("pt/")
        inner = folder.removeprefix("pt").strip("/") if portuguese else folder
        expected = {
            "en": inner,
            "pt": f"pt/{inner}".rstrip("/") if (site / "pt" / inner).is_dir() else "pt",
        }
        html = page.read_text(encoding="utf-8")
        assert f'<html lang="{"pt" if portuguese else "en"}"' in html, folder
        links = HREFLANG.findall(html)
        assert {lang for _, lang in links} == set(expected), folder
        for href, lang in links:
            assert not href.startswith("/"), f"{folder}: {href} is absolute"
            assert "://" not in href, f"{folder}: {href} is absolute"
            served = posixpath.normpath(posixpath.join(SUB_PATH, folder, href))
            assert served == SUB_PATH or served.startswith(f"{SUB_PATH}/"), f"{folder}: {href}"
            target = served.removeprefix(SUB_PATH).strip("/")
            assert (site / target / "index.html").is_file(), f"{folder}: {href} is not built"
            assert target == expected[lang], f"{folder}: {lang} link {href} opens {target!r}"


def test_every_page_is_in_the_nav() -> None:
    config = (TEMPLATE / "mkdocs.yml").read_text()
    missing = [page for page in PAGES if f" {page}" not in config]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"


def test_guide_pages_have_a_portuguese_version() -> None:
    reference = ("decisions/", "pt/")
    guide = [page for page in PAGES if not page.startswith(reference)]
    missing = [page for page in guide if not (DOCS / "pt" / page).is_file()]
    assert not missing, f"no docs/pt/ version of {missing}"


def test_portuguese_howtos_carry_the_same_blocks() -> None:
    for page in HOWTOS:
        english = [b for b in blocks(page_text(page)) if b.title or b.lang == "sh"]
        portuguese = [b for b in blocks(page_text(f"pt/{page}")) if b.title or b.lang == "sh"]
        assert portuguese == english, f"pt/{page} differs from {page} in its steps"


# --------------------------------------------------------------------------- names


@pytest.fixture(scope="module")
def projects(
    rendered: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A default render ("plain"), and a copy with every how-to applied ("howtos")."""
    _, plain = rendered["default"]
    howtos = tmp_path_factory.mktemp("docs-names") / "howtos"
    shutil.copytree(plain, howtos)
    for page in HOWTOS:
        for block in blocks(page_text(page)):
            if block.title:
                apply_block(howtos, block)
    return {"plain": plain, "howtos": howtos}


def defines(source: str, name: str) -> bool:
    return bool(
        re.search(
            rf"^\s*(?:async def|def|class) {name}\b|^\s*{name}\s*(?::[^=\n]+)?=", source, re.M
        )
    )


def class_body(root: Path, name: str) -> str | None:
    for path in (root / "src" / PACKAGE).rglob("*.py"):
        match = re.search(rf"^class {name}\b.*?(?=^\S|\Z)", path.read_text(), re.M | re.S)
        if match:
            return match[0]
    return None


def known_settings(root: Path) -> set[str]:
    """Settings fields, .env.example names, and upper-case names the project defines."""
    config = (root / "src" / PACKAGE / "lib" / "config.py").read_text()
    body = re.search(r"^class Settings\b.*?(?=^\S|\Z)", config, re.M | re.S)
    assert body is not None
    names = {field.upper() for field in re.findall(r"^    (\w+)\s*:", body[0], re.M)}
    names |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (root / ".env.example").read_text(), re.M))
    for path in root.rglob("*"):
        if not path.is_file() or path.name == "uv.lock" or ".git" in path.parts:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        names |= set(re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*[:=]", text, re.M))
        names |= set(re.findall(r"""["']([A-Z][A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"\b(?:ARG|ENV)\s+([A-Z][A-Z0-9_]+)", text))
    return names


def resolve_path(root: Path, token: str) -> str | None:
    """None when `token` names an existing file (and symbol); else what is wrong."""
    name, _, symbol = token.partition("::")
    pattern = PLACEHOLDER.sub("*", name.replace("<pkg>", PACKAGE)).rstrip("/")
    bases = [root, root / "src" / PACKAGE, TEMPLATE]
    hits = [hit for base in bases for hit in base.glob(pattern)]
    if "/" not in name:
        hits += list(root.rglob(pattern))
    if name.endswith("/"):
        hits = [hit for hit in hits if hit.is_dir()]
    if not hits:
        return f"no such file: {token}"
    if symbol and not any(hit.is_file() and defines(hit.read_text(), symbol) for hit in hits):
        return f"{name} defines no {symbol}"
    return None


def resolve_module(root: Path, dotted: str, attr: str | None) -> str | None:
    parts = dotted.strip(".").split(".")
    src = root / "src" / PACKAGE
    for cut in range(len(parts), -1, -1):
        base = src.joinpath(*parts[:cut])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not module.is_file():
            continue
        rest = parts[cut:] + ([attr] if attr else [])
        if not rest:
            return None
        if len(rest) == 1 and defines(module.read_text(), rest[0]):
            return None
        return f"{PACKAGE}.{'.'.join(parts[:cut])} defines no {'.'.join(rest)}"
    return f"no module {PACKAGE}{dotted}"


def is_path(token: str) -> bool:
    if token.startswith(("/", "~")) or "://" in token or not PATHLIKE.fullmatch(token):
        return False
    name = token.partition("::")[0]
    last = name.rstrip("/").rsplit("/", 1)[-1]
    if "/" in name:
        return name.endswith("/") or bool(EXTENSION.search(last))
    return name == "Dockerfile" or bool(EXTENSION.search(name))


def problems_in(page: str, root: Path, settings: set[str], text: str | None = None) -> list[str]:
    text = page_text(page) if text is None else text
    code = [b.body for b in blocks(text) if b.lang in {"sh", "console"}]
    prose = FENCE.sub("", text)
    inline = INLINE.findall(prose)
    railway = (root / ".railway" / "railway.py").read_text()
    problems = []
    for token in inline + [word for body in code for word in body.split()]:
        if is_path(token) and (problem := resolve_path(root, token)):
            problems.append(problem)
    for chunk in [*inline, *code, *(b.body for b in blocks(text) if b.lang == "python")]:
        for dotted, attr in MODULE_REF.findall(chunk):
            if problem := resolve_module(root, dotted, attr or None):
                problems.append(problem)
    for chunk in [*inline, *code]:
        problems += [f"unknown setting {name}" for name in set(SETTING.findall(chunk)) - settings]
    for token in inline:
        if CAMEL.fullmatch(token) and not re.search(rf"\b{token}\b", railway):
            problems.append(f"{token} is not in .railway/railway.py")
        for cls, member in CLASS_ATTR.findall(token):
            body = class_body(root, cls)
            if body is not None and not defines(body, member):
                problems.append(f"class {cls} has no {member}")
    return problems


def test_extractor_catches_typos(projects: dict[str, Path]) -> None:
    root = projects["plain"]
    settings = known_settings(root)
    assert "DATABASE_URL" in settings
    assert "DATABSE_URL" not in settings
    assert resolve_path(root, "src/<pkg>/worker.py") is None
    assert resolve_path(root, "src/<pkg>/workers.py") is not None
    assert resolve_path(root, "features/<feature>/jobs.py") is None
    assert resolve_path(root, "features/wallets/service.py::reset_weekly_balances") is None
    assert resolve_path(root, "features/wallets/service.py::reset_weekly_balance") is not None
    assert resolve_module(root, ".scripts.run_weekly_reset", None) is None
    assert resolve_module(root, ".scripts.run_weekly_rest", None) is not None
    assert resolve_module(root, ".worker.WorkerSetings", None) is not None
    assert resolve_module(root, ".app", "create_app") is None
    for path in ("tests/conftest.py", "migrations/", "Dockerfile", ".env.example"):
        assert is_path(path), path
    for other in ("/health/ready", "multipart/form-data", "redis://host:6379/0", "COPY"):
        assert not is_path(other), other
    assert class_body(root, "WorkerSettings") is not None
    assert defines(class_body(root, "WorkerSettings") or "", "job_completion_wait")
    assert not defines(class_body(root, "WorkerSettings") or "", "job_completion_wai")


@pytest.mark.parametrize("page", PAGES)
def test_names_in_the_page_exist_in_a_rendered_project(
    projects: dict[str, Path], page: str
) -> None:
    is_howto = page.removeprefix("pt/") in HOWTOS
    root = projects["howtos" if is_howto else "plain"]
    problems = problems_in(page, root, known_settings(root))
    assert not problems, f"{page}:\n" + "\n".join(sorted(set(problems)))


def test_names_in_the_generated_architecture_page_exist(projects: dict[str, Path]) -> None:
    """The generated project's own docs/architecture.md, rendered, names what it has."""
    root = projects["plain"]
    text = (root / "docs" / "architecture.md").read_text()
    problems = problems_in("architecture.md", root, known_settings(root), text=text)
    assert not problems, "docs/architecture.md:\n" + "\n".join(sorted(set(problems)))


# --------------------------------------------------------------------------- how-tos


def apply_block(project: Path, block: Block, package: str = PACKAGE) -> None:
    assert block.title is not None
    target = project / block.title.replace("<pkg>", package)
    body = block.body.replace("<pkg>", package)
    if block.lang != "diff":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body + "\n")
        return
    old, new = [], []
    for line in body.splitlines():
        mark, rest = line[:1], line[1:]
        assert mark in {" ", "-", "+", ""}, f"{block.title}: bad diff line {line!r}"
        if mark in {" ", "", "-"}:
            old.append(rest)
        if mark in {" ", "", "+"}:
            new.append(rest)
    text = target.read_text()
    before = "\n".join(old) + "\n"
    assert text.count(before) == 1, f"{block.title}: the diff's context is not found once"
    target.write_text(text.replace(before, "\n".join(new) + "\n"))


@pytest.fixture(scope="module")
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str, str]]:
    """A copy of the variant's render installed from its uv.lock (the how-tos change
    it), an empty database for it, and its package name."""
    variant: str = request.param
    answers = STARTER_ANSWERS if variant == "starter" else None
    rendered, _ = rendered_once(tmp_path_factory, variant, answers)
    project = editable_copy(rendered, tmp_path_factory.mktemp(f"docs-howtos-{variant}"))
    with story.fresh_database(POSTGRES, prefix="template_howto") as database_url:
        yield project, database_url, VARIANTS[variant]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("installed", "page"),
    [(variant, page) for variant in VARIANTS for page in HOWTOS],
    indirect=["installed"],
)
def test_howto_followed_literally(installed: tuple[Path, str, str], page: str) -> None:
    project, database_url, package = installed
    env = clean_env(DATABASE_URL=database_url, UV_FROZEN="1")
    commands = 0
    for block in blocks(page_text(page)):
        if block.title:
            apply_block(project, block, package)
        elif block.lang == "sh":
            script = block.body.replace("<pkg>", package)
            done = run(["bash", "-euo", "pipefail", "-c", script], cwd=project, env=env)
            assert done.returncode == 0, f"{page}:\n{script}\n{done.stdout}{done.stderr}"
            commands += 1
    assert commands, f"{page} runs no command"
    if page == "howto/add-a-feature.md":
        # The migration is the one `alembic revision --autogenerate` wrote, not a copy.
        [migration] = (project / "migrations" / "versions").glob("*_department_descriptions.py")
        assert 'op.create_table(\n        "department_descriptions"' in migration.read_text()
    if page == "howto/add-a-cron-job.md":
        graph = evaluate(project / ".railway" / "railway.py")
        audit = services(graph)["cron-access-audit"]
        assert audit["deploy"]["cronSchedule"] == "30 2 * * *"
