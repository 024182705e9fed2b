"""The weekly reset's rules (domain.md), against the real database."""

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.wallets.service import (
    period_start_for,
    reset_weekly_balances,
)
from {{ cookiecutter.package_name }}.lib.database import create_session_factory

from . import factories as f
from .conftest import libpq_url
from .factories import Db

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def test_period_is_the_utc_iso_week() -> None:
    assert period_start_for(MONDAY) == date(2026, 11, 23)
    assert period_start_for(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) == date(2026, 11, 23)
    # Monday 01:00 in UTC+3 is still Sunday in UTC: the previous week.
    brt_plus = timezone(timedelta(hours=3))
    assert period_start_for(datetime(2026, 11, 30, 1, 0, tzinfo=brt_plus)) == date(2026, 11, 23)


async def test_sets_balance_to_allowance_and_records_only_changes(
    session: AsyncSession, db: Db
) -> None:
    acme = f.company(db, "Acme", allowance=100)
    under = f.user(db, acme, "under@acme.example", compliment=30, redeemable=7)
    over = f.user(db, acme, "over@acme.example", compliment=250, redeemable=40)
    exact = f.user(db, acme, "exact@acme.example", compliment=100)

    summary = await reset_weekly_balances(session, now=MONDAY)

    # A set, not an add: unused allowance does not roll over, a surplus is lowered.
    assert f.balances(db, under) == (100, 7)
    assert f.balances(db, over) == (100, 40)
    assert f.balances(db, exact) == (100, 0)
    [(kind, balance_type, amount, previous, new, meta)] = f.ledger(db, under)
    assert (kind, balance_type, amount, previous, new) == ("RESET", "COMPLIMENT", 70, 30, 100)
    assert meta == {
        "company_id": str(acme),
        "allowance": 100,
        "run_id": str(summary.run_id),
        "period_start": "2026-11-23",
    }
    assert [row[2:5] for row in f.ledger(db, over)] == [(-150, 250, 100)]
    assert f.ledger(db, exact) == []
    assert (summary.companies, summary.wallets_reset, summary.ledger_rows) == (1, 2, 2)
    assert summary.period_start == date(2026, 11, 23)


async def test_inactive_users_and_companies_are_untouched(session: AsyncSession, db: Db) -> None:
    active = f.company(db, "Active", allowance=100)
    dormant = f.company(db, "Dormant", allowance=100, active=False)
    gone = f.user(db, active, "gone@active.example", active=False, compliment=5)
    gone_no_wallet = f.user(db, active, "gone2@active.example", active=False)
    asleep = f.user(db, dormant, "asleep@dormant.example", compliment=5)

    summary = await reset_weekly_balances(session, now=MONDAY)

    assert f.balances(db, gone) == (5, 0)
    assert f.balances(db, gone_no_wallet) is None
    assert f.balances(db, asleep) == (5, 0)
    assert f.ledger(db, gone) == f.ledger(db, asleep) == []
    assert (summary.companies, summary.ledger_rows) == (1, 0)
    runs = db.execute("SELECT company_id FROM weekly_reset_runs").fetchall()
    assert runs == [(active,)]


async def test_users_without_a_wallet_get_one(session: AsyncSession, db: Db) -> None:
    acme = f.company(db, "Acme", allowance=150)
    newcomer = f.user(db, acme, "new@acme.example")

    summary = await reset_weekly_balances(session, now=MONDAY)

    assert f.balances(db, newcomer) == (150, 0)
    assert [row[:5] for row in f.ledger(db, newcomer)] == [("RESET", "COMPLIMENT", 150, 0, 150)]
    assert (summary.wallets_created, summary.wallets_reset) == (1, 1)


async def test_second_run_in_the_same_period_changes_nothing(session: AsyncSession, db: Db) -> None:
    acme = f.company(db, "Acme", allowance=100)
    alice = f.user(db, acme, "alice@acme.example", compliment=20)
    await reset_weekly_balances(session, now=MONDAY)
    # Alice spends after the reset; a retried cron must not refill her wallet.
    db.execute("UPDATE wallets SET compliment_balance = 35 WHERE user_id = %s", (alice,))

    again = await reset_weekly_balances(session, now=MONDAY + timedelta(days=3))

    assert f.balances(db, alice) == (35, 0)
    assert len(f.ledger(db, alice)) == 1
    assert (again.companies, again.companies_already_reset, again.ledger_rows) == (0, 1, 0)

    next_week = await reset_weekly_balances(session, now=MONDAY + timedelta(days=7))

    assert f.balances(db, alice) == (100, 0)
    assert (next_week.companies, next_week.ledger_rows) == (1, 1)


