"""Worker jobs of the outbox: thin wrappers around `delivery.Drainer`."""

from typing import Any

from .delivery import Drainer

# A drain sends until nothing is due: 100,000 messages at 100/s take under 17 minutes.
DRAIN_TIMEOUT_SECONDS = 6 * 3600


async def drain_mail_outbox(ctx: dict[str, Any]) -> dict[str, Any]:
    """A wake-up (an announcement, invitations queued): send what is due."""
    drainer: Drainer = ctx["mail_drainer"]
    return await drainer.drain()


async def drain_mail_outbox_periodically(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every minute and at start-up: what no wake-up reached (Redis was down), retries
    falling due, and batches a dead worker's lease no longer holds."""
    drainer: Drainer = ctx["mail_drainer"]
    return await drainer.drain()
