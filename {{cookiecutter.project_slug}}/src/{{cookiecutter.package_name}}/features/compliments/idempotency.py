"""Idempotency keys of `POST /compliments`: a retry moves no coins twice.

The send statement (service.py) keeps the key with the first answer, so the key and the
compliment commit together or not at all, and does nothing when the sender already has
the key. A concurrent request with the same key waits for the first (the sender's
wallet lock, or the key's primary key), fails on the key when the first commits, and
then replays the committed answer; when the first one was refused (an insufficient
balance, a deadlock given up), nothing was kept and the retry runs again.
Keys are deleted by the worker's hourly purge once older than the retention setting.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg.errors import UniqueViolation
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import DomainRuleError

logger = logging.getLogger(__name__)

PURGE_BATCH = 10_000


class IdempotencyKeyReusedError(DomainRuleError):
    """The key was used for another request body (IETF draft: 422)."""

    code = "idempotency_key_reused"


def fingerprint(receiver_id: UUID, coins: int, message: str) -> str:
    """sha256 of the request's canonical form: the same request, the same fingerprint."""
    canonical = json.dumps(
        {"receiver_id": str(receiver_id), "coins": coins, "message": message},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Key:
    """A request's `Idempotency-Key` and the fingerprint of its body."""

    key: str
    fingerprint: str


_STORED = text("""
    SELECT fingerprint, response FROM compliment_idempotency_keys
    WHERE sender_id = :sender_id AND key = :key
""")

_PRIMARY_KEY = "pk_compliment_idempotency_keys"


def taken(exc: IntegrityError) -> bool:
    """Whether the send failed because another request kept this key first."""
    orig = exc.orig
    return isinstance(orig, UniqueViolation) and orig.diag.constraint_name == _PRIMARY_KEY


async def stored(conn: AsyncConnection, sender_id: UUID, key: Key) -> dict[str, Any] | None:
    """The first answer kept with the sender's key, to replay; None when the key is free.
    Raises IdempotencyKeyReusedError when the key was used with another body."""
    row = (await conn.execute(_STORED, {"sender_id": sender_id, "key": key.key})).first()
    if row is None:
        return None
    if row.fingerprint != key.fingerprint:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with another request body;"
            " use a new key for a new compliment",
        )
    response: dict[str, Any] = row.response
    return response


_PURGE = text("""
    DELETE FROM compliment_idempotency_keys AS k
    USING (
        SELECT sender_id, key FROM compliment_idempotency_keys
        WHERE created_at < now() - :retention
        ORDER BY created_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ) AS old
    WHERE k.sender_id = old.sender_id AND k.key = old.key
""")


async def purge_expired(
    session: AsyncSession, *, retention: timedelta, batch: int = PURGE_BATCH
) -> int:
    """Delete keys older than `retention`, in short transactions of `batch` rows; how many."""
    deleted = 0
    while True:
        async with session.begin():
            conn = await session.connection()
            result = await conn.execute(_PURGE, {"retention": retention, "batch": batch})
        deleted += result.rowcount
        if result.rowcount < batch:
            break
    if deleted:
        logger.info("purged %d idempotency keys older than %s", deleted, retention)
    return deleted
