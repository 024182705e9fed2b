"""Slow clients cannot hold the database: uploads that trickle in and downloads nobody
reads keep no pooled connection (idle in a transaction or otherwise), so the api goes on
answering everyone else. A real uvicorn with a one-connection pool (plus SQLAlchemy's
10 overflow connections), more slow uploads than that, raw sockets for the slow clients."""

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from . import factories as f
from .api_process import ApiProcess, request_head, running_api
from .csv_helpers import IMPORTS
from .factories import Db, admin
from .tokens import Bearer

POOL_SIZE, POOL_OVERFLOW = 1, 0  # the settings' pool; no overflow (DATABASE_MAX_OVERFLOW)
SLOW_UPLOADS = POOL_SIZE + POOL_OVERFLOW + 3
UNREAD_DOWNLOADS = 3
# Rows of 300-character messages: about 16 MB of CSV, more than the sockets buffer.
ERROR_ROWS = 50_000


@pytest.fixture
def slow_api(process_env: dict[str, str], tmp_path: Path) -> Iterator[ApiProcess]:
    with running_api(
        process_env,
        tmp_path / "api.log",
        DATABASE_POOL_SIZE=str(POOL_SIZE),
        # Long enough that the slow uploads are still in flight while the test looks.
        REQUEST_READ_TIMEOUT_SECONDS="60",
    ) as api:
        yield api


def an_import_with_errors(db: Db, company_id: uuid.UUID, requested_by: uuid.UUID) -> str:
    """A finished import with many long row errors."""
    import_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO csv_imports (id, company_id, requested_by, file_name, size_bytes,"
        " encoding, delimiter, dry_run, status)"
        " VALUES (%s, %s, %s, 'big.csv', 1, 'utf-8', ',', false, 'completed')",
        (import_id, company_id, requested_by),
    )
    db.execute(
        "INSERT INTO csv_import_errors (import_id, row_number, field, message)"
        " SELECT %s, n, 'email', n || repeat('x', 290)"
        " FROM generate_series(2, %s + 1) AS n",
        (import_id, ERROR_ROWS),
    )
    return import_id


def idle_in_transaction(db: Db) -> list[str]:
    """The last statement of each connection to the test database that has been idle
    inside a transaction for over a second (a request between two statements is, briefly)."""
    rows = db.execute(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
        " AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        " AND state_change < clock_timestamp() - interval '1 second'"
    ).fetchall()
    return [str(query) for (query,) in rows]


def test_slow_uploads_and_unread_downloads_leave_the_pool_to_others(
    slow_api: ApiProcess, db: Db, bearer: Bearer
) -> None:
    acme = f.company(db, "Acme")
    sub = admin(db, acme, "boss@acme.example")
    [(admin_id,)] = db.execute("SELECT id FROM users WHERE auth_sub = %s", (sub,)).fetchall()
    token = bearer(sub)
    import_id = an_import_with_errors(db, acme, admin_id)
    boundary = "b0undary"
    upload = (
        request_head(
            "POST",
            IMPORTS,
            {
                **token,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": "1000000",
            },
        )
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="users.csv"\r\nContent-Type: text/csv\r\n\r\nname,email\n'
        ).encode()
    )
    download = request_head("GET", f"{IMPORTS}/{import_id}/errors.csv", token)
    stop = threading.Event()

    with ExitStack() as stack:
        uploads: list[socket.socket] = []
        for _ in range(SLOW_UPLOADS):
            sock = stack.enter_context(slow_api.connect())
            sock.sendall(upload)
            uploads.append(sock)
        for _ in range(UNREAD_DOWNLOADS):
            # A reader that reads nothing: the server's writes fill the sockets and wait.
            sock = stack.enter_context(slow_api.connect(receive_buffer=4096))
            sock.sendall(download)

        def trickle() -> None:
            while not stop.wait(0.5):
                for sock in uploads:
                    sock.sendall(b"a")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        stack.callback(trickler.join, 10)
        stack.callback(stop.set)
        try:
            with httpx.Client(base_url=slow_api.url, headers=token, timeout=1.0) as client:
                # Several looks over a few seconds, while the uploads trickle and the
                # downloads sit unread (each has written its first batches by then).
                for _ in range(8):
                    started = time.monotonic()
                    me = client.get("/me")
                    assert me.status_code == 200, me.text
                    assert time.monotonic() - started < 1.0
                    assert idle_in_transaction(db) == []
                    time.sleep(0.5)
        except httpx.TimeoutException as exc:
            raise AssertionError(
                f"GET /me did not answer within a second with {SLOW_UPLOADS} slow uploads"
                f" and {UNREAD_DOWNLOADS} unread downloads: {exc}"
            ) from None
    # The uploads' clients went away mid-body (their sockets closed above): logged as
    # such, never as an unhandled error, and nothing of them stored.
    deadline = time.monotonic() + 10
    while slow_api.log.read_text().count("client went away mid-body") < SLOW_UPLOADS:
        assert time.monotonic() < deadline, slow_api.log.read_text()
        time.sleep(0.05)
    assert "unhandled error" not in slow_api.log.read_text()
    assert db.execute("SELECT count(*) FROM csv_imports").fetchone() == (1,)
