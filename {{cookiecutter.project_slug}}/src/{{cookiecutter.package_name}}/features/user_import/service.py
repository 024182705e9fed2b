"""The CSV user import, api side: record an upload, read an import's state, re-enqueue.

No HTTP here: the router hands over the upload's bytes as they arrive; errors are
AppErrors carrying a status number. The worker side (reading, validating and inserting
the rows) is in `processing.py`.
"""

import logging
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.config import Settings
from ...lib.errors import AppError, NotFoundError
from ...lib.queue import JobQueue, enqueue_once, release_abandoned
from . import csv_format
from .models import (
    CHUNK_BYTES,
    IMPORT_LOCK_NAMESPACE,
    CsvImport,
    CsvImportError,
    ImportStatus,
)

logger = logging.getLogger(__name__)

JOB_NAME = "import_users_csv"
# The first line must fit in this many bytes for the header to be checked.
HEADER_MAX_BYTES = 64 * 1024
CSV_CONTENT_TYPES = {
    "text/csv",
    "text/plain",
    "application/csv",
    "application/vnd.ms-excel",
    "text/comma-separated-values",
    "application/octet-stream",
}
# Namespace of the transaction lock that makes a company's new imports take turns, so
# two uploads finishing together cannot both pass CSV_IMPORT_MAX_ACTIVE_PER_COMPANY.
COMPANY_IMPORTS_LOCK_NAMESPACE = 0x43535643  # "CSVC"
# What a refused upload is told to wait: about what a large import takes.
BUSY_RETRY_AFTER_SECONDS = 30
# Room for the multipart framing and the small form fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_max_body_bytes(settings: Settings) -> int:
    """The upload route's request body limit (lib/request_limits.py): the file's, plus framing."""
    return settings.csv_import_max_bytes + MULTIPART_OVERHEAD_BYTES


def job_id_for(import_id: UUID) -> str:
    """One arq job id per import: enqueueing it twice queues it once."""
    return f"csv-import:{import_id}"


class UploadTooLargeError(AppError):
    status_code = 413
    code = "file_too_large"


class EmptyFileError(AppError):
    code = "empty_file"


class TooManyImportsError(AppError):
    status_code = 429
    code = "too_many_imports"


class NotCsvError(AppError):
    status_code = 415
    code = "unsupported_file_type"


class BadCsvError(AppError):
    status_code = 422
    code = "invalid_csv"


