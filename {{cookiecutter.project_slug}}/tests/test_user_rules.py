"""One answer for a user's fields on every path: `POST /admin/users`,{% if cookiecutter.examples == "kudos" %} a CSV import's rows,{% else %}{% endif %}
first sign-in and the CLI all follow `features/users/rules.py`."""

import asyncio
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from . import factories as f
from .conftest import run_module
{%- if cookiecutter.examples == "kudos" %}
from .csv_helpers import imported
{%- endif %}
from .factories import Db, admin
from .test_auth_link import first_sign_in
from .tokens import Bearer, SigningKey

HEADER = "name,email,department,job_title\n"
DOMAIN = "acme.example"

# (field, value, accepted): the same table for every path.
CASES = [
    ("name", "Ana Souza", True),
    ("name", "José d'Ávila", True),
    ("name", "Ana\tSouza", False),
    ("name", "Ana\x07Souza", False),
    ("name", "Ana\u0085Souza", False),  # a C1 control character
    ("name", "A", False),
    ("email", "ana+tag@acme.example", True),
    ("email", "a,b@acme.example", False),
    ("email", "a;b@acme.example", False),
    ("email", "<a>@acme.example", False),
    ("email", "a\x01b@acme.example", False),
    ("email", "ana@acme.example.", False),
    ("email", "ana@@acme.example", False),
    ("email", "ana@exa_mple.example", False),
    ("email", "ana@-acme.example", False),
    ("department", "Engineering", True),
    ("department", "Eng\x1b[31m", False),
    ("department", "d" * 121, False),
    ("job_title", "Dev\nOps", False),
    ("job_title", "x\u009b", False),
]
Answer = tuple[bool, str | None]  # accepted, and the reason when refused


@pytest.fixture
def acme(db: Db) -> UUID:
    return f.company(db, "Acme")


@pytest.fixture
def headers(db: Db, acme: UUID, bearer: Bearer) -> dict[str, str]:
    return bearer(admin(db, acme, f"boss@{DOMAIN}"))


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _person(number: int, field: str, value: str, prefix: str) -> dict[str, str]:
    person = {
        "name": f"Person {number}",
        "email": f"{prefix}{number}@{DOMAIN}",
        "department": "Ops",
        "job_title": "Lead",
    }
    return {**person, field: value}


async def api_answers(api: httpx.AsyncClient, headers: dict[str, str]) -> list[Answer]:
    answers: list[Answer] = []
    for number, (field, value, _) in enumerate(CASES):
        person = _person(number, field, value, "api")
        response = await api.post("/admin/users", json=person, headers=headers)
        assert response.status_code in {201, 422}, response.text
        message = None
        if response.status_code == 422:
            details = response.json()["error"]["details"]
            message = details[0]["message"].removeprefix("Value error, ")
        answers.append((response.status_code == 201, message))
    return answers
{%- if cookiecutter.examples == "kudos" %}


async def test_the_api_and_the_import_give_one_answer_for_each_value(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str
) -> None:
    from_api = await api_answers(api, headers)
    rows = []
    for number, (field, value, _) in enumerate(CASES):
        person = _person(number, field, value, "csv")
        rows.append(",".join(_csv_cell(person[key]) for key in HEADER.strip().split(",")))

    state = await imported(api, headers, database_url, (HEADER + "\n".join(rows)).encode())

    by_row = {e["row_number"]: e["message"] for e in state["errors"]["items"]}
    from_import = [(row not in by_row, by_row.get(row)) for row in range(2, 2 + len(CASES))]
    assert from_import == from_api
    assert [accepted for accepted, _ in from_api] == [case[2] for case in CASES]
{%- endif %}


async def test_first_sign_in_links_only_an_email_the_rules_accept(
    api: httpx.AsyncClient, db: Db, acme: UUID, signing_key: SigningKey
) -> None:
    # Users written past the rules (as before they existed): sign-in still asks them.
    emails = [
        (value, accepted)
        for field, value, accepted in CASES
        if field == "email" and value.rpartition("@")[2] == DOMAIN
    ]
    assert {accepted for _, accepted in emails} == {True, False}
    for number, (email, accepted) in enumerate(emails):
        f.user(db, acme, email)
        me = await api.get("/me", headers=first_sign_in(signing_key, f"idp|{number}", email))
        assert me.status_code == (200 if accepted else 401), (email, me.text)
        if not accepted:
            assert me.json()["error"]["code"] == "unknown_user"


async def test_the_cli_gives_the_api_answer_for_each_value(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    process_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from_api = await api_answers(api, headers)
    env = {**process_env, "ENVIRONMENT": "development"}

    def dev_token(number: int, field: str, value: str) -> tuple[int, str]:
        person = _person(number, field, value, "cli")
        keys = str(tmp_path / "keys")  # made by the first run, read by the others
        args = ["--email", person["email"], "--name", person["name"], "--keys-dir", keys]
        done = run_module("{{ cookiecutter.package_name }}.cli", env, "dev-token", *args)
        return done.returncode, done.stderr

    # The CLI knows no department nor job title.
    cases = [(n, case) for n, case in enumerate(CASES) if case[0] in {"name", "email"}]
    # One after another: a run each at once would starve one another of CPU on a loaded
    # machine, past run_module's timeout.
    done = [await asyncio.to_thread(dev_token, n, *c[:2]) for n, c in cases]
    for (number, (field, value, _)), (code, stderr) in zip(cases, done, strict=True):
        accepted, message = from_api[number]
        assert (code == 0) == accepted, (field, value, stderr)
        if not accepted:
            assert code == 1
            assert "Traceback" not in stderr
            last = stderr.strip().splitlines()[-1]
            assert last.startswith("dev-token: ")
            assert f"{field} {message}" in last, (value, last)
