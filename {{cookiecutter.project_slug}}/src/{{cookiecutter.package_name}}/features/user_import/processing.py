"""The CSV user import, worker side: stream the stored file, validate, insert in bulk.

Runs synchronously (in a thread of the worker) on its own psycopg connection:

1. Take the import's advisory lock (session level): a second worker handed the same
   import does nothing; the lock is what tells the reconciler the import is alive.
2. Mark it `processing` (attempts + 1) and commit, so the status endpoint shows it.
3. In ONE transaction: read the file chunk by chunk through an incremental decoder and
   the csv module (each row at most ROW_MAX_CHARS: memory bounded whatever the file
   holds), validate each row, COPY the valid rows into a temporary staging table and
   the first ERRORS_KEPT row errors aside (in batches); then set-based SQL finds
   duplicates and existing (or deactivated) users, and inserts users, wallets and
   ledger rows; the counts, the first ERRORS_KEPT errors in row order, `completed` and
   the deletion of the uploaded file are written in the same transaction.

Killed anywhere in step 3, the transaction rolls back: nothing of the attempt remains,
and the next attempt starts from the first row. Asked to stop (`StopRequest`: the worker
shuts down, or the job timed out), it gives up at its next batch of rows, or at once in
the SQL at the end (the statement is cancelled), and rolls back the same way.
`ON CONFLICT (email) DO NOTHING` keeps a user created meanwhile by someone else from
failing the import. Exactly once.
"""

import codecs
import contextlib
import csv
import io
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import psycopg

from ..companies.domains import belongs_to, outside_message
from ..users.service import INITIAL_ALLOWANCE_REASON
from . import csv_format
from .models import ERRORS_KEPT, IMPORT_LOCK_NAMESPACE, ImportStatus

logger = logging.getLogger(__name__)

BATCH_ROWS = 10_000
DEACTIVATED_MESSAGE = "belongs to a deactivated user, who stays deactivated: not imported"
# After this many started attempts an import is failed instead of tried again.
MAX_ATTEMPTS = 5


class ImportCancelledError(Exception):
    """The worker is shutting down: the transaction was rolled back, retry later."""


class ImportDataError(Exception):
    """The file cannot be read: the import fails with this reason (no retry)."""


