"""Worker jobs of the outbox: thin wrappers around `delivery.Drainer`."""

import time
from typing import Any

from . import outbox
from .delivery import Drainer

# A drain sends until nothing is due: 100,000 messages at 100/s take under 17 minutes.
DRAIN_TIMEOUT_SECONDS = 6 * 3600


async def drain_mail_outbox(ctx: dict[str, Any]) -> dict[str, Any]:
    """A wake-up (an announcement, invitations queued, a retry falling due): send what is
    due."""
    return await _drain(ctx)


async def drain_mail_outbox_periodically(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every minute and at start-up: what no wake-up reached (Redis was down), retries
    falling due, and batches a dead worker's lease no longer holds."""
    return await _drain(ctx)


async def _drain(ctx: dict[str, Any]) -> dict[str, Any]:
    drainer: Drainer = ctx["mail_drainer"]
    totals, next_in = await drainer.drain()
    if next_in is not None:
        # One deferred wake-up per tenth of a second of due time: retries falling due
        # together are woken once.
        due = round((time.time() + next_in) * 10)
        if outbox.drain_job_id(f"retry:{due}") == ctx.get("job_id"):
            # This very job, still running, holds that id: arq would refuse the wake-up
            # and the retry would wait for the periodic drain. A tenth of a second later.
            due += 1
        await outbox.wake(
            ctx["redis"], ctx["settings"].queue_name, f"retry:{due}", defer_by=next_in
        )
    return totals
