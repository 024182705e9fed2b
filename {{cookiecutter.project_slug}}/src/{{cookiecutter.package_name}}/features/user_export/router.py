"""Admins export their own company's users as CSV: the worker writes it, they follow it."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response

from ...lib.dependencies import AppSettings, Queue, Session
from ...lib.errors import error_responses
from ...lib.urls import Accepted, relative_url
from ..users.dependencies import Exporter
from . import service
from .schemas import UserExportStatus

router = APIRouter(prefix="/users/exports", tags=["admin"])

ExportId = Annotated[UUID, Path(examples=["3b8f6c1a-0d2e-4f5a-9b7c-6e1d2a3f4b5c"])]


@router.post(
    "",
    response_model=Accepted,
    status_code=202,
    summary="Export the company's users as CSV (in the worker)",
    description=(
        "Records the export and hands it to the worker; follow it at `status_url`. The "
        "file holds every user of the caller's company (deactivated ones too), by email, "
        "and is kept `USER_EXPORT_RETENTION_HOURS` (24 h by default)."
    ),
    responses=error_responses(401, 403, 503),
)
async def request_export(
    caller: Exporter, session: Session, queue: Queue, settings: AppSettings, request: Request
) -> Accepted:
    export = await service.request_export(session, caller.company_id, caller.user_id)
    await session.commit()
    # After the commit, so the worker finds the row; a lost job is queued again later.
    await service.enqueue(queue, settings.queue_name, export.id)
    return Accepted(status_url=relative_url(request, "get_user_export", export_id=export.id))


@router.get(
    "/{export_id}",
    response_model=UserExportStatus,
    name="get_user_export",
    summary="The state of an export of the company",
    description="`pending` or `done` (with `rows` and `csv_url`). Another company's is 404.",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def get_export(
    caller: Exporter, session: Session, export_id: ExportId, request: Request
) -> UserExportStatus:
    export = await service.get_export(session, caller.company_id, export_id)
    return UserExportStatus.of(
        export, relative_url(request, "get_user_export_csv", export_id=export.id)
    )


@router.get(
    "/{export_id}/csv",
    response_class=Response,
    name="get_user_export_csv",
    summary="Download an export's CSV",
    description="409 `export_not_ready` until its status is `done`. Another company's is 404.",
    responses={
        200: {"content": {"text/csv": {}}, "description": "The CSV, a header row first"},
        **error_responses(401, 403, 404, 409, 422, 503),
    },
)
async def get_export_csv(caller: Exporter, session: Session, export_id: ExportId) -> Response:
    content = await service.get_csv(session, caller.company_id, export_id)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="users-{export_id}.csv"'},
    )
