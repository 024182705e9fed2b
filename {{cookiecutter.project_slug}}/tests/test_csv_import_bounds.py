"""The CSV import, bounded: capped row errors, rows of absurd width in bounded memory,
deactivated users reported, files deleted, imports per company (its rules for a user's
fields are the api's: test_user_rules.py).
"""

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.user_import import service as csv_import
from {{ cookiecutter.package_name }}.features.user_import.csv_format import ROW_MAX_CHARS
from {{ cookiecutter.package_name }}.features.user_import.models import ERRORS_KEPT
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.worker import WorkerSettings

from . import factories as f
from .conftest import PROJECT_ROOT, client_of, libpq_url
from .csv_helpers import IMPORTS, counts, imported, imported_users, process, upload
from .factories import Db, admin
from .tokens import Bearer, JwksServer

HEADER = "name,email,department,job_title\n"


@pytest.fixture
def acme(db: Db) -> UUID:
    return f.company(db, "Acme")


@pytest.fixture
def headers(db: Db, acme: UUID, bearer: Bearer) -> dict[str, str]:
    return bearer(admin(db, acme, "boss@acme.example"))


def stored_errors(db: Db, import_id: str) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT row_number, field FROM csv_import_errors WHERE import_id = %s ORDER BY row_number",
        (import_id,),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
async def test_row_errors_are_capped_at_the_first_in_row_order_with_the_total(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str, db: Db, dry_run: bool
) -> None:
    bad = 3 * ERRORS_KEPT
    content = (
        HEADER
        + "Ana Souza,ana@acme.example,,\n"  # row 2
        + "Ana Again,ana@acme.example,,\n"  # row 3: a duplicate, found by SQL at the end
        + "".join(f"Person {i},not-an-email,,\n" for i in range(bad))  # rows 4..
    ).encode()

    state = await imported(api, headers, database_url, content, dry_run=dry_run)

    assert state["status"] == "completed"
    assert state["counts"]["invalid"] == bad + 1
    assert state["counts"]["created"] == 1
    assert (state["errors_total"], state["errors_kept"]) == (bad + 1, ERRORS_KEPT)
    assert state["errors_truncated"] is True
    assert state["errors"]["total"] == ERRORS_KEPT
    # The duplicate (row 3) is kept although it was found after every other error.
    expected = [(3, "email")] + [(row, "email") for row in range(4, 4 + ERRORS_KEPT - 1)]
    assert stored_errors(db, state["id"]) == expected
    download = await api.get(state["errors_csv_url"], headers=headers)
    assert len(download.text.splitlines()) == 1 + ERRORS_KEPT


async def test_few_errors_are_all_kept_and_not_truncated(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str
) -> None:
    content = (HEADER + "Ana Souza,ana@acme.example,,\nX,bad,,\n").encode()

    state = await imported(api, headers, database_url, content)

    assert (state["errors_total"], state["errors"]["total"]) == (2, 2)
    assert state["errors_truncated"] is False


async def test_a_row_with_more_cells_than_the_header_is_a_row_error(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str, db: Db, acme: UUID
) -> None:
    content = (
        HEADER
        + "Ana Souza,ana@acme.example,Eng,Dev,,,\n"  # row 2: padded with empty cells, fine
        + "Souza, Bruno,bruno@acme.example,Eng,Dev\n"  # row 3: an unquoted comma
        + '"Souza, Carla",carla@acme.example,Eng,Dev\n'  # row 4: quoted, fine
    ).encode()

    state = await imported(api, headers, database_url, content)

    assert state["counts"]["created"] == 2
    assert [(e["row_number"], e["field"], e["message"]) for e in state["errors"]["items"]] == [
        (3, "row", "has 5 cells, more than the header's 4: quote cells with a delimiter")
    ]
    assert set(imported_users(db, acme)) == {"ana@acme.example", "carla@acme.example"}


# Run in a process of its own whose address space is capped a little above what it uses
# once everything is imported: a row read whole (tens of millions of cells, each a list
# slot and an object) does not fit.
_UNDER_A_MEMORY_LIMIT = """
import json, resource, sys, uuid
from {{ cookiecutter.package_name }}.features.user_import.processing import run_import
vm_kib = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0])
limit = vm_kib * 1024 + int(sys.argv[3]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
outcome = run_import(sys.argv[1], uuid.UUID(sys.argv[2]))
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({**outcome.as_dict(), "peak_mib": peak_kib // 1024}))
"""
HEADROOM_MIB = 120


