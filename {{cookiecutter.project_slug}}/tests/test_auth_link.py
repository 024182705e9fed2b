"""First sign-in: a subject no user has yet is linked by the token's verified email.

Users added by {% if cookiecutter.examples == "kudos" %}an admin or a CSV import{% else %}an admin or the CLI{% endif %} have no subject (`auth_sub`) until they first
sign in; their first token links it, once, to the user with its (verified) email.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.features.users import service
from {{ cookiecutter.package_name }}.lib.config import Settings

from . import factories as f
from .conftest import client_of, libpq_url
{%- if cookiecutter.examples == "kudos" %}
from .csv_helpers import process, upload
{%- endif %}
from .factories import Db, admin
from .test_auth import assert_refused
from .tokens import JwksServer, SigningKey, claims_for


def first_sign_in(
    key: SigningKey, sub: str, email: str | None, *, verified: Any = True, **claims: Any
) -> dict[str, str]:
    """Headers with a token for `sub` carrying `email` and `email_verified` (None: absent)."""
    token = key.sign(claims_for(sub, email=email, email_verified=verified, **claims))
    return {"Authorization": f"Bearer {token}"}


def linked_sub(db: Db, user_id: UUID) -> str | None:
    row = db.execute("SELECT auth_sub FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


async def test_the_first_sign_in_links_the_user_and_later_ones_use_the_subject(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    acme = f.company(db, "Acme")
    ana = f.user(db, acme, "ana@acme.example")

    first = await api.get("/me", headers=first_sign_in(signing_key, "idp|ana", "ana@acme.example"))

    assert first.status_code == 200, first.text
    assert first.json()["id"] == str(ana)
    assert first.json()["company_id"] == str(acme)
    assert linked_sub(db, ana) == "idp|ana"
    # From now on the subject alone finds the user: no email claims needed.
    later = await api.get("/me", headers=first_sign_in(signing_key, "idp|ana", None, verified=None))
    assert later.status_code == 200, later.text
    assert later.json()["id"] == str(ana)


async def test_the_link_is_logged_with_the_user_id_not_the_token(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")
    headers = first_sign_in(signing_key, "idp|ana", "ana@acme.example")

    with caplog.at_level(logging.INFO, logger=service.__name__):
        assert (await api.get("/me", headers=headers)).status_code == 200

    links = [r.getMessage() for r in caplog.records if r.name == service.__name__]
    assert len(links) == 1
    assert str(ana) in links[0]
    token = headers["Authorization"].split(" ", 1)[1]
    assert token not in links[0]
    assert "idp|ana" not in links[0]


async def test_the_email_is_compared_case_insensitively(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")

    response = await api.get(
        "/me", headers=first_sign_in(signing_key, "idp|ana", "  Ana@ACME.Example ")
    )

    assert response.status_code == 200, response.text
    assert linked_sub(db, ana) == "idp|ana"


@pytest.mark.parametrize("verified", [False, None, "true", 1])
async def test_an_unverified_email_links_nothing(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey, verified: Any
) -> None:
    """`email_verified` must be exactly `true`: false, absent, "true" or 1 are refused."""
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")

    response = await api.get(
        "/me", headers=first_sign_in(signing_key, "idp|ana", "ana@acme.example", verified=verified)
    )

    assert_refused(response, "email_not_verified", "not verified")
    assert linked_sub(db, ana) is None


async def test_an_email_already_linked_to_another_subject_is_never_relinked(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")
    db.execute("UPDATE users SET auth_sub = 'idp|ana' WHERE id = %s", (ana,))

    response = await api.get(
        "/me", headers=first_sign_in(signing_key, "other-idp|impostor", "ANA@acme.example")
    )

    assert_refused(response, "email_already_linked", "already linked")
    assert linked_sub(db, ana) == "idp|ana"
    # The rightful subject still signs in.
    assert (await api.get("/me", headers=first_sign_in(signing_key, "idp|ana", None))).is_success


@pytest.mark.parametrize(
    ("email", "verified"),
    [
        (None, None),  # no email claim: as before linking existed
        ("nobody@acme.example", True),  # verified, but nobody has it
        ("not an email", True),
    ],
)
async def test_no_user_with_that_email_is_unknown_user(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey, email: str | None, verified: Any
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")

    response = await api.get(
        "/me", headers=first_sign_in(signing_key, "idp|x", email, verified=verified)
    )

    assert_refused(response, "unknown_user", "no user")
    assert linked_sub(db, ana) is None


@pytest.mark.parametrize(
    ("user_active", "company_active", "code"),
    [(False, True, "inactive_user"), (True, False, "inactive_company")],
)
async def test_an_inactive_user_or_company_is_refused_and_not_linked(
    api: httpx.AsyncClient,
    db: Db,
    signing_key: SigningKey,
    user_active: bool,
    company_active: bool,
    code: str,
) -> None:
    acme = f.company(db, "Acme", active=company_active)
    ana = f.user(db, acme, "ana@acme.example", active=user_active)

    headers = first_sign_in(signing_key, "idp|ana", "ana@acme.example")

    response = await api.get("/me", headers=headers)

    assert_refused(response, code, "deactivated")
    assert linked_sub(db, ana) is None


async def test_a_subject_longer_than_the_column_is_not_linked(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")

    response = await api.get(
        "/me", headers=first_sign_in(signing_key, "idp|" + "x" * 300, "ana@acme.example")
    )

    assert_refused(response, "unknown_user", "no user")
    assert linked_sub(db, ana) is None


async def wait_for_blocked_links(db: Db, count: int, tasks: list[asyncio.Task[Any]]) -> None:
    """Until `count` requests wait on the row lock in their linking UPDATE."""
    deadline = time.monotonic() + 30
    while True:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE '%%UPDATE users SET auth_sub%%'"
        ).fetchone()
        assert row is not None
        if row[0] == count:
            return
        done = [task for task in tasks if task.done()]
        assert not done, f"a request finished before the lock was released: {done[0].result()}"
        assert time.monotonic() < deadline, f"{row[0]} of {count} requests reached the UPDATE"
        await asyncio.sleep(0.01)  # let the requests run until they block


async def concurrently_blocked(
    settings: Settings, db: Db, user_id: UUID, headers: list[dict[str, str]]
) -> list[httpx.Response]:
    """Send the requests while another transaction holds the user's row lock, and release
    it only once every one of them is waiting in its UPDATE: they all race for real. The
    api's pool has a connection for each (the default pool would queue some of them)."""
    pool = {"database_pool_size": len(headers) + 1}
    async with client_of(settings.model_copy(update=pool)) as api:
        with psycopg.connect(libpq_url(settings.database_url)) as locker:
            locker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
            tasks = [asyncio.create_task(api.get("/me", headers=h)) for h in headers]
            try:
                await wait_for_blocked_links(db, len(tasks), tasks)
            finally:
                locker.commit()
            return await asyncio.gather(*tasks)