class StopRequest:
    """Asks a running import to stop; `stop()` may be called from any thread.

    The import checks it between batches of rows and between its final statements, and
    `stop()` also cancels the statement its connection is running (a set-based insert of
    a large file takes seconds). Either way the import raises ImportCancelledError and
    its transaction rolls back.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._guard = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def stop(self) -> None:
        self._event.set()
        with self._guard:
            if self._conn is not None and not self._conn.closed:
                # Nothing running (between two statements): the server ignores it, and
                # the import sees the flag before its next statement.
                with contextlib.suppress(psycopg.Error):
                    self._conn.cancel_safe(timeout=5)

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self, import_id: UUID) -> None:
        if self._event.is_set():
            raise ImportCancelledError(str(import_id))

    @contextlib.contextmanager
    def watching(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """While inside, `stop()` cancels what `conn` runs."""
        with self._guard:
            self._conn = conn
        try:
            yield
        finally:
            with self._guard:
                self._conn = None


@dataclass(frozen=True)
class ImportOutcome:
    import_id: str
    status: str
    rows: int = 0
    created: int = 0
    skipped: int = 0
    deactivated: int = 0
    invalid: int = 0
    errors_total: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChunkReader(io.RawIOBase):
    """The stored file as a byte stream, one chunk (row of csv_import_chunks) at a time."""

    def __init__(self, conn: psycopg.Connection[Any], import_id: UUID) -> None:
        self.conn = conn
        self.import_id = import_id
        self.seq = 0
        self.pending = b""
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending and not self.done:
            row = self.conn.execute(
                "SELECT data FROM csv_import_chunks WHERE import_id = %s AND seq = %s",
                (self.import_id, self.seq),
            ).fetchone()
            if row is None:
                self.done = True
            else:
                self.pending = bytes(row[0])
                self.seq += 1
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def _lock(conn: psycopg.Connection[Any], import_id: UUID) -> bool:
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (IMPORT_LOCK_NAMESPACE, str(import_id))
    ).fetchone()
    return bool(row and row[0])


def _unlock(conn: psycopg.Connection[Any], import_id: UUID) -> None:
    """Release the lock now, not when the connection closes: the server drops a closed
    session's locks a moment after the client has moved on, and the next worker (or the
    reconciler) must not find a stale one. A broken connection takes it with it."""
    with contextlib.suppress(psycopg.Error):
        conn.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(%s))",
            (IMPORT_LOCK_NAMESPACE, str(import_id)),
        )


def run_import(dsn: str, import_id: UUID, *, stop: StopRequest | None = None) -> ImportOutcome:
    """Process one import to the end (or not at all); safe to call any number of times."""
    stop = stop or StopRequest()
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        if not _lock(conn, import_id):
            logger.info("import %s is being processed by another worker", import_id)
            return ImportOutcome(str(import_id), "busy")
        try:
            # Only while watched can `stop()` cancel a statement: never the unlock below.
            with stop.watching(conn):
                outcome = _run_locked(conn, import_id, stop)
        finally:
            _unlock(conn, import_id)
        if outcome.created:
            queue_invitations(conn)
        return outcome


# The invitations imports keep (csv_imports.pending_invitations, written with their
# users) go to the outbox after the import commits, in a transaction of their own, so the
# import does not pay the outbox's indexes and check row by row. Taken and cleared in
# one statement: each is queued once, and a user whose invitation is already there
# (resent meanwhile) gets no second one. Every pending import at once, so the reconciler
# runs the same statement for one whose worker died between the two commits.
_QUEUE_INVITATIONS = """
    WITH pending AS (
        -- RETURNING gives the new (empty) value: the ids come from the locked old row.
        UPDATE csv_imports AS i SET pending_invitations = NULL
        FROM (
            SELECT id, pending_invitations FROM csv_imports
            WHERE pending_invitations IS NOT NULL
            FOR UPDATE
        ) AS old
        WHERE i.id = old.id
        RETURNING i.company_id, old.pending_invitations
    )
    INSERT INTO mail_outbox (company_id, user_id, kind)
    SELECT p.company_id, invited.user_id, 'invitation'
    FROM pending AS p, unnest(p.pending_invitations) AS invited(user_id)
    WHERE NOT EXISTS (
        SELECT 1 FROM mail_outbox AS m
        WHERE m.user_id = invited.user_id AND m.kind = 'invitation'
    )
"""


def queue_invitations(conn: psycopg.Connection[Any]) -> int:
    """Put every import's pending invitations in the outbox; how many were queued."""
    with conn.transaction():
        return conn.execute(_QUEUE_INVITATIONS).rowcount


def queue_left_invitations(dsn: str) -> int:
    """`queue_invitations` on a connection of its own (the reconciler's)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return queue_invitations(conn)


def _run_locked(conn: psycopg.Connection[Any], import_id: UUID, stop: StopRequest) -> ImportOutcome:
    with conn.transaction():
        claimed = conn.execute(
            """
            UPDATE csv_imports
            SET status = 'processing', attempts = attempts + 1,
                started_at = coalesce(started_at, clock_timestamp())
            WHERE id = %s AND status IN ('pending', 'processing')
            RETURNING company_id, dry_run, encoding, delimiter, attempts, send_invitations
            """,
            (import_id,),
        ).fetchone()
    if claimed is None:
        query = "SELECT status FROM csv_imports WHERE id = %s"
        status = conn.execute(query, (import_id,)).fetchone()
        return ImportOutcome(str(import_id), str(status[0]) if status else "missing")
    company_id, dry_run, encoding, delimiter, attempts, invite = claimed
    if attempts > MAX_ATTEMPTS:
        return mark_failed(conn, import_id, f"gave up after {MAX_ATTEMPTS} attempts")
    try:
        return _process(
            conn, import_id, company_id, dry_run, encoding, delimiter, stop, invite=invite
        )
    except ImportDataError as exc:
        return mark_failed(conn, import_id, str(exc))
    except psycopg.errors.QueryCanceled as exc:
        if stop.is_set():  # our own cancel (a statement_timeout is not)
            raise ImportCancelledError(str(import_id)) from exc
        raise


def mark_failed(conn: psycopg.Connection[Any], import_id: UUID, reason: str) -> ImportOutcome:
    with conn.transaction():
        conn.execute(
            "UPDATE csv_imports SET status = 'failed', error = %s, finished_at = clock_timestamp()"
            " WHERE id = %s AND status IN ('pending', 'processing')",
            (reason[:1000], import_id),
        )
        delete_file(conn, import_id)
    logger.warning("import %s failed: %s", import_id, reason)
    return ImportOutcome(str(import_id), ImportStatus.failed, error=reason)


def delete_file(conn: psycopg.Connection[Any], import_id: UUID) -> None:
    """The uploaded file goes with the import's end: its counts and row errors stay."""
    conn.execute("DELETE FROM csv_import_chunks WHERE import_id = %s", (import_id,))


