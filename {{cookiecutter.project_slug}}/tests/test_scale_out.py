"""Two real worker processes on one queue: a job delivered twice at once (the reconciler,
an admin's second request, a retry racing its first try) still runs once."""

import uuid
from typing import Any
from uuid import UUID

import httpx
from arq.jobs import Job

from {{ cookiecutter.package_name }}.features.user_import.service import job_id_for
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.queue import create_queue

from . import factories as f
from .conftest import StartWorker
from .csv_helpers import finished, people, upload, wait_for
from .factories import Db, admin
from .tokens import Bearer

# Large enough that both deliveries are running while the first is still importing.
ROWS = 30_000


async def results(settings: Settings, job_ids: list[str]) -> list[Any]:
    queue = create_queue(settings)
    try:
        jobs = [Job(job_id, queue, _queue_name=settings.queue_name) for job_id in job_ids]
        return [await job.result(timeout=120, poll_delay=0.1) for job in jobs]
    finally:
        await queue.aclose()


async def test_an_import_delivered_to_two_workers_at_once_runs_once(
    api: httpx.AsyncClient,
    db: Db,
    bearer: Bearer,
    settings: Settings,
    start_worker: StartWorker,
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    response = await upload(api, headers, people(ROWS))
    assert response.status_code == 202
    import_id = response.json()["id"]
    # A second delivery under another job id, so arq's own de-duplication (one job per
    # id) does not stop it: only the import's lock in Postgres can.
    duplicate = f"duplicate-{uuid.uuid4()}"
    queue = create_queue(settings)
    try:
        assert await queue.enqueue_job("import_users_csv", import_id, _job_id=duplicate)
    finally:
        await queue.aclose()

    start_worker()
    start_worker()
    state = await wait_for(api, response.json()["status_url"], headers, finished, within=180)

    assert state["status"] == "completed", state
    assert state["attempts"] == 1
    assert state["counts"]["created"] == ROWS
    outcomes = sorted(
        r["status"] for r in await results(settings, [job_id_for(UUID(import_id)), duplicate])
    )
    assert outcomes == ["busy", "completed"]
    totals = db.execute(
        "SELECT count(*), count(DISTINCT u.email), count(t.id)"
        " FROM users AS u JOIN wallets AS w ON w.user_id = u.id"
        " LEFT JOIN wallet_transactions AS t ON t.wallet_id = w.id"
        " WHERE u.company_id = %s",
        (acme,),
    ).fetchone()
    assert totals == (ROWS, ROWS, ROWS)


async def test_two_weekly_resets_on_two_workers_reset_each_wallet_once(
    db: Db, settings: Settings, start_worker: StartWorker
) -> None:
    for name in ("Alpha", "Beta", "Gamma"):
        company = f.company(db, name, allowance=70)
        for i in range(300):
            f.user(db, company, f"user{i}@{name.lower()}.example", compliment=500)
    queue = create_queue(settings)
    job_ids = [f"reset-{uuid.uuid4()}" for _ in range(2)]
    try:
        for job_id in job_ids:  # queued before either worker starts, so both run at once
            assert await queue.enqueue_job("weekly_reset", _job_id=job_id)
    finally:
        await queue.aclose()

    start_worker()
    start_worker()
    summaries = await results(settings, job_ids)

    assert sum(s["wallets_reset"] for s in summaries) == 900
    assert sum(s["ledger_rows"] for s in summaries) == 900
    per_wallet = db.execute(
        "SELECT count(*), min(n), max(n), min(balance), max(balance) FROM ("
        " SELECT w.compliment_balance AS balance, count(t.id) FILTER (WHERE t.kind = 'RESET') AS n"
        " FROM wallets AS w LEFT JOIN wallet_transactions AS t ON t.wallet_id = w.id"
        " GROUP BY w.id) AS per_wallet"
    ).fetchone()
    assert per_wallet == (900, 1, 1, 70, 70)
