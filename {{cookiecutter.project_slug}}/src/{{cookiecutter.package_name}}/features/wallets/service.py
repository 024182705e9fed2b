"""Wallet rules. Functions take a session and plain values; they know nothing of HTTP.

Reads join the caller's transaction; the resets own theirs (short batches, retried), so
they are called with none open.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from psycopg.errors import DeadlockDetected, LockNotAvailable, SerializationFailure
from sqlalchemy import Row, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib import telemetry
from .models import BalanceType, TransactionKind, Wallet, WalletTransaction

logger = logging.getLogger(__name__)

RESET_REASON = "Weekly allowance reset"
# Wallets per transaction (WEEKLY_RESET_BATCH_SIZE in the cron and worker). Each batch
# holds its rows' locks until it commits, so this bounds how long a compliment to or from
# one of them can wait (about 0.1 s at 5,000); 2,000 made the whole reset about 20 %
# slower, 10,000 a few percent faster (bench/weekly_reset.py, bench/reset_under_load.py).
DEFAULT_BATCH_SIZE = 5_000
# Tries of one batch on a transient conflict (deadlock, serialization, lock timeout).
BATCH_ATTEMPTS = 5
# How long one batch waits for a row another transaction holds before it is retried.
# Set in each of the reset's transactions, with no statement timeout: the reset does not
# inherit the limits of whatever engine it runs on (the api's are much shorter).
_RESET_LIMITS = text(
    "SELECT set_config('lock_timeout', '10s', true), set_config('statement_timeout', '0', true)"
)
_TRANSIENT = (DeadlockDetected, SerializationFailure, LockNotAvailable)

T = TypeVar("T")


@dataclass(frozen=True)
class CompanyFailure:
    company_id: str
    reason: str


@dataclass(frozen=True)
class ResetSummary:
    run_id: UUID
    period_start: date
    companies: int
    companies_already_reset: int
    wallets_created: int
    wallets_reset: int
    ledger_rows: int
    elapsed_seconds: float
    # Companies due this period that this run left unfinished (the next run continues them).
    companies_failed: tuple[CompanyFailure, ...] = ()
    # Batches tried again after a transient conflict (each succeeded, or its company failed).
    retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_id"] = str(self.run_id)
        data["period_start"] = self.period_start.isoformat()
        data["companies_failed"] = [asdict(failure) for failure in self.companies_failed]
        return data


class ResetIncompleteError(Exception):
    """A reset left companies due this period unreset (`summary.companies_failed`)."""

    def __init__(self, summary: ResetSummary) -> None:
        failed = ", ".join(f"{f.company_id} ({f.reason})" for f in summary.companies_failed)
        super().__init__(f"{len(summary.companies_failed)} companies left unreset: {failed}")
        self.summary = summary


def period_start_for(moment: datetime) -> date:
    """The period a reset belongs to: the ISO week (Monday, UTC) of `moment`."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


# A company's run is claimed once per period, with the allowance it applies; a run that
# dies leaves its claim incomplete and the next run (or the worker's catch-up) finishes it.
_CLAIM_PERIOD = text("""
    INSERT INTO weekly_reset_runs (run_id, company_id, period_start, allowance)
    SELECT :run_id, c.id, :period_start, c.weekly_renewal_amount
    FROM companies AS c
    WHERE c.is_active AND (CAST(:company_id AS uuid) IS NULL OR c.id = :company_id)
    ON CONFLICT (company_id, period_start) DO NOTHING
""")

# This period's runs of active companies (in scope), complete or not.
_PERIOD_RUNS = text("""
    SELECT r.company_id, r.allowance, r.completed_at IS NOT NULL AS completed
    FROM weekly_reset_runs AS r
    JOIN companies AS c ON c.id = r.company_id
    WHERE r.period_start = :period_start AND c.is_active
      AND (CAST(:company_id AS uuid) IS NULL OR r.company_id = :company_id)
      AND (CAST(:claimed_before AS timestamptz) IS NULL OR r.created_at < :claimed_before)
    ORDER BY r.company_id
""")

