"""The CSV user import: upload over the api, processing as the worker does it, reports.

The processing runs in this process here (`csv_helpers.process`, the function the worker
job calls); `test_csv_import_worker.py` runs the same flow through real worker processes.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest

from {{ cookiecutter.package_name }}.features.user_import import jobs
from {{ cookiecutter.package_name }}.features.user_import import (
    processing as csv_processing,
)
from {{ cookiecutter.package_name }}.lib.config import Settings

from . import factories as f
from .conftest import client_of, libpq_url
from .csv_helpers import (
    IMPORTS,
    counts,
    import_lock_held,
    imported,
    imported_users,
    people,
    process,
    upload,
)
from .factories import Db, admin
from .tokens import Bearer, JwksServer


@pytest.fixture
def acme(db: Db) -> UUID:
    return f.company(db, "Acme", allowance=80)


@pytest.fixture
def headers(db: Db, acme: UUID, bearer: Bearer) -> dict[str, str]:
    return bearer(admin(db, acme, "boss@acme.example"))


async def test_template_has_the_header_and_two_rows(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await api.get("/admin/users/import/template", headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "name,email,department,job_title"
    assert len(lines) == 3


async def test_only_admins_import(
    api: httpx.AsyncClient, db: Db, acme: UUID, bearer: Bearer
) -> None:
    employee = f.user(db, acme, "emp@acme.example")
    db.execute("UPDATE users SET auth_sub = 'test|emp' WHERE id = %s", (employee,))

    response = await upload(api, bearer("test|emp"), b"name,email\nAna,ana@acme.example\n")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert counts(db)["csv_imports"] == 0


async def test_upload_answers_202_and_the_import_completes(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, acme: UUID, database_url: str
) -> None:
    content = (
        b"name,email,department,job_title\n"
        b"Ana Souza,Ana.Souza@Acme.example,Engineering,Developer\n"
        b"Bruno Lima,bruno@acme.example,,\n"
    )
    response = await upload(api, headers, content)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["status_url"].endswith(f"{IMPORTS}/{body['id']}")
    assert counts(db)["csv_import_chunks"] == 1

    await process(database_url, body["id"])
    state = (await api.get(body["status_url"], headers=headers)).json()

    assert state["status"] == "completed"
    assert state["counts"] == {
        "rows": 2,
        "created": 2,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 0,
    }
    assert state["encoding"] == "utf-8"
    assert state["attempts"] == 1
    assert state["timings"]["processing_seconds"] is not None
    assert state["errors"] == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert imported_users(db, acme) == {
        "ana.souza@acme.example": ("Ana Souza", "Engineering", "Developer", 80),
        "bruno@acme.example": ("Bruno Lima", None, None, 80),
    }
    ledger = db.execute(
        "SELECT t.kind, t.balance_type, t.amount, t.previous_balance, t.new_balance, t.reason"
        " FROM wallet_transactions AS t JOIN users AS u ON u.id = t.user_id"
        " WHERE u.email = 'bruno@acme.example'"
    ).fetchall()
    assert ledger == [("RESET", "COMPLIMENT", 80, 0, 80, "Initial weekly allowance")]


async def test_every_kind_of_bad_row_is_reported_exactly(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, acme: UUID, database_url: str
) -> None:
    f.user(db, acme, "old@acme.example")
    content = (
        "name,email,department,job_title\n"
        "Ana Souza,ana@acme.example,,\n"  # 2 ok
        " A ,a@acme.example,,\n"  # 3 name too short after trimming
        ",noname@acme.example,,\n"  # 4 name missing
        "Carla,not-an-email,,\n"  # 5 bad email
        "Dario,,,\n"  # 6 email missing
        "Eva,eva@@acme.example,,\n"  # 7 bad email
        "Ana Again,ANA@acme.example,,\n"  # 8 duplicate of row 2
        "Old Timer,old@acme.example,,\n"  # 9 existing user: skipped
        "X,bad,,\n"  # 10 two problems
        "\n"  # 11 blank: ignored
        f"Long Dept,long@acme.example,{'d' * 121},\n"  # 12 department too long
        "Fine Person,fine@acme.example,Ops,Lead\n"  # 13 ok
    ).encode()

    state = await imported(api, headers, database_url, content)

    assert state["status"] == "completed"
    assert state["counts"] == {
        "rows": 11,
        "created": 2,
        "skipped": 1,
        "deactivated": 0,
        "invalid": 8,
    }
    errors = state["errors"]
    assert isinstance(errors, dict)
    assert [(e["row_number"], e["field"], e["message"]) for e in errors["items"]] == [
        (3, "name", "must have at least 2 characters"),
        (4, "name", "is required"),
        (5, "email", "is not a valid email address"),
        (6, "email", "is required"),
        (7, "email", "is not a valid email address"),
        (8, "email", "appears earlier in the file (row 2)"),
        (10, "name", "must have at least 2 characters"),
        (10, "email", "is not a valid email address"),
        (12, "department", "must have at most 120 characters"),
    ]
    assert set(imported_users(db, acme)) == {
        "ana@acme.example",
        "fine@acme.example",
        "old@acme.example",
    }


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("name,email\nJosé Araújo,jose@acme.example\n".encode(), "utf-8"),
        ("name,email\nJosé Araújo,jose@acme.example\n".encode("utf-8-sig"), "utf-8-sig"),
        ("nome;email\r\nJosé Araújo;jose@acme.example\r\n".encode("cp1252"), "cp1252"),
        ("NAME;E-mail\nJosé Araújo;jose@acme.example".encode("utf-8-sig"), "utf-8-sig"),
    ],
    ids=["utf8", "utf8-bom", "cp1252-semicolon", "bom-semicolon-no-final-newline"],
)
async def test_encodings_and_delimiters(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    db: Db,
    acme: UUID,
    database_url: str,
    content: bytes,
    encoding: str,
) -> None:
    state = await imported(api, headers, database_url, content)

    assert state["encoding"] == encoding
    assert state["counts"] == {
        "rows": 1,
        "created": 1,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 0,
    }
    assert imported_users(db, acme) == {"jose@acme.example": ("José Araújo", None, None, 80)}


async def test_quoted_fields_and_portuguese_headers(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, acme: UUID, database_url: str
) -> None:
    content = (
        "Cargo;Departamento;E-MAIL;Nome\r\n"
        '"Chefe; ""geral""";"Vendas; Sul";maria@acme.example;"Souza, Maria"\r\n'
        "Dev;TI;joao@acme.example;João\r\n"
    ).encode("cp1252")

    state = await imported(api, headers, database_url, content)

    assert state["delimiter"] == ";"
    assert state["counts"] == {
        "rows": 2,
        "created": 2,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 0,
    }
    assert imported_users(db, acme) == {
        "maria@acme.example": ("Souza, Maria", "Vendas; Sul", 'Chefe; "geral"', 80),
        "joao@acme.example": ("João", "TI", "Dev", 80),
    }