def fail(dsn: str, import_id: UUID, reason: str) -> ImportOutcome:
    """Record a final failure (after the last retry)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return mark_failed(conn, import_id, reason)


TOO_LONG = None  # what `_records` yields for a row longer than ROW_MAX_CHARS


def _records(
    conn: psycopg.Connection[Any], import_id: UUID, encoding: str, delimiter: str
) -> Iterator[tuple[int, list[str] | None]]:
    """(row number, cells) of every record, or (row number, TOO_LONG); the header is row 1."""
    raw = io.BufferedReader(ChunkReader(conn, import_id), buffer_size=256 * 1024)
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    lines = csv_format.BoundedLines(text)
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    row_number = 0
    try:
        while True:
            lines.start_record()
            row_number += 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv_format.RowTooLongError:
                yield row_number, TOO_LONG
                continue
            yield row_number, cells
    except UnicodeDecodeError as exc:
        raise ImportDataError(f"the file is not valid {codecs.lookup(encoding).name}") from exc
    except csv.Error as exc:
        raise ImportDataError(
            f"the file is not valid CSV near line {reader.line_num}: {exc}"
        ) from exc


_STAGING = """
    CREATE TEMP TABLE csv_import_staging (
        row_number integer NOT NULL,
        email text NOT NULL,
        name text NOT NULL,
        department text,
        job_title text
    ) ON COMMIT DROP
"""

# Every row error of this attempt, at most ERRORS_KEPT of each kind: the first
# ERRORS_KEPT of them in row order are kept.
_FOUND_ERRORS = """
    CREATE TEMP TABLE csv_import_found_errors (
        row_number integer NOT NULL,
        field text NOT NULL,
        message text NOT NULL
    ) ON COMMIT DROP
"""

_FIRSTS = """
    CREATE TEMP TABLE csv_import_firsts ON COMMIT DROP AS
    SELECT DISTINCT ON (email) row_number, email, name, department, job_title
    FROM csv_import_staging
    ORDER BY email, row_number
"""

_DUPLICATES = """
    CREATE TEMP TABLE csv_import_duplicates ON COMMIT DROP AS
    SELECT s.row_number, f.row_number AS first_row
    FROM csv_import_staging AS s
    JOIN csv_import_firsts AS f ON f.email = s.email AND f.row_number <> s.row_number
"""

_DUPLICATE_ERRORS = """
    INSERT INTO csv_import_found_errors (row_number, field, message)
    SELECT row_number, 'email', 'appears earlier in the file (row ' || first_row || ')'
    FROM csv_import_duplicates
    ORDER BY row_number
    LIMIT %(kept)s
"""

# Rows naming a user who exists: counted as skipped (active) or deactivated. An email at
# the company's domains can only be one of its own users (companies/domains.py).
_EXISTING = """
    CREATE TEMP TABLE csv_import_existing ON COMMIT DROP AS
    SELECT f.row_number, u.is_active
    FROM csv_import_firsts AS f
    JOIN users AS u ON u.email = f.email
"""

_DEACTIVATED_ERRORS = """
    INSERT INTO csv_import_found_errors (row_number, field, message)
    SELECT row_number, 'email', %(deactivated)s
    FROM csv_import_existing
    WHERE NOT is_active
    ORDER BY row_number
    LIMIT %(kept)s
"""

_KEEP_ERRORS = """
    INSERT INTO csv_import_errors (import_id, row_number, field, message)
    SELECT %(import_id)s, row_number, field, message
    FROM csv_import_found_errors
    ORDER BY row_number
    LIMIT %(kept)s