# Wallets for the active users of the given companies. The run creates them for all its
# companies at once, before their batches: one hash anti-join over users and wallets (under
# a second at a million users), where one statement per company probed each of its users'
# wallets one by one (4 to 9 s of the reset at a million; bench/weekly_reset.py).
_CREATE_MISSING_WALLETS = text("""
    INSERT INTO wallets (user_id)
    SELECT u.id
    FROM users AS u
    WHERE u.is_active AND u.company_id = ANY(:company_ids)
      AND NOT EXISTS (SELECT 1 FROM wallets AS w WHERE w.user_id = u.id)
    ON CONFLICT (user_id) DO NOTHING
""").bindparams(bindparam("company_ids", type_=ARRAY(Uuid)))

# One batch: the next wallets of the company (by user id, the order compliments lock
# wallets in, so the two cannot deadlock) not yet reset this period, locked; then set
# and marked with the period by one UPDATE, and a ledger row for each changed one, its
# previous balance read from the locked row. Under READ COMMITTED a compliment that
# committed while the batch waited for its row is seen (the lock returns the row's
# latest version), one that comes later waits for the batch's commit: either way the
# ledger is exact, and no snapshot can go stale. Every wallet of the batch is marked,
# changed or not, so a run resumed after a crash never resets one twice in a period.
# The UPDATE finds the locked rows again by user_id, not id: the lock just read those
# index pages, where pk_wallets' were mostly out of cache (a fifth of the batch's time).
# Both steps are nested loops of index lookups, one wallet at a time: wallets are not
# stored by company, so a hash or merge join would scan all of them for every batch.
# The planner chose exactly that (two scans of all wallets per batch, once a company
# holds a few percent of them), hence _BATCH_PLAN.
_RESET_BATCH = text("""
    WITH batch AS (
        SELECT w.id, w.user_id, w.compliment_balance AS previous
        FROM users AS u
        JOIN wallets AS w ON w.user_id = u.id
        WHERE u.company_id = :company_id AND u.is_active AND u.id > :after
          AND (w.reset_period IS NULL OR w.reset_period < :period_start)
        ORDER BY u.id
        LIMIT :batch_size
        FOR UPDATE OF w
    ), reset AS (
        UPDATE wallets AS w
        SET compliment_balance = :allowance,
            reset_period = :period_start,
            updated_at = CASE WHEN b.previous <> :allowance THEN now() ELSE w.updated_at END
        FROM batch AS b
        WHERE w.user_id = b.user_id
        RETURNING w.id, w.user_id, b.previous
    ), ledger AS (
        INSERT INTO wallet_transactions (
            wallet_id, user_id, kind, balance_type, amount,
            previous_balance, new_balance, reason, metadata
        )
        SELECT id, user_id, 'RESET', 'COMPLIMENT', :allowance - previous,
               previous, :allowance, :reason, :metadata
        FROM reset
        WHERE previous <> :allowance
        RETURNING 1
    )
    SELECT (SELECT user_id FROM batch ORDER BY user_id DESC LIMIT 1) AS last_user_id,
           (SELECT count(*) FROM reset) AS wallets,
           (SELECT count(*) FROM ledger) AS changed
""").bindparams(bindparam("metadata", type_=JSONB))

# Set in each batch's transaction only: a batch is a few thousand index lookups, never
# a scan of all wallets. The planner's own choice, two hash joins over all the wallets,
# made a batch about twice as slow at 200,000 wallets and grows with the table
# (bench/weekly_reset.py); the wallet creation before the batches keeps its hash join.
_BATCH_PLAN = text(
    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
)

_COUNT_RESET = text("""
    UPDATE weekly_reset_runs SET wallets_reset = wallets_reset + :changed
    WHERE company_id = :company_id AND period_start = :period_start
""")

_COMPLETE = text("""
    UPDATE weekly_reset_runs SET completed_at = now()
    WHERE company_id = :company_id AND period_start = :period_start AND completed_at IS NULL
""")

# Before any uuid: the first batch's lower bound.
_NO_USER = UUID(int=0)


@dataclass
class _Tally:
    companies: int = 0
    wallets_created: int = 0
    wallets_reset: int = 0
    ledger_rows: int = 0
    retries: int = 0
    failures: list[CompanyFailure] = field(default_factory=list)