def check_file_type(file_name: str, content_type: str | None) -> None:
    """Refuse what is plainly not a CSV (an image, a spreadsheet, a PDF)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if file_name.lower().endswith((".csv", ".txt")) and kind in CSV_CONTENT_TYPES | {""}:
        return
    if kind in {"text/csv", "application/csv"}:
        return
    raise NotCsvError(f"'{file_name}' ({kind or 'no type'}) is not a CSV file: upload a .csv file")


async def check_capacity(
    session: AsyncSession, company_id: UUID, max_active: int, *, lock: bool = False
) -> None:
    """Refuse a new import while the company has `max_active` pending or processing.

    With `lock`, the company's imports lock is taken until the transaction ends: the
    count and the insert that follows it are then one step for this company.
    """
    if lock:
        conn = await session.connection()
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:company))"),
            {"namespace": COMPANY_IMPORTS_LOCK_NAMESPACE, "company": str(company_id)},
        )
    active = (
        await session.exec(
            select(func.count())
            .select_from(CsvImport)
            .where(
                col(CsvImport.company_id) == company_id,
                col(CsvImport.status).in_([ImportStatus.pending, ImportStatus.processing]),
            )
        )
    ).one()
    if active >= max_active:
        raise TooManyImportsError(
            f"the company already has {active} imports waiting or running (at most"
            f" {max_active}): try again when one has finished",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )


class ImportUpload:
    """Checks an upload as it streams in, then stores it in Postgres in one short transaction.

    While the body arrives the bytes go to a temporary file (in memory up to one chunk,
    then on disk; never more than `max_bytes`), and no database connection is held: a
    slow client cannot keep a pooled connection idle in a transaction. `finish`, once
    the body is complete, writes the import and its chunks and commits. A refused upload
    (too large, not CSV, no header, undecodable, over the company's limit of active
    imports) writes nothing.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        company_id: UUID,
        requested_by: UUID,
        file_name: str,
        max_bytes: int,
        max_active: int,
    ) -> None:
        self.session = session
        self.max_active = max_active
        self.record = CsvImport(
            company_id=company_id,
            requested_by=requested_by,
            file_name=file_name[:255] or "upload.csv",
            size_bytes=0,
            encoding="",
            delimiter=",",
        )
        self.max_bytes = max_bytes
        # Deleted when closed (or collected); on disk it has no name to leave behind.
        self._spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # noqa: SIM115
        self._head = bytearray()
        self._size = 0
        self._sniffer = csv_format.EncodingSniffer()
        self._header_checked = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self.max_bytes:
            raise UploadTooLargeError(
                f"the file is larger than the {self.max_bytes // (1024 * 1024)} MB limit"
            )
        self._sniffer.feed(data)
        if self._sniffer.has_nul:
            raise BadCsvError("the file is binary, not CSV text")
        if not self._header_checked:
            self._head += data
            if b"\n" in self._head:
                self._check_header()
            elif len(self._head) > HEADER_MAX_BYTES:
                raise BadCsvError("the first line is not a CSV header (no line break found)")
        self._spool.write(data)

    def _check_header(self) -> None:
        line = csv_format.decode_header(bytes(self._head[:HEADER_MAX_BYTES]))
        try:
            delimiter, _ = csv_format.parse_header(line)
        except csv_format.HeaderError as exc:
            raise BadCsvError(
                str(exc), code="missing_columns", details=[{"missing": exc.missing}]
            ) from None
        self.record.delimiter = delimiter
        self._header_checked = True
        self._head = bytearray()

    async def finish(self, *, dry_run: bool, send_invitations: bool = True) -> CsvImport:
        """Check what only the whole file tells, then store and commit it as `pending`."""
        if self._size == 0:
            raise EmptyFileError("the file is empty")
        if not self._header_checked:
            self._check_header()
        encoding = self._sniffer.finish()
        if encoding is None:
            raise BadCsvError(
                "the file is not text in a supported encoding (UTF-8 or Windows-1252)",
                code="undecodable_file",
            )
        self.record.encoding = encoding
        self.record.size_bytes = self._size
        self.record.dry_run = dry_run
        self.record.send_invitations = send_invitations
        await check_capacity(self.session, self.record.company_id, self.max_active, lock=True)
        self.session.add(self.record)
        await self.session.flush()
        conn: AsyncConnection = await self.session.connection()
        self._spool.seek(0)
        seq = 0
        while piece := self._spool.read(CHUNK_BYTES):
            await conn.execute(
                text("INSERT INTO csv_import_chunks (import_id, seq, data) VALUES (:i, :s, :d)"),
                {"i": self.record.id, "s": seq, "d": piece},
            )
            seq += 1
        await self.session.commit()
        return self.record

    def close(self) -> None:
        self._spool.close()


async def enqueue(queue: JobQueue, queue_name: str, import_id: UUID) -> bool:
    """Hand the import to a worker; False when it is already queued (or Redis is down)."""
    try:
        return await enqueue_once(
            queue, JOB_NAME, str(import_id), job_id=job_id_for(import_id), queue_name=queue_name
        )
    except Exception as exc:  # Redis down: the reconciler enqueues it later.
        logger.warning("import %s recorded but not enqueued: %s", import_id, exc)
        return False


async def get_import(session: AsyncSession, company_id: UUID, import_id: UUID) -> CsvImport:
    """The import, when it belongs to this company; another company's is not found."""
    # Not the created users' ids an import keeps until its invitations are queued: read by
    # every status poll, 100,000 of them cost the poll about half a second.
    pending = cast("QueryableAttribute[Any]", CsvImport.pending_invitations)
    record = await session.get(CsvImport, import_id, options=[defer(pending)])
    if record is None or record.company_id != company_id:
        raise NotFoundError("no such import")
    return record


