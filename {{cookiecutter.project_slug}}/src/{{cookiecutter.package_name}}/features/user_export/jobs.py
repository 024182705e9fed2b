"""Worker jobs for user exports: thin wrappers that open a session and call the service."""

from datetime import timedelta
from typing import Any
from uuid import UUID

from . import service


async def export_users(ctx: dict[str, Any], export_id: str) -> dict[str, object]:
    """Write one export's CSV; its result says how many users it holds."""
    async with ctx["session_factory"]() as session:
        result = await service.write_export(session, UUID(export_id))
    return {"export_id": export_id, "gone": True} if result is None else result.as_dict()


async def tidy_user_exports(ctx: dict[str, Any]) -> dict[str, int]:
    """Delete exports past their retention; queue again those whose job was lost."""
    settings = ctx["settings"]
    async with ctx["session_factory"]() as session:
        result = await service.tidy(
            session,
            ctx["redis"],
            settings.queue_name,
            retention=timedelta(hours=settings.user_export_retention_hours),
        )
    return result.as_dict()
