"""Worker jobs of the CSV user import: thin wrappers around the services."""

import asyncio
import logging
import threading
from typing import Any
from uuid import UUID

import psycopg
from arq import Retry

from ...lib import telemetry
from ...lib.config import Settings
from ..mail import outbox
from . import processing, service

logger = logging.getLogger(__name__)

# arq tries a job this many times; a transient failure (Postgres unreachable) is retried
# after RETRY_BACKOFF_SECONDS * 2**(try - 1), and after the last one the import fails.
MAX_TRIES = 4
RETRY_BACKOFF_SECONDS = 5
# A 50 MB file is about a million rows: minutes, not the 10 min default of other jobs.
# (A timed-out import rolls back and is retried, so it must be able to finish.)
TIMEOUT_SECONDS = 3600
TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, OSError)


def libpq_dsn(settings: Settings) -> str:
    """psycopg wants a plain postgresql:// URL, not SQLAlchemy's postgresql+psycopg://."""
    return "postgresql://" + settings.database_url.split("://", 1)[1]


async def import_users_csv(ctx: dict[str, Any], import_id: str) -> dict[str, Any]:
    """Process one import; idempotent, so at-least-once delivery is enough."""
    settings: Settings = ctx["settings"]
    job_try: int = ctx.get("job_try", 1)
    stop = processing.StopRequest()
    dsn = libpq_dsn(settings)
    work = asyncio.ensure_future(
        asyncio.to_thread(processing.run_import, dsn, UUID(import_id), stop=stop)
    )
    try:
        # Shielded: cancelling the job must not forget the thread, see below.
        outcome = await asyncio.shield(work)
    except asyncio.CancelledError:
        await _stop(work, stop, import_id)
        raise
    except processing.ImportCancelledError:
        raise Retry(defer=RETRY_BACKOFF_SECONDS) from None
    except TRANSIENT_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}".strip()
        if job_try < MAX_TRIES:
            delay = RETRY_BACKOFF_SECONDS * 2 ** (job_try - 1)
            logger.warning("import %s: %s; retrying in %d s", import_id, reason, delay)
            raise Retry(defer=delay) from exc
        try:
            outcome = await asyncio.to_thread(
                processing.fail, dsn, UUID(import_id), f"after {job_try} tries: {reason}"
            )
        except TRANSIENT_ERRORS:
            # Still unreachable: the import stays `processing`, and the reconciler
            # enqueues it again once Postgres answers (MAX_ATTEMPTS bounds it).
            logger.exception("import %s could not be marked failed", import_id)
            raise
    if outcome.created:  # their invitations, if asked for, are in the outbox now
        await outbox.wake(ctx["redis"], settings.queue_name, f"import:{import_id}")
    for row_outcome in ("created", "skipped", "invalid"):
        if count := getattr(outcome, row_outcome):
            telemetry.csv_import_rows.add(count, {"row.outcome": row_outcome})
    return outcome.as_dict()


async def _stop(
    work: "asyncio.Future[processing.ImportOutcome]",
    stop: processing.StopRequest,
    import_id: str,
) -> None:
    """The job is cancelled (worker shutdown, timeout): stop the thread and wait for it.

    Until the thread has rolled back and closed its connection it holds the import's
    lock, and arq queues the job again as soon as this returns: a worker that took it
    sooner would find the import `busy` and drop it. So wait; the thread stops at its
    next batch of rows, or at once in the final SQL (the statement is cancelled).
    """
    while not work.done():
        # Again each second, as a cancel can miss; in a thread of its own, since the
        # event loop's executor may be busy with imports.
        threading.Thread(target=stop.stop, name="csv-import-stop", daemon=True).start()
        await asyncio.wait({work}, timeout=1)
    error = work.exception()
    if isinstance(error, processing.ImportCancelledError):
        logger.info("import %s stopped and rolled back; it will be run again", import_id)
    elif error is None:
        logger.info("import %s finished before it could be stopped", import_id)
    else:
        logger.warning("import %s stopped: %s: %s", import_id, type(error).__name__, error)


async def reconcile_csv_imports(ctx: dict[str, Any]) -> dict[str, int]:
    """Re-enqueue imports Redis lost or a dead worker abandoned, and queue invitations a
    dead worker left (start-up and every minute)."""
    settings: Settings = ctx["settings"]
    async with ctx["session_factory"]() as session:
        result = await service.reconcile(session, ctx["redis"], settings.queue_name)
    # And the invitations of an import whose worker died right after it committed.
    invited = await asyncio.to_thread(processing.queue_left_invitations, libpq_dsn(settings))
    if invited:
        await outbox.wake(ctx["redis"], settings.queue_name, "reconciled-invitations")
    return {"stuck": result.stuck, "enqueued": result.enqueued, "invitations": invited}


async def purge_csv_import_files(ctx: dict[str, Any]) -> dict[str, int]:
    """Delete what is left of uploaded files past CSV_IMPORT_FILE_RETENTION_HOURS (hourly)."""
    settings: Settings = ctx["settings"]
    async with ctx["session_factory"]() as session:
        result = await service.purge_files(session, settings.csv_import_file_retention_hours)
    return {"expired": result.expired, "files_deleted": result.files_deleted}
