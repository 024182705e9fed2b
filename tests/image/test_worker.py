"""The worker's start command, as Railway runs it: a job run, SIGTERM."""

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from arq.connections import RedisSettings, create_pool

from ..helpers import STARTER
from .containers import Container, Image
from .deploy import (
    REDIS_URL,
    Service,
    Starter,
    add_company,
    add_starter_company,
    add_starter_user,
    add_user,
    assert_stops_cleanly,
    compliment_balance,
    migrate,
    wait_until_worker_healthy,
)

pytestmark = [pytest.mark.slow, pytest.mark.image]


async def enqueue_and_wait(queue: str, function: str, *args: str) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL), default_queue_name=queue)
    try:
        job = await pool.enqueue_job(function, *args, _queue_name=queue)
        assert job is not None
        try:
            return await job.result(timeout=60, poll_delay=0.1)
        finally:
            await pool.delete(f"arq:result:{job.job_id}", f"arq:job:{job.job_id}")
    finally:
        await pool.aclose()


@pytest.mark.parametrize("variant", ["default"], indirect=True)
def test_worker_start_command_runs_an_enqueued_job(
    railway: dict[str, Service],
    containers: Callable[[], Container],
    start: Starter,
    database: str,
    queue_name: str,
) -> None:
    container = containers()
    migrate(container, railway["api"], database, queue_name)
    with psycopg.connect(database, autocommit=True) as db:
        acme = add_company(db, "Acme", allowance=80)
        other = add_company(db, "Other", allowance=80)
        alice = add_user(db, acme, "alice@acme.example", compliment=500)
        oscar = add_user(db, other, "oscar@other.example", compliment=500)
        worker = start("worker", container=container)
        wait_until_worker_healthy(worker, queue_name)
        assert 0 not in worker.uids()

        summary = asyncio.run(enqueue_and_wait(queue_name, "weekly_reset", acme))

        assert summary["companies"] == 1, summary
        assert summary["ledger_rows"] == 1, summary
        assert compliment_balance(db, alice) == 80
        assert compliment_balance(db, oscar) == 500
        kinds = db.execute(
            "SELECT kind FROM wallet_transactions WHERE user_id = %s", (alice,)
        ).fetchall()
        assert kinds == [("RESET",)]
    worker.assert_running()


@pytest.mark.parametrize("variant", [STARTER], indirect=True)
def test_worker_start_command_runs_the_starters_export_job(
    railway: dict[str, Service],
    containers: Callable[[], Container],
    start: Starter,
    database: str,
    queue_name: str,
) -> None:
    container = containers()
    migrate(container, railway["api"], database, queue_name)
    with psycopg.connect(database, autocommit=True) as db:
        acme = add_starter_company(db, "Acme")
        other = add_starter_company(db, "Other")
        ana = add_starter_user(db, acme, "ana@acme.example")
        add_starter_user(db, acme, "bob@acme.example")
        add_starter_user(db, other, "oscar@other.example")
        row = db.execute(
            "INSERT INTO user_exports (company_id, requested_by) VALUES (%s, %s) RETURNING id",
            (acme, ana),
        ).fetchone()
        assert row is not None
        export = str(row[0])
        worker = start("worker", container=container)
        wait_until_worker_healthy(worker, queue_name)
        assert 0 not in worker.uids()

        result = asyncio.run(enqueue_and_wait(queue_name, "export_users", export))

        assert result == {"export_id": export, "rows": 2, "already_done": False}, result
        stored = db.execute(
            "SELECT status, content FROM user_exports WHERE id = %s", (export,)
        ).fetchone()
        assert stored is not None
        assert stored[0] == "done", stored
        assert "ana@acme.example" in stored[1]
        assert "oscar@other.example" not in stored[1]
    worker.assert_running()


def test_sigterm_stops_the_worker_cleanly(image: Image, start: Starter, queue_name: str) -> None:
    worker = start("worker")
    wait_until_worker_healthy(worker, queue_name)

    assert_stops_cleanly(worker, image, "worker", timeout=40)
    assert "shutdown" in worker.output().lower()
