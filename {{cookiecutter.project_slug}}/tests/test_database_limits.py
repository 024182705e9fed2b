{% if cookiecutter.examples == "kudos" -%}
"""The api's database sessions are bounded: a request stuck behind a lock (the weekly
reset's batch, a long transaction) fails fast with a 503 and gives its connection back."""{% else -%}
"""The api's database sessions are bounded: a request stuck behind a lock (a long
transaction, a batch update) fails fast with a 503 and gives its connection back."""{% endif %}

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from sqlalchemy import text

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.database import create_engine

from . import factories as f
from .conftest import libpq_url
from .factories import Db
from .tokens import Bearer, JwksServer

LOCK_TIMEOUT = 0.3
BLOCKED = 25  # more requests than the pool has connections (5, no overflow)


@pytest.fixture
async def limited_api(settings: Settings, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with a short lock timeout, so the test is quick."""
    app = create_app(settings.model_copy(update={"database_lock_timeout_seconds": LOCK_TIMEOUT}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
{%- if cookiecutter.examples == "kudos" %}


async def test_a_request_waiting_on_a_held_wallet_gets_a_503_and_the_pool_stays_free(
    limited_api: httpx.AsyncClient, bearer: Bearer, db: Db, database_url: str
) -> None:
    acme = f.company(db, "Acme")
    ana = f.member(db, acme, "ana@acme.example")
    bruno = f.member(db, acme, "bruno@acme.example")
    f.fund(db, ana, 100)
    body = {"receiver_id": str(bruno), "coins": 5, "message": "Thanks for the review!"}
    headers = bearer("ana@acme.example")

    with psycopg.connect(libpq_url(database_url)) as holder:
        # What a reset batch does to Ana's wallet, held for as long as the test likes.
        holder.execute("SELECT 1 FROM wallets WHERE user_id = %s FOR UPDATE", (ana,))
        started = time.monotonic()
        blocked = [
            asyncio.create_task(limited_api.post("/compliments", json=body, headers=headers))
            for _ in range(BLOCKED)
        ]
        # Meanwhile the api still has connections for everyone else.
        me = await asyncio.wait_for(limited_api.get("/me", headers=bearer("bruno@acme.example")), 5)
        responses = await asyncio.wait_for(asyncio.gather(*blocked), 10)
        elapsed = time.monotonic() - started
        holder.rollback()

    assert me.status_code == 200
    assert {r.status_code for r in responses} == {503}
    for response in responses:
        assert response.json()["error"]["code"] == "database_busy"
        assert response.headers["Retry-After"] == "1"
    # Each waited about LOCK_TIMEOUT; no more than two rounds of the pool.
    assert elapsed < 10 * LOCK_TIMEOUT + 2, elapsed
    assert f.balances(db, ana) == (100, 0)
    # Once the lock is gone the same request goes through.
    sent = await limited_api.post("/compliments", json=body, headers=headers)
    assert sent.status_code == 201, sent.text
    assert f.balances(db, ana) == (95, 0)
{%- else %}


async def test_a_request_waiting_on_a_held_row_gets_a_503_and_the_pool_stays_free(
    limited_api: httpx.AsyncClient, bearer: Bearer, db: Db, database_url: str
) -> None:
    acme = f.company(db, "Acme")
    f.member(db, acme, "ana@acme.example", role="admin")
    bruno = f.member(db, acme, "bruno@acme.example")
    url = f"/admin/users/{bruno}/deactivate"
    headers = bearer("ana@acme.example")

    with psycopg.connect(libpq_url(database_url)) as holder:
        # Bruno's row, held by another transaction for as long as the test likes.
        holder.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (bruno,))
        started = time.monotonic()
        blocked = [
            asyncio.create_task(limited_api.post(url, headers=headers)) for _ in range(BLOCKED)
        ]
        # Meanwhile the api still has connections for everyone else.
        me = await asyncio.wait_for(limited_api.get("/me", headers=headers), 5)
        responses = await asyncio.wait_for(asyncio.gather(*blocked), 10)
        elapsed = time.monotonic() - started
        holder.rollback()

    assert me.status_code == 200
    assert {r.status_code for r in responses} == {503}
    for response in responses:
        assert response.json()["error"]["code"] == "database_busy"
        assert response.headers["Retry-After"] == "1"
    # Each waited about LOCK_TIMEOUT; no more than two rounds of the pool.
    assert elapsed < 10 * LOCK_TIMEOUT + 2, elapsed
    assert db.execute("SELECT is_active FROM users WHERE id = %s", (bruno,)).fetchone() == (True,)
    # Once the lock is gone the same request goes through.
    done = await limited_api.post(url, headers=headers)
    assert done.status_code == 200, done.text
    assert db.execute("SELECT is_active FROM users WHERE id = %s", (bruno,)).fetchone() == (False,)


{%- endif %}


async def test_the_api_sessions_have_the_limits_and_the_others_none(settings: Settings) -> None:
    custom = settings.model_copy(
        update={
            "database_lock_timeout_seconds": 1.5,
            "database_statement_timeout_seconds": 20,
            "database_idle_in_transaction_timeout_seconds": 0,
        }
    )
    names = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
    for request_limits, expected in ((True, ("1500ms", "20s", "0")), (False, ("0", "0", "0"))):
        engine = create_engine(custom, request_limits=request_limits)
        try:
            async with engine.connect() as conn:
                shown = tuple([await conn.scalar(text(f"SHOW {name}")) for name in names])
        finally:
            await engine.dispose()
        assert shown == expected, (request_limits, shown)