@pytest.mark.parametrize(
    "wide_row",
    [
        "Wide," + "," * 30_000_000 + "\n",  # 30 million empty cells on one line
        # 5.6 million cells, a line break inside a quoted one every 7,000.
        ('"xy",' * 7_000 + '"xy\n",') * 800 + "\n",
    ],
    ids=["one-line", "quoted-line-breaks"],
)
async def test_a_row_of_absurd_width_is_a_row_error_read_in_bounded_memory(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    database_url: str,
    db: Db,
    acme: UUID,
    wide_row: str,
) -> None:
    content = (HEADER + "Ana Souza,ana@acme.example,,\n" + wide_row).encode()
    response = await upload(api, headers, content)
    assert response.status_code == 202, response.text
    import_id = response.json()["id"]

    command = [sys.executable, "-c", _UNDER_A_MEMORY_LIMIT, libpq_url(database_url), import_id]
    run = await asyncio.to_thread(
        subprocess.run,
        [*command, str(HEADROOM_MIB)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-2000:]
    outcome = json.loads(run.stdout)
    assert outcome["status"] == "completed", outcome
    assert outcome["created"] == 1
    errors = stored_errors(db, import_id)
    assert errors[0] == (3, "row")
    state = (await api.get(f"{IMPORTS}/{import_id}", headers=headers)).json()
    first = state["errors"]["items"][0]["message"]
    assert first == f"is longer than {ROW_MAX_CHARS} characters"
    assert set(imported_users(db, acme)) == {"ana@acme.example"}


async def test_a_deactivated_user_found_again_is_counted_and_explained(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str, db: Db, acme: UUID
) -> None:
    gone = f.user(db, acme, "gone@acme.example", active=False)
    f.user(db, acme, "here@acme.example")
    content = (HEADER + "Gone Again,gone@acme.example,,\nHere Again,here@acme.example,,\n").encode()

    for dry_run in (True, False):
        state = await imported(api, headers, database_url, content, dry_run=dry_run)

        assert state["counts"] == {
            "rows": 2,
            "created": 0,
            "skipped": 1,
            "deactivated": 1,
            "invalid": 0,
        }
        assert [(e["row_number"], e["message"]) for e in state["errors"]["items"]] == [
            (2, "belongs to a deactivated user, who stays deactivated: not imported")
        ]
    row = db.execute("SELECT is_active, name FROM users WHERE id = %s", (gone,)).fetchone()
    assert row == (False, "Gone")


def file_left(db: Db, import_id: str) -> int:
    query = "SELECT count(*) FROM csv_import_chunks WHERE import_id = %s"
    row = db.execute(query, (import_id,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
async def test_the_file_is_deleted_when_the_import_completes(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str, db: Db, dry_run: bool
) -> None:
    content = (HEADER + "Ana Souza,ana@acme.example,,\nX,bad,,\n").encode()
    response = await upload(api, headers, content, dry_run=dry_run)
    import_id = response.json()["id"]
    assert file_left(db, import_id) == 1

    await process(database_url, import_id)

    assert file_left(db, import_id) == 0
    state = (await api.get(f"{IMPORTS}/{import_id}", headers=headers)).json()
    assert state["status"] == "completed"
    assert (state["counts"]["invalid"], state["errors_total"]) == (1, 2)
    # Nothing of the file stays anywhere else: the errors name fields, never values.
    text = json.dumps(state) + (await api.get(state["errors_csv_url"], headers=headers)).text
    assert "ana@acme.example" not in text
    assert "Ana Souza" not in text


async def test_the_file_is_deleted_when_the_import_fails(
    api: httpx.AsyncClient, headers: dict[str, str], database_url: str, db: Db
) -> None:
    response = await upload(api, headers, (HEADER + "Ana Souza,ana@acme.example,,\n").encode())
    import_id = response.json()["id"]
    db.execute("UPDATE csv_imports SET attempts = 5 WHERE id = %s", (import_id,))

    outcome = await process(database_url, import_id)

    assert outcome["status"] == "failed"
    assert file_left(db, import_id) == 0


async def test_an_import_left_unfinished_past_the_retention_is_failed_and_its_file_deleted(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    database_url: str,
    db: Db,
    session: AsyncSession,
) -> None:
    content = (HEADER + "Ana Souza,ana@acme.example,,\n").encode()
    old = (await upload(api, headers, content)).json()["id"]
    recent = (await upload(api, headers, content)).json()["id"]
    db.execute(
        "UPDATE csv_imports SET created_at = created_at - %s WHERE id = %s",
        (timedelta(hours=25), old),
    )

    result = await csv_import.purge_files(session, retention_hours=24)
    again = await csv_import.purge_files(session, retention_hours=24)

    assert (result.expired, result.files_deleted) == (1, 1)
    assert (again.expired, again.files_deleted) == (0, 0)
    assert (file_left(db, old), file_left(db, recent)) == (0, 1)
    state = (await api.get(f"{IMPORTS}/{old}", headers=headers)).json()
    assert state["status"] == "failed"
    assert "not processed within 24 hours" in state["error"]
    # A worker handed the expired import later finds it failed and does nothing.
    assert (await process(database_url, old))["status"] == "failed"
    assert "purge_csv_import_files" in {job.name for job in WorkerSettings.cron_jobs}


async def test_a_company_over_its_active_imports_gets_429_with_retry_after(
    settings: Settings,
    jwks: JwksServer,
    headers: dict[str, str],
    database_url: str,
    db: Db,
    bearer: Bearer,
) -> None:
    other = f.company(db, "Globex")
    other_headers = bearer(admin(db, other, "boss@globex.example"))
    content = (HEADER + "Ana Souza,ana@acme.example,,\n").encode()
    limited = settings.model_copy(update={"csv_import_max_active_per_company": 2})
    async with client_of(limited) as api:
        # At once: the uploads take turns at the company's lock, so exactly two pass.
        at_once = await asyncio.gather(*(upload(api, headers, content) for _ in range(4)))
        third = await upload(api, headers, content)
        elsewhere = await upload(api, other_headers, (HEADER + "Bo,bo@globex.example,,\n").encode())
        accepted = [r for r in at_once if r.status_code == 202]
        await process(database_url, accepted[0].json()["id"])
        after_one_finished = await upload(api, headers, content)

    assert sorted(r.status_code for r in at_once) == [202, 202, 429, 429]
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "too_many_imports"
    assert third.headers["Retry-After"] == str(csv_import.BUSY_RETRY_AFTER_SECONDS)
    assert elsewhere.status_code == 202  # another company has its own limit
    assert after_one_finished.status_code == 202
    assert counts(db)["csv_imports"] == 4
