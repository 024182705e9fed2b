"""A tenant reaches only its own people.

Every user's email is at one of their company's domains (exact match, case-insensitive),
a domain belongs to at most one company, and nothing an admin can call {% if cookiecutter.examples == "kudos" %}(create, import,{% else %}(create,{% endif %}
{% if cookiecutter.examples == "kudos" %}dry run, search, sign-in){% else %}search, sign-in){% endif %} answers differently for another company's user than for an
address nobody has: both are simply outside the caller's domains. The adversary is the
admin of another company ({% if cookiecutter.examples == "kudos" %}real Postgres, the real app, the worker's import code{% else %}real Postgres, the real app{% endif %}).
"""

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg import sql

from {{ cookiecutter.package_name }}.features.companies.domains import (
    EMAIL_DOMAIN_SQL,
    belongs_to,
    domain_of,
)

from . import factories as f
from .checks import assert_error
from .conftest import run_module
{%- if cookiecutter.examples == "kudos" %}
from .csv_helpers import process, upload
{%- endif %}
from .factories import Db
from .test_auth import assert_refused
from .test_auth_link import first_sign_in, linked_sub
from .tokens import SigningKey

ACME_ADMIN = "test|acme-admin"
GLOBEX_ADMIN = "test|globex-admin"
ACME_EMPLOYEE = "test|acme-employee"
DOMAINS = "/admin/company/domains"
OUTSIDE = "email_outside_company_domains"


@dataclass(frozen=True)
class Tenants:
    acme: UUID
    globex: UUID
    gil: UUID  # a Globex employee, not signed in yet


@pytest.fixture
def tenants(db: Db) -> Tenants:
    acme = f.company(db, "Acme")
    globex = f.company(db, "Globex")
    f.member(db, acme, "ada@acme.example", role="admin")
    db.execute("UPDATE users SET auth_sub = %s WHERE email = 'ada@acme.example'", (ACME_ADMIN,))
    f.member(db, acme, "eve@acme.example")
    db.execute("UPDATE users SET auth_sub = %s WHERE email = 'eve@acme.example'", (ACME_EMPLOYEE,))
    f.member(db, globex, "gus@globex.example", role="admin")
    db.execute("UPDATE users SET auth_sub = %s WHERE email = 'gus@globex.example'", (GLOBEX_ADMIN,))
    gil = f.user(db, globex, "gil@globex.example")
    return Tenants(acme=acme, globex=globex, gil=gil)


def counts(db: Db) -> tuple[Any, ...]:
    row = db.execute(
{%- if cookiecutter.examples == "kudos" %}
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM wallets),"
        " (SELECT count(*) FROM wallet_transactions), (SELECT count(*) FROM company_domains)"
{%- else %}
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM company_domains)"
{%- endif %}
    ).fetchone()
    assert row is not None
    return tuple(row)


def without(error: dict[str, Any], *texts: str) -> str:
    """The error with the address (or domain) the caller sent blanked out."""
    rendered = repr(error)
    for text in texts:
        rendered = rendered.replace(text, "<given>")
    return rendered


def test_the_rule_and_its_sql_twin_agree(db: Db) -> None:
    for email in (
        "ana@acme.example",
        "a@b@c.example",
        "no-at-sign",
        "trailing@",
        "@acme.example",
        "ana@eu.acme.example",
    ):
        query = sql.SQL("SELECT {} FROM (SELECT %s AS email) AS u").format(
            sql.SQL(EMAIL_DOMAIN_SQL)
        )
        row = db.execute(query, (email,))
        assert row.fetchone() == (domain_of(email),), email
    owned = {"acme.example"}
    assert belongs_to(" Ana@ACME.Example ", owned)
    # Exact domains: no subdomains, no look-alikes.
    for email in ("ana@eu.acme.example", "ana@acme.example.evil", "ana@xacme.example"):
        assert not belongs_to(email, owned), email


def test_no_path_can_store_a_user_outside_its_companys_domains(db: Db, tenants: Tenants) -> None:
    # A new company owns its primary domain from the start (a trigger adds it).
    assert db.execute(
        "SELECT domain FROM company_domains WHERE company_id = %s", (tenants.acme,)
    ).fetchall() == [("acme.example",)]
    before = counts(db)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        f.user(db, tenants.acme, "capture@globex.example")
    f.domain(db, tenants.acme, "acme-labs.example")
    with pytest.raises(psycopg.errors.UniqueViolation):
        f.domain(db, tenants.globex, "acme-labs.example")
    # A company whose primary domain another company already owns is refused too.
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO companies (name, email_domain) VALUES ('Labs', 'acme-labs.example')"
        )
    assert counts(db) == {% if cookiecutter.examples == "kudos" %}(before[0], before[1], before[2], before[3] + 1){% else %}(before[0], before[1] + 1){% endif %}


