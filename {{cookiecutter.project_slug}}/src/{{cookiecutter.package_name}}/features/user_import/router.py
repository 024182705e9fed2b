"""The CSV user import over HTTP: template, upload (202), status, errors as CSV."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from ...lib.dependencies import AppSettings, Queue, Session, SessionFactory
from ...lib.errors import error_responses
from ...lib.pagination import Page, PageQuery
from ...lib.uploads import receive_upload
from ...lib.urls import relative_url
from ..users.dependencies import Importer
from . import csv_format, service
from .models import ERRORS_KEPT, CsvImport
from .schemas import (
    ImportAccepted,
    ImportCounts,
    ImportRowError,
    ImportState,
    ImportTimings,
)

router = APIRouter(prefix="/admin/users", tags=["admin: user import"])

FILE_FIELD = "file"
TRUE_WORDS = {"1", "true", "yes", "on"}


def _csv_line(cells: list[str] | tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


@router.get(
    "/import/template",
    # A media-type-less class: FastAPI would document the JSON errors as text/plain too.
    response_class=Response,
    summary="A CSV to fill in: the header and two example rows",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 503),
    },
)
async def template(caller: Importer) -> PlainTextResponse:
    body = "".join(_csv_line(row) for row in csv_format.TEMPLATE_ROWS)
    return PlainTextResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="users-import-template.csv"'},
    )


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportAccepted,
    summary="Upload a CSV of users to import (multipart field 'file'); answers at once",
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [FILE_FIELD],
                        "properties": {
                            FILE_FIELD: {"type": "string", "format": "binary"},
                            "dry_run": {"type": "boolean"},
                            "send_invitations": {"type": "boolean"},
                        },
                    }
                }
            },
        }
    },
)
async def upload(
    request: Request,
    caller: Importer,
    session: Session,
    settings: AppSettings,
    queue: Queue,
    dry_run: Annotated[bool, Query(description="validate and count, insert nothing")] = False,
    send_invitations: Annotated[
        bool, Query(description="e-mail each created user an invitation (a dry run sends none)")
    ] = True,
) -> ImportAccepted:
    # Refused before the body is read when the company is at its limit (checked again,
    # under a lock, as the upload is stored).
    max_active = settings.csv_import_max_active_per_company
    await service.check_capacity(session, caller.company_id, max_active)
    # The body's size and pace are bounded by lib/request_limits.py. No transaction stays
    # open while it streams in: the caller's ends here, the upload's is `finish`.
    await session.commit()

    def open_file(file_name: str, content_type: str | None) -> service.ImportUpload:
        service.check_file_type(file_name, content_type)
        return service.ImportUpload(
            session,
            company_id=caller.company_id,
            requested_by=caller.user_id,
            file_name=file_name,
            max_bytes=settings.csv_import_max_bytes,
            max_active=max_active,
        )

    received = await receive_upload(request, open_file, file_field=FILE_FIELD)
    if "dry_run" in received.fields:
        dry_run = received.fields["dry_run"].strip().lower() in TRUE_WORDS
    if "send_invitations" in received.fields:
        send_invitations = received.fields["send_invitations"].strip().lower() in TRUE_WORDS
    try:
        record = await received.file.finish(dry_run=dry_run, send_invitations=send_invitations)
    finally:
        received.file.close()
    await service.enqueue(queue, settings.queue_name, record.id)
    return ImportAccepted(
        id=record.id,
        status=record.status,
        status_url=relative_url(request, "import_status", import_id=record.id),
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def _state(request: Request, record: CsvImport, errors: Page[ImportRowError]) -> ImportState:
    return ImportState(
        id=record.id,
        status=record.status,
        file_name=record.file_name,
        size_bytes=record.size_bytes,
        encoding=record.encoding,
        delimiter=record.delimiter,
        dry_run=record.dry_run,
        send_invitations=record.send_invitations,
        attempts=record.attempts,
        error=record.error,
        counts=ImportCounts(
            rows=record.rows_total,
            created=record.created_count,
            skipped=record.skipped_count,
            deactivated=record.deactivated_count,
            invalid=record.invalid_count,
        ),
        timings=ImportTimings(
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            queued_seconds=_seconds(record.created_at, record.started_at),
            processing_seconds=_seconds(record.started_at, record.finished_at),
        ),
        errors=errors,
        errors_total=record.errors_total,
        errors_kept=ERRORS_KEPT,
        errors_truncated=record.errors_total > errors.total,
        errors_csv_url=relative_url(request, "import_errors_csv", import_id=record.id),
    )


@router.get(
    "/imports/{import_id}",
    name="import_status",
    response_model=ImportState,
    summary="An import's status, counts, timings and row errors (paginated)",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def import_status(
    import_id: UUID, request: Request, caller: Importer, session: Session, page: PageQuery
) -> ImportState:
    record = await service.get_import(session, caller.company_id, import_id)
    items, total = await service.row_errors(
        session, import_id, limit=page.limit, offset=page.offset
    )
    errors = Page[ImportRowError](
        items=[
            ImportRowError(row_number=e.row_number, field=e.field, message=e.message) for e in items
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
    return _state(request, record, errors)


@router.get(
    "/imports/{import_id}/errors.csv",
    name="import_errors_csv",
    response_class=StreamingResponse,
    summary="An import's row errors as CSV (cells that could run as formulas neutralised)",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 404, 422, 503),
    },
)
async def import_errors_csv(
    import_id: UUID,
    caller: Importer,
    session: Session,
    factory: SessionFactory,
) -> StreamingResponse:
    await service.get_import(session, caller.company_id, import_id)
    # Nothing may wait on a slow reader inside a transaction: the request's ends now, and
    # the rows are read one batch per transaction.
    await session.commit()

    async def lines() -> AsyncIterator[str]:
        # Its own session: the request's may be closed once the response starts.
        yield _csv_line(["row_number", "field", "message"])
        async with factory() as own:
            async for number, field, message in service.iter_row_errors(own, import_id):
                yield _csv_line(csv_format.neutralised([str(number), field, message]))

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
