"""Idempotency-Key on POST /compliments, and the ledger that cannot be rewritten."""

import asyncio
import uuid
from datetime import timedelta

import httpx
import psycopg
import pytest
from psycopg import errors
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.compliments.idempotency import purge_expired

from . import factories as f
from .factories import Db
from .tokens import Bearer

ANA, BRUNO = "ana@acme.example", "bruno@acme.example"
MESSAGE = "Great work on the release!"


async def test_twenty_concurrent_retries_with_one_key_make_one_compliment(
    api: httpx.AsyncClient, bearer: Bearer, db: Db
) -> None:
    acme = f.company(db, "Acme")
    ana, bruno = f.member(db, acme, ANA), f.member(db, acme, BRUNO)
    f.fund(db, ana, 100)
    headers = {**bearer(ANA), "Idempotency-Key": "6f1c0c8e-retry"}
    body = {"receiver_id": str(bruno), "coins": 10, "message": MESSAGE}
    responses = await asyncio.gather(
        *(api.post("/compliments", json=body, headers=headers) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert db.execute("SELECT count(*) FROM compliments").fetchone() == (1,)
    assert f.balances(db, ana) == (90, 0)
    assert f.balances(db, bruno) == (0, 10)
    assert f.ledger_problems(db) == []

    other = await api.post("/compliments", json={**body, "coins": 15}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert f.balances(db, ana) == (90, 0)


async def test_a_refused_first_request_is_not_kept_and_bad_keys_are_refused(
    api: httpx.AsyncClient, bearer: Bearer, db: Db
) -> None:
    acme = f.company(db, "Acme")
    ana, bruno = f.member(db, acme, ANA), f.member(db, acme, BRUNO)
    f.fund(db, ana, 5)
    headers = {**bearer(ANA), "Idempotency-Key": "k1"}
    body = {"receiver_id": str(bruno), "coins": 10, "message": MESSAGE}
    assert (await api.post("/compliments", json=body, headers=headers)).status_code == 409
    f.fund(db, ana, 100)
    assert (await api.post("/compliments", json=body, headers=headers)).status_code == 201
    for bad in ("x" * 256, " padded ", "tab\there"):
        response = await api.post(
            "/compliments", json=body, headers={**bearer(ANA), "Idempotency-Key": bad}
        )
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "validation_error"
    assert db.execute("SELECT count(*) FROM compliments").fetchone() == (1,)


async def test_keys_older_than_the_retention_are_purged(
    api: httpx.AsyncClient, bearer: Bearer, db: Db, session: AsyncSession
) -> None:
    acme = f.company(db, "Acme")
    ana, bruno = f.member(db, acme, ANA), f.member(db, acme, BRUNO)
    f.fund(db, ana, 100)
    for key in ("old", "new"):
        body = {"receiver_id": str(bruno), "coins": 5, "message": MESSAGE}
        headers = {**bearer(ANA), "Idempotency-Key": key}
        assert (await api.post("/compliments", json=body, headers=headers)).status_code == 201
    db.execute(
        "UPDATE compliment_idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE key = 'old'"
    )
    assert await purge_expired(session, retention=timedelta(hours=24), batch=1) == 1
    assert db.execute("SELECT key FROM compliment_idempotency_keys").fetchall() == [("new",)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE wallet_transactions SET amount = amount + 1, new_balance = new_balance + 1",
        "DELETE FROM wallet_transactions",
    ],
)
def test_the_ledger_refuses_updates_and_deletes(db: Db, statement: str) -> None:
    acme = f.company(db, "Acme")
    f.fund(db, f.member(db, acme, ANA), 100)
    before = db.execute("SELECT * FROM wallet_transactions").fetchall()
    with pytest.raises(errors.RestrictViolation):
        db.execute(statement)
    # Nor through its wallet: wallets are never deleted (migration 0010_reset_speed).
    with pytest.raises(psycopg.errors.IntegrityError):
        db.execute("DELETE FROM wallets")
    assert db.execute("SELECT * FROM wallet_transactions").fetchall() == before
    # TRUNCATE (the tests' cleanup) still works: row triggers do not fire on it.
    db.execute("TRUNCATE wallet_transactions")
    assert db.execute("SELECT count(*) FROM wallet_transactions").fetchone() == (0,)


LEDGER_ROW = (
    "INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,"
    " previous_balance, new_balance, reason) VALUES {}"
)
ONE_ROW = "(%s, %s, 'CREDIT', 'COMPLIMENT', 1, 0, 1, 'test')"


def test_a_ledger_row_needs_its_wallet_and_its_owner(db: Db) -> None:
    """The per-statement check that replaced the wallet foreign key (0010_reset_speed)."""
    acme = f.company(db, "Acme")
    ana, bruno = f.member(db, acme, ANA), f.member(db, acme, BRUNO)
    f.fund(db, ana, 100)
    f.fund(db, bruno, 100)
    wallet = db.execute("SELECT id FROM wallets WHERE user_id = %s", (ana,)).fetchone()
    assert wallet is not None
    before = db.execute("SELECT count(*) FROM wallet_transactions").fetchone()
    no_wallet = (uuid.uuid4(), ana)
    not_the_owner = (wallet[0], bruno)
    for bad in (no_wallet, not_the_owner):
        with pytest.raises(errors.ForeignKeyViolation):
            db.execute(LEDGER_ROW.format(ONE_ROW), bad)
        # One bad row refuses the whole statement.
        with pytest.raises(errors.ForeignKeyViolation):
            db.execute(LEDGER_ROW.format(f"{ONE_ROW}, {ONE_ROW}"), (wallet[0], ana, *bad))
    assert db.execute("SELECT count(*) FROM wallet_transactions").fetchone() == before
    db.execute(LEDGER_ROW.format(ONE_ROW), (wallet[0], ana))


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM wallets",
        "UPDATE wallets SET id = gen_random_uuid()",
        "UPDATE wallets SET user_id = (SELECT id FROM users WHERE email = 'bruno@acme.example')",
    ],
)
def test_wallets_are_never_deleted_nor_rekeyed(db: Db, statement: str) -> None:
    """What the ledger's wallet check relies on: a wallet it saw stays, under its keys."""
    acme = f.company(db, "Acme")
    f.user(db, acme, BRUNO)
    f.fund(db, f.member(db, acme, ANA), 100)
    before = db.execute("SELECT id, user_id FROM wallets ORDER BY id").fetchall()
    with pytest.raises(errors.ForeignKeyViolation):
        db.execute(statement)
    assert db.execute("SELECT id, user_id FROM wallets ORDER BY id").fetchall() == before
    # Balances still change as ever.
    db.execute("UPDATE wallets SET compliment_balance = 7")