async def test_creating_says_nothing_about_other_companies(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Any
) -> None:
    before = counts(db)
    answers = []
    for email in (
        "gil@globex.example",  # Globex's employee
        "GIL@Globex.Example",
        "newbie@globex.example",  # at Globex's domain, nobody yet
        "someone@nowhere.example",  # no company's domain
    ):
        response = await api.post(
            "/admin/users", json={"name": "Someone", "email": email}, headers=bearer(ACME_ADMIN)
        )
        error = assert_error(response, 422, OUTSIDE)
        assert error["details"] == [
            {"field": "email", "message": "is not at one of the company's domains (acme.example)"}
        ]
        answers.append(without(error, email.lower()))
    assert len(set(answers)) == 1, answers
    assert counts(db) == before

    # The real employer is never blocked.
    response = await api.post(
        "/admin/users",
        json={"name": "Newbie", "email": "newbie@globex.example"},
        headers=bearer(GLOBEX_ADMIN),
    )
    assert response.status_code == 201, response.text


async def test_an_owner_adds_a_domain_and_then_people_there(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Any
) -> None:
    acme = bearer(ACME_ADMIN)
    new = {"name": "Lia", "email": "lia@acme-labs.example"}
    assert_error(await api.post("/admin/users", json=new, headers=acme), 422, OUTSIDE)

    added = await api.post(DOMAINS, json={"domain": " Acme-Labs.Example "}, headers=acme)
    assert added.status_code == 201, added.text
    assert added.json()["domain"] == "acme-labs.example"
    assert (added.json()["primary"], added.json()["users"]) == (False, 0)

    created = await api.post("/admin/users", json=new, headers=acme)
    assert created.status_code == 201, created.text
    # Exact domains: a subdomain is not the domain.
    sub = {"name": "Ed", "email": "ed@eu.acme.example"}
    assert_error(await api.post("/admin/users", json=sub, headers=acme), 422, OUTSIDE)

    listed = await api.get(DOMAINS, headers=acme)
    assert listed.status_code == 200, listed.text
    assert [(d["domain"], d["primary"], d["users"]) for d in listed.json()] == [
        ("acme.example", True, 2),
        ("acme-labs.example", False, 1),
    ]
    others = await api.get(DOMAINS, headers=bearer(GLOBEX_ADMIN))
    assert [(d["domain"], d["users"]) for d in others.json()] == [("globex.example", 2)]
    # Only owners manage domains.
    for response in (
        await api.get(DOMAINS, headers=bearer(ACME_EMPLOYEE)),
        await api.post(DOMAINS, json={"domain": "x.example"}, headers=bearer(ACME_EMPLOYEE)),
        await api.delete(f"{DOMAINS}/acme-labs.example", headers=bearer(ACME_EMPLOYEE)),
    ):
        assert_error(response, 403, "forbidden")


async def test_a_domain_belongs_to_one_company(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Any
) -> None:
    acme, globex = bearer(ACME_ADMIN), bearer(GLOBEX_ADMIN)
    assert (await api.post(DOMAINS, json={"domain": "acme-labs.example"}, headers=acme)).is_success
    for domain in ("acme-labs.example", "ACME.example"):
        error = assert_error(
            await api.post(DOMAINS, json={"domain": domain}, headers=globex), 409, "domain_taken"
        )
        assert "another company" in error["message"]
        assert "acme" not in error["message"].replace(domain.lower(), "").lower()
    own = await api.post(DOMAINS, json={"domain": "acme.example"}, headers=acme)
    assert (
        "already one of your company's domains" in assert_error(own, 409, "domain_taken")["message"]
    )
    for bad in ("acme", "acme..example", "a b.example", "x" * 254):
        response = await api.post(DOMAINS, json={"domain": bad}, headers=globex)
        assert response.status_code == 422, response.text

    # Two owners claiming one domain at once: exactly one gets it.
    before = counts(db)
    results = await asyncio.gather(
        api.post(DOMAINS, json={"domain": "shared.example"}, headers=acme),
        api.post(DOMAINS, json={"domain": "shared.example"}, headers=globex),
    )
    assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    assert db.execute(
        "SELECT count(*) FROM company_domains WHERE domain = 'shared.example'"
    ).fetchone() == (1,)
    assert {% if cookiecutter.examples == "kudos" %}counts(db)[3] == before[3] + 1{% else %}counts(db)[1] == before[1] + 1{% endif %}


