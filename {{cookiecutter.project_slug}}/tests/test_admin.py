{% if cookiecutter.examples == "kudos" -%}
"""Admin endpoints: users, company settings and the weekly reset, each scoped to the
admin's own company (real Postgres, Redis and, for the reset, the real worker)."""

{% else -%}
"""Admin endpoints: users and company settings, each scoped to the admin's own company
(real Postgres and Redis; the user export, which the worker writes, is test_user_export)."""

{% endif -%}
import asyncio
{%- if cookiecutter.examples == "kudos" %}
import subprocess
import time
{%- endif %}
from collections.abc import AsyncIterator
from dataclasses import dataclass
{%- if cookiecutter.examples == "kudos" %}
from datetime import UTC, datetime, timedelta
{%- endif %}
from typing import Any
from uuid import UUID, uuid4

import httpx
{%- if cookiecutter.examples == "kudos" %}
import psycopg
{%- endif %}
import pytest
{%- if cookiecutter.examples == "kudos" %}
from arq.constants import result_key_prefix
from arq.jobs import serialize_result
{%- endif %}
from sqlmodel.ext.asyncio.session import AsyncSession

{% if cookiecutter.examples == "kudos" -%}
from {{ cookiecutter.package_name }}.app import create_app
{% endif -%}
from {{ cookiecutter.package_name }}.features.companies import service as companies
from {{ cookiecutter.package_name }}.features.users import service as users
{%- if cookiecutter.examples == "kudos" %}
from {{ cookiecutter.package_name }}.features.wallets.service import (
    period_start_for,
    reset_weekly_balances,
)
{%- endif %}
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.queue import create_queue

from . import factories as f
{%- if cookiecutter.examples == "kudos" %}
from .checks import assert_error
from .conftest import libpq_url
{%- endif %}
from .factories import Db
{%- if cookiecutter.examples == "kudos" %}
from .tokens import Bearer, JwksServer
{%- else %}
from .tokens import Bearer
{%- endif %}

ACME_ADMIN = "auth0|acme-admin"
ACME_EMPLOYEE = "auth0|acme-employee"
GLOBEX_ADMIN = "auth0|globex-admin"
{%- if cookiecutter.examples != "kudos" %}


def member(
    db: Db,
    company_id: UUID,
    email: str,
    *,
    role: str = "employee",
    sub: str | None = None,
    active: bool = True,
) -> UUID:
    user_id = f.user(db, company_id, email, active=active)
    db.execute("UPDATE users SET role = %s, auth_sub = %s WHERE id = %s", (role, sub, user_id))
    return user_id
{%- endif %}


@dataclass(frozen=True)
class Tenants:
    acme: UUID
    acme_admin: UUID
    acme_employee: UUID
    globex: UUID
    globex_admin: UUID
    globex_employee: UUID


@pytest.fixture
def tenants(db: Db) -> Tenants:
    """Two companies, each with a signed-in admin and an employee."""
{%- if cookiecutter.examples == "kudos" %}
    acme = f.company(db, "Acme", allowance=80)
    globex = f.company(db, "Globex", allowance=120)
{%- else %}
    acme = f.company(db, "Acme")
    globex = f.company(db, "Globex")
{%- endif %}
    return Tenants(
        acme=acme,
{%- if cookiecutter.examples == "kudos" %}
        acme_admin=f.member(
            db, acme, "ada@acme.example", role="admin", sub=ACME_ADMIN, compliment=10
        ),
        acme_employee=f.member(db, acme, "eve@acme.example", sub=ACME_EMPLOYEE, compliment=30),
{%- else %}
        acme_admin=member(db, acme, "ada@acme.example", role="admin", sub=ACME_ADMIN),
        acme_employee=member(db, acme, "eve@acme.example", sub=ACME_EMPLOYEE),
{%- endif %}
        globex=globex,
{%- if cookiecutter.examples == "kudos" %}
        globex_admin=f.member(
            db, globex, "gus@globex.example", role="admin", sub=GLOBEX_ADMIN, compliment=40
        ),
        globex_employee=f.member(db, globex, "gil@globex.example", compliment=500, signed_in=False),
{%- else %}
        globex_admin=member(db, globex, "gus@globex.example", role="admin", sub=GLOBEX_ADMIN),
        globex_employee=member(db, globex, "gil@globex.example"),
{%- endif %}
    )


