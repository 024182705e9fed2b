"""Worker jobs for compliments: thin wrappers that open a session and call the service."""

from datetime import timedelta
from typing import Any

from ...lib.config import Settings
from . import idempotency


async def purge_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Delete the `Idempotency-Key`s older than the retention setting; how many."""
    settings: Settings = ctx["settings"]
    async with ctx["session_factory"]() as session:
        return await idempotency.purge_expired(
            session, retention=timedelta(hours=settings.idempotency_key_retention_hours)
        )
