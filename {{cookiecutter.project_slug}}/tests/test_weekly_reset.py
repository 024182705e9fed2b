"""The weekly reset's rules (domain.md), against the real database."""

import asyncio
import random
import time
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.compliments.service import send_compliment
from {{ cookiecutter.package_name }}.features.wallets.service import (
    ResetSummary,
    catch_up_weekly_reset,
    period_start_for,
    reset_weekly_balances,
)
from {{ cookiecutter.package_name }}.lib.database import create_session_factory

from . import factories as f
from .checks import wait_for_lock_waiters
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
            await wait_for_lock_waiters(db, 1)
            spender.commit()
            summary = await reset

    # The reset waited for the row and took its previous balance from the locked row:
    # the committed 40, with no retry.
    assert [row[2:5] for row in f.ledger(db, alice)] == [(60, 40, 100)]
    assert f.balances(db, alice) == (100, 0)
    assert (summary.ledger_rows, summary.retries) == (1, 0)


# --- under live traffic ----------------------------------------------------------------


def seed_company(db: Db, company_id: object, users: int, balance: int) -> None:
    """`users` active users with a wallet of `balance` coins and the ledger row for it."""
    db.execute(
        "WITH u AS (INSERT INTO users (company_id, email, name)"
        "  SELECT c.id, 'u' || i || '.' || c.id::text || '@' || c.email_domain, 'User ' || i"
        "  FROM companies AS c, generate_series(1, %(n)s) AS i WHERE c.id = %(c)s::uuid"
        "  RETURNING id),"
        " w AS (INSERT INTO wallets (user_id, compliment_balance)"
        "  SELECT id, %(b)s FROM u RETURNING id, user_id)"
        " INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,"
        "  previous_balance, new_balance, reason)"
        " SELECT id, user_id, 'RESET', 'COMPLIMENT', %(b)s, 0, %(b)s, 'seed' FROM w",
        {"c": str(company_id), "n": users, "b": balance},
    )