@pytest.fixture(autouse=True)
async def queue(settings: Settings, database_url: str) -> AsyncIterator[Any]:
{%- if cookiecutter.examples == "kudos" %}
    """This run's queue. The reset jobs of this test's companies are removed afterwards,
    so no later worker runs them (and takes the reset lock while another test waits)."""
{%- else %}
    """This run's queue, emptied afterwards: no later worker runs a job a test queued."""
{%- endif %}
    queue = create_queue(settings)
    try:
        yield queue
    finally:
{%- if cookiecutter.examples == "kudos" %}
        with psycopg.connect(libpq_url(database_url)) as conn:
            companies = [row[0] for row in conn.execute("SELECT id FROM companies")]
        for company in companies:
            async for key in queue.scan_iter(match=f"arq:*:weekly-reset:{company}:*"):
                job_id = key.decode().split(":", 2)[2]
                await queue.zrem(settings.queue_name, job_id)
                await queue.delete(key)
{%- else %}
        await queue.delete(settings.queue_name)
{%- endif %}
        await queue.aclose()


{% if cookiecutter.examples == "kudos" -%}
def ledger_rows(db: Db, user_id: UUID) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT kind, balance_type, amount, previous_balance, new_balance, reason"
        " FROM wallet_transactions WHERE user_id = %s ORDER BY id",
        (user_id,),
    ).fetchall()


{% else -%}
def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    error: dict[str, Any] = body["error"]
    return error


{% endif -%}
def user_row(db: Db, email: str) -> tuple[Any, ...] | None:
    return db.execute(
        "SELECT id, company_id, name, role, is_active FROM users WHERE email = %s", (email,)
    ).fetchone()


# --- permissions -----------------------------------------------------------------------