async def test_removing_a_domain_never_strands_a_user(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Any
) -> None:
    acme = bearer(ACME_ADMIN)
    for domain in ("acme-labs.example", "acme-old.example"):
        assert (await api.post(DOMAINS, json={"domain": domain}, headers=acme)).is_success
    lia = await api.post(
        "/admin/users", json={"name": "Lia", "email": "lia@acme-labs.example"}, headers=acme
    )
    assert lia.status_code == 201, lia.text
    deactivated = await api.post(f"/admin/users/{lia.json()['id']}/deactivate", headers=acme)
    assert deactivated.status_code == 200, deactivated.text

    in_use = assert_error(
        await api.delete(f"{DOMAINS}/acme-labs.example", headers=acme), 409, "domain_in_use"
    )
    assert "1 user has" in in_use["message"]
    assert_error(await api.delete(f"{DOMAINS}/acme.example", headers=acme), 422, "primary_domain")
    # Another company's domain is not found, exactly like one nobody owns.
    theirs = assert_error(
        await api.delete(f"{DOMAINS}/globex.example", headers=acme), 404, "domain_not_found"
    )
    nobody = assert_error(
        await api.delete(f"{DOMAINS}/nobody.example", headers=acme), 404, "domain_not_found"
    )
    assert without(theirs, "globex.example") == without(nobody, "nobody.example")

    removed = await api.delete(f"{DOMAINS}/acme-old.example", headers=acme)
    assert removed.status_code == 204, removed.text
    late = {"name": "Old", "email": "old@acme-old.example"}
    assert_error(await api.post("/admin/users", json=late, headers=acme), 422, OUTSIDE)
    assert db.execute(
        "SELECT domain FROM company_domains WHERE company_id = %s ORDER BY domain",
        (tenants.acme,),
    ).fetchall() == [("acme-labs.example",), ("acme.example",)]
{%- if cookiecutter.examples == "kudos" %}


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
async def test_an_import_says_nothing_about_other_companies(
    api: httpx.AsyncClient,
    db: Db,
    tenants: Tenants,
    bearer: Any,
    database_url: str,
    dry_run: bool,
) -> None:
    content = (
        b"name,email\n"
        b"New Person,new@acme.example\n"  # 2 ok
        b"Gil Captured,gil@globex.example\n"  # 3 Globex's employee
        b"Newbie,newbie@globex.example\n"  # 4 at Globex's domain, nobody yet
        b"Someone,someone@nowhere.example\n"  # 5 no company's domain
    )
    headers = bearer(ACME_ADMIN)
    response = await upload(api, headers, content, dry_run=dry_run)
    assert response.status_code == 202, response.text
    await process(database_url, response.json()["id"])
    state = (await api.get(response.json()["status_url"], headers=headers)).json()

    assert state["status"] == "completed", state
    # Before domains, Gil was "skipped" (exists somewhere) and Newbie "created".
    assert state["counts"] == {
        "rows": 4,
        "created": 1,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 3,
    }
    message = "is not at one of the company's domains (acme.example)"
    assert [(e["row_number"], e["field"], e["message"]) for e in state["errors"]["items"]] == [
        (3, "email", message),
        (4, "email", message),
        (5, "email", message),
    ]
    rows = db.execute("SELECT email, company_id FROM users ORDER BY email").fetchall()
    assert ("gil@globex.example", tenants.globex) in rows
    assert {email for email, _ in rows} & {"newbie@globex.example", "someone@nowhere.example"} == (
        set()
    )
    assert ("new@acme.example", tenants.acme) in rows or dry_run
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}


async def test_an_import_takes_people_at_every_domain_of_the_company(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Any, database_url: str
) -> None:
    f.domain(db, tenants.acme, "acme-labs.example")
    content = b"name,email\nLia,LIA@Acme-Labs.example\nNed,ned@acme.example\n"
    response = await upload(api, bearer(ACME_ADMIN), content)
    assert response.status_code == 202, response.text
    outcome = await process(database_url, response.json()["id"])
    assert (outcome["created"], outcome["invalid"]) == (2, 0), outcome
    assert db.execute(
        "SELECT email_domain FROM users WHERE company_id = %s AND email IN"
        " ('lia@acme-labs.example', 'ned@acme.example') ORDER BY email",
        (tenants.acme,),
    ).fetchall() == [("acme-labs.example",), ("acme.example",)]
{%- endif %}


