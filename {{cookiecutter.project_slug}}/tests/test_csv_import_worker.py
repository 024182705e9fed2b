"""The CSV user import through real worker processes: delivery, loss of Redis, SIGKILL."""

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest
import redis

from {{ cookiecutter.package_name }}.features.admin.users.csv_import import job_id_for
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.queue import health_check_key

from . import factories as f
from .conftest import ARQ, PROJECT_ROOT, WORKER
from .csv_helpers import admin, counts, imported_users, upload
from .factories import Db

Bearer = Callable[[str], dict[str, str]]
StartWorker = Callable[[], "subprocess.Popen[str]"]


@pytest.fixture
def start_worker(process_env: dict[str, str], settings: Settings) -> Iterator[StartWorker]:
    """`start_worker()`: a real worker process, once healthy; all are killed at the end."""
    started: list[subprocess.Popen[str]] = []
    client = redis.Redis.from_url(settings.redis_url)

    def start() -> "subprocess.Popen[str]":
        client.delete(health_check_key(settings))
        proc = subprocess.Popen(
            [ARQ, WORKER],
            env=process_env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        # The key `arq --check` reads, polled directly: quicker than spawning arq each time.
        deadline = time.monotonic() + 30
        while not client.exists(health_check_key(settings)):
            assert proc.poll() is None, proc.stdout and proc.stdout.read()
            assert time.monotonic() < deadline, "the worker did not start within 30 s"
            time.sleep(0.05)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def empty_queue(settings: Settings) -> None:
    """Jobs other tests left in the queue would run in these tests' workers."""
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(settings.queue_name)


async def wait_for(
    api: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    done: Callable[[dict[str, Any]], bool],
    within: float = 90,
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await api.get(url, headers=headers)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        if done(state):
            return state
        assert time.monotonic() < deadline, f"gave up waiting: {state}"
        await asyncio.sleep(0.2)


def finished(state: dict[str, Any]) -> bool:
    return state["status"] in {"completed", "failed"}


def people(n: int, start: int = 0) -> bytes:
    lines = ["name,email,department,job_title"]
    lines += [f"Person {i},person{i}@acme.example,Dept {i % 7},Title" for i in range(start, n)]
    return ("\n".join(lines) + "\n").encode()


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
    assert state["counts"] == {"rows": 4, "created": 1, "skipped": 1, "invalid": 2}
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
    assert state["counts"] == {"rows": rows + 2, "created": rows, "skipped": 0, "invalid": 2}
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
