"""Validate the answers before cookiecutter writes anything.

copier.yml holds the same rules as Jinja validators; tests/test_answers.py checks
that both tools refuse the same answers. The names a package or a slug must not take are
in hooks/reserved_names.json (tools/reserved_names.py writes it), which both read: this
hook through local_extensions.py (the `reserved_names` Jinja global), copier.yml with a
Jinja include.
"""

import json
import re
import sys
from typing import Any

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r'^[^@\s"<>]+@[^@\s"<>]+\.[^@\s"<>]+$')
# The slug and the package name also name databases (`<package>_migrate_<8 hex>` must fit
# Postgres's 63-byte identifiers), DNS labels (`<slug>.example`) and import lines that
# must stay under the project's 100-column limit; the name is a title (FastAPI's).
MAX_NAME = 60
MAX_SLUG = 40
MAX_PACKAGE = 40
AUTH_PROVIDERS = ("auth0", "oidc")
CRON_ITEM = re.compile(r"^(\*|[0-9]+(-[0-9]+)?)(/[1-9][0-9]*)?$")
CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 6),
)


def cron_error(expr: str) -> str | None:
    fields = expr.split()
    if len(fields) != 5:
        return f"'{expr}' must have 5 fields (minute hour day-of-month month day-of-week)"
    bad: list[str] = []
    for text, (name, low, high) in zip(fields, CRON_FIELDS, strict=True):
        for item in text.split(","):
            base = item.split("/")[0]
            numbers = [] if base == "*" else base.split("-")
            valid = CRON_ITEM.match(item) and all(low <= int(n) <= high for n in numbers)
            if not valid and name not in bad:
                bad.append(name)
    if bad:
        return (
            f"'{expr}' has an invalid {', '.join(bad)} field (numbers, ranges a-b, "
            "lists a,b and steps */n only; day-of-week 0-6)"
        )
    return None


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def errors(answers: dict[str, str], reserved: dict[str, Any]) -> list[str]:
    """One line per bad answer; `reserved` is hooks/reserved_names.json's content."""
    found: list[str] = []
    name = answers["project_name"]
    if not name.strip():
        found.append("project_name: must not be empty")
    elif len(name) > MAX_NAME:
        found.append(f"project_name: must be at most {MAX_NAME} characters (it has {len(name)})")
    slug = answers["project_slug"]
    if not SLUG.match(slug):
        found.append(
            f"project_slug: '{slug}' must be lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. my-service)"
        )
    elif normalize(slug) in reserved["project_slugs"]:
        found.append(
            f"project_slug: '{slug}' is taken: the generated project's uv.lock has a package "
            "of that name; choose another"
        )
    elif len(slug) > MAX_SLUG:
        found.append(
            f"project_slug: '{slug}' must be at most {MAX_SLUG} characters (it has {len(slug)})"
        )
    package = answers["package_name"]
    if not PACKAGE.match(package) or package in reserved["keywords"]:
        found.append(
            f"package_name: '{package}' must be a lowercase Python identifier (letters, "
            "digits, underscores) that is not a keyword"
        )
    elif package in reserved["package_names"]:
        found.append(
            f"package_name: '{package}' is taken: a module of the standard library, of a "
            "dependency, or one the generated project imports; choose another"
        )
    elif len(package) > MAX_PACKAGE:
        found.append(
            f"package_name: '{package}' must be at most {MAX_PACKAGE} characters "
            f"(it has {len(package)})"
        )
    for key in ("project_name", "description", "author_name"):
        value = answers[key]
        if any(ch in value for ch in '\n"\\'):
            found.append(f"{key}: must be one line without double quotes or backslashes")
    if not EMAIL.match(answers["author_email"]):
        found.append(f"author_email: '{answers['author_email']}' is not an email address")
    schedule_error = cron_error(answers["weekly_reset_schedule"])
    if schedule_error:
        found.append(f"weekly_reset_schedule: {schedule_error}")
    if answers.get("auth_provider", "auth0") not in AUTH_PROVIDERS:
        found.append(
            f"auth_provider: '{answers['auth_provider']}' must be one of "
            f"{', '.join(AUTH_PROVIDERS)}"
        )
    return found


def main() -> int:
    # As JSON (with quotes and backslashes escaped): an answer that holds them reaches the
    # checks intact instead of breaking this file's syntax.
    answers: dict[str, str] = json.loads(r"""{{ cookiecutter | tojson }}""")
    reserved: dict[str, Any] = json.loads(r"""{{ reserved_names | tojson }}""")
    found = errors(answers, reserved)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
