"""Compliment rules. Functions take a session and plain values; they know nothing of HTTP.

Sending moves coins in one transaction: a conditional debit of the sender's allowance
(race-free: no row, no compliment), a credit of the receiver's redeemable balance, the
two ledger rows and the compliment row. The two wallet rows are always locked in the
same order (by user id), so two people complimenting each other at once cannot
deadlock; a deadlock with another writer (the weekly reset) is retried. With an
idempotency key, the key is kept by the same statement (idempotency.py).
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from psycopg.errors import DeadlockDetected
from pydantic import TypeAdapter
from sqlalchemy import or_, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import AppError, ConflictError, DomainRuleError, NotFoundError
from ..users.models import User
from . import idempotency
from .models import (
    COINS_STEP,
    MAX_COINS,
    MAX_MESSAGE_LENGTH,
    MIN_COINS,
    MIN_MESSAGE_LENGTH,
    Compliment,
)

logger = logging.getLogger(__name__)

SENT_REASON = "Compliment sent"
RECEIVED_REASON = "Compliment received"


class InsufficientBalanceError(ConflictError):
    code = "insufficient_balance"


class Direction(StrEnum):
    sent = "sent"
    received = "received"


@dataclass(frozen=True)
class Person:
    id: UUID
    name: str


@dataclass(frozen=True)
class SentCompliment:
    id: UUID
    sender: Person
    receiver: Person
    coins: int
    message: str
    created_at: datetime
    # True when this is the stored answer to an earlier request with the same key.
    replayed: bool = field(default=False, compare=False)


# How a sent compliment is stored with its idempotency key, and read back.
_STORED_ANSWER = TypeAdapter(SentCompliment)


def check_compliment(sender_id: UUID, receiver_id: UUID, coins: int, message: str) -> str:
    """The message to store (trimmed), or DomainRuleError naming the broken rule."""
    if sender_id == receiver_id:
        raise DomainRuleError("you cannot send a compliment to yourself", code="self_compliment")
    if not (MIN_COINS <= coins <= MAX_COINS and coins % COINS_STEP == 0):
        raise DomainRuleError(
            f"coins must be {MIN_COINS} to {MAX_COINS} in steps of {COINS_STEP}",
            code="invalid_coins",
        )
    message = message.strip()
    if "\x00" in message or not MIN_MESSAGE_LENGTH <= len(message) <= MAX_MESSAGE_LENGTH:
        raise DomainRuleError(
            f"the message must have {MIN_MESSAGE_LENGTH} to {MAX_MESSAGE_LENGTH} characters"
            " (and no NUL)",
            code="invalid_message",
        )
    return message


async def send_compliment(
    session: AsyncSession,
    *,
    company_id: UUID,
    sender_id: UUID,
    receiver_id: UUID,
    coins: int,
    message: str,
    idempotency_key: str | None = None,
    attempts: int = 3,
) -> SentCompliment:
    """Send `coins` from the sender's allowance to a colleague, with a message.

    Commits on `session` (rolling back whatever it held on failure). The send is one
    statement: on a session in autocommit (lib/dependencies.py `Autocommit`, as the api
    runs it) it is its own transaction, and the wallets' locks are released the moment
    it ends. Raises NotFoundError when the receiver is not a user of `company_id`
    (whether they exist elsewhere is not revealed), DomainRuleError for a broken rule,
    InsufficientBalanceError when the sender's allowance (or wallet) cannot cover `coins`.

    With `idempotency_key`, a sender's second request with that key returns the first
    one's compliment (`replayed`) and moves nothing; with another body it raises
    IdempotencyKeyReusedError. Only a sent compliment is kept with its key: after a
    refusal the same key runs again.
    """
    message = check_compliment(sender_id, receiver_id, coins, message)
    key = None
    if idempotency_key is not None:
        key = idempotency.Key(idempotency_key, idempotency.fingerprint(receiver_id, coins, message))
    for attempt in range(1, attempts + 1):
        try:
            conn = await session.connection()
            try:
                sent = await _send_once(
                    conn, company_id, sender_id, receiver_id, coins, message, key
                )
            except (AppError, IntegrityError) as exc:
                if key is None or (isinstance(exc, IntegrityError) and not idempotency.taken(exc)):
                    raise
                # The key was kept already (by a request committed before or meanwhile)
                # or this one was refused: the key's answer, if any, is the answer.
                await session.rollback()
                stored = await idempotency.stored(await session.connection(), sender_id, key)
                await session.rollback()
                if stored is not None:
                    return replace(_STORED_ANSWER.validate_python(stored), replayed=True)
                if isinstance(exc, IntegrityError):
                    continue  # purged since: the key is free again
                raise
            await session.commit()
            return sent
        except DBAPIError as exc:
            await session.rollback()
            if not isinstance(exc.orig, DeadlockDetected) or attempt == attempts:
                raise
            logger.warning("compliment hit a deadlock, retrying (%d)", attempt)
        except Exception:
            await session.rollback()
            raise
    raise RuntimeError(f"compliment of sender {sender_id} not sent in {attempts} attempts")


# The whole send as one statement (one round trip where it took seven). `people` checks
# the tenant and that both are active; `locked` then locks both wallets in user-id order
# (the weekly reset's order, so the two cannot deadlock); under READ COMMITTED the lock
# returns each row's latest version, so the balance check below sees every committed
# debit: no read-then-write race. Debit and credit are one UPDATE, made only when the
# sender can cover the coins and the receiver has a wallet; the compliment and the two
# ledger rows (debit first) follow from what it returned. The final row per person says
# what was found, so the caller can name the refusal; a receiver without a wallet yet
# gets one and the statement runs again.
#
# With an idempotency key (SEND_WITH_KEY_STATEMENT), nothing is locked when the sender
# already has that key, and the key is kept with the compliment and its answer in the
# same statement: a sent compliment and its key commit together, a refusal keeps no
# key. Two requests with one key at once: the second waits for the first's row lock
# (same sender) or its key, and fails on the key's primary key when the first commits,
# moving nothing; it then replays the first's answer (idempotency.py).
_SEND = """
    WITH people AS MATERIALIZED (
        SELECT id, name, is_active FROM users
        WHERE company_id = :company_id AND id IN (:sender_id, :receiver_id)
    ), locked AS MATERIALIZED (
        SELECT w.id, w.user_id, w.compliment_balance FROM wallets AS w
        WHERE w.user_id IN (:sender_id, :receiver_id)
          AND (SELECT count(*) FROM people WHERE is_active) = 2{key_free}
        ORDER BY w.user_id
        FOR UPDATE OF w
    ), moved AS (
        UPDATE wallets AS w
        SET compliment_balance = w.compliment_balance
                - CASE WHEN w.user_id = :sender_id THEN :coins ELSE 0 END,
            redeemable_balance = w.redeemable_balance
                + CASE WHEN w.user_id = :receiver_id THEN :coins ELSE 0 END,
            updated_at = now()
        FROM locked AS l
        WHERE w.id = l.id
          AND EXISTS (SELECT 1 FROM locked
                      WHERE user_id = :sender_id AND compliment_balance >= :coins)
          AND EXISTS (SELECT 1 FROM locked WHERE user_id = :receiver_id)
        RETURNING w.id, w.user_id, w.compliment_balance, w.redeemable_balance
    ), compliment AS (
        INSERT INTO compliments (company_id, sender_id, receiver_id, coins, message)
        SELECT :company_id, :sender_id, :receiver_id, :coins, :message
        WHERE (SELECT count(*) FROM moved) = 2
        RETURNING id, created_at
    ), ledger AS (
        INSERT INTO wallet_transactions (
            wallet_id, user_id, kind, balance_type, amount,
            previous_balance, new_balance, reason, metadata
        )
        SELECT m.id, m.user_id, e.kind, e.balance_type, e.amount,
               e.balance - e.amount, e.balance, e.reason,
               jsonb_build_object(
                   'compliment_id', c.id::text, 'company_id', CAST(:company_id AS text),
                   'sender_id', CAST(:sender_id AS text),
                   'receiver_id', CAST(:receiver_id AS text))
        FROM moved AS m
        CROSS JOIN compliment AS c
        CROSS JOIN LATERAL (
            SELECT 'DEBIT' AS kind, 'COMPLIMENT' AS balance_type, -CAST(:coins AS int) AS amount,
                   m.compliment_balance AS balance, CAST(:sent_reason AS text) AS reason, 0 AS n
            WHERE m.user_id = :sender_id
            UNION ALL
            SELECT 'CREDIT', 'REDEEMABLE', CAST(:coins AS int), m.redeemable_balance,
                   CAST(:received_reason AS text), 1
            WHERE m.user_id = :receiver_id
        ) AS e
        ORDER BY e.n
    ){key_kept}
    SELECT p.id, p.name, p.is_active, l.id IS NOT NULL AS has_wallet,
           c.id AS compliment_id, c.created_at
    FROM people AS p
    LEFT JOIN locked AS l ON l.user_id = p.id
    LEFT JOIN compliment AS c ON true
