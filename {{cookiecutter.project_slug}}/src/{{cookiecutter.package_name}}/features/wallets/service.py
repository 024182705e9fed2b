"""Wallet rules. Functions take a session and plain values; they know nothing of HTTP."""

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg.errors import SerializationFailure
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .models import BalanceType, TransactionKind, Wallet, WalletTransaction

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key: "weekly_reset" as a stable 63-bit number.
WEEKLY_RESET_LOCK_KEY = 0x7765656B6C795F72
RESET_REASON = "Weekly allowance reset"


class ResetAlreadyRunningError(Exception):
    """Another weekly reset holds the lock; this one did nothing."""


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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_id"] = str(self.run_id)
        data["period_start"] = self.period_start.isoformat()
        return data


def period_start_for(moment: datetime) -> date:
    """The period a reset belongs to: the ISO week (Monday, UTC) of `moment`."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


# Each statement is set-based: its cost does not depend on a Python loop.
# The claim returns the companies it took; the statements below get them back as arrays
# rather than joining weekly_reset_runs by run_id: a run_id just inserted is in no
# statistics, the planner guesses one company, and its nested loops over a million users
# were five times slower than the hash joins an accurate count gives.
_CLAIM_PERIOD = text("""
    INSERT INTO weekly_reset_runs (run_id, company_id, period_start, allowance)
    SELECT :run_id, c.id, :period_start, c.weekly_renewal_amount
    FROM companies AS c
    WHERE c.is_active AND (CAST(:company_id AS uuid) IS NULL OR c.id = :company_id)
    ON CONFLICT (company_id, period_start) DO NOTHING
    RETURNING company_id, allowance
""")

_COUNT_ELIGIBLE = text("""
    SELECT count(*) FROM companies AS c
    WHERE c.is_active AND (CAST(:company_id AS uuid) IS NULL OR c.id = :company_id)
""")

_CREATE_MISSING_WALLETS = text("""
    INSERT INTO wallets (user_id)
    SELECT u.id
    FROM users AS u
    WHERE u.is_active AND u.company_id = ANY(CAST(:company_ids AS uuid[]))
      AND NOT EXISTS (SELECT 1 FROM wallets AS w WHERE w.user_id = u.id)
    ON CONFLICT (user_id) DO NOTHING
""")

# The reset joins every wallet in a hash table (about 80 MB per million wallets). Spilled
# to disk in batches, as the default 4 MB makes it, the rows come out shuffled and the
# page writes and foreign-key checks that follow lose their locality: a million-wallet
# reset used 1.2 to 1.5 times the CPU. SET LOCAL ends with the transaction.
_RESET_WORK_MEM = text("SET LOCAL work_mem = '256MB'")

# The ledger is written first, from the balances the update then overwrites: both
# statements run in one REPEATABLE READ snapshot and pick wallets with the same condition.
# A wallet changed by anyone else after the snapshot makes the update fail (and the reset
# retry) rather than leave a stale previous balance. One statement with a wallets
# self-join for `previous` did the same work with an extra million-row join.
# The metadata is the same for every wallet of a company: built once per company.
_RECORD_RESETS = text("""
    WITH run AS MATERIALIZED (
        SELECT company_id, allowance,
               jsonb_build_object(
                   'company_id', company_id, 'allowance', allowance,
                   'run_id', CAST(:run_id AS text), 'period_start', CAST(:period_start AS text)
               ) AS metadata
        FROM unnest(CAST(:company_ids AS uuid[]), CAST(:allowances AS integer[]))
             AS claimed (company_id, allowance)
    )
    INSERT INTO wallet_transactions (
        wallet_id, user_id, kind, balance_type, amount,
        previous_balance, new_balance, reason, metadata
    )
    SELECT w.id, w.user_id, 'RESET', 'COMPLIMENT', r.allowance - w.compliment_balance,
           w.compliment_balance, r.allowance, :reason, r.metadata
    FROM wallets AS w
    JOIN users AS u ON u.id = w.user_id
    JOIN run AS r ON r.company_id = u.company_id
    WHERE u.is_active AND w.compliment_balance <> r.allowance
""")

_RESET_BALANCES = text("""
    WITH changed AS (
        UPDATE wallets AS w
        SET compliment_balance = r.allowance, updated_at = now()
        FROM users AS u,
             unnest(CAST(:company_ids AS uuid[]), CAST(:allowances AS integer[]))
                 AS r (company_id, allowance)
        WHERE u.id = w.user_id
          AND u.is_active
          AND r.company_id = u.company_id
          AND w.compliment_balance <> r.allowance
        RETURNING r.company_id
    ), per_company AS (
        UPDATE weekly_reset_runs AS r
        SET wallets_reset = c.n
        FROM (SELECT company_id, count(*) AS n FROM changed GROUP BY company_id) AS c
        WHERE r.run_id = :run_id AND r.company_id = c.company_id
        RETURNING c.n
    )
    SELECT coalesce(sum(n), 0) FROM per_company
