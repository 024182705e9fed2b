"""The layering contracts (`[tool.importlinter]` in pyproject.toml) hold, and break when
a module crosses a layer."""

import shutil
import subprocess
import sys
from pathlib import Path

import {{ cookiecutter.package_name }}

PACKAGE = Path({{ cookiecutter.package_name }}.__file__).parent
PROJECT = PACKAGE.parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # The copy's package ahead of the installed (editable) one; no cache left behind.
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_project_keeps_its_layering() -> None:
    done = lint_imports(PROJECT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_lib_importing_a_feature_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "pyproject.toml", tmp_path)
    shutil.copytree(PACKAGE, tmp_path / "src" / PACKAGE.name)
    text = tmp_path / "src" / PACKAGE.name / "lib" / "text.py"
    text.write_text(text.read_text() + "\nfrom ..features.users import rules  # noqa: E402\n")

    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    # Its report wraps long module names at the terminal's width.
    report = " ".join(done.stdout.split())
    assert "lib imports no feature BROKEN" in report
    assert f"{PACKAGE.name}.lib.text -> {PACKAGE.name}.features.users.rules" in report
