"""What a user's name, email and other text must be: one rule set, pure, used everywhere.

`POST /admin/users` (its schema and `service.create_user`), {% if cookiecutter.examples == "kudos" %}the CSV import's row{% else %}first{% endif %}
{% if cookiecutter.examples == "kudos" %}validation, first sign-in{% else %}sign-in{% endif %} and the CLI all ask these functions, so an answer accepted
by one path is accepted by every other, and refused with the same message.
"""

import re
from dataclasses import dataclass

from ...lib.text import has_control_characters
from ..companies.domains import is_domain

NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 320
TEXT_MAX_LENGTH = 120  # department, job title
# An email's local part: no spaces, no control characters, nothing that separates
# addresses in lists and headers.
_LOCAL_PART = re.compile(r'[^\s,;<>()\[\]"\\@\x00-\x1f\x7f-\x9f]+')

CONTROL_CHARACTERS = "must not contain control characters"
REQUIRED = "is required"
NOT_AN_EMAIL = "is not a valid email address"


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


def normalize_email(email: str) -> str:
    """An email as stored and compared: trimmed, lowercased."""
    return email.strip().lower()


def normalize_name(name: str) -> str:
    """A name as stored: trimmed, inner runs of spaces made one."""
    return " ".join(name.split())


def clean_text(value: str | None) -> str | None:
    """Optional text as stored: trimmed, None when missing or blank."""
    if value is None:
        return None
    return value.strip() or None


def name_problem(name: str) -> str | None:
    """Why a (trimmed) name is refused, or None."""
    if has_control_characters(name):
        return CONTROL_CHARACTERS
    length = len(normalize_name(name))
    if length == 0:
        return REQUIRED
    if length < NAME_MIN_LENGTH:
        return f"must have at least {NAME_MIN_LENGTH} characters"
    if length > NAME_MAX_LENGTH:
        return f"must have at most {NAME_MAX_LENGTH} characters"
    return None


def email_problem(email: str) -> str | None:
    """Why a (normalised) email is refused, or None.

    `local@domain`: a local part without spaces, control characters or list separators,
    and a domain a company could own (companies/domains.py).
    """
    if not email:
        return REQUIRED
    local, at, domain = email.rpartition("@")
    if (
        len(email) > EMAIL_MAX_LENGTH
        or not at
        or _LOCAL_PART.fullmatch(local) is None
        or not is_domain(domain)
    ):
        return NOT_AN_EMAIL
    return None


def text_problem(value: str) -> str | None:
    """Why an optional (trimmed) text field is refused, or None."""
    if has_control_characters(value):
        return CONTROL_CHARACTERS
    if len(value) > TEXT_MAX_LENGTH:
        return f"must have at most {TEXT_MAX_LENGTH} characters"
    return None


def problems(
    *, name: str, email: str, department: str | None = None, job_title: str | None = None
) -> list[Problem]:
    """Every problem of a user's fields, as given (they are trimmed and normalised here)."""
    found: list[Problem] = []
    if (message := name_problem(name.strip())) is not None:
        found.append(Problem("name", message))
    if (message := email_problem(normalize_email(email))) is not None:
        found.append(Problem("email", message))
    for field, value in (("department", department), ("job_title", job_title)):
        text = clean_text(value)
        if text is not None and (message := text_problem(text)) is not None:
            found.append(Problem(field, message))
    return found
