"""Worker jobs for wallets: thin wrappers that open a session and call the service."""

from typing import Any
from uuid import UUID

from arq import Retry

from . import service

# The cron run holds the lock for seconds, so a short wait is enough.
LOCKED_RETRY_SECONDS = 30


async def weekly_reset(ctx: dict[str, Any], company_id: str | None = None) -> dict[str, Any]:
    """Run the weekly reset (for one company, or all) and return its summary."""
    async with ctx["session_factory"]() as session:
        try:
            summary = await service.reset_weekly_balances(
                session, company_id=UUID(company_id) if company_id else None
            )
        except service.ResetAlreadyRunningError as exc:
            raise Retry(defer=LOCKED_RETRY_SECONDS) from exc
    return summary.as_dict()