async def row_errors(
    session: AsyncSession, import_id: UUID, *, limit: int, offset: int
) -> tuple[list[CsvImportError], int]:
    total = (
        await session.exec(
            select(func.count())
            .select_from(CsvImportError)
            .where(col(CsvImportError.import_id) == import_id)
        )
    ).one()
    items = (
        await session.exec(
            select(CsvImportError)
            .where(col(CsvImportError.import_id) == import_id)
            .order_by(col(CsvImportError.row_number), col(CsvImportError.id))
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(items), int(total)


async def iter_row_errors(
    session: AsyncSession, import_id: UUID, *, batch: int = 5000
) -> AsyncIterator[tuple[int, str, str]]:
    """Every row error, in row order, read in batches (keyset pagination).

    Each batch is its own transaction, ended before its rows are handed over: the caller
    may wait on a slow client in between, and must not hold a connection meanwhile.
    """
    after = (-1, -1)
    while True:
        rows = (
            await session.exec(
                select(
                    col(CsvImportError.row_number),
                    col(CsvImportError.field),
                    col(CsvImportError.message),
                    col(CsvImportError.id),
                )
                .where(
                    col(CsvImportError.import_id) == import_id,
                    func.row(col(CsvImportError.row_number), col(CsvImportError.id))
                    > func.row(after[0], after[1]),
                )
                .order_by(col(CsvImportError.row_number), col(CsvImportError.id))
                .limit(batch)
            )
        ).all()
        await session.commit()
        if not rows:
            return
        for row_number, field, message, _ in rows:
            yield row_number, field, message
        after = (rows[-1][0], rows[-1][3] or 0)


@dataclass(frozen=True)
class ReconcileResult:
    stuck: int
    enqueued: int


# An unfinished import (`i`) that no worker holds the advisory lock of.
_NO_WORKER = """
    i.status IN ('pending', 'processing')
    AND NOT EXISTS (
        SELECT 1 FROM pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.objsubid = 2
          AND l.classid = CAST(:namespace AS oid)
          AND l.objid = (hashtext(CAST(i.id AS text))::bigint & 4294967295)::oid
    )
"""

# Composed of constants only (no input): the predicate is written once.
_STUCK = text(
    f"SELECT i.id, i.status FROM csv_imports AS i WHERE {_NO_WORKER} ORDER BY i.created_at"  # noqa: S608
)


async def reconcile(session: AsyncSession, queue: JobQueue, queue_name: str) -> ReconcileResult:
    """Re-enqueue imports that no worker is processing: pending, or abandoned mid-way.

    An import is abandoned when it says `processing` but no worker holds its advisory
    lock (the worker died; Postgres released the lock with its connection). Its arq job
    may still sit in the queue marked in progress by the dead worker until arq's own
    timeout: that mark is cleared so a live worker takes it now. The deterministic job
    id keeps a queued import from being queued twice. Its read ends (rolled back) before
    Redis is touched.
    """
    rows = (await session.execute(_STUCK, {"namespace": IMPORT_LOCK_NAMESPACE})).all()
    await session.rollback()
    enqueued = 0
    for import_id, _status in rows:
        if await release_abandoned(queue, job_id_for(import_id), queue_name):
            continue  # still queued: a live worker takes it now
        if await enqueue(queue, queue_name, import_id):
            enqueued += 1
    if rows:
        logger.info("csv import reconciler: %d stuck, %d enqueued", len(rows), enqueued)
    return ReconcileResult(stuck=len(rows), enqueued=enqueued)


@dataclass(frozen=True)
class PurgeResult:
    expired: int
    files_deleted: int


# A worker about to claim an expired import waits for this row lock, then finds it failed.
_EXPIRE = text(f"""
    UPDATE csv_imports AS i
    SET status = 'failed', error = :reason, finished_at = clock_timestamp()
    WHERE i.created_at < clock_timestamp() - make_interval(hours => :hours) AND {_NO_WORKER}
""")  # noqa: S608 (constants only)

# Finished imports' files: normally deleted as they finish, this catches any left over.
_DELETE_FILES = text("""
    DELETE FROM csv_import_chunks AS c
    USING csv_imports AS i
    WHERE i.id = c.import_id AND i.status IN ('completed', 'failed')
""")


async def purge_files(session: AsyncSession, retention_hours: int) -> PurgeResult:
    """Fail imports left unfinished for `retention_hours` and delete finished ones' files,
    in one transaction of its own."""
    reason = f"not processed within {retention_hours} hours: the file was deleted, upload it again"
    params = {"reason": reason, "hours": retention_hours, "namespace": IMPORT_LOCK_NAMESPACE}
    async with session.begin():
        conn = await session.connection()
        expired = (await conn.execute(_EXPIRE, params)).rowcount
        files = (await conn.execute(_DELETE_FILES)).rowcount
    if expired or files:
        logger.info("csv import files: %d imports expired, %d chunks deleted", expired, files)
    return PurgeResult(expired=expired, files_deleted=files)
