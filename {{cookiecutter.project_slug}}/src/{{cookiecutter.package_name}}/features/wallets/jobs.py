"""Worker jobs for wallets: thin wrappers that open a session and call the service."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from . import service

# A claim this old that is still incomplete belongs to a run that died or gave up (a
# million wallets take well under a minute); younger ones may still be in progress.
CATCH_UP_AFTER = timedelta(minutes=10)


async def weekly_reset(ctx: dict[str, Any], company_id: str | None = None) -> dict[str, Any]:
    """Run the weekly reset (for one company, or all) and return its summary.

    A company left unreset fails the job (its status says so, and the admin can ask
    again); the catch-up finishes it meanwhile.
    """
    async with ctx["session_factory"]() as session:
        summary = await service.reset_weekly_balances(
            session,
            company_id=UUID(company_id) if company_id else None,
            batch_size=ctx["settings"].weekly_reset_batch_size,
        )
    if summary.companies_failed:
        raise service.ResetIncompleteError(summary)
    return summary.as_dict()


async def weekly_reset_catch_up(ctx: dict[str, Any]) -> dict[str, Any]:
    """Finish this week's company resets that a failed or killed run left incomplete."""
    async with ctx["session_factory"]() as session:
        summary = await service.catch_up_weekly_reset(
            session,
            claimed_before=datetime.now(UTC) - CATCH_UP_AFTER,
            batch_size=ctx["settings"].weekly_reset_batch_size,
        )
    return summary.as_dict()
