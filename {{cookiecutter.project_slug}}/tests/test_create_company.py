"""`create-company`: a new deployment's first company and admin, from the command line."""

import json
import subprocess

import httpx
import pytest

from .conftest import run_module
from .factories import Db
from .test_auth_link import first_sign_in
from .tokens import SigningKey

CLI = "{{ cookiecutter.package_name }}.cli"
ACME = [
    "--name",
    "Acme",
    "--domain",
    "Acme.Example",
    "--admin-email",
    "Ana@Acme.example",
    "--admin-name",
    "Ana Souza",
]


def create_company(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_module(CLI, env, "create-company", *args)


def counts(db: Db) -> tuple[int, ...]:
    row = db.execute(
{%- if cookiecutter.examples == "kudos" %}
        "SELECT (SELECT count(*) FROM companies), (SELECT count(*) FROM users),"
        " (SELECT count(*) FROM wallets), (SELECT count(*) FROM wallet_transactions)"
{%- else %}
        "SELECT (SELECT count(*) FROM companies), (SELECT count(*) FROM users)"
{%- endif %}
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def production_env(process_env: dict[str, str]) -> dict[str, str]:
    # The command is how a deployed service gets its first admin: it must work there.
    return {**process_env, "ENVIRONMENT": "production"}


async def test_creates_the_company_and_an_admin_who_signs_in_with_a_verified_email(
    production_env: dict[str, str], db: Db, api: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    done = create_company(production_env, *ACME{% if cookiecutter.examples == "kudos" %}, "--allowance", "150"{% else %}{% endif %})

    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["company"] == "Acme"
    assert created["email_domain"] == "acme.example"
    assert created["admin_email"] == "ana@acme.example"
{%- if cookiecutter.examples == "kudos" %}
    user = db.execute(
        "SELECT u.role, u.auth_sub, u.company_id::text, c.weekly_renewal_amount,"
        " w.compliment_balance FROM users u JOIN companies c ON c.id = u.company_id"
        " JOIN wallets w ON w.user_id = u.id WHERE u.id = %s",
        (created["admin_id"],),
    ).fetchone()
    assert user == ("admin", None, created["company_id"], 150, 150)
    assert counts(db) == (1, 1, 1, 1)
{%- else %}
    user = db.execute(
        "SELECT role, auth_sub, company_id::text FROM users WHERE id = %s",
        (created["admin_id"],),
    ).fetchone()
    assert user == ("admin", None, created["company_id"])
    assert counts(db) == (1, 1)
{%- endif %}

    headers = first_sign_in(signing_key, "idp|ana", "ana@acme.example")
    me = await api.get("/me", headers=headers)
    assert me.status_code == 200, me.text
    assert (me.json()["id"], me.json()["role"]) == (created["admin_id"], "admin")
    added = await api.post(
        "/admin/users", headers=headers, json={"name": "Bia Lima", "email": "bia@acme.example"}
    )
    assert added.status_code == 201, added.text


def test_a_taken_domain_is_refused_and_nothing_is_added(
    production_env: dict[str, str], db: Db
) -> None:
    assert create_company(production_env, *ACME).returncode == 0
    before = counts(db)

    again = create_company(
        production_env,
        *ACME[:4],
        "--admin-email",
        "bia@acme.example",
        "--admin-name",
        "Bia",
    )

    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "create-company: a company with the domain acme.example already exists"
    ]
    assert again.stdout == ""
    assert counts(db) == before


def test_an_admin_email_outside_the_domain_rolls_the_company_back(
    production_env: dict[str, str], db: Db
) -> None:
    assert create_company(production_env, *ACME).returncode == 0

    other = create_company(
        production_env,
        "--name",
        "Other",
        "--domain",
        "other.example",
        "--admin-email",
        "ana@acme.example",
        "--admin-name",
        "Ana",
    )

    assert other.returncode == 1
    # Refused for its domain, as any address outside other.example would be: whether
    # ana@acme.example exists is not said.
    assert other.stderr.strip().splitlines() == [
        "create-company: ana@acme.example is not at one of the company's domains"
        " (other.example): add its domain to the company first"
    ]
    assert db.execute("SELECT email_domain FROM companies").fetchall() == [("acme.example",)]
    assert counts(db) == {% if cookiecutter.examples == "kudos" %}(1, 1, 1, 1){% else %}(1, 1){% endif %}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("--name", "A"), "the company name must be 2 to 200 characters"),
        (("--domain", "acme"), "'acme' is not a domain name"),
        (("--domain", "acme..example"), "is not a domain name"),
{%- if cookiecutter.examples == "kudos" %}
        (("--allowance", "45"), "the weekly allowance must be between 50 and 500"),
{%- endif %}
        (("--admin-email", "ana"), "the user is not valid: email"),
        (("--admin-name", " "), "the user is not valid: name"),
    ],
)
def test_bad_input_is_refused_with_one_line_and_nothing_is_added(
    production_env: dict[str, str], db: Db, change: tuple[str, str], reason: str
) -> None:
    args = [*ACME]
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args.extend(change)

    done = create_company(production_env, *args)

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("create-company: ")
    assert reason in line
    assert counts(db) == {% if cookiecutter.examples == "kudos" %}(0, 0, 0, 0){% else %}(0, 0){% endif %}


def test_an_unreachable_database_is_a_one_line_failure(production_env: dict[str, str]) -> None:
    env = {
        **production_env,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2",
    }

    done = create_company(env, *ACME)

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("create-company: database: ")