async def reset_weekly_balances(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    company_id: UUID | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    attempts: int = BATCH_ATTEMPTS,
) -> ResetSummary:
    """Set every active wallet's compliment balance to its company's weekly allowance.

    A set, not an add: unused allowance does not roll over. Each changed wallet gets one
    RESET ledger row; active users without a wallet get one. Exactly once per period and
    wallet: each wallet is marked with the period by the statement that resets it, so a
    retried, resumed or overlapping run never refills a wallet spent after its reset.

    Claims this period for every active company (or `company_id` only), then resets
    each company not yet complete, in short READ COMMITTED transactions of `batch_size`
    wallets on `session`. A company whose batch keeps failing is reported in
    `companies_failed` and the others go on; its claim stays incomplete for the next run.
    """
    period_start = period_start_for(now or datetime.now(UTC))
    return await _reset(
        session,
        period_start,
        company_id=company_id,
        claim=True,
        claimed_before=None,
        batch_size=batch_size,
        attempts=attempts,
    )


async def catch_up_weekly_reset(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    claimed_before: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ResetSummary:
    """Finish this period's resets that a run claimed before `claimed_before` and left
    incomplete (it died, or gave up on a company). Claims nothing: a period nobody
    started waits for the scheduled run. Commits its own batches, as
    `reset_weekly_balances` does."""
    period_start = period_start_for(now or datetime.now(UTC))
    return await _reset(
        session,
        period_start,
        company_id=None,
        claim=False,
        claimed_before=claimed_before,
        batch_size=batch_size,
        attempts=BATCH_ATTEMPTS,
    )


async def _reset(
    session: AsyncSession,
    period_start: date,
    *,
    company_id: UUID | None,
    claim: bool,
    claimed_before: datetime | None,
    batch_size: int,
    attempts: int,
) -> ResetSummary:
    if batch_size < 1 or attempts < 1:
        raise ValueError("batch_size and attempts must be at least 1")
    started = time.perf_counter()
    run_id = uuid4()
    params = {
        "run_id": run_id,
        "period_start": period_start,
        "company_id": company_id,
        "claimed_before": claimed_before,
    }
    async with session.begin():
        conn = await session.connection()
        if claim:
            await conn.execute(_CLAIM_PERIOD, params)
        runs = (await conn.execute(_PERIOD_RUNS, params)).all()
    tally = _Tally()
    due = [run for run in runs if not run.completed]
    wallets_ready = await _create_wallets_for_all(
        session, tally, attempts, [run.company_id for run in due]
    )
    for run in due:
        try:
            await _reset_company(
                session,
                tally,
                run_id,
                period_start,
                run.company_id,
                run.allowance,
                batch_size=batch_size,
                attempts=attempts,
                create_wallets=not wallets_ready,
            )
        except (DBAPIError, OSError) as exc:
            reason = describe_error(exc)
            logger.error("weekly reset of company %s failed: %s", run.company_id, reason)
            tally.failures.append(CompanyFailure(str(run.company_id), reason))
    summary = ResetSummary(
        run_id=run_id,
        period_start=period_start,
        companies=tally.companies,
        companies_already_reset=len(runs) - len(due),
        wallets_created=tally.wallets_created,
        wallets_reset=tally.wallets_reset,
        ledger_rows=tally.ledger_rows,
        elapsed_seconds=round(time.perf_counter() - started, 3),
        companies_failed=tuple(tally.failures),
        retries=tally.retries,
    )
    log = logger.warning if tally.failures else logger.info
    log("weekly reset finished: %s", summary.as_dict())
    status = "incomplete" if tally.failures else "complete"
    telemetry.weekly_reset_duration.record(summary.elapsed_seconds, {"status": status})
    telemetry.weekly_reset_wallets.add(summary.wallets_reset)
    return summary


async def _reset_company(
    session: AsyncSession,
    tally: _Tally,
    run_id: UUID,
    period_start: date,
    company_id: UUID,
    allowance: int,
    *,
    batch_size: int,
    attempts: int,
    create_wallets: bool,
) -> None:
    ids = {"company_id": company_id, "period_start": period_start}
    if create_wallets:
        await _create_missing_wallets(session, tally, attempts, [company_id])
    params = {
        **ids,
        "allowance": allowance,
        "batch_size": batch_size,
        "reason": RESET_REASON,
        "metadata": {
            "company_id": str(company_id),
            "allowance": allowance,
            "run_id": str(run_id),
            "period_start": period_start.isoformat(),
        },
        "after": _NO_USER,
    }

    async def reset_batch(conn: AsyncConnection) -> Row[Any]:
        await conn.execute(_BATCH_PLAN)
        batch = (await conn.execute(_RESET_BATCH, params)).one()
        if batch.changed:
            await conn.execute(_COUNT_RESET, {**ids, "changed": batch.changed})
        return batch

    while True:
        batch = await _retrying(session, tally, attempts, reset_batch)
        tally.wallets_reset += batch.changed
        tally.ledger_rows += batch.changed
        if batch.wallets < batch_size:
            break
        params["after"] = batch.last_user_id

    async def complete(conn: AsyncConnection) -> None:
        await conn.execute(_COMPLETE, ids)

    await _retrying(session, tally, attempts, complete)
    tally.companies += 1


async def _create_wallets_for_all(
    session: AsyncSession, tally: _Tally, attempts: int, company_ids: list[UUID]
) -> bool:
    """Wallets for all the due companies' users at once; False if that failed, and each
    company then creates its own, so that a failure stays one company's."""
    if not company_ids:
        return True
    try:
        await _create_missing_wallets(session, tally, attempts, company_ids)
    except (DBAPIError, OSError) as exc:
        logger.warning(
            "weekly reset: creating wallets failed, per company now: %s", describe_error(exc)
        )
        return False
    return True


async def _create_missing_wallets(
    session: AsyncSession, tally: _Tally, attempts: int, company_ids: list[UUID]
) -> None:
    async def create(conn: AsyncConnection) -> int:
        params = {"company_ids": company_ids}
        return (await conn.execute(_CREATE_MISSING_WALLETS, params)).rowcount

    tally.wallets_created += await _retrying(session, tally, attempts, create)


async def _retrying(
    session: AsyncSession,
    tally: _Tally,
    attempts: int,
    work: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    """`work` in a transaction of its own, tried again on a transient conflict."""
    for attempt in range(1, attempts + 1):
        try:
            async with session.begin():
                conn = await session.connection()
                await conn.execute(_RESET_LIMITS)
                return await work(conn)
        except DBAPIError as exc:
            if not isinstance(exc.orig, _TRANSIENT) or attempt == attempts:
                raise
            tally.retries += 1
            logger.warning("weekly reset: %s, retrying (%d)", describe_error(exc), attempt)
            await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def describe_error(exc: BaseException) -> str:
    """A one-line reason: the database's own error when there is one."""
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"{type(cause).__name__}: {first_line}"


# --- Reading a wallet and its ledger ------------------------------------------------


@dataclass(frozen=True)
class TransactionFilters:
    """Which ledger rows to list; `created_from` is inclusive, `created_to` exclusive."""

    balance_type: BalanceType | None = None
    kind: TransactionKind | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


async def get_wallet(session: AsyncSession, user_id: UUID) -> Wallet | None:
    """The user's wallet, or None when they have none yet (both balances then are 0)."""
    return (await session.exec(select(Wallet).where(col(Wallet.user_id) == user_id))).first()


async def list_transactions(
    session: AsyncSession,
    user_id: UUID,
    filters: TransactionFilters,
    *,
    limit: int,
    offset: int,
) -> tuple[list[WalletTransaction], int]:
    """One page of the user's ledger rows, newest first, and how many match in all."""
    wallet_id = select(col(Wallet.id)).where(col(Wallet.user_id) == user_id).scalar_subquery()
    conditions = [col(WalletTransaction.wallet_id) == wallet_id]
    if filters.balance_type is not None:
        conditions.append(col(WalletTransaction.balance_type) == filters.balance_type)
    if filters.kind is not None:
        conditions.append(col(WalletTransaction.kind) == filters.kind)
    if filters.created_from is not None:
        conditions.append(col(WalletTransaction.created_at) >= filters.created_from)
    if filters.created_to is not None:
        conditions.append(col(WalletTransaction.created_at) < filters.created_to)
    total = (
        await session.exec(select(func.count()).select_from(WalletTransaction).where(*conditions))
    ).one()
    rows = await session.exec(
        select(WalletTransaction)
        .where(*conditions)
        .order_by(col(WalletTransaction.created_at).desc(), col(WalletTransaction.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total
