"""The CSV user import through real worker processes: delivery, loss of Redis, SIGKILL,
SIGTERM."""

import asyncio
import signal
import time
from uuid import UUID

import httpx
import redis

from {{ cookiecutter.package_name }}.features.user_import.service import job_id_for
from {{ cookiecutter.package_name }}.lib.config import Settings

from . import factories as f
from .conftest import StartWorker
from .csv_helpers import (
    counts,
    finished,
    import_lock_held,
    imported_users,
    people,
    upload,
    wait_for,
)
from .factories import Db, admin
from .tokens import Bearer


async def test_upload_to_completed_through_a_real_worker(
    api: httpx.AsyncClient,
    db: Db,
    bearer: Bearer,
    start_worker: StartWorker,
) -> None:
    acme = f.company(db, "Acme", allowance=120)
    headers = bearer(admin(db, acme, "boss@acme.example"))
    f.user(db, acme, "old@acme.example")
    start_worker()
    content = (
        "nome;email;departamento;cargo\r\n"
        "José Araújo;jose@acme.example;Vendas;Gerente\r\n"
        "Old;old@acme.example;;\r\n"
        "J;jose@acme.example;;\r\n"
        "Ana;ana@acme;;\r\n"
    ).encode("cp1252")

    response = await upload(api, headers, content)
    assert response.status_code == 202
    state = await wait_for(api, response.json()["status_url"], headers, finished)

    assert state["status"] == "completed", state
    assert state["counts"] == {
        "rows": 4,
        "created": 1,
        "skipped": 1,
        "deactivated": 0,
        "invalid": 2,
    }
    assert [(e["row_number"], e["field"]) for e in state["errors"]["items"]] == [
        (4, "name"),
        (5, "email"),
    ]
    assert imported_users(db, acme)["jose@acme.example"] == (
        "José Araújo",
        "Vendas",
        "Gerente",
        120,
    )


