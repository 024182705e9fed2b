"""Refresh the generated project's uv.lock, which the template ships.

    uv run python tools/relock.py            # after editing the project's dependencies
    uv run python tools/relock.py --upgrade  # move every dependency to its newest release

Renders the default project, runs `uv lock` in it and copies the lock back with the
project's own entry named by the template variable, so every rendered project's
`uv lock --check` passes. Then refreshes hooks/reserved_names.json (tools/reserved_names.py),
the names the answers must not take, some of which come from the lock.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
LOCK = TEMPLATE / "{{cookiecutter.project_slug}}" / "uv.lock"
DEFAULT_SLUG = "kudos"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="upgrade every dependency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["cookiecutter", "--no-input", "-o", out, str(TEMPLATE)], check=True)
        project = Path(out) / DEFAULT_SLUG
        subprocess.run(
            ["uv", "lock", *(["--upgrade"] if args.upgrade else [])], cwd=project, check=True
        )
        lock = (project / "uv.lock").read_text()
    own_entry = f'name = "{DEFAULT_SLUG}"\n'
    if lock.count(own_entry) != 1:
        print(f"relock: expected one '{own_entry.strip()}' entry in the lock", file=sys.stderr)
        return 1
    LOCK.write_text(lock.replace(own_entry, 'name = "{{ cookiecutter.project_slug }}"\n'))
    print(f"relock: wrote {LOCK.relative_to(TEMPLATE)}")
    reserved_names = TEMPLATE / "tools" / "reserved_names.py"
    return subprocess.run([sys.executable, str(reserved_names)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