ADMIN_ENDPOINTS = [
    ("GET", "/admin/users", None),
    ("POST", "/admin/users", {"name": "Bruno", "email": "bruno@acme.example"}),
    ("GET", "/admin/users/{user}", None),
    ("POST", "/admin/users/{user}/deactivate", None),
    ("GET", "/admin/company", None),
{%- if cookiecutter.examples == "kudos" %}
    ("PUT", "/admin/company/weekly-allowance", {"weekly_renewal_amount": 200}),
    ("POST", "/admin/weekly-reset", None),
    ("GET", "/admin/jobs/weekly-reset:{company}:2025-03-03", None),
{%- else %}
    ("GET", "/admin/company/domains", None),
    ("POST", "/admin/company/domains", {"domain": "acme-labs.example"}),
    ("DELETE", "/admin/company/domains/acme.example", None),
    ("POST", "/admin/users/exports", None),
    ("GET", "/admin/users/exports/{user}", None),
    ("GET", "/admin/users/exports/{user}/csv", None),
{%- endif %}
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
async def test_employees_are_refused_every_admin_endpoint(
    api: httpx.AsyncClient,
    settings: Settings,
    queue: Any,
    db: Db,
    tenants: Tenants,
    bearer: Bearer,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    url = path.format(user=tenants.acme_admin, company=tenants.acme)
    response = await api.request(method, url, json=body, headers=bearer(ACME_EMPLOYEE))
    error = assert_error(response, 403, "forbidden")
    assert "'employee' role" in error["message"]
    # Without a token: 401, before any permission check.
    assert_error(await api.request(method, url, json=body), 401, "not_authenticated")
    # Nothing changed.
    assert user_row(db, "bruno@acme.example") is None
    assert db.execute("SELECT count(*) FROM users WHERE is_active").fetchone() == (4,)
{%- if cookiecutter.examples == "kudos" %}
    assert db.execute(
        "SELECT weekly_renewal_amount FROM companies WHERE id = %s", (tenants.acme,)
    ).fetchone() == (80,)
{%- else %}
    assert db.execute("SELECT count(*) FROM company_domains").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM user_exports").fetchone() == (0,)
{%- endif %}
    assert await queue.zcard(settings.queue_name) == 0


# --- users -----------------------------------------------------------------------------


async def test_list_users_is_paginated_and_shows_only_the_own_company(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    for n in range(5):
{%- if cookiecutter.examples == "kudos" %}
        f.member(db, tenants.acme, f"user{n}@acme.example", compliment=n, signed_in=False)
{%- else %}
        member(db, tenants.acme, f"user{n}@acme.example")
{%- endif %}
    response = await api.get("/admin/users", params={"limit": 3}, headers=bearer(ACME_ADMIN))
    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (7, 3, 0)
    assert [item["email"] for item in page["items"]] == [
        "ada@acme.example",
        "eve@acme.example",
        "user0@acme.example",
    ]
    assert page["items"][0]["role"] == "admin"
    assert page["items"][0]["signed_in"] is True
{%- if cookiecutter.examples == "kudos" %}
    assert page["items"][0]["wallet"] == {"compliment_balance": 10, "redeemable_balance": 0}
{%- endif %}

    rest = (
        await api.get("/admin/users", params={"limit": 3, "offset": 6}, headers=bearer(ACME_ADMIN))
    ).json()
    assert [item["email"] for item in rest["items"]] == ["user4@acme.example"]
    assert rest["total"] == 7

    everyone = (await api.get("/admin/users", headers=bearer(ACME_ADMIN))).json()
    assert all(item["email"].endswith("@acme.example") for item in everyone["items"])
    assert len(everyone["items"]) == 7


async def test_list_users_filters(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
{%- if cookiecutter.examples == "kudos" %}
    f.member(db, tenants.acme, "zoe.old@acme.example", active=False, signed_in=False)
    f.member(db, tenants.acme, "percent%sign@acme.example", signed_in=False)
    f.member(
        db, tenants.globex, "zoe@globex.example", signed_in=False
    )  # another company: never listed
{%- else %}
    member(db, tenants.acme, "zoe.old@acme.example", active=False)
    member(db, tenants.acme, "percent%sign@acme.example")
    member(db, tenants.globex, "zoe@globex.example")  # another company: never listed
{%- endif %}

    async def emails(**params: Any) -> list[str]:
        response = await api.get("/admin/users", params=params, headers=bearer(ACME_ADMIN))
        assert response.status_code == 200, response.text
        return sorted(item["email"] for item in response.json()["items"])

    assert await emails(active="false") == ["zoe.old@acme.example"]
    assert "zoe.old@acme.example" not in await emails(active="true")
    assert await emails(role="admin") == ["ada@acme.example"]
    assert await emails(search="ZOE") == ["zoe.old@acme.example"]
    assert await emails(search="Eve") == ["eve@acme.example"]  # the name
    # LIKE wildcards in the search are plain characters.
    assert await emails(search="%") == ["percent%sign@acme.example"]
    assert await emails(search="_") == []
    assert await emails(search="zoe", active="true") == []
    assert await emails(search="globex") == []

    nul = await api.get("/admin/users", params={"search": "a\x00"}, headers=bearer(ACME_ADMIN))
    assert_error(nul, 422, "validation_error")

    bad = await api.get("/admin/users", params={"role": "owner"}, headers=bearer(ACME_ADMIN))
    assert_error(bad, 422, "validation_error")
    too_many = await api.get("/admin/users", params={"limit": 1000}, headers=bearer(ACME_ADMIN))
    assert_error(too_many, 422, "validation_error")


{% if cookiecutter.examples == "kudos" -%}
async def test_create_user_gives_a_wallet_with_the_allowance_and_its_ledger_row(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    response = await api.post(
        "/admin/users",
        json={
            "name": "  Bruno Lima ",
            "email": " Bruno.Lima@ACME.example ",
            "department": "Engineering",
            "job_title": "Backend developer",
        },
        headers=bearer(ACME_ADMIN),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "bruno.lima@acme.example"
    assert body["name"] == "Bruno Lima"
    assert body["role"] == "employee"
    assert body["is_active"] is True
    assert body["signed_in"] is False
    assert body["created_at"] is not None
    assert body["wallet"] == {"compliment_balance": 80, "redeemable_balance": 0}

    row = user_row(db, "bruno.lima@acme.example")
    assert row is not None
    user_id, company_id, name, role, active = row
    assert (str(user_id), company_id, name, role, active) == (
        body["id"],
        tenants.acme,
        "Bruno Lima",
        "employee",
        True,
    )
    assert f.balances(db, user_id) == (80, 0)
    assert ledger_rows(db, user_id) == [
        ("RESET", "COMPLIMENT", 80, 0, 80, "Initial weekly allowance")
    ]
    # The new user is listed, and an admin can be created too.
    listed = (await api.get("/admin/users", headers=bearer(ACME_ADMIN))).json()
    assert body in listed["items"]
    admin = await api.post(
        "/admin/users",
        json={"name": "Carla", "email": "carla@acme.example", "role": "admin"},
        headers=bearer(ACME_ADMIN),
    )
    assert admin.status_code == 201, admin.text
    assert admin.json()["role"] == "admin"
    assert admin.json()["department"] is None


{% endif -%}
async def test_create_user_refuses_a_taken_email_of_the_company(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    response = await api.post(
        "/admin/users",
        json={"name": "Someone", "email": "EVE@acme.example"},
        headers=bearer(ACME_ADMIN),
    )
    error = assert_error(response, 409, "email_taken")
    assert "eve@acme.example" in error["message"]
    # Another company's user is outside Acme's domains: 422, never a 409 (test_tenant_domains).
    response = await api.post(
        "/admin/users",
        json={"name": "Someone", "email": "gil@globex.example"},
        headers=bearer(ACME_ADMIN),
    )
    assert_error(response, 422, "email_outside_company_domains")
    assert db.execute("SELECT count(*) FROM users").fetchone() == (4,)
{%- if cookiecutter.examples == "kudos" %}
    assert db.execute("SELECT count(*) FROM wallet_transactions").fetchone() == (0,)
{%- endif %}


async def test_concurrent_creates_of_one_email_make_one_user(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    responses = await asyncio.gather(
        *(
            api.post(
                "/admin/users",
                json={"name": "Twin", "email": "twin@acme.example"},
                headers=bearer(ACME_ADMIN),
            )
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "email_taken")
{%- if cookiecutter.examples == "kudos" %}
    row = user_row(db, "twin@acme.example")
    assert row is not None
    assert len(ledger_rows(db, row[0])) == 1
{%- else %}
    assert user_row(db, "twin@acme.example") is not None
{%- endif %}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": " A ", "email": "a@acme.example"}, "name"),
        ({"email": "a@acme.example"}, "name"),
        ({"name": "Ana", "email": "not-an-email"}, "email"),
        ({"name": "Ana", "email": "ana@acme"}, "email"),
        ({"name": "Ana", "email": "ana@acme.example", "role": "owner"}, "role"),
        ({"name": "Ana", "email": "ana@acme.example", "department": "x" * 121}, "department"),
        ({"name": "Ana\u0000", "email": "ana@acme.example"}, "name"),
        ({"name": "Ana", "email": "ana\u0000@acme.example"}, "email"),
        ({"name": "Ana", "email": "ana@acme.example", "job_title": "a\nb"}, "job_title"),
        # The company is always the caller's: naming one is refused, not ignored.
        ({"name": "Ana", "email": "ana@acme.example", "company_id": str(uuid4())}, "company_id"),
    ],
)
async def test_create_user_validates_the_body(
    api: httpx.AsyncClient,
    db: Db,
    tenants: Tenants,
    bearer: Bearer,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await api.post("/admin/users", json=body, headers=bearer(ACME_ADMIN))
    error = assert_error(response, 422, "validation_error")
    assert [detail["location"][-1] for detail in error["details"]] == [field]
    assert db.execute("SELECT count(*) FROM users").fetchone() == (4,)


async def test_create_user_service_refuses_without_spoiling_the_transaction(
    session: AsyncSession, db: Db, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
{%- if cookiecutter.examples == "kudos" %}
    """What the CSV import relies on: a refused user leaves the batch's transaction usable."""
{%- else %}
    """What a batch of creates relies on: a refused user leaves the transaction usable."""
{%- endif %}
    company = await companies.get_company(session, tenants.acme)
    with pytest.raises(users.InvalidUserError) as invalid:
        await users.create_user(session, company, name=" A ", email="a@b", job_title="\x00")
    assert [d["field"] for d in invalid.value.details or []] == ["name", "email", "job_title"]

    first = await users.create_user(session, company, name="First", email="First@Acme.example")
{%- if cookiecutter.examples == "kudos" %}
    assert first.user.email == "first@acme.example"
{%- else %}
    assert first.email == "first@acme.example"
{%- endif %}
    with pytest.raises(users.EmailTakenError):
        await users.create_user(session, company, name="Again", email="first@acme.example ")
    # The race the check cannot see: the insert itself hits the unique email.
    monkeypatch.setattr(users, "email_taken", _never_taken)
    with pytest.raises(users.EmailTakenError):
        await users.create_user(session, company, name="Racer", email="eve@acme.example")
    second = await users.create_user(
        session, company, name="Second", email="second@acme.example", department="  "
    )
{%- if cookiecutter.examples == "kudos" %}
    assert second.user.department is None
{%- else %}
    assert second.department is None
{%- endif %}
    await session.commit()

    emails = db.execute(
        "SELECT email FROM users WHERE company_id = %s ORDER BY email", (tenants.acme,)
    )
    assert [row[0] for row in emails] == [
        "ada@acme.example",
        "eve@acme.example",
        "first@acme.example",
        "second@acme.example",
    ]
{%- if cookiecutter.examples == "kudos" %}
    for created in (first, second):
        assert f.balances(db, created.user.id) == (80, 0)
        assert len(ledger_rows(db, created.user.id)) == 1
{%- endif %}


async def _never_taken(session: AsyncSession, email: str) -> bool:
    return False


async def test_an_admin_reads_only_users_of_the_own_company(
    api: httpx.AsyncClient, tenants: Tenants, bearer: Bearer
) -> None:
    own = await api.get(f"/admin/users/{tenants.acme_employee}", headers=bearer(ACME_ADMIN))
    assert own.status_code == 200, own.text
    assert own.json()["email"] == "eve@acme.example"
    for user_id in (tenants.globex_employee, tenants.globex_admin, uuid4()):
        response = await api.get(f"/admin/users/{user_id}", headers=bearer(ACME_ADMIN))
        assert_error(response, 404, "user_not_found")
    # Only an id names a user: any other path segment is no resource at all.
    assert_error(
        await api.get("/admin/users/not-a-uuid", headers=bearer(ACME_ADMIN)),
        404,
        "not_found",
    )


async def test_deactivate_is_idempotent_and_locks_the_user_out(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    assert (await api.get("/me", headers=bearer(ACME_EMPLOYEE))).status_code == 200
    url = f"/admin/users/{tenants.acme_employee}/deactivate"
    first = await api.post(url, headers=bearer(ACME_ADMIN))
    assert first.status_code == 200, first.text
    assert first.json()["is_active"] is False
    again = await api.post(url, headers=bearer(ACME_ADMIN))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert db.execute(
        "SELECT is_active FROM users WHERE id = %s", (tenants.acme_employee,)
    ).fetchone() == (False,)
{%- if cookiecutter.examples == "kudos" %}
    # Balances are kept; the user's tokens are refused from now on.
    assert f.balances(db, tenants.acme_employee) == (30, 0)
{%- else %}
    # The row is kept; the user's tokens are refused from now on.
{%- endif %}
    assert_error(await api.get("/me", headers=bearer(ACME_EMPLOYEE)), 401, "inactive_user")


async def test_an_admin_cannot_deactivate_themselves(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    response = await api.post(
        f"/admin/users/{tenants.acme_admin}/deactivate", headers=bearer(ACME_ADMIN)
    )
    assert_error(response, 422, "cannot_deactivate_self")
    assert (await api.get("/me", headers=bearer(ACME_ADMIN))).status_code == 200


async def test_an_admin_cannot_deactivate_another_companys_user(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer
) -> None:
    for user_id in (tenants.globex_admin, tenants.globex_employee, uuid4()):
        response = await api.post(f"/admin/users/{user_id}/deactivate", headers=bearer(ACME_ADMIN))
        assert_error(response, 404, "user_not_found")
    assert db.execute(
        "SELECT count(*) FROM users WHERE company_id = %s AND is_active", (tenants.globex,)
    ).fetchone() == (2,)
    assert (await api.get("/me", headers=bearer(GLOBEX_ADMIN))).status_code == 200


# --- company settings ------------------------------------------------------------------


async def test_company_settings_are_the_callers_own(
    api: httpx.AsyncClient, tenants: Tenants, bearer: Bearer
) -> None:
    acme = await api.get("/admin/company", headers=bearer(ACME_ADMIN))
    assert acme.status_code == 200, acme.text
    assert acme.json() == {
        "id": str(tenants.acme),
        "name": "Acme",
        "email_domain": "acme.example",
{%- if cookiecutter.examples == "kudos" %}
        "weekly_renewal_amount": 80,
{%- endif %}
        "timezone": "UTC",
    }
    globex = (await api.get("/admin/company", headers=bearer(GLOBEX_ADMIN))).json()
    assert globex["id"] == str(tenants.globex)
{%- if cookiecutter.examples == "kudos" %}


@pytest.mark.parametrize("amount", [50, 150, 500])
async def test_set_the_weekly_allowance(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer, amount: int
) -> None:
    response = await api.put(
        "/admin/company/weekly-allowance",
        json={"weekly_renewal_amount": amount},
        headers=bearer(ACME_ADMIN),
    )
    assert response.status_code == 200, response.text
    assert response.json()["weekly_renewal_amount"] == amount
    rows = db.execute("SELECT id, weekly_renewal_amount FROM companies").fetchall()
    amounts = {row[0]: row[1] for row in rows}
    assert amounts == {tenants.acme: amount, tenants.globex: 120}
    # Balances wait for the next reset; users created from now on get the new amount.
    assert f.balances(db, tenants.acme_employee) == (30, 0)
    new_user = {"name": "New", "email": "new@acme.example"}
    created = await api.post("/admin/users", json=new_user, headers=bearer(ACME_ADMIN))
    assert created.json()["wallet"]["compliment_balance"] == amount


@pytest.mark.parametrize(
    "body",
    [
        {"weekly_renewal_amount": 49},
        {"weekly_renewal_amount": 501},
        {"weekly_renewal_amount": -100},
        {"weekly_renewal_amount": "lots"},
        {"weekly_renewal_amount": None},
        {},
        {"weekly_renewal_amount": 100, "company_id": "anything"},
    ],
)
async def test_the_weekly_allowance_must_be_50_to_500(
    api: httpx.AsyncClient, db: Db, tenants: Tenants, bearer: Bearer, body: dict[str, Any]
) -> None:
    response = await api.put(
        "/admin/company/weekly-allowance", json=body, headers=bearer(ACME_ADMIN)
    )
    assert_error(response, 422, "validation_error")
    assert db.execute(
        "SELECT weekly_renewal_amount FROM companies WHERE id = %s", (tenants.acme,)
    ).fetchone() == (80,)


# --- weekly reset, handed to the worker -----------------------------------------------


def this_week() -> str:
    return period_start_for(datetime.now(UTC)).isoformat()


async def test_reset_request_is_accepted_once_per_week(
    api: httpx.AsyncClient, settings: Settings, queue: Any, tenants: Tenants, bearer: Bearer
) -> None:
    # A double click: both requests at once.
    first, second = await asyncio.gather(
        api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN)),
        api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN)),
    )
    assert (first.status_code, second.status_code) == (202, 202), first.text
    job_id = f"weekly-reset:{tenants.acme}:{this_week()}"
    for response in (first, second):
        assert response.json()["job_id"] == job_id
        assert response.json()["status_url"] == f"/admin/jobs/{job_id}"
        assert response.json()["period_start"] == this_week()
    assert sorted([first.json()["already_enqueued"], second.json()["already_enqueued"]]) == [
        False,
        True,
    ]
    later = await api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))
    assert later.status_code == 202
    assert (later.json()["job_id"], later.json()["already_enqueued"]) == (job_id, True)
    assert await queue.zrange(settings.queue_name, 0, -1) == [job_id.encode()]

    status = await api.get(first.json()["status_url"], headers=bearer(ACME_ADMIN))
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "queued"
    assert status.json()["job_id"] == job_id
    assert status.json()["enqueued_at"] is not None
    assert (status.json()["success"], status.json()["summary"]) == (None, None)


async def test_jobs_of_another_company_are_not_found(
    api: httpx.AsyncClient, tenants: Tenants, bearer: Bearer
) -> None:
    acme_job = (await api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))).json()
    globex_job = (await api.post("/admin/weekly-reset", headers=bearer(GLOBEX_ADMIN))).json()
    assert acme_job["job_id"] != globex_job["job_id"]
    assert str(tenants.globex) in globex_job["job_id"]

    response = await api.get(acme_job["status_url"], headers=bearer(GLOBEX_ADMIN))
    assert_error(response, 404, "job_not_found")
    own = await api.get(globex_job["status_url"], headers=bearer(GLOBEX_ADMIN))
    assert own.json()["status"] == "queued"
    for job_id in (
        "anything",
        f"weekly-reset:{tenants.acme}",
        f"weekly-reset:{tenants.acme}:not-a-date",
        f"weekly-reset:{tenants.globex}:{this_week()}",
        f"other-job:{tenants.acme}:{this_week()}",
    ):
        response = await api.get(f"/admin/jobs/{job_id}", headers=bearer(ACME_ADMIN))
        assert_error(response, 404, "job_not_found")


async def test_a_job_the_queue_no_longer_holds_is_not_found(
    api: httpx.AsyncClient, tenants: Tenants, bearer: Bearer
) -> None:
    old_week = period_start_for(datetime.now(UTC) - timedelta(weeks=3)).isoformat()
    response = await api.get(
        f"/admin/jobs/weekly-reset:{tenants.acme}:{old_week}", headers=bearer(ACME_ADMIN)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "not_found"


async def test_a_job_whose_arguments_name_another_company_is_not_found(
    api: httpx.AsyncClient, settings: Settings, queue: Any, tenants: Tenants, bearer: Bearer
) -> None:
    """The id is not the only check: the job's own arguments must name the company."""
    job_id = f"weekly-reset:{tenants.acme}:{this_week()}"
    await queue.enqueue_job("weekly_reset", str(tenants.globex), _job_id=job_id)
    response = await api.get(f"/admin/jobs/{job_id}", headers=bearer(ACME_ADMIN))
    assert_error(response, 404, "job_not_found")


async def test_a_failed_reset_can_be_requested_again(
    api: httpx.AsyncClient, settings: Settings, queue: Any, tenants: Tenants, bearer: Bearer
) -> None:
    job_id = f"weekly-reset:{tenants.acme}:{this_week()}"
    now = int(time.time() * 1000)
    failed = serialize_result(
        "weekly_reset",
        (str(tenants.acme),),
        {},
        3,
        now,
        False,
        RuntimeError("database down"),
        now,
        now,
        "test",
        settings.queue_name,
        job_id,
    )
    await queue.set(result_key_prefix + job_id, failed, px=60_000)
    status = await api.get(f"/admin/jobs/{job_id}", headers=bearer(ACME_ADMIN))
    assert status.status_code == 200, status.text
    assert (status.json()["status"], status.json()["success"]) == ("complete", False)
    assert status.json()["summary"] is None

    again = await api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))
    assert again.status_code == 202
    assert (again.json()["job_id"], again.json()["already_enqueued"]) == (job_id, False)
    status = await api.get(f"/admin/jobs/{job_id}", headers=bearer(ACME_ADMIN))
    assert status.json()["status"] == "queued"


@pytest.fixture
async def api_without_redis(
    settings: Settings, jwks: JwksServer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_reset_request_without_redis_is_503(
    api_without_redis: httpx.AsyncClient, tenants: Tenants, bearer: Bearer
) -> None:
    response = await api_without_redis.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))
    assert_error(response, 503, "queue_unavailable")
    job = f"/admin/jobs/weekly-reset:{tenants.acme}:{this_week()}"
    response = await api_without_redis.get(job, headers=bearer(ACME_ADMIN))
    assert_error(response, 503, "queue_unavailable")


async def wait_for_job(
    api: httpx.AsyncClient, url: str, headers: dict[str, str], within: float = 30
) -> dict[str, Any]:
    """Poll the status URL until the job is complete, or fail at the deadline."""
    deadline = time.monotonic() + within
    seen: list[str] = []
    while True:
        response = await api.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] == "complete":
            return body
        assert body["status"] != "not_found", body
        if time.monotonic() > deadline:
            raise AssertionError(f"job not complete after {within} s; states seen: {seen}")
        await asyncio.sleep(0.05)


