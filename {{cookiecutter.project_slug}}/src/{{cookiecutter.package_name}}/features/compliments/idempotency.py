"""Idempotency keys of `POST /compliments`: a retry moves no coins twice.

A key is claimed at the start of the compliment's transaction and filled in with the
first answer before it commits, so the key and the compliment commit together or not
at all. A concurrent request with the same key waits on the claim (the primary key's
unique index), then replays the committed answer; when the first one failed (an
insufficient balance, a deadlock given up), nothing was kept and the retry runs again.
Keys are deleted by the worker's hourly purge once older than the retention setting.
"""

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
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


_CLAIM = text("""
    INSERT INTO compliment_idempotency_keys (sender_id, key, fingerprint)
    VALUES (:sender_id, :key, :fingerprint)
    ON CONFLICT (sender_id, key) DO NOTHING
    RETURNING true
""")

_STORED = text("""
    SELECT fingerprint, response FROM compliment_idempotency_keys
    WHERE sender_id = :sender_id AND key = :key
""")

_FILL = text("""
    UPDATE compliment_idempotency_keys
    SET compliment_id = :compliment_id, response = :response
    WHERE sender_id = :sender_id AND key = :key
""").bindparams(bindparam("response", type_=JSONB))


async def claim(
    conn: AsyncConnection, sender_id: UUID, key: str, request_fingerprint: str
) -> dict[str, Any] | None:
    """Claim the key in the caller's transaction: None when it is ours (go on and fill
    it), or the stored first answer to replay. Waits while another transaction holds it.
    Raises IdempotencyKeyReusedError when the key was used with another body."""
    params = {"sender_id": sender_id, "key": key, "fingerprint": request_fingerprint}
    # Twice at most: a key purged between the conflict and the read is simply free again.
    for _ in range(2):
        if (await conn.execute(_CLAIM, params)).first() is not None:
            return None
        # READ COMMITTED: this statement sees what the conflicting transaction committed.
        stored = (await conn.execute(_STORED, params)).first()
        if stored is None:
            continue
        if stored.fingerprint != request_fingerprint:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was already used with another request body;"
                " use a new key for a new compliment",
            )
        response: dict[str, Any] = stored.response
        return response
    raise RuntimeError(f"idempotency key of sender {sender_id} neither claimed nor found")


async def fill(
    conn: AsyncConnection,
    sender_id: UUID,
    key: str,
    compliment_id: UUID,
    response: dict[str, Any],
) -> None:
    """Store the first answer on the claimed key, before the transaction commits."""
    await conn.execute(
        _FILL,
        {"sender_id": sender_id, "key": key, "compliment_id": compliment_id, "response": response},
    )


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