async def test_row_numbers_count_records_not_lines(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str
) -> None:
    content = b'name,email\n"Two\nLines",two@acme.example\nX,x@acme.example\n'

    state = await imported(api, headers, database_url, content)

    errors = state["errors"]
    assert isinstance(errors, dict)
    # The line break is inside row 2 (a name may not hold one), so X is row 3, not 4.
    assert [(e["row_number"], e["field"], e["message"]) for e in errors["items"]] == [
        (2, "name", "must not contain control characters"),
        (3, "name", "must have at least 2 characters"),
    ]


async def test_header_only_file_completes_with_nothing(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, database_url: str
) -> None:
    state = await imported(api, headers, database_url, b"name,email,department,job_title\r\n")

    assert state["status"] == "completed"
    assert state["counts"] == {
        "rows": 0,
        "created": 0,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 0,
    }


async def test_dry_run_counts_and_reports_without_inserting(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, acme: UUID, database_url: str
) -> None:
    f.user(db, acme, "old@acme.example")
    content = b"name,email\nAna,ana@acme.example\nOld,old@acme.example\nAna,ana@acme.example\nX,x\n"
    before = counts(db)

    state = await imported(api, headers, database_url, content, dry_run=True)

    assert state["dry_run"] is True
    assert state["status"] == "completed"
    assert state["counts"] == {
        "rows": 4,
        "created": 1,
        "skipped": 1,
        "deactivated": 0,
        "invalid": 2,
    }
    errors = state["errors"]
    assert isinstance(errors, dict)
    assert errors["total"] == 3
    after = counts(db)
    assert (after["users"], after["wallets"]) == (before["users"], before["wallets"])