"""

# The answer kept with the key: SentCompliment's JSON form (_STORED_ANSWER), built here.
_KEY_KEPT = """, kept AS (
        INSERT INTO compliment_idempotency_keys
            (sender_id, key, fingerprint, compliment_id, response)
        SELECT :sender_id, :key, :fingerprint, c.id, jsonb_build_object(
                   'id', c.id,
                   'sender', jsonb_build_object('id', s.id, 'name', s.name),
                   'receiver', jsonb_build_object('id', r.id, 'name', r.name),
                   'coins', CAST(:coins AS int), 'message', CAST(:message AS text),
                   'created_at', c.created_at)
        FROM compliment AS c
        JOIN people AS s ON s.id = :sender_id
        JOIN people AS r ON r.id = :receiver_id
    )"""

_KEY_FREE = """
          AND NOT EXISTS (SELECT 1 FROM compliment_idempotency_keys
                          WHERE sender_id = :sender_id AND key = :key)"""

SEND_STATEMENT = text(_SEND.format(key_free="", key_kept=""))
SEND_WITH_KEY_STATEMENT = text(_SEND.format(key_free=_KEY_FREE, key_kept=_KEY_KEPT))

_CREATE_WALLET = text("""
    INSERT INTO wallets (user_id) VALUES (:user_id) ON CONFLICT (user_id) DO NOTHING