async def test_admin_reset_runs_in_the_worker_for_the_own_company_only(
    worker: "subprocess.Popen[str]",
    api: httpx.AsyncClient,
    db: Db,
    tenants: Tenants,
    bearer: Bearer,
) -> None:
    spent = f.member(
        db, tenants.acme, "spent@acme.example", compliment=0, redeemable=7, signed_in=False
    )
    inactive = f.member(
        db, tenants.acme, "gone@acme.example", compliment=3, active=False, signed_in=False
    )
    no_wallet = f.member(db, tenants.acme, "new@acme.example", signed_in=False)
    globex_before = {
        user: f.balances(db, user) for user in (tenants.globex_admin, tenants.globex_employee)
    }

    accepted = await api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))
    assert accepted.status_code == 202, accepted.text
    done = await wait_for_job(api, accepted.json()["status_url"], bearer(ACME_ADMIN))

    assert done["success"] is True
    assert done["started_at"] is not None
    assert done["finished_at"] is not None
    summary = done["summary"]
    assert summary["period_start"] == this_week()
    assert (summary["companies"], summary["companies_already_reset"]) == (1, 0)
    assert summary["wallets_created"] == 1
    # admin 10 -> 80, employee 30 -> 80, spent 0 -> 80, new wallet 0 -> 80.
    assert (summary["wallets_reset"], summary["ledger_rows"]) == (4, 4)
    for user in (tenants.acme_admin, tenants.acme_employee, no_wallet):
        assert f.balances(db, user) == (80, 0)
    assert f.balances(db, spent) == (80, 7)  # redeemable untouched
    assert f.balances(db, inactive) == (3, 0)  # inactive users are skipped
    assert ledger_rows(db, tenants.acme_employee) == [
        ("RESET", "COMPLIMENT", 50, 30, 80, "Weekly allowance reset")
    ]
    # The other company: not a single change.
    for user, before in globex_before.items():
        assert f.balances(db, user) == before
        assert ledger_rows(db, user) == []
    assert db.execute("SELECT company_id FROM weekly_reset_runs").fetchall() == [(tenants.acme,)]

    # Clicking again this week returns the finished job; nothing runs twice.
    again = await api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))
    assert (again.json()["job_id"], again.json()["already_enqueued"]) == (
        accepted.json()["job_id"],
        True,
    )
    status = await api.get(again.json()["status_url"], headers=bearer(ACME_ADMIN))
    assert status.json() == done
    # The other admin cannot follow it.
    hidden = await api.get(accepted.json()["status_url"], headers=bearer(GLOBEX_ADMIN))
    assert_error(hidden, 404, "job_not_found")


async def test_admin_reset_after_the_weekly_cron_changes_nothing(
    worker: "subprocess.Popen[str]",
    api: httpx.AsyncClient,
    session: AsyncSession,
    db: Db,
    tenants: Tenants,
    bearer: Bearer,
) -> None:
    # The scheduled run reset everyone this week...
    await reset_weekly_balances(session)
    # ...then the employee spent some of the allowance.
    db.execute(
        "UPDATE wallets SET compliment_balance = 5 WHERE user_id = %s", (tenants.acme_employee,)
    )

    accepted = await api.post("/admin/weekly-reset", headers=bearer(ACME_ADMIN))
    assert accepted.status_code == 202, accepted.text
    done = await wait_for_job(api, accepted.json()["status_url"], bearer(ACME_ADMIN))

    assert done["success"] is True
    summary = done["summary"]
    assert (summary["companies"], summary["companies_already_reset"]) == (0, 1)
    assert (summary["wallets_reset"], summary["ledger_rows"]) == (0, 0)
    assert f.balances(db, tenants.acme_employee) == (5, 0)  # not refilled
{%- endif %}
