"""Rows for tests, written with plain SQL so each test states exactly what it starts from."""

from typing import Any
from uuid import UUID

import psycopg

Db = psycopg.Connection[tuple[Any, ...]]
{%- if cookiecutter.examples == "kudos" %}


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
{%- else %}


def company(db: Db, name: str, *, active: bool = True) -> UUID:
    row = db.execute(
        "INSERT INTO companies (name, email_domain, is_active) VALUES (%s, %s, %s) RETURNING id",
        (name, f"{name.lower()}.example", active),
    ).fetchone()
{%- endif %}
    assert row is not None
    return UUID(str(row[0]))


def domain(db: Db, company_id: UUID, name: str) -> None:
    """One more email domain for the company (its primary one it has from the start)."""
    db.execute(
        "INSERT INTO company_domains (domain, company_id) VALUES (%s, %s)", (name, company_id)
    )


def user(
    db: Db,
    company_id: UUID,
    email: str,
    *,
{%- if cookiecutter.examples == "kudos" %}
    active: bool = True,
    compliment: int | None = None,
    redeemable: int = 0,
    user_id: UUID | None = None,
) -> UUID:
    """A user, with a wallet holding `compliment` coins unless it is None; `user_id` to
    choose their id."""
{%- else %}
    active: bool = True,
    user_id: UUID | None = None,
) -> UUID:
    """A user who has not signed in yet; `user_id` to choose their id."""
{%- endif %}
    row = db.execute(
        "INSERT INTO users (id, company_id, email, name, is_active)"
        " VALUES (coalesce(%s, gen_random_uuid()), %s, %s, %s, %s) RETURNING id",
        (user_id, company_id, email, email.split("@")[0].title(), active),
    ).fetchone()
    assert row is not None
{%- if cookiecutter.examples == "kudos" %}
    user_id = UUID(str(row[0]))
    if compliment is not None:
        db.execute(
            "INSERT INTO wallets (user_id, compliment_balance, redeemable_balance)"
            " VALUES (%s, %s, %s)",
            (user_id, compliment, redeemable),
        )
    return user_id
{%- else %}
    return UUID(str(row[0]))
{%- endif %}


def member(
    db: Db,
    company_id: UUID,
    email: str,
    *,
    role: str = "employee",
{%- if cookiecutter.examples == "kudos" %}
    active: bool = True,
    compliment: int | None = None,
    redeemable: int = 0,
    user_id: UUID | None = None,
    sub: str | None = None,
{%- else %}
    active: bool = True,
    user_id: UUID | None = None,
    sub: str | None = None,
{%- endif %}
    signed_in: bool = True,
) -> UUID:
    """A user with a role: their token subject (`auth_sub`) is `sub`, or their email;
    none when not `signed_in` yet (their first sign-in links it)."""
{%- if cookiecutter.examples == "kudos" %}
    user_id = user(
        db,
        company_id,
        email,
        active=active,
        compliment=compliment,
        redeemable=redeemable,
        user_id=user_id,
    )
{%- else %}
    user_id = user(db, company_id, email, active=active, user_id=user_id)
{%- endif %}
    auth_sub = (sub or email) if signed_in else None
    db.execute("UPDATE users SET auth_sub = %s, role = %s WHERE id = %s", (auth_sub, role, user_id))
    return user_id


def admin(db: Db, company_id: UUID, email: str, **kwargs: Any) -> str:
    """An admin of the company (a `member` with that role); returns the token subject to
    sign in as."""
    member(db, company_id, email, role="admin", **kwargs)
    return email
{%- if cookiecutter.examples == "kudos" %}


def fund(db: Db, user_id: UUID, coins: int) -> None:
    """Set the compliment balance to `coins` with a RESET ledger row, as the reset does."""
    row = db.execute(
        "INSERT INTO wallets (user_id) VALUES (%s) ON CONFLICT (user_id) DO UPDATE"
        " SET updated_at = now() RETURNING id, compliment_balance",
        (user_id,),
    ).fetchone()
    assert row is not None
    wallet_id, previous = row
    db.execute("UPDATE wallets SET compliment_balance = %s WHERE id = %s", (coins, wallet_id))
    db.execute(
        "INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,"
        " previous_balance, new_balance, reason)"
        " VALUES (%s, %s, 'RESET', 'COMPLIMENT', %s, %s, %s, 'test allowance')",
        (wallet_id, user_id, coins - previous, previous, coins),
    )


def ledger_problems(db: Db) -> list[tuple[Any, ...]]:
    """Every way the wallets and their ledger disagree; [] when they agree exactly.

    - a balance that is not the sum of its ledger rows;
    - a ledger row whose previous balance is not the new balance of the row before it
      (same wallet and balance, by id) or 0 for the first one;
    - a ledger row whose user is not the wallet's owner.
    """
    sums = db.execute(
        "SELECT 'sum', w.user_id, w.compliment_balance, w.redeemable_balance,"
        " coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'COMPLIMENT'), 0),"
        " coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'REDEEMABLE'), 0)"
        " FROM wallets AS w LEFT JOIN wallet_transactions AS t ON t.wallet_id = w.id"
        " GROUP BY w.id"
        " HAVING w.compliment_balance"
        "   <> coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'COMPLIMENT'), 0)"
        " OR w.redeemable_balance"
        "   <> coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'REDEEMABLE'), 0)"
    ).fetchall()
    chains = db.execute(
        "SELECT 'chain', id, previous_balance, expected FROM ("
        "  SELECT id, previous_balance, coalesce(lag(new_balance)"
        "    OVER (PARTITION BY wallet_id, balance_type ORDER BY id), 0) AS expected"
        "  FROM wallet_transactions) AS t"
        " WHERE previous_balance <> expected"
    ).fetchall()
    owners = db.execute(
        "SELECT 'owner', t.id FROM wallet_transactions AS t JOIN wallets AS w"
        " ON w.id = t.wallet_id WHERE t.user_id <> w.user_id"
    ).fetchall()
    return [*sums, *chains, *owners]


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
{%- endif %}