"""

# Users, their wallets at the company's allowance, and one ledger row each saying so:
# the same rule as creating one user (previous balance 0, reason INITIAL_ALLOWANCE_REASON);
# and, when the import asks for it, who is to be invited, kept with the import.
_INSERT = """
    WITH new_users AS (
        INSERT INTO users (company_id, email, name, department, job_title)
        SELECT %(company_id)s, f.email, f.name, f.department, f.job_title
        FROM csv_import_firsts AS f
        ON CONFLICT (email) DO NOTHING
        RETURNING id
    ), new_wallets AS (
        INSERT INTO wallets (user_id, compliment_balance)
        SELECT id, %(allowance)s FROM new_users
        RETURNING id, user_id
    ), ledger AS (
        INSERT INTO wallet_transactions (
            wallet_id, user_id, kind, balance_type, amount,
            previous_balance, new_balance, reason, metadata
        )
        SELECT id, user_id, 'RESET', 'COMPLIMENT', %(allowance)s, 0, %(allowance)s,
               %(reason)s, jsonb_build_object('csv_import_id', CAST(%(import_id)s AS text))
        FROM new_wallets
        RETURNING 1
    ), invited AS (
        -- One array, not a row per user: queue_invitations puts them in the outbox.
        UPDATE csv_imports SET pending_invitations = (SELECT array_agg(id) FROM new_users)
        WHERE id = %(import_id)s AND %(invite)s
    )
    SELECT (SELECT count(*) FROM new_users), (SELECT count(*) FROM ledger)
