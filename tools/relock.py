"""Refresh the generated projects' uv.lock files, which the template ships.

    uv run python tools/relock.py            # after editing the project's dependencies
    uv run python tools/relock.py --upgrade  # move every dependency to its newest release

Two locks, one per `examples` answer: templates/locks/kudos.uv.lock (the full example
project) and templates/locks/starter.uv.lock (examples=none, without the kudos domain's
dependencies); the project's uv.lock includes the one its answer picks. Renders the
default project, runs `uv lock` in it, then renders the starter, seeds it with that lock
and runs `uv lock` there, so the starter keeps the kudos lock's version of every package
it shares with it (tests/test_starter.py checks). Each lock is copied back with the
project's own entry named by the template variable, so every rendered project's
`uv lock --check` passes. Then refreshes hooks/reserved_names.json (tools/reserved_names.py),
the names the answers must not take, some of which come from the kudos lock (a superset
of the starter's).
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
LOCKS = TEMPLATE / "templates" / "locks"
KUDOS_LOCK = LOCKS / "kudos.uv.lock"
STARTER_LOCK = LOCKS / "starter.uv.lock"
DEFAULT_SLUG = "kudos"
OWN_ENTRY = f'name = "{DEFAULT_SLUG}"\n'
TEMPLATED_ENTRY = 'name = "{{ cookiecutter.project_slug }}"\n'


def render(out: Path, *answers: str) -> Path:
    subprocess.run(
        ["cookiecutter", "--no-input", "-o", str(out), str(TEMPLATE), *answers], check=True
    )
    return out / DEFAULT_SLUG


def write_back(lock: str, path: Path) -> bool:
    if lock.count(OWN_ENTRY) != 1:
        print(f"relock: expected one '{OWN_ENTRY.strip()}' entry in the lock", file=sys.stderr)
        return False
    path.write_text(lock.replace(OWN_ENTRY, TEMPLATED_ENTRY))
    print(f"relock: wrote {path.relative_to(TEMPLATE)}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="upgrade every dependency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        project = render(Path(out) / "kudos")
        subprocess.run(
            ["uv", "lock", *(["--upgrade"] if args.upgrade else [])], cwd=project, check=True
        )
        lock = (project / "uv.lock").read_text()
        if not write_back(lock, KUDOS_LOCK):
            return 1
        if not STARTER_LOCK.exists():  # the starter's render includes it: any lock will do
            STARTER_LOCK.write_text(KUDOS_LOCK.read_text())
        starter = render(Path(out) / "starter", "examples=none")
        # The kudos lock as the starting point: uv keeps its versions, drops the rest.
        (starter / "uv.lock").write_text(lock)
        subprocess.run(["uv", "lock"], cwd=starter, check=True)
        if not write_back((starter / "uv.lock").read_text(), STARTER_LOCK):
            return 1
    reserved_names = TEMPLATE / "tools" / "reserved_names.py"
    return subprocess.run([sys.executable, str(reserved_names)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
