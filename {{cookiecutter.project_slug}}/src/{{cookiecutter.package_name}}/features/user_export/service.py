"""User exports: record one, write its CSV (the worker), read it, forget old ones.

An export is a row of `user_exports`, written in the api's transaction before its job
is queued, so a lost job loses no request: the worker's hourly tidy-up queues again
what is still pending. Writing the file is idempotent: the row is locked, and a
finished export is left as it is.
"""

import csv
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import ConflictError, NotFoundError
from ...lib.queue import JobQueue, enqueue_once
from ..users.models import User
from .models import ExportStatus, UserExport

logger = logging.getLogger(__name__)

JOB_NAME = "export_users"
COLUMNS = (
    "id",
    "email",
    "name",
    "department",
    "job_title",
    "role",
    "is_active",
    "signed_in",
    "created_at",
)
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@")
# A pending export this old has lost its job (Redis lost it, or it was never queued).
REQUEUE_AFTER = timedelta(minutes=10)


class ExportNotFoundError(NotFoundError):
    code = "export_not_found"


class ExportNotReadyError(ConflictError):
    code = "export_not_ready"


async def request_export(session: AsyncSession, company_id: UUID, user_id: UUID) -> UserExport:
    """Record an export of the company's users; the caller commits, then `enqueue`s it."""
    export = UserExport(company_id=company_id, requested_by=user_id)
    session.add(export)
    await session.flush()
    return export


def job_id_for(export_id: UUID) -> str:
    return f"user-export:{export_id}"


async def enqueue(queue: JobQueue, queue_name: str, export_id: UUID) -> bool:
    """Hand the export to a worker, once per export; False when it is queued already (or
    its result is still kept) or Redis refused it: the tidy-up queues it again later."""
    try:
        return await enqueue_once(
            queue, JOB_NAME, str(export_id), job_id=job_id_for(export_id), queue_name=queue_name
        )
    except Exception as exc:  # Redis down: the row is kept, the tidy-up queues it.
        logger.warning("user export %s recorded but not enqueued: %s", export_id, exc)
        return False


async def get_export(session: AsyncSession, company_id: UUID, export_id: UUID) -> UserExport:
    """An export of this company; another company's is not found (404), not forbidden."""
    statement = select(UserExport).where(
        col(UserExport.id) == export_id, col(UserExport.company_id) == company_id
    )
    export = (await session.exec(statement)).first()
    if export is None:
        raise ExportNotFoundError("no such export in your company")
    return export


async def get_csv(session: AsyncSession, company_id: UUID, export_id: UUID) -> str:
    export = await get_export(session, company_id, export_id)
    if export.status != ExportStatus.done or export.content is None:
        raise ExportNotReadyError("the export is not finished yet: follow its status_url")
    return export.content


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def users_csv(users: list[User]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for user in users:
        writer.writerow(
            [
                _cell(user.id),
                _cell(user.email),
                _cell(user.name),
                _cell(user.department),
                _cell(user.job_title),
                _cell(user.role),
                "true" if user.is_active else "false",
                "true" if user.auth_sub is not None else "false",
                user.created_at.isoformat() if user.created_at else "",
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class ExportResult:
    export_id: UUID
    rows: int
    already_done: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "export_id": str(self.export_id),
            "rows": self.rows,
            "already_done": self.already_done,
        }


async def write_export(session: AsyncSession, export_id: UUID) -> ExportResult | None:
    """Write the export's CSV: its company's users only, by email. None when the export
    is gone (deleted by the retention); a finished one is left as it is."""
    statement = select(UserExport).where(col(UserExport.id) == export_id).with_for_update()
    export = (await session.exec(statement)).first()
    if export is None:
        await session.rollback()
        return None
    if export.status == ExportStatus.done:
        rows = export.rows or 0  # read before the rollback expires the row
        await session.rollback()
        return ExportResult(export_id, rows, already_done=True)
    users = (
        await session.exec(
            select(User).where(col(User.company_id) == export.company_id).order_by(col(User.email))
        )
    ).all()
    export.content = users_csv(list(users))
    export.rows = len(users)
    export.status = ExportStatus.done
    export.finished_at = datetime.now(UTC)
    session.add(export)
    await session.commit()
    return ExportResult(export_id, len(users), already_done=False)


@dataclass(frozen=True)
class TidyResult:
    deleted: int
    requeued: int

    def as_dict(self) -> dict[str, int]:
        return {"deleted": self.deleted, "requeued": self.requeued}


async def tidy(
    session: AsyncSession, queue: JobQueue, queue_name: str, *, retention: timedelta
) -> TidyResult:
    """Delete exports older than `retention`; queue again those pending too long."""
    now = func.now()
    deleted = await session.exec(
        delete(UserExport).where(col(UserExport.created_at) < now - retention)
    )
    stuck = (
        await session.exec(
            select(UserExport.id).where(
                col(UserExport.status) == ExportStatus.pending,
                col(UserExport.created_at) < now - REQUEUE_AFTER,
            )
        )
    ).all()
    await session.commit()
    requeued = 0
    for export_id in stuck:
        if await enqueue(queue, queue_name, export_id):
            requeued += 1
    return TidyResult(deleted=deleted.rowcount or 0, requeued=requeued)