async def test_an_import_redis_lost_is_completed_by_the_reconciler(
    api: httpx.AsyncClient,
    db: Db,
    bearer: Bearer,
    settings: Settings,
    start_worker: StartWorker,
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    response = await upload(api, headers, people(50))
    import_id = UUID(response.json()["id"])
    # What a Redis restart without persistence (or a FLUSHALL) does to this import's job;
    # done key by key so that other test runs sharing this Redis are left alone.
    client = redis.Redis.from_url(settings.redis_url)
    job_id = job_id_for(import_id)
    assert client.zscore(settings.queue_name, job_id) is not None
    client.delete(settings.queue_name, f"arq:job:{job_id}")

    start_worker()  # its start-up reconciliation finds the pending import
    state = await wait_for(api, response.json()["status_url"], headers, finished)

    assert state["status"] == "completed"
    assert state["counts"]["created"] == 50


async def test_a_worker_killed_mid_file_is_resumed_exactly_once(
    api: httpx.AsyncClient,
    db: Db,
    bearer: Bearer,
    start_worker: StartWorker,
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    # Large enough that the worker is still reading it half a second after it started.
    rows = 150_000
    content = people(rows) + b"Dup,person7@acme.example,,\nX,bad,,\n"
    response = await upload(api, headers, content)
    url = response.json()["status_url"]
    first = start_worker()
    await wait_for(api, url, headers, lambda s: s["status"] == "processing")
    await asyncio.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    state = (await api.get(url, headers=headers)).json()
    assert state["status"] == "processing", "the import finished before the kill: make it larger"
    assert counts(db)["users"] == 1  # only the admin: the killed attempt left nothing

    start_worker()
    state = await wait_for(api, url, headers, finished, within=180)

    assert state["status"] == "completed", state
    assert state["attempts"] == 2
    assert state["counts"] == {
        "rows": rows + 2,
        "created": rows,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 2,
    }
    duplicates = db.execute(
        "SELECT count(*) FROM (SELECT email FROM users GROUP BY email HAVING count(*) > 1) AS d"
    ).fetchone()
    assert duplicates == (0,)
    totals = db.execute(
        "SELECT (SELECT count(*) FROM users WHERE company_id = %(c)s),"
        " (SELECT count(*) FROM wallets AS w JOIN users AS u ON u.id = w.user_id"
        "  WHERE u.company_id = %(c)s),"
        " (SELECT count(*) FROM wallet_transactions WHERE reason = 'Initial weekly allowance')",
        {"c": acme},
    ).fetchone()
    assert totals == (rows + 1, rows, rows)
    assert counts(db)["csv_import_errors"] == 3  # duplicate row, and row "X,bad": 2 fields


# What the test's workers give a running job on SIGTERM (WORKER_SHUTDOWN_WAIT_SECONDS):
# 20 s in production, shortened here so that an import outlasts it in a quick test.
SHUTDOWN_WAIT = 1
# What the docs leave after the wait (drainingSeconds 30 - 20): the cancelled import
# stops and rolls back, then the worker exits, before the platform's SIGKILL.
CLEANUP_SECONDS = 10


async def test_a_worker_stopped_mid_file_rolls_back_and_the_next_resumes_it(
    api: httpx.AsyncClient,
    db: Db,
    bearer: Bearer,
    settings: Settings,
    start_worker: StartWorker,
) -> None:
    """A deploy's SIGTERM: the import gets the shutdown wait, is stopped and rolled back,
    its job stays queued, and the next worker imports the file exactly once."""
    acme = f.company(db, "Acme", allowance=70)
    headers = bearer(admin(db, acme, "boss@acme.example"))
    f.user(db, acme, "old@acme.example", compliment=5)
    # Several times SHUTDOWN_WAIT to import (about 6 s on two busy cores).
    rows = 150_000
    content = people(rows) + b"Dup,person7@acme.example,,\nX,bad,,\nOld,old@acme.example,,\n"
    response = await upload(api, headers, content)
    assert response.status_code == 202, response.text
    import_id = UUID(response.json()["id"])
    url = response.json()["status_url"]
    first = start_worker(WORKER_SHUTDOWN_WAIT_SECONDS=str(SHUTDOWN_WAIT))
    await wait_for(api, url, headers, lambda s: s["status"] == "processing", within=30)
    assert import_lock_held(db, import_id)  # a live worker is on it

    first.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    exit_code = first.wait(timeout=SHUTDOWN_WAIT + CLEANUP_SECONDS)
    stopped_after = time.monotonic() - sent
    first_log = first.stdout.read() if first.stdout else ""

    state = (await api.get(url, headers=headers)).json()
    assert state["status"] == "processing", "not stopped, or too small to outlast the wait"
    assert exit_code == 0, first_log  # arq's graceful exit
    assert stopped_after >= SHUTDOWN_WAIT, "the running job was not given the shutdown wait"
    assert f"import {import_id} stopped and rolled back" in first_log, first_log
    assert "import_users_csv cancelled, will be run again" in first_log, first_log
    # Rolled back: no user, wallet, ledger row or row error of the attempt; the file kept.
    assert state["attempts"] == 1
    assert state["counts"] == {
        "rows": 0,
        "created": 0,
        "skipped": 0,
        "deactivated": 0,
        "invalid": 0,
    }
    assert counts(db) | {"csv_import_chunks": 0} == {
        "csv_imports": 1,
        "csv_import_chunks": 0,
        "csv_import_errors": 0,
        "users": 2,
        "wallets": 1,
    }
    assert counts(db)["csv_import_chunks"] > 0
    # The lock went with the attempt, and the job is back in the queue, not in progress:
    # the next worker takes it at once.
    assert not import_lock_held(db, import_id)
    client = redis.Redis.from_url(settings.redis_url)
    job_id = job_id_for(import_id)
    assert client.zscore(settings.queue_name, job_id) is not None
    assert not client.exists(f"arq:in-progress:{job_id}")

    second = start_worker()
    state = await wait_for(api, url, headers, finished, within=60)
    second.send_signal(signal.SIGTERM)  # idle: it exits at once
    assert second.wait(timeout=CLEANUP_SECONDS) == 0
    second_log = second.stdout.read() if second.stdout else ""

    assert state["status"] == "completed", state
    assert state["attempts"] == 2
    assert state["counts"] == {
        "rows": rows + 3,
        "created": rows,
        "skipped": 1,
        "deactivated": 0,
        "invalid": 2,
    }
    assert f"{job_id}:import_users_csv('{import_id}') try=2" in second_log, second_log
    assert f"import {import_id} completed" in second_log, second_log
    duplicates = db.execute(
        "SELECT count(*) FROM (SELECT email FROM users GROUP BY email HAVING count(*) > 1) AS d"
    ).fetchone()
    assert duplicates == (0,)
    # Every new user: one wallet at the allowance, one ledger row of this import saying so.
    db.execute("ANALYZE users, wallets, wallet_transactions")  # fresh rows: plan the checks
    wallets = db.execute(
        "SELECT count(*), count(DISTINCT w.user_id), min(w.compliment_balance),"
        " max(w.compliment_balance) FROM wallets AS w JOIN users AS u ON u.id = w.user_id"
        " WHERE u.company_id = %s AND u.email LIKE 'person%%'",
        (acme,),
    ).fetchone()
    assert wallets == (rows, rows, 70, 70)
    ledger = db.execute(
        "SELECT count(*), count(DISTINCT t.user_id), count(*) FILTER ("
        "  WHERE u.email LIKE 'person%%' AND t.amount = 70"
        "  AND t.reason = 'Initial weekly allowance'"
        "  AND t.metadata ->> 'csv_import_id' = %s)"
        " FROM wallet_transactions AS t JOIN users AS u ON u.id = t.user_id",
        (str(import_id),),
    ).fetchone()
    assert ledger == (rows, rows, rows)
    assert counts(db)["csv_import_errors"] == 3  # duplicate row, and row "X,bad": 2 fields