""")


async def _send_once(
    conn: AsyncConnection,
    company_id: UUID,
    sender_id: UUID,
    receiver_id: UUID,
    coins: int,
    message: str,
    key: idempotency.Key | None,
) -> SentCompliment:
    params: dict[str, object] = {
        "company_id": company_id,
        "sender_id": sender_id,
        "receiver_id": receiver_id,
        "coins": coins,
        "message": message,
        "sent_reason": SENT_REASON,
        "received_reason": RECEIVED_REASON,
    }
    statement = SEND_STATEMENT
    if key is not None:
        statement = SEND_WITH_KEY_STATEMENT
        params.update(key=key.key, fingerprint=key.fingerprint)
    # Twice at most: the second time the receiver has a wallet.
    for _ in range(2):
        people = {row.id: row for row in await conn.execute(statement, params)}
        if receiver_id not in people:
            raise NotFoundError("no colleague with this id", code="receiver_not_found")
        if sender_id not in people:
            raise NotFoundError("the sender is not a user of this company", code="sender_not_found")
        if not people[sender_id].is_active:
            raise DomainRuleError("the sender has been deactivated", code="sender_inactive")
        if not people[receiver_id].is_active:
            raise DomainRuleError("this colleague has been deactivated", code="receiver_inactive")
        row = people[sender_id]
        if row.compliment_id is not None:
            return SentCompliment(
                id=row.compliment_id,
                sender=Person(sender_id, row.name),
                receiver=Person(receiver_id, people[receiver_id].name),
                coins=coins,
                message=message,
                created_at=row.created_at,
            )
        if not row.has_wallet or people[receiver_id].has_wallet:
            raise _insufficient(coins)
        # Nothing was locked or written: the receiver's new wallet takes no other's lock.
        await conn.execute(_CREATE_WALLET, {"user_id": receiver_id})
    raise _insufficient(coins)


def _insufficient(coins: int) -> InsufficientBalanceError:
    return InsufficientBalanceError(
        f"your compliment balance cannot cover {coins} coins", code="insufficient_balance"
    )


async def list_compliments(
    session: AsyncSession,
    *,
    company_id: UUID,
    user_id: UUID,
    direction: Direction,
    limit: int,
    offset: int,
) -> tuple[list[SentCompliment], int]:
    """One page of the compliments the user sent or received, newest first."""
    mine = (
        col(Compliment.sender_id) == user_id
        if direction is Direction.sent
        else col(Compliment.receiver_id) == user_id
    )
    conditions = [col(Compliment.company_id) == company_id, mine]
    total = (
        await session.exec(select(func.count()).select_from(Compliment).where(*conditions))
    ).one()
    sender_user, receiver_user = aliased(User), aliased(User)
    rows = await session.exec(
        select(Compliment, col(sender_user.name), col(receiver_user.name))
        .join(sender_user, col(sender_user.id) == col(Compliment.sender_id))
        .join(receiver_user, col(receiver_user.id) == col(Compliment.receiver_id))
        .where(*conditions)
        .order_by(col(Compliment.created_at).desc(), col(Compliment.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return [_view(compliment, sender, receiver) for compliment, sender, receiver in rows], total


def _view(compliment: Compliment, sender_name: str, receiver_name: str) -> SentCompliment:
    assert compliment.created_at is not None  # read back from the database
    return SentCompliment(
        id=compliment.id,
        sender=Person(compliment.sender_id, sender_name),
        receiver=Person(compliment.receiver_id, receiver_name),
        coins=compliment.coins,
        message=compliment.message,
        created_at=compliment.created_at,
    )


def _like_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_colleagues(
    session: AsyncSession,
    *,
    company_id: UUID,
    user_id: UUID,
    search: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[User], int]:
    """Active users of the company other than `user_id` (whom one can compliment), by name.

    `search` matches anywhere in the name or email, case-insensitively.
    """
    conditions = [
        col(User.company_id) == company_id,
        col(User.is_active).is_(True),
        col(User.id) != user_id,
    ]
    if search and search.strip():
        pattern = _like_pattern(search.strip())
        conditions.append(
            or_(
                col(User.name).ilike(pattern, escape="\\"),
                col(User.email).ilike(pattern, escape="\\"),
            )
        )
    total = (await session.exec(select(func.count()).select_from(User).where(*conditions))).one()
    rows = await session.exec(
        select(User)
        .where(*conditions)
        .order_by(col(User.name), col(User.id))
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total