async def test_search_finds_only_the_companys_own_people(
    api: httpx.AsyncClient, tenants: Tenants, bearer: Any
) -> None:
    for term in ("gil", "globex", "@"):
        response = await api.get(
            "/admin/users", params={"search": term}, headers=bearer(ACME_ADMIN)
        )
        assert response.status_code == 200, response.text
        assert all(u["email"].endswith("@acme.example") for u in response.json()["items"])
    found = await api.get("/admin/users", params={"search": "gil"}, headers=bearer(ACME_ADMIN))
    assert found.json()["total"] == 0
    theirs = await api.get("/admin/users", params={"search": "gil"}, headers=bearer(GLOBEX_ADMIN))
    assert theirs.json()["total"] == 1


async def test_first_sign_in_links_only_in_the_company_owning_the_domain(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, signing_key: SigningKey
) -> None:
    # A row written before domains were enforced (migration 0006 leaves such rows as
    # they are): an Acme user with an address at Globex's domain. Replica mode skips the
    # foreign key's trigger, as the old schema had none.
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        captured = f.user(db, tenants.acme, "grace@globex.example")

    refused = await api.get(
        "/me", headers=first_sign_in(signing_key, "idp|grace", "grace@globex.example")
    )
    assert_refused(refused, OUTSIDE, "not one of its company's domains")
    assert linked_sub(db, captured) is None

    # Globex's own employee links into Globex.
    gil = await api.get("/me", headers=first_sign_in(signing_key, "idp|gil", "gil@globex.example"))
    assert gil.status_code == 200, gil.text
    assert gil.json()["company_id"] == str(tenants.globex)
    assert linked_sub(db, tenants.gil) == "idp|gil"


def test_dev_token_adds_the_user_to_the_company_owning_the_domain(
    process_env: dict[str, str], tmp_path: Path, db: Db, tenants: Tenants
) -> None:
    f.domain(db, tenants.acme, "acme-labs.example")
    env = {**process_env, "AUTH_JWKS_URL": f"file:{tmp_path}/jwks.json"}
    done: subprocess.CompletedProcess[str] = run_module(
        "{{ cookiecutter.package_name }}.cli",
        env,
        "dev-token",
        "--email",
        "bo@acme-labs.example",
        "--keys-dir",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "created company" not in done.stderr
    assert db.execute(
        "SELECT company_id FROM users WHERE email = 'bo@acme-labs.example'"
    ).fetchone() == (tenants.acme,)
    assert db.execute("SELECT count(*) FROM companies").fetchone() == (2,)


async def test_a_domain_removed_while_people_are_added_never_strands_one(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Any
) -> None:
    """Removing a domain races adding a user there: one of them wins, cleanly."""
    acme = bearer(ACME_ADMIN)
    for round_ in range(8):
        domain = f"race{round_}.example"
        f.domain(db, tenants.acme, domain)
        created, removed = await asyncio.gather(
            api.post("/admin/users", json={"name": "Racer", "email": f"r@{domain}"}, headers=acme),
            api.delete(f"{DOMAINS}/{domain}", headers=acme),
        )
        pair = (created.status_code, removed.status_code)
        assert pair in {(201, 409), (422, 204)}, (created.text, removed.text)
    stranded = db.execute(
        "SELECT u.email FROM users AS u LEFT JOIN company_domains AS d"
        " ON d.company_id = u.company_id AND d.domain = u.email_domain WHERE d.domain IS NULL"
    ).fetchall()
    assert stranded == []


def test_create_company_refuses_a_domain_another_company_added(
    process_env: dict[str, str], db: Db, tenants: Tenants
) -> None:
    f.domain(db, tenants.acme, "acme-labs.example")
    before = counts(db)
    done = run_module(
        "{{ cookiecutter.package_name }}.cli",
        process_env,
        "create-company",
        *("--name", "Labs", "--domain", "ACME-LABS.example"),
        *("--admin-email", "boss@acme-labs.example", "--admin-name", "Boss"),
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "create-company: a company with the domain acme-labs.example already exists"
    ]
    assert counts(db) == before