"""


def _copy_batch(
    conn: psycopg.Connection[Any],
    valid: list[csv_format.ValidRow],
    errors: list[csv_format.RowError],
) -> None:
    with conn.cursor() as cur:
        if valid:
            with cur.copy(
                "COPY csv_import_staging (row_number, email, name, department, job_title)"
                " FROM STDIN"
            ) as copy:
                for row in valid:
                    copy.write_row(
                        (row.row_number, row.email, row.name, row.department, row.job_title)
                    )
        if errors:
            with cur.copy(
                "COPY csv_import_found_errors (row_number, field, message) FROM STDIN"
            ) as copy:
                for error in errors:
                    copy.write_row((error.row_number, error.field, error.message))
    valid.clear()
    errors.clear()


@dataclass
class _Parsed:
    """What reading the rows found, before the set-based steps."""

    rows: int = 0
    invalid: int = 0
    errors_total: int = 0
    errors_found: int = 0  # written to csv_import_found_errors (at most ERRORS_KEPT)


def _read_rows(
    conn: psycopg.Connection[Any],
    import_id: UUID,
    encoding: str,
    delimiter: str,
    domains: set[str],
    stop: StopRequest,
) -> _Parsed:
    """Validate every row, COPY the valid ones into staging and the first errors aside."""
    parsed = _Parsed()
    outside = outside_message(domains)
    columns: dict[str, int] | None = None
    width = 0
    valid: list[csv_format.ValidRow] = []
    errors: list[csv_format.RowError] = []
    for row_number, cells in _records(conn, import_id, encoding, delimiter):
        if columns is None:
            if cells is TOO_LONG:
                raise ImportDataError("the header row is too long")
            try:
                columns = csv_format.map_header(cells)
            except csv_format.HeaderError as exc:
                raise ImportDataError(str(exc)) from exc
            width = csv_format.cell_count(cells)
            continue
        if cells is TOO_LONG:
            message = f"is longer than {csv_format.ROW_MAX_CHARS} characters"
            checked: csv_format.ValidRow | list[csv_format.RowError] = [
                csv_format.RowError(row_number, "row", message)
            ]
        elif csv_format.is_blank(cells):
            continue
        else:
            checked = csv_format.validate_row(row_number, cells, columns, width)
        parsed.rows += 1
        if isinstance(checked, csv_format.ValidRow) and not belongs_to(checked.email, domains):
            checked = [csv_format.RowError(row_number, "email", outside)]
        if isinstance(checked, list):
            parsed.invalid += 1
            parsed.errors_total += len(checked)
            room = ERRORS_KEPT - parsed.errors_found
            errors.extend(checked[:room])
            parsed.errors_found += min(room, len(checked))
        else:
            valid.append(checked)
        if len(valid) + len(errors) >= BATCH_ROWS:
            stop.check(import_id)
            _copy_batch(conn, valid, errors)
        elif parsed.rows % BATCH_ROWS == 0:
            stop.check(import_id)  # a file of only bad rows stops as promptly
    if columns is None:
        raise ImportDataError("the file has no header row")
    stop.check(import_id)
    _copy_batch(conn, valid, errors)
    return parsed


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _process(
    conn: psycopg.Connection[Any],
    import_id: UUID,
    company_id: UUID,
    dry_run: bool,
    encoding: str,
    delimiter: str,
    stop: StopRequest,
    *,
    invite: bool,
) -> ImportOutcome:
    started = time.perf_counter()
    with conn.transaction():
        allowance_row = conn.execute(
            "SELECT weekly_renewal_amount FROM companies WHERE id = %s", (company_id,)
        ).fetchone()
        if allowance_row is None:
            raise ImportDataError("the company no longer exists")
        allowance = int(allowance_row[0])
        # Rows must be at the company's domains; KEY SHARE keeps them owned until commit.
        query = "SELECT domain FROM company_domains WHERE company_id = %s FOR KEY SHARE"
        domains = {str(row[0]) for row in conn.execute(query, (company_id,))}
        # Sorting a large file's emails (duplicates) stays in memory.
        conn.execute("SET LOCAL work_mem = '64MB'")
        # A previous attempt that committed nothing left nothing; this is belt and braces.
        conn.execute("DELETE FROM csv_import_errors WHERE import_id = %s", (import_id,))
        conn.execute(_STAGING)
        conn.execute(_FOUND_ERRORS)
        parsed = _read_rows(conn, import_id, encoding, delimiter, domains, stop)
        read_seconds = time.perf_counter() - started
        conn.execute("ANALYZE csv_import_staging")
        stop.check(import_id)
        conn.execute(_FIRSTS)
        params = {
            "import_id": import_id,
            "company_id": company_id,
            "allowance": allowance,
            "reason": INITIAL_ALLOWANCE_REASON,
            "kept": ERRORS_KEPT,
            "deactivated": DEACTIVATED_MESSAGE,
            "invite": invite,
        }
        stop.check(import_id)
        conn.execute(_DUPLICATES)
        duplicates = _count(conn, "SELECT count(*) FROM csv_import_duplicates")
        conn.execute(_DUPLICATE_ERRORS, params)
        unique = _count(conn, "SELECT count(*) FROM csv_import_firsts")
        conn.execute(_EXISTING)
        deactivated = _count(conn, "SELECT count(*) FROM csv_import_existing WHERE NOT is_active")
        conn.execute(_DEACTIVATED_ERRORS, params)
        if dry_run:
            created = unique - _count(conn, "SELECT count(*) FROM csv_import_existing")
        else:
            stop.check(import_id)
            inserted = conn.execute(_INSERT, params).fetchone()
            created = int(inserted[0]) if inserted else 0
        conn.execute(_KEEP_ERRORS, params)
        outcome = ImportOutcome(
            import_id=str(import_id),
            status=ImportStatus.completed,
            rows=parsed.rows,
            created=created,
            skipped=unique - created - deactivated,
            deactivated=deactivated,
            invalid=parsed.invalid + duplicates,
            errors_total=parsed.errors_total + duplicates + deactivated,
        )
        conn.execute(
            """
            UPDATE csv_imports
            SET status = 'completed', rows_total = %s, created_count = %s,
                skipped_count = %s, deactivated_count = %s, invalid_count = %s,
                errors_total = %s, error = NULL, finished_at = clock_timestamp()
            WHERE id = %s
            """,
            (
                outcome.rows,
                outcome.created,
                outcome.skipped,
                outcome.deactivated,
                outcome.invalid,
                outcome.errors_total,
                import_id,
            ),
        )
        delete_file(conn, import_id)
    logger.info(
        "import %s completed in %.2f s (read and validated in %.2f s): %s",
        import_id,
        time.perf_counter() - started,
        read_seconds,
        outcome.as_dict(),
    )
    return outcome
