"""The Jinja extension cookiecutter loads (`_extensions` in cookiecutter.json): it hands
hooks/pre_gen_project.py the names a generated project must not take.

They live in hooks/reserved_names.json, written by tools/reserved_names.py; copier.yml's
validators read the same file with a Jinja include. Cookiecutter renders the hook with
no template loader, hence this extension.
"""

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

# Resolved on import, in the directory cookiecutter was started from: the template's path
# may be relative, and cookiecutter changes directory before it renders the hook.
RESERVED_NAMES_FILE = Path(__file__).resolve().parent / "hooks" / "reserved_names.json"
RESERVED_NAMES: dict[str, Any] = json.loads(RESERVED_NAMES_FILE.read_text(encoding="utf-8"))


class ReservedNames(Extension):
    """Adds `reserved_names`, the file's content, to the Jinja globals."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["reserved_names"] = RESERVED_NAMES
