"""Validate the answers before cookiecutter writes anything.

copier holds the same rules in Jinja (hooks/answer_checks.jinja, hooks/cron_error.jinja);
tests/test_answers.py checks that both tools refuse the same answers. A failure here is
one line per problem on stderr: local_extensions.py keeps cookiecutter from adding its
traceback. The names a package or a slug must not take are
in hooks/reserved_names.json (tools/reserved_names.py writes it), which both read: this
hook through local_extensions.py (the `reserved_names` Jinja global), copier.yml with a
Jinja include.
"""

import itertools
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
# Railway's cron (docs.railway.com/reference/cron-jobs): five numeric fields in UTC, day of
# week 0-7 (0 and 7 are Sunday), no names, and at least 5 minutes between runs.
# copier.yml's validator holds the same rules in Jinja; tests/test_answers.py compares them.
CRON_ITEM = re.compile(r"^(\*|[0-9]+(-[0-9]+)?)(/[1-9][0-9]*)?$")
CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
CRON_NAMES = re.compile(r"[A-Za-z]")
MIN_CRON_GAP = 5


def cron_values(text: str, low: int, high: int) -> set[int] | None:
    """The values a field matches, or None if it is not numbers, ranges, lists and steps."""
    values: set[int] = set()
    for item in text.split(","):
        if not CRON_ITEM.match(item):
            return None
        base, _, step = item.partition("/")
        if base == "*":
            first, last = low, high
        else:
            start, _, end = base.partition("-")
            # `a/n` runs from a to the field's end, as cron does.
            first, last = int(start), int(end or (high if step else start))
        if not low <= first <= last <= high:
            return None
        values.update(range(first, last + 1, int(step or 1)))
    return values


def cron_gap(minutes: set[int], hours: set[int]) -> int:
    """The shortest time between two runs, in minutes, on a day with runs in these hours."""
    ordered = sorted(minutes)
    gap = min((b - a for a, b in itertools.pairwise(ordered)), default=60)
    # The last run of an hour and the first of the next one, when both hours run.
    if any((h + 1) % 24 in hours for h in hours):
        gap = min(gap, 60 - ordered[-1] + ordered[0])
    return gap


def cron_error(expr: str) -> str | None:
    fields = expr.split()
    if len(fields) != 5:
        return f"'{expr}' must have 5 fields (minute hour day-of-month month day-of-week)"
    if CRON_NAMES.search(expr):
        return (
            f"'{expr}' uses names: Railway's cron takes numbers only "
            "(months 1-12, days of week 0-7, 0 and 7 are Sunday)"
        )
    bad: list[str] = []
    matched: list[set[int]] = []
    for text, (name, low, high) in zip(fields, CRON_FIELDS, strict=True):
        values = cron_values(text, low, high)
        if values is None:
            bad.append(name)
        else:
            matched.append(values)
    if bad:
        return (
            f"'{expr}' has an invalid {', '.join(bad)} field (numbers, ranges a-b, "
            "lists a,b and steps */n only; day-of-week 0-7)"
        )
    gap = cron_gap(matched[0], matched[1])
    if gap < MIN_CRON_GAP:
        return (
            f"'{expr}' runs every {gap} minute(s): Railway's cron needs at least "
            f"{MIN_CRON_GAP} minutes between runs"
        )
    return None


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def errors(
    answers: dict[str, str], reserved: dict[str, Any], choices: dict[str, list[str]]
) -> list[str]:
    """One line per bad answer; `reserved` is hooks/reserved_names.json's content,
    `choices` hooks/choices.json's (the options copier.yml's menus show)."""
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
    # The choices are plain answers in cookiecutter.json: cookiecutter refuses a value
    # outside a list with a traceback, before any hook runs.
    for key, options in choices.items():
        if answers[key] not in options:
            found.append(f"{key}: '{answers[key]}' must be one of {', '.join(options)}")
    return found


def main() -> int:
    # As JSON (with quotes and backslashes escaped): an answer that holds them reaches the
    # checks intact instead of breaking this file's syntax.
    answers: dict[str, str] = json.loads(r"""{{ cookiecutter | tojson }}""")
    reserved: dict[str, Any] = json.loads(r"""{{ reserved_names | tojson }}""")
    choices: dict[str, list[str]] = json.loads(r"""{% include 'hooks/choices.json' %}""")
    found = errors(answers, reserved, choices)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
