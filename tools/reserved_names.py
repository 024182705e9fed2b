"""Regenerate hooks/reserved_names.json: the names a generated project must not take.

    uv run python tools/reserved_names.py

A package name must not be one the project would import as something else: a module of
the standard library of any supported Python (3.11 to 3.13), a module of any package in
the project's uv.lock (runtime and dev), a module the project's code imports, or one of
its own top-level folders. A slug must not be the name of a package in the lock (the
project itself is one of its packages, by that name). Both generators read the file:
copier.yml's validators include it, and cookiecutter's hook gets it through
local_extensions.py.

Run it after changing the project's dependencies (tools/relock.py runs it) or imports;
tests/test_answers.py fails until the file is current. Needs the network or uv's cache
(it installs every locked package, without dependencies, into a temporary folder to read
the modules each one provides) and Pythons 3.11 to 3.13 (`uv` fetches missing ones).
"""

import ast
import json
import keyword
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
PROJECT = TEMPLATE / "{{cookiecutter.project_slug}}"
LOCK = TEMPLATE / "templates" / "locks" / "kudos.uv.lock"
OUTPUT = TEMPLATE / "hooks" / "reserved_names.json"
PYTHONS = ("3.11", "3.12", "3.13")
DEFAULT_SLUG = "kudos"
DEFAULT_PACKAGE = "kudos"
# Not in sys.stdlib_module_names, but installed with most Pythons: the standard library's
# own test suite.
EXTRA = ("test",)
MODULE_FILE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[^/]*)?\.(py|so|pyd)$")
ABOUT = (
    "Written by tools/reserved_names.py (run it after changing the generated project's "
    "dependencies or imports); read by copier.yml and, through local_extensions.py, by "
    "hooks/pre_gen_project.py. package_names: stdlib + the modules of every dependency + "
    "project (its imports and folders); project_slugs: the packages in its uv.lock."
)


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_packages(lock_text: str) -> dict[str, str]:
    """Every package in the project's lock but the project itself: name -> version."""
    return {
        package["name"]: package["version"]
        for package in tomllib.loads(lock_text)["package"]
        if "editable" not in package["source"] and "virtual" not in package["source"]
    }


def stdlib(version: str) -> set[str]:
    done = subprocess.run(
        [
            "uv",
            "run",
            "--no-project",
            "--python",
            version,
            "python",
            "-c",
            "import json, sys; print(json.dumps(sorted(sys.stdlib_module_names)))",
        ],
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout))


def top_level_modules(record: str) -> set[str]:
    """The importable names an installed distribution's RECORD lists."""
    names: set[str] = set()
    for line in record.splitlines():
        path = line.rsplit(",", 2)[0]
        top, _, rest = path.partition("/")
        if top.endswith((".dist-info", ".data")) or top in {"..", "__pycache__"}:
            continue
        if not rest:
            match = MODULE_FILE.match(top)
            if match:
                names.add(match.group(1))
        elif top.isidentifier() and MODULE_FILE.match(rest.rsplit("/", 1)[-1]):
            names.add(top)
    return names


def dependency_modules(packages: dict[str, str]) -> dict[str, list[str]]:
    """Each locked package's modules, read from its installed files (this platform's
    wheels, markers ignored: a Windows-only package installs here too)."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "site"
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in sorted(packages.items())))
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--python",
                sys.executable,
                "--target",
                str(target),
                "-r",
                str(requirements),
            ],
            check=True,
        )
        modules: dict[str, list[str]] = {}
        for info in target.glob("*.dist-info"):
            metadata = (info / "METADATA").read_text(encoding="utf-8")
            [name] = re.findall(r"^Name: (.+)$", metadata, re.MULTILINE)
            modules[normalize(name)] = sorted(top_level_modules((info / "RECORD").read_text()))
    missing = set(packages) - set(modules)
    if missing:
        raise SystemExit(f"reserved_names: not installed: {', '.join(sorted(missing))}")
    return {name: modules[name] for name in sorted(packages)}


def project_modules() -> set[str]:
    """The top-level modules the default project's code imports (absolute imports, its
    own package excepted), and its top-level folders."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            ["cookiecutter", "--no-input", "--accept-hooks", "no", "-o", out, str(TEMPLATE)],
            check=True,
        )
        return imported_modules(Path(out) / DEFAULT_SLUG) - {DEFAULT_PACKAGE}


def imported_modules(project: Path) -> set[str]:
    """The top-level modules a rendered project's code imports (absolute imports), and
    its top-level folders."""
    names = {p.name for p in project.iterdir() if p.is_dir() and p.name.isidentifier()}
    for path in project.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def main() -> int:
    packages = locked_packages(LOCK.read_text(encoding="utf-8"))
    standard = set().union(*(stdlib(version) for version in PYTHONS))
    dependencies = dependency_modules(packages)
    project = project_modules() | set(EXTRA)
    data = {
        "about": ABOUT,
        "keywords": sorted({name.lower() for name in keyword.kwlist}),
        "package_names": sorted(standard.union(*dependencies.values(), project)),
        "project_slugs": sorted(normalize(name) for name in packages),
        "stdlib": sorted(standard),
        "dependencies": dependencies,
        "project": sorted(project),
    }
    OUTPUT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"reserved_names: wrote {OUTPUT.relative_to(TEMPLATE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