async def test_concurrent_first_sign_ins_with_different_subjects_link_exactly_one(
    jwks: JwksServer, settings: Settings, db: Db, signing_key: SigningKey
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")
    subs = [f"idp|claimant-{n}" for n in range(8)]

    responses = await concurrently_blocked(
        settings,
        db,
        ana,
        [first_sign_in(signing_key, sub, "ana@acme.example") for sub in subs],
    )

    winners = [sub for sub, r in zip(subs, responses, strict=True) if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    assert linked_sub(db, ana) == winners[0]
    for response in responses:
        if response.status_code != 200:
            assert_refused(response, "email_already_linked", "already linked")


async def test_concurrent_first_sign_ins_of_one_subject_all_succeed(
    jwks: JwksServer, settings: Settings, db: Db, signing_key: SigningKey
) -> None:
    """Two tabs opened at once by the same person: both get in, one link is written."""
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")
    headers = first_sign_in(signing_key, "idp|ana", "ana@acme.example")

    responses = await concurrently_blocked(settings, db, ana, [headers, headers])

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert linked_sub(db, ana) == "idp|ana"


async def test_linking_never_crosses_companies(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    acme = f.company(db, "Acme")
    globex = f.company(db, "Globex")
    ana = f.member(db, acme, "ana@acme.example", role="admin")  # signed in: sub = email
    carl = f.user(db, acme, "carl@acme.example")
    gus = f.member(db, globex, "gus@globex.example", role="admin", signed_in=False)

    # A signed-in user's token is resolved by its subject; another company's email in it
    # reaches nobody, and links nothing.
    ana_with_gus_email = first_sign_in(signing_key, "ana@acme.example", "gus@globex.example")
    me = await api.get("/me", headers=ana_with_gus_email)
    assert me.json()["id"] == str(ana)
    assert linked_sub(db, gus) is None

    # Gus's first sign-in links Gus, whose company (from his row) is Globex, and only it.
    gus_headers = first_sign_in(signing_key, "idp|gus", "gus@globex.example")
    me = await api.get("/me", headers=gus_headers)
    assert me.status_code == 200, me.text
    assert me.json()["company_id"] == str(globex)
    users = await api.get("/admin/users", headers=gus_headers)
    assert [item["email"] for item in users.json()["items"]] == ["gus@globex.example"]
    assert (await api.get(f"/admin/users/{carl}", headers=gus_headers)).status_code == 404
{%- if cookiecutter.examples == "kudos" %}
    colleagues = await api.get("/colleagues", headers=gus_headers)
    assert colleagues.json()["items"] == []
{%- endif %}
    assert linked_sub(db, carl) is None


async def test_a_user_an_admin_created_signs_in_through_the_link(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    acme = f.company(db, "Acme"{% if cookiecutter.examples == "kudos" %}, allowance=80{% else %}{% endif %})
    boss = first_sign_in(signing_key, admin(db, acme, "boss@acme.example"), None)
    created = await api.post(
        "/admin/users", headers=boss, json={"name": "Carla Dias", "email": "Carla@Acme.example"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["signed_in"] is False

    carla = first_sign_in(signing_key, "idp|carla", "carla@acme.example")
    me = await api.get("/me", headers=carla)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == created.json()["id"]
{%- if cookiecutter.examples == "kudos" %}
    wallet = await api.get("/me/wallet", headers=carla)
    assert wallet.json()["compliment_balance"] == 80
{%- endif %}
    again = await api.get(f"/admin/users/{created.json()['id']}", headers=boss)
    assert again.json()["signed_in"] is True
{%- if cookiecutter.examples == "kudos" %}


async def test_a_user_the_csv_import_added_signs_in_through_the_link(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey, database_url: str
) -> None:
    acme = f.company(db, "Acme")
    boss = first_sign_in(signing_key, admin(db, acme, "boss@acme.example"), None)
    response = await upload(api, boss, b"name,email\nDora Lima,DORA@acme.example\n")
    assert response.status_code == 202, response.text
    assert (await process(database_url, response.json()["id"]))["created"] == 1

    me = await api.get("/me", headers=first_sign_in(signing_key, "idp|dora", "dora@acme.example"))

    assert me.status_code == 200, me.text
    assert me.json()["email"] == "dora@acme.example"
    assert me.json()["company_id"] == str(acme)
{%- endif %}


@pytest.fixture
async def namespaced_api(settings: Settings, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """The app reading the email claims an Auth0 Action adds (namespaced custom claims)."""
    app = create_app(
        settings.model_copy(
            update={
                "auth_email_claim": "https://{{ cookiecutter.package_name }}.example/email",
                "auth_email_verified_claim": "https://{{ cookiecutter.package_name }}.example/email_verified",
            }
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_the_email_claims_are_configurable(
    namespaced_api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    ana = f.user(db, f.company(db, "Acme"), "ana@acme.example")
    # The standard claims are not the configured ones: not used.
    plain = first_sign_in(signing_key, "idp|ana", "ana@acme.example")
    assert_refused(await namespaced_api.get("/me", headers=plain), "unknown_user", "no user")
    assert linked_sub(db, ana) is None

    namespaced = first_sign_in(
        signing_key,
        "idp|ana",
        None,
        verified=None,
        **{
            "https://{{ cookiecutter.package_name }}.example/email": "ana@acme.example",
            "https://{{ cookiecutter.package_name }}.example/email_verified": True,
        },
    )
    response = await namespaced_api.get("/me", headers=namespaced)
    assert response.status_code == 200, response.text
    assert linked_sub(db, ana) == "idp|ana"
{%- if cookiecutter.examples == "kudos" %}


async def test_a_first_sign_in_by_sending_a_compliment_links_and_sends(
    api: httpx.AsyncClient, db: Db, signing_key: SigningKey
) -> None:
    # POST /compliments runs its session in autocommit (no transaction, no savepoint):
    # the link is one statement there too, and a refused one changes nothing.
    acme = f.company(db, "Acme")
    ana, bruno = f.user(db, acme, "ana@acme.example"), f.user(db, acme, "bruno@acme.example")
    f.fund(db, ana, 50)
    body = {"receiver_id": str(bruno), "coins": 10, "message": "Welcome aboard, Bruno!"}

    sent = await api.post(
        "/compliments", json=body, headers=first_sign_in(signing_key, "idp|ana", "ana@acme.example")
    )
    assert sent.status_code == 201, sent.text
    assert linked_sub(db, ana) == "idp|ana"
    assert f.balances(db, ana) == (40, 0)
    impostor = first_sign_in(signing_key, "other-idp|ana", "ana@acme.example")
    refused = await api.post("/compliments", json=body, headers=impostor)
    assert_refused(refused, "email_already_linked", "already linked")
    assert linked_sub(db, ana) == "idp|ana"
    assert f.balances(db, ana) == (40, 0)
    assert f.ledger_problems(db) == []
{%- endif %}