""")


async def reset_weekly_balances(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    company_id: UUID | None = None,
    attempts: int = 3,
) -> ResetSummary:
    """Set every active wallet's compliment balance to its company's weekly allowance.

    A set, not an add: unused allowance does not roll over. Each changed wallet gets one
    RESET ledger row; active users without a wallet get one. A company already reset
    in this period is skipped, so a retried or overlapping run never refills a wallet.
    Runs in its own transaction on `session`; raises ResetAlreadyRunningError when
    another reset holds the lock.
    """
    period_start = period_start_for(now or datetime.now(UTC))
    for attempt in range(1, attempts + 1):
        try:
            return await _reset_once(session, period_start, company_id)
        except DBAPIError as exc:
            if not isinstance(exc.orig, SerializationFailure) or attempt == attempts:
                raise
            logger.warning("weekly reset hit a concurrent change, retrying (%d)", attempt)
    raise AssertionError("unreachable")


async def _reset_once(
    session: AsyncSession, period_start: date, company_id: UUID | None
) -> ResetSummary:
    started = time.perf_counter()
    run_id = uuid4()
    params = {"run_id": run_id, "period_start": period_start, "company_id": company_id}
    async with session.begin():
        conn = await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        locked = await conn.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WEEKLY_RESET_LOCK_KEY}
        )
        if not locked:
            raise ResetAlreadyRunningError("another weekly reset is running")
        eligible = int(await conn.scalar(_COUNT_ELIGIBLE, params) or 0)
        claimed = (await conn.execute(_CLAIM_PERIOD, params)).all()
        params["company_ids"] = [row.company_id for row in claimed]
        params["allowances"] = [row.allowance for row in claimed]
        created = (await conn.execute(_CREATE_MISSING_WALLETS, params)).rowcount
        await conn.execute(_RESET_WORK_MEM)
        recorded = await conn.execute(_RECORD_RESETS, {**params, "reason": RESET_REASON})
        ledger_rows = recorded.rowcount
        wallets_reset = int(await conn.scalar(_RESET_BALANCES, params) or 0)
        if wallets_reset != ledger_rows:
            # Cannot happen in one snapshot; raising rolls the whole reset back if it does.
            raise RuntimeError(f"reset {wallets_reset} wallets but wrote {ledger_rows} ledger rows")
    summary = ResetSummary(
        run_id=run_id,
        period_start=period_start,
        companies=len(claimed),
        companies_already_reset=eligible - len(claimed),
        wallets_created=created,
        wallets_reset=wallets_reset,
        ledger_rows=ledger_rows,
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )
    logger.info("weekly reset finished: %s", summary.as_dict())
    return summary


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


# --- Moving coins: building blocks for a caller that owns the transaction -----------


@dataclass(frozen=True)
class BalanceChange:
    """One balance of one wallet moved by `amount` (signed), ending at `new_balance`."""

    wallet_id: UUID
    user_id: UUID
    balance_type: BalanceType
    amount: int
    new_balance: int

    @property
    def previous_balance(self) -> int:
        return self.new_balance - self.amount

    @property
    def kind(self) -> TransactionKind:
        return TransactionKind.DEBIT if self.amount < 0 else TransactionKind.CREDIT


# Conditional: no row comes back when the balance cannot cover `coins` (or there is no
# wallet). Under READ COMMITTED a concurrent debit makes this wait for the row lock and
# then re-check the condition on the committed balance: no read-then-write race.
_DEBIT_COMPLIMENT = text("""
    UPDATE wallets
    SET compliment_balance = compliment_balance - :coins, updated_at = now()
    WHERE user_id = :user_id AND compliment_balance >= :coins
    RETURNING id, compliment_balance AS new_balance
""")

# A receiver without a wallet yet gets one.
_CREDIT_REDEEMABLE = text("""
    INSERT INTO wallets (user_id, redeemable_balance) VALUES (:user_id, :coins)
    ON CONFLICT (user_id) DO UPDATE
    SET redeemable_balance = wallets.redeemable_balance + EXCLUDED.redeemable_balance,
        updated_at = now()
    RETURNING id, redeemable_balance AS new_balance
""")

_RECORD = text("""
    INSERT INTO wallet_transactions (
        wallet_id, user_id, kind, balance_type, amount,
        previous_balance, new_balance, reason, metadata
    )
    VALUES (
        :wallet_id, :user_id, :kind, :balance_type, :amount,
        :previous_balance, :new_balance, :reason, :metadata
    )
""").bindparams(bindparam("metadata", type_=JSONB))


async def debit_compliment_balance(
    conn: AsyncConnection, user_id: UUID, coins: int
) -> BalanceChange | None:
    """Take `coins` from the allowance, or None (nothing changed) if it holds fewer."""
    row = (await conn.execute(_DEBIT_COMPLIMENT, {"user_id": user_id, "coins": coins})).first()
    if row is None:
        return None
    return BalanceChange(row.id, user_id, BalanceType.COMPLIMENT, -coins, row.new_balance)


async def credit_redeemable_balance(
    conn: AsyncConnection, user_id: UUID, coins: int
) -> BalanceChange:
    row = (await conn.execute(_CREDIT_REDEEMABLE, {"user_id": user_id, "coins": coins})).one()
    return BalanceChange(row.id, user_id, BalanceType.REDEEMABLE, coins, row.new_balance)


async def record_changes(
    conn: AsyncConnection, changes: list[tuple[BalanceChange, str, dict[str, Any]]]
) -> None:
    """One ledger row per (change, reason, metadata), in the caller's transaction."""
    await conn.execute(
        _RECORD,
        [
            {
                "wallet_id": change.wallet_id,
                "user_id": change.user_id,
                "kind": change.kind.value,
                "balance_type": change.balance_type.value,
                "amount": change.amount,
                "previous_balance": change.previous_balance,
                "new_balance": change.new_balance,
                "reason": reason,
                "metadata": metadata,
            }
            for change, reason, metadata in changes
        ],
    )
