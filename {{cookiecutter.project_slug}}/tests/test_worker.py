"""The worker process, started for real, running jobs enqueued through arq."""

import signal
import subprocess
import uuid

from arq.jobs import Job, JobStatus

from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.queue import create_queue
{%- if cookiecutter.examples == "kudos" %}

from . import factories as f
from .conftest import arq_check
from .factories import Db
{%- else %}

from .conftest import arq_check
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}


async def test_worker_runs_the_weekly_reset_job(
    worker: "subprocess.Popen[str]", settings: Settings, db: Db
) -> None:
    acme = f.company(db, "Acme", allowance=80)
    other = f.company(db, "Other", allowance=80)
    alice = f.user(db, acme, "alice@acme.example", compliment=500)
    oscar = f.user(db, other, "oscar@other.example", compliment=500)
    queue = create_queue(settings)
    try:
        job = await queue.enqueue_job("weekly_reset", str(acme))
        assert job is not None
        summary = await job.result(timeout=30, poll_delay=0.1)
    finally:
        await queue.aclose()

    assert summary["companies"] == 1
    assert summary["ledger_rows"] == 1
    assert f.balances(db, alice) == (80, 0)
    assert f.balances(db, oscar) == (500, 0)
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=15)
    # The service's own log line carries the job's id.
    assert any(
        "weekly reset finished" in line and f"job_id={job.job_id}" in line
        for line in output.splitlines()
    ), output
{%- endif %}


async def test_a_job_id_is_enqueued_once(settings: Settings) -> None:
    """The API can hand {% if cookiecutter.examples == "kudos" %}the reset{% else %}a job{% endif %} over idempotently with a job id."""
    queue = create_queue(settings)
    job_id = f"{% if cookiecutter.examples == "kudos" %}weekly-reset{% else %}user-export{% endif %}-{uuid.uuid4()}"
    try:
        first = await queue.enqueue_job("{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", _job_id=job_id)
        second = await queue.enqueue_job("{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", _job_id=job_id)
        assert first is not None
        assert second is None
        assert await Job(job_id, queue, _queue_name=settings.queue_name).status() == (
            JobStatus.queued
        )
    finally:
        await queue.zrem(settings.queue_name, job_id)
        await queue.delete(f"arq:job:{job_id}")
        await queue.aclose()


def test_check_passes_with_a_running_worker(
    worker: "subprocess.Popen[str]", process_env: dict[str, str]
) -> None:
    # What compose.yaml's health check of the worker service runs.
    assert arq_check(process_env) == 0


def test_sigterm_stops_the_worker_cleanly(
    worker: "subprocess.Popen[str]", process_env: dict[str, str]
) -> None:
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=15)

    assert worker.returncode == 0, output
    assert "shutdown" in output.lower()


def test_check_fails_without_a_worker(process_env: dict[str, str]) -> None:
    env = {**process_env, "QUEUE_NAME": f"nobody-listens-{uuid.uuid4().hex}"}
    assert arq_check(env) != 0