async def test_running_the_job_again_changes_nothing(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, database_url: str
) -> None:
    response = await upload(api, headers, b"name,email\nAna,ana@acme.example\nX,x\n")
    import_id = response.json()["id"]
    first = await process(database_url, import_id)
    again = await process(database_url, import_id)

    assert first["status"] == "completed"
    assert again["status"] == "completed"
    assert counts(db)["users"] == 2  # the admin and Ana
    assert counts(db)["csv_import_errors"] == 2  # row 3: name and email
    state = (await api.get(response.json()["status_url"], headers=headers)).json()
    assert state["attempts"] == 1


async def test_errors_are_paginated_and_downloadable_without_formulas(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str
) -> None:
    content = b"name,email\n=HYPERLINK(1),a\n+1,b\n-2,c\n@SUM(1),d\n"
    response = await upload(api, headers, content)
    await process(database_url, response.json()["id"])
    url = response.json()["status_url"]

    page = (await api.get(url, params={"limit": 2, "offset": 2}, headers=headers)).json()
    assert page["errors"]["total"] == 4
    assert [e["row_number"] for e in page["errors"]["items"]] == [4, 5]

    state = (await api.get(url, headers=headers)).json()
    download = await api.get(state["errors_csv_url"], headers=headers)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    lines = download.text.splitlines()
    assert lines[0] == "row_number,field,message"
    assert lines[1:] == [f"{row},email,is not a valid email address" for row in range(2, 6)]
    # The messages echo no cell, but a field could start with a formula character one day:
    assert all(not line.split(",")[1].startswith(("=", "+", "-", "@")) for line in lines)


def test_neutralise_prefixes_formula_cells() -> None:
    from {{ cookiecutter.package_name }}.features.user_import.csv_format import neutralise

    assert [neutralise(c) for c in ["=1+1", "+1", "-1", "@x", "\tx", "ok", ""]] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "ok",
        "",
    ]


async def test_another_companys_import_is_not_found(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, bearer: Bearer
) -> None:
    other = f.company(db, "Other")
    stranger = bearer(admin(db, other, "boss@other.example"))
    response = await upload(api, headers, b"name,email\nAna,ana@acme.example\n")
    url = response.json()["status_url"]

    assert (await api.get(url, headers=stranger)).status_code == 404
    assert (await api.get(f"{url}/errors.csv", headers=stranger)).status_code == 404
    assert (await api.get(f"{IMPORTS}/{UUID(int=1)}", headers=headers)).status_code == 404