async def test_one_company_only(session: AsyncSession, db: Db) -> None:
    acme = f.company(db, "Acme", allowance=100)
    other = f.company(db, "Other", allowance=100)
    mine = f.user(db, acme, "me@acme.example", compliment=1)
    theirs = f.user(db, other, "them@other.example", compliment=1)

    summary = await reset_weekly_balances(session, now=MONDAY, company_id=acme)

    assert f.balances(db, mine) == (100, 0)
    assert f.balances(db, theirs) == (1, 0)
    assert summary.companies == 1
    # The other company's own run for the week is still to come.
    assert (await reset_weekly_balances(session, now=MONDAY)).companies == 1
    assert f.balances(db, theirs) == (100, 0)


async def test_concurrent_runs_reset_each_wallet_once(engine: AsyncEngine, db: Db) -> None:
    acme = f.company(db, "Acme", allowance=100)
    users = [f.user(db, acme, f"u{i}@acme.example", compliment=i) for i in range(50)]
    factory = create_session_factory(engine)

    async def attempt() -> int:
        async with factory() as session:
            summary = await reset_weekly_balances(session, now=MONDAY, batch_size=7)
            assert summary.companies_failed == ()
            return summary.ledger_rows

    written = await asyncio.gather(*(attempt() for _ in range(4)))

    # However the runs' batches interleaved, the week's reset happened exactly once.
    assert sum(written) == 50
    assert db.execute("SELECT count(*) FROM wallet_transactions").fetchone() == (50,)
    assert all(f.balances(db, u) == (100, 0) for u in users)


async def test_balances_equal_their_ledger_under_concurrent_spending(
    engine: AsyncEngine, db: Db, database_url: str
) -> None:
    """Spending while the reset runs never leaves a wrong previous balance in the ledger."""
    acme = f.company(db, "Acme", allowance=100)
    users = [f.user(db, acme, f"u{i}@acme.example") for i in range(200)]
    factory = create_session_factory(engine)
    async with factory() as session:
        await reset_weekly_balances(session, now=MONDAY)  # every wallet starts at 100
    db.execute("UPDATE companies SET weekly_renewal_amount = 300")

    connections = asyncio.Semaphore(20)  # stay well under Postgres' max_connections

    async def spend(user_id: object) -> None:
        # The conditional debit the compliment flow uses: never below zero.
        async with (
            connections,
            await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn,
        ):
            await conn.execute(
                "WITH w AS (UPDATE wallets SET compliment_balance = compliment_balance - 5"
                " WHERE user_id = %(u)s AND compliment_balance >= 5"
                " RETURNING id, user_id, compliment_balance)"
                " INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type,"
                " amount, previous_balance, new_balance, reason)"
                " SELECT id, user_id, 'DEBIT', 'COMPLIMENT', -5, compliment_balance + 5,"
                " compliment_balance, 'test spend' FROM w",
                {"u": user_id},
            )

    async def reset() -> None:
        async with factory() as session:
            summary = await reset_weekly_balances(session, now=MONDAY + timedelta(days=7))
            assert (summary.companies_failed, summary.retries) == ((), 0)

    await asyncio.gather(reset(), *(spend(u) for u in users[::2]))

    mismatched = db.execute(
        "SELECT w.user_id FROM wallets w LEFT JOIN wallet_transactions t ON t.wallet_id = w.id"
        " AND t.balance_type = 'COMPLIMENT'"
        " GROUP BY w.id HAVING w.compliment_balance <> coalesce(sum(t.amount), 0)"
    ).fetchall()
    assert mismatched == []
    # Every wallet ends at the new allowance, less what was spent after the reset.
    assert all(b is not None and b[0] in (300, 295) for b in (f.balances(db, u) for u in users))


async def test_a_wallet_changed_mid_reset_is_recorded_with_its_new_balance(
    engine: AsyncEngine, db: Db, database_url: str
) -> None:
    acme = f.company(db, "Acme", allowance=100)
    alice = f.user(db, acme, "alice@acme.example", compliment=10)
    with psycopg.connect(libpq_url(database_url)) as spender:
        # An uncommitted change: the reset's update must wait for it.
        spender.execute("UPDATE wallets SET compliment_balance = 40 WHERE user_id = %s", (alice,))
        async with create_session_factory(engine)() as session:
            reset = asyncio.create_task(reset_weekly_balances(session, now=MONDAY))
            await wait_for_a_blocked_query(db)
            spender.commit()
            summary = await reset

    # The reset waited for the row and took its previous balance from the locked row:
    # the committed 40, with no retry.
    assert [row[2:5] for row in f.ledger(db, alice)] == [(60, 40, 100)]
    assert f.balances(db, alice) == (100, 0)
    assert (summary.ledger_rows, summary.retries) == (1, 0)


async def wait_for_a_blocked_query(db: Db, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while db.execute(query).fetchone() != (1,):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the reset never waited for the concurrent update")
        await asyncio.sleep(0.02)
