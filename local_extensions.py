"""The Jinja extension cookiecutter loads (`_extensions` in cookiecutter.json): it hands
hooks/pre_gen_project.py the names a generated project must not take and the filters
copier's answer checks use (so the hook runs copier's checks), lets
cookiecutter.json import hooks/names.jinja (the default slug and package, which copier.yml
imports too), and keeps a refused answer to its one-line reason.

They live in hooks/reserved_names.json, written by tools/reserved_names.py; copier.yml's
validators read the same file with a Jinja include. Cookiecutter renders the hook with
no template loader, hence this extension.
"""

import json
import logging
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from jinja2.ext import Extension

# Resolved on import, in the directory cookiecutter was started from: the template's path
# may be relative, and cookiecutter changes directory before it renders the hook.
TEMPLATE_ROOT = Path(__file__).resolve().parent
RESERVED_NAMES_FILE = TEMPLATE_ROOT / "hooks" / "reserved_names.json"
RESERVED_NAMES: dict[str, Any] = json.loads(RESERVED_NAMES_FILE.read_text(encoding="utf-8"))


def regex_search(value: str, pattern: str) -> str | None:
    """The first match of `pattern` in `value`, or None."""
    found = re.search(pattern, value)
    return found.group(0) if found else None


def regex_replace(value: str, pattern: str, replacement: str = "") -> str:
    return re.sub(pattern, replacement, value)


def from_json(value: str) -> Any:
    return json.loads(value)


COPIER_FILTERS = {
    "regex_search": regex_search,
    "regex_replace": regex_replace,
    "from_json": from_json,
}


class ReservedNames(Extension):
    """Adds `reserved_names`, the file's content, to the Jinja globals."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["reserved_names"] = RESERVED_NAMES
        # The answer checks (hooks/answer_checks.jinja) are written for copier, which has
        # Ansible's filters; these are the three they use, as Ansible defines them.
        for name, function in COPIER_FILTERS.items():
            environment.filters.setdefault(name, function)
        # Cookiecutter renders its prompts' defaults with no loader; with this one,
        # `{% from 'hooks/names.jinja' import slug %}` works there as it does in copier.
        # (It sets its own loader, after this, for the project's files.)
        if environment.loader is None:
            environment.loader = FileSystemLoader(TEMPLATE_ROOT)
        _quiet_hook_failure()


class _NoHookTraceback(logging.Filter):
    """Drops cookiecutter's "Stopping generation because ... hook" record: it carries a
    traceback to stdout, while the hook has already printed the reasons (one line each,
    on stderr) and cookiecutter's CLI still says the hook failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Stopping generation because")


def _quiet_hook_failure() -> None:
    log = logging.getLogger("cookiecutter.hooks")
    if not any(isinstance(f, _NoHookTraceback) for f in log.filters):
        log.addFilter(_NoHookTraceback())
