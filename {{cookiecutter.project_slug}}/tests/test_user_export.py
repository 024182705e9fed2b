"""The user export: the api records it and queues it, the real worker writes the CSV, the
admin follows it and downloads it. Each company sees its own export and people only."""

import csv
import io
import subprocess
from uuid import UUID

import httpx
import pytest

from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.queue import create_queue

from . import factories as f
from .checks import wait_for_status
from .conftest import StartWorker, client_of
from .factories import Db, admin
from .tokens import Bearer, JwksServer

EXPORTS = "/admin/users/exports"


@pytest.fixture
def tenants(db: Db) -> dict[str, UUID]:
    acme, globex = f.company(db, "Acme"), f.company(db, "Globex")
    f.domain(db, acme, "acme-labs.example")
    f.member(db, acme, "eve@acme.example")
    f.user(db, acme, "zoe@acme-labs.example", active=False)
    # A name a spreadsheet would run as a formula.
    db.execute(
        "UPDATE users SET name = '=HYPERLINK(1)', department = 'Sales' WHERE email = %s",
        ("zoe@acme-labs.example",),
    )
    f.member(db, globex, "gil@globex.example")
    return {"acme": acme, "globex": globex}


async def test_an_export_runs_in_the_worker_and_holds_the_own_company_only(
    api: httpx.AsyncClient,
    db: Db,
    tenants: dict[str, UUID],
    bearer: Bearer,
    worker: "subprocess.Popen[str]",
) -> None:
    acme_admin = bearer(admin(db, tenants["acme"], "ada@acme.example"))
    globex_admin = bearer(admin(db, tenants["globex"], "gus@globex.example"))

    accepted = await api.post(EXPORTS, headers=acme_admin)
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    assert accepted.json() == {"status_url": status_url}
    assert status_url.startswith(f"{EXPORTS}/")

    done = await wait_for_status(api, status_url, acme_admin)
    assert done["rows"] == 3
    assert done["finished_at"] is not None
    assert done["csv_url"] == f"{status_url}/csv"

    download = await api.get(done["csv_url"], headers=acme_admin)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["email"] for row in rows] == [
        "ada@acme.example",
        "eve@acme.example",
        "zoe@acme-labs.example",
    ]
    zoe = rows[2]
    assert (zoe["name"], zoe["department"], zoe["is_active"]) == (
        "'=HYPERLINK(1)",
        "Sales",
        "false",
    )
    assert [row["signed_in"] for row in rows] == ["true", "true", "false"]
    assert "globex" not in download.text

    # Another company's admin: neither the status nor the file exist for them.
    for url in (status_url, done["csv_url"]):
        refused = await api.get(url, headers=globex_admin)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "export_not_found"

    # Globex's own export holds Globex's people only.
    theirs = await api.post(EXPORTS, headers=globex_admin)
    theirs_done = await wait_for_status(api, theirs.json()["status_url"], globex_admin)
    theirs_csv = (await api.get(theirs_done["csv_url"], headers=globex_admin)).text
    assert [r["email"] for r in csv.DictReader(io.StringIO(theirs_csv))] == [
        "gil@globex.example",
        "gus@globex.example",
    ]


async def test_the_file_is_not_ready_before_the_worker_wrote_it(
    api: httpx.AsyncClient, db: Db, tenants: dict[str, UUID], bearer: Bearer, settings: Settings
) -> None:
    headers = bearer(admin(db, tenants["acme"], "ada@acme.example"))
    accepted = await api.post(EXPORTS, headers=headers)
    status = await api.get(accepted.json()["status_url"], headers=headers)
    assert (status.json()["status"], status.json()["rows"], status.json()["csv_url"]) == (
        "pending",
        None,
        None,
    )
    early = await api.get(accepted.json()["status_url"] + "/csv", headers=headers)
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "export_not_ready"
    missing = await api.get(f"{EXPORTS}/{UUID(int=1)}", headers=headers)
    assert missing.json()["error"]["code"] == "export_not_found"
    bad = await api.get(f"{EXPORTS}/not-an-id", headers=headers)
    assert bad.status_code == 422


async def test_without_redis_the_export_is_kept_and_the_worker_catches_up(
    settings: Settings,
    jwks: JwksServer,
    api: httpx.AsyncClient,
    db: Db,
    tenants: dict[str, UUID],
    bearer: Bearer,
    start_worker: StartWorker,
) -> None:
    headers = bearer(admin(db, tenants["acme"], "ada@acme.example"))
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with client_of(down) as no_redis:
        accepted = await no_redis.post(EXPORTS, headers=headers)
    # Recorded, though not queued: the request is not lost.
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.json()["status_url"]
    assert (await api.get(status_url, headers=headers)).json()["status"] == "pending"
    # Old enough to be taken as lost; and another one past its retention (24 h).
    db.execute("UPDATE user_exports SET created_at = now() - interval '11 minutes'")
    db.execute(
        "INSERT INTO user_exports (company_id, requested_by, created_at)"
        " SELECT company_id, id, now() - interval '25 hours' FROM users"
        " WHERE email = 'eve@acme.example'"
    )

    # The worker's tidy-up runs at its start (and hourly): it queues the lost one again.
    start_worker()
    done = await wait_for_status(api, status_url, headers)
    assert done["rows"] == 3
    assert db.execute("SELECT count(*) FROM user_exports").fetchone() == (1,)


async def test_writing_an_export_again_changes_nothing(
    api: httpx.AsyncClient,
    db: Db,
    tenants: dict[str, UUID],
    bearer: Bearer,
    settings: Settings,
    worker: "subprocess.Popen[str]",
) -> None:
    """A job delivered twice (a retry after a dead worker) leaves the first file as it is."""
    headers = bearer(admin(db, tenants["acme"], "ada@acme.example"))
    accepted = await api.post(EXPORTS, headers=headers)
    done = await wait_for_status(api, accepted.json()["status_url"], headers)
    first = (await api.get(done["csv_url"], headers=headers)).text
    f.user(db, tenants["acme"], "late@acme.example")
    export_id = done["id"]
    queue = create_queue(settings)
    try:
        job = await queue.enqueue_job("export_users", export_id)
        assert job is not None
        result = await job.result(timeout=10)
    finally:
        await queue.aclose()
    assert result == {"export_id": export_id, "rows": 3, "already_done": True}
    assert (await api.get(done["csv_url"], headers=headers)).text == first
