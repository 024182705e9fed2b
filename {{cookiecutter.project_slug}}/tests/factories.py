"""Rows for tests, written with plain SQL so each test states exactly what it starts from."""

from typing import Any
from uuid import UUID

import psycopg

Db = psycopg.Connection[tuple[Any, ...]]


def company(
    db: Db,
    name: str,
    *,
    allowance: int = 100,
    active: bool = True,
) -> UUID:
    row = db.execute(
        "INSERT INTO companies (name, email_domain, weekly_renewal_amount, is_active)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (name, f"{name.lower()}.example", allowance, active),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def user(
    db: Db,
    company_id: UUID,
    email: str,
    *,
    active: bool = True,
    compliment: int | None = None,
    redeemable: int = 0,
) -> UUID:
    """A user, with a wallet holding `compliment` coins unless it is None."""
    row = db.execute(
        "INSERT INTO users (company_id, email, name, is_active) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (company_id, email, email.split("@")[0].title(), active),
    ).fetchone()
    assert row is not None
    user_id = UUID(str(row[0]))
    if compliment is not None:
        db.execute(
            "INSERT INTO wallets (user_id, compliment_balance, redeemable_balance)"
            " VALUES (%s, %s, %s)",
            (user_id, compliment, redeemable),
        )
    return user_id


def balances(db: Db, user_id: UUID) -> tuple[int, int] | None:
    row = db.execute(
        "SELECT compliment_balance, redeemable_balance FROM wallets WHERE user_id = %s",
        (user_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def ledger(db: Db, user_id: UUID) -> list[tuple[Any, ...]]:
    """(kind, balance_type, amount, previous, new, metadata) rows of a user, oldest first."""
    return db.execute(
        "SELECT kind, balance_type, amount, previous_balance, new_balance, metadata"
        " FROM wallet_transactions WHERE user_id = %s ORDER BY id",
        (user_id,),
    ).fetchall()