@pytest.fixture
async def small_limit_api(settings: Settings, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(settings.model_copy(update={"csv_import_max_bytes": 2048})) as client:
        yield client


@pytest.mark.parametrize(
    ("name", "content_type", "content", "status", "code"),
    [
        ("users.csv", "text/csv", b"", 400, "empty_file"),
        ("photo.png", "image/png", b"\x89PNG\r\n\x1a\n\x00\x00", 415, "unsupported_file_type"),
        (
            "users.xlsx",
            "application/vnd.openxmlformats",
            b"PK\x03\x04",
            415,
            "unsupported_file_type",
        ),
        ("users.csv", "text/csv", b"nome,departamento\nAna,TI\n", 422, "missing_columns"),
        ("users.csv", "text/csv", b"name,email\nAna,a@b.example\x00\x01\x02\n", 422, "invalid_csv"),
        (
            "users.csv",
            "text/csv",
            b"name,email\nAna\x81\x8d,a@b.example\n",
            422,
            "undecodable_file",
        ),
        ("users.csv", "text/csv", b"name,email" + b"x" * 70_000, 422, "invalid_csv"),
        (
            "users.csv",
            "text/csv",
            b"name,email\n" + b"Ana,a@b.example\n" * 200,
            413,
            "file_too_large",
        ),
    ],
    ids=[
        "empty",
        "image",
        "xlsx",
        "missing-email",
        "nul-bytes",
        "undecodable",
        "no-newline",
        "too-large",
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    small_limit_api: httpx.AsyncClient,
    api: httpx.AsyncClient,
    headers: dict[str, str],
    db: Db,
    name: str,
    content_type: str,
    content: bytes,
    status: int,
    code: str,
) -> None:
    client = small_limit_api if code == "file_too_large" else api
    response = await upload(client, headers, content, name=name, content_type=content_type)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    after = counts(db)
    assert (after["csv_imports"], after["csv_import_chunks"]) == (0, 0)


async def test_an_upload_without_a_file_is_refused(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db
) -> None:
    no_file = await api.post(IMPORTS, files={"dry_run": (None, "true")}, headers=headers)
    not_multipart = await api.post(IMPORTS, content=b"name,email\n", headers=headers)

    assert no_file.status_code == 400
    assert no_file.json()["error"]["code"] == "file_missing"
    assert not_multipart.status_code == 400
    assert not_multipart.json()["error"]["code"] == "not_multipart"
    assert counts(db)["csv_imports"] == 0


async def test_a_job_failing_on_every_try_ends_failed_with_the_reason(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg
    from arq import Retry

    response = await upload(api, headers, b"name,email\nAna,ana@acme.example\n")
    import_id = response.json()["id"]

    def unreachable(*args: object, **kwargs: object) -> None:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(csv_processing, "run_import", unreachable)
    ctx = {"settings": settings, "job_try": 1}
    with pytest.raises(Retry) as retry:
        await jobs.import_users_csv(ctx, import_id)
    assert retry.value.defer_score == jobs.RETRY_BACKOFF_SECONDS * 1000

    ctx["job_try"] = jobs.MAX_TRIES
    outcome = await jobs.import_users_csv(ctx, import_id)

    assert outcome["status"] == "failed"
    state = (await api.get(response.json()["status_url"], headers=headers)).json()
    assert state["status"] == "failed"
    assert state["error"] == f"after {jobs.MAX_TRIES} tries: OperationalError: connection refused"


async def test_an_import_asked_to_stop_gives_up_at_a_batch_of_rows(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, database_url: str
) -> None:
    response = await upload(api, headers, people(csv_processing.BATCH_ROWS + 10))
    import_id = UUID(response.json()["id"])
    stop = csv_processing.StopRequest()
    stop.stop()

    with pytest.raises(csv_processing.ImportCancelledError):
        await asyncio.to_thread(
            csv_processing.run_import, libpq_url(database_url), import_id, stop=stop
        )

    row = db.execute("SELECT status, attempts FROM csv_imports WHERE id = %s", (import_id,))
    assert row.fetchone() == ("processing", 1)  # for the next attempt to take
    assert counts(db)["users"] == 1
    assert not import_lock_held(db, import_id)


def inserting(db: Db) -> bool:
    """Whether the import's final INSERT (users, wallets, ledger) is running."""
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND query LIKE %s",
        ("%INSERT INTO users%",),
    ).fetchone()
    return row == (1,)


async def test_a_cancelled_job_stops_the_insert_and_rolls_back_before_it_returns(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, settings: Settings
) -> None:
    """What a worker shutdown (or the job's timeout) does: arq cancels the job. The insert
    at the end takes seconds on a large file; it is cancelled, not waited for, and the
    job ends only once the import is rolled back and free for the next worker."""
    rows = 100_000
    response = await upload(api, headers, people(rows))
    import_id = response.json()["id"]
    ctx = {"settings": settings, "job_try": 1}
    job = asyncio.create_task(jobs.import_users_csv(ctx, import_id))
    deadline = time.monotonic() + 30
    while not inserting(db):
        assert not job.done(), job
        assert time.monotonic() < deadline, "the insert did not start within 30 s"
        await asyncio.sleep(0.01)

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert not import_lock_held(db, UUID(import_id))
    row = db.execute("SELECT status, attempts FROM csv_imports WHERE id = %s", (import_id,))
    assert row.fetchone() == ("processing", 1)
    assert counts(db) | {"csv_import_chunks": 0} == {
        "csv_imports": 1,
        "csv_import_chunks": 0,
        "csv_import_errors": 0,
        "users": 1,
        "wallets": 0,
    }