async def test_the_reset_completes_in_one_run_while_compliments_stream(
    engine: AsyncEngine, db: Db
) -> None:
    """The default reset, while compliments commit every few milliseconds: it finishes in
    one run with no retry, every wallet is reset exactly once, nothing is lost."""
    big = f.company(db, "Big", allowance=500)
    companies = [big, f.company(db, "Mid", allowance=400), f.company(db, "Small", allowance=300)]
    for company_id, users in zip(companies, (3000, 800, 200), strict=True):
        seed_company(db, company_id, users, balance=250)
    people = [row[0] for row in db.execute("SELECT id FROM users WHERE company_id = %s", (big,))]
    factory = create_session_factory(engine)
    sent: list[tuple[object, float]] = []
    failures: list[BaseException] = []
    stop = asyncio.Event()
    rng = random.Random(7)  # noqa: S311 - picks pairs, not secrets

    async def stream() -> None:
        # One compliment after another on its own session: a commit every few ms.
        while not stop.is_set():
            sender, receiver = rng.sample(people, 2)
            try:
                async with factory() as session:
                    done = await send_compliment(
                        session,
                        company_id=big,
                        sender_id=sender,
                        receiver_id=receiver,
                        coins=5,
                        message="Thanks for the help!",
                    )
                sent.append((done.id, time.monotonic()))
            except Exception as exc:  # every one must succeed: collect, assert below
                failures.append(exc)

    async def sent_at_least(count: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(sent) < count:
            assert not failures, failures[:3]
            assert time.monotonic() < deadline, f"only {len(sent)} compliments sent"
            await asyncio.sleep(0.01)

    streams = [asyncio.create_task(stream()) for _ in range(6)]
    try:
        await sent_at_least(30)
        started = time.monotonic()
        async with factory() as session:
            summary = await reset_weekly_balances(session)
        finished = time.monotonic()
        await sent_at_least(len(sent) + 30)
    finally:
        stop.set()
        await asyncio.gather(*streams)

    assert failures == []
    assert (summary.companies, summary.companies_failed, summary.retries) == (3, (), 0)
    during = sum(1 for _, at in sent if started <= at <= finished)
    assert during > 0, "no compliment committed while the reset ran"
    # Every wallet was reset exactly once (each started below its allowance).
    period = period_start_for(datetime.now(UTC)).isoformat()
    resets = db.execute(
        "SELECT count(*), count(DISTINCT wallet_id) FROM wallet_transactions"
        " WHERE kind = 'RESET' AND metadata->>'period_start' = %s",
        (period,),
    ).fetchone()
    assert resets == (4000, 4000)
    assert summary.ledger_rows == summary.wallets_reset == 4000
    assert db.execute(
        "SELECT count(*) FROM wallets WHERE reset_period IS DISTINCT FROM %s", (period,)
    ).fetchone() == (0,)
    # No compliment lost: each is stored, with its two ledger rows, and every balance
    # is the sum of its ledger, every previous balance the one before it.
    assert db.execute("SELECT count(*) FROM compliments").fetchone() == (len(sent),)
    assert db.execute(
        "SELECT count(*) FROM wallet_transactions WHERE kind IN ('DEBIT', 'CREDIT')"
    ).fetchone() == (2 * len(sent),)
    assert f.ledger_problems(db) == []


async def test_a_company_reset_does_not_make_the_scheduled_run_skip_the_others(
    engine: AsyncEngine, db: Db, database_url: str
) -> None:
    """An admin's one-company reset and the scheduled run at once: neither skips, each
    company is reset exactly once."""
    acme = f.company(db, "Acme", allowance=100)
    globex = f.company(db, "Globex", allowance=200)
    alice = f.user(db, acme, "alice@acme.example", compliment=10)
    bob = f.user(db, acme, "bob@acme.example", compliment=20)
    gina = f.user(db, globex, "gina@globex.example", compliment=30)
    factory = create_session_factory(engine)

    async def reset(company_id: UUID | None = None) -> ResetSummary:
        async with factory() as session:
            return await reset_weekly_balances(session, now=MONDAY, company_id=company_id)

    with psycopg.connect(libpq_url(database_url)) as holder:
        # A compliment in flight holds Alice's wallet: the admin's reset of Acme waits.
        holder.execute("SELECT 1 FROM wallets WHERE user_id = %s FOR UPDATE", (alice,))
        company_run = asyncio.create_task(reset(acme))
        await wait_for_lock_waiters(db, 1)
        scheduled = asyncio.create_task(reset())
        # The scheduled run resets Globex and waits on Acme's row too, not skipping it.
        await wait_for_lock_waiters(db, 2)
        holder.commit()
        summaries = await asyncio.gather(company_run, scheduled)

    assert [s.companies_failed for s in summaries] == [(), ()]
    assert f.balances(db, alice) == (100, 0)
    assert f.balances(db, bob) == (100, 0)
    assert f.balances(db, gina) == (200, 0)
    assert [len(f.ledger(db, u)) for u in (alice, bob, gina)] == [1, 1, 1]
    assert sum(s.ledger_rows for s in summaries) == 3
    completed = db.execute(
        "SELECT count(*) FROM weekly_reset_runs WHERE completed_at IS NOT NULL"
    ).fetchone()
    assert completed == (2,)


async def test_the_catch_up_finishes_only_stale_incomplete_claims(
    session: AsyncSession, db: Db
) -> None:
    stale = f.company(db, "Stale", allowance=100)
    fresh = f.company(db, "Fresh", allowance=100)
    unclaimed = f.company(db, "Unclaimed", allowance=100)
    spent = f.user(db, stale, "spent@stale.example", compliment=60)
    waiting = f.user(db, stale, "waiting@stale.example", compliment=10)
    running = f.user(db, fresh, "running@fresh.example", compliment=10)
    idle = f.user(db, unclaimed, "idle@unclaimed.example", compliment=10)
    period = period_start_for(MONDAY)
    # A run claimed Stale an hour ago and died after resetting `spent` (who then spent
    # 40); Fresh was claimed a moment ago by a run that may still be going.
    db.execute(
        "INSERT INTO weekly_reset_runs (run_id, company_id, period_start, allowance, created_at)"
        " VALUES (gen_random_uuid(), %s, %s, 100, %s), (gen_random_uuid(), %s, %s, 100, %s)",
        (stale, period, MONDAY, fresh, period, MONDAY + timedelta(hours=1)),
    )
    db.execute("UPDATE wallets SET reset_period = %s WHERE user_id = %s", (period, spent))

    summary = await catch_up_weekly_reset(
        session, now=MONDAY + timedelta(hours=1), claimed_before=MONDAY + timedelta(minutes=50)
    )

    assert (summary.companies, summary.ledger_rows, summary.companies_failed) == (1, 1, ())
    assert f.balances(db, spent) == (60, 0)  # reset already this period: not refilled
    assert f.balances(db, waiting) == (100, 0)
    assert f.balances(db, running) == (10, 0)
    assert f.balances(db, idle) == (10, 0)
    assert db.execute(
        "SELECT company_id FROM weekly_reset_runs WHERE completed_at IS NOT NULL"
    ).fetchall() == [(stale,)]
