"""The queue's mechanics (lib/queue.py) against a real Redis: each function, and the
arq behaviours they stand on (a job id enqueued once, a result that blocks its id)."""

import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from arq.constants import in_progress_key_prefix, result_key_prefix
from arq.jobs import serialize_result

from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.queue import (
    JobQueue,
    JobState,
    backlog,
    clear_result,
    create_queue,
    enqueue_once,
    job_info,
    release_abandoned,
)


@pytest.fixture
async def queue(settings: Settings) -> AsyncIterator[JobQueue]:
    client = create_queue(settings)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def job_id(settings: Settings, queue: JobQueue) -> AsyncIterator[str]:
    """A fresh id; whatever the test left of its job is removed, so no worker runs it."""
    job_id = f"queue-test:{uuid.uuid4()}"
    yield job_id
    await queue.zrem(settings.queue_name, job_id)
    assert not await release_abandoned(queue, job_id, settings.queue_name)


async def write_result(queue: JobQueue, settings: Settings, job_id: str, *, success: bool) -> None:
    """What a worker leaves when it finishes the job `{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}("acme")`."""
    now = int(time.time() * 1000)
    result = serialize_result(
        "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}",
        ("acme",),
        {},
        1,
        now,
        success,
        {"ok": 1} if success else RuntimeError("database down"),
        now,
        now,
        "test",
        settings.queue_name,
        job_id,
    )
    assert result is not None
    await queue.set(result_key_prefix + job_id, result, px=60_000)


async def test_a_job_id_is_enqueued_once(queue: JobQueue, job_id: str) -> None:
    assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    assert not await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    info = await job_info(queue, job_id)
    assert (info.state, info.function, info.args) == (JobState.queued, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", ("acme",))
    assert info.enqueued_at is not None
    assert info.finished_at is None


async def test_an_unknown_job_is_not_found(queue: JobQueue, job_id: str) -> None:
    info = await job_info(queue, job_id)
    assert info.state is JobState.not_found
    assert (info.function, info.args, info.success) == (None, (), None)


async def test_a_job_a_worker_holds_is_in_progress(
    queue: JobQueue, job_id: str, settings: Settings
) -> None:
    assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    await queue.set(in_progress_key_prefix + job_id, b"1", px=60_000)
    assert (await job_info(queue, job_id)).state is JobState.in_progress


async def test_a_finished_job_reads_its_result(
    queue: JobQueue, job_id: str, settings: Settings
) -> None:
    await write_result(queue, settings, job_id, success=True)
    info = await job_info(queue, job_id)
    assert (info.state, info.success, info.result) == (JobState.complete, True, {"ok": 1})
    assert (info.function, info.args) == ("{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", ("acme",))
    assert info.started_at is not None
    assert info.finished_at is not None


async def test_a_stale_result_blocks_its_id_until_cleared(
    queue: JobQueue, job_id: str, settings: Settings
) -> None:
    await write_result(queue, settings, job_id, success=False)
    assert not await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    assert (await job_info(queue, job_id)).success is False

    await clear_result(queue, job_id)
    assert (await job_info(queue, job_id)).state is JobState.not_found
    assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    assert (await job_info(queue, job_id)).state is JobState.queued


async def test_a_queued_job_a_dead_worker_held_is_released(
    queue: JobQueue, job_id: str, settings: Settings
) -> None:
    assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    await queue.set(in_progress_key_prefix + job_id, b"1", px=60_000)

    assert await release_abandoned(queue, job_id, settings.queue_name)
    assert not await queue.exists(in_progress_key_prefix + job_id)
    assert (await job_info(queue, job_id)).state is JobState.queued


async def test_the_leftovers_of_a_job_no_longer_queued_are_cleared(
    queue: JobQueue, job_id: str, settings: Settings
) -> None:
    # The job's key and a result, but no place in the queue (a Redis that lost it).
    assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)
    await queue.zrem(settings.queue_name, job_id)
    await write_result(queue, settings, job_id, success=True)
    assert not await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)

    assert not await release_abandoned(queue, job_id, settings.queue_name)
    assert (await job_info(queue, job_id)).state is JobState.not_found
    assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", "acme", job_id=job_id)


@pytest.fixture
def backlog_queue(settings: Settings) -> Iterator[Settings]:
    """A queue of its own (under the run's name, which the session checks is left clean)."""
    own = settings.model_copy(update={"queue_name": f"{settings.queue_name}-backlog"})
    yield own
    client = redis.Redis.from_url(own.redis_url)
    try:
        client.delete(own.queue_name)
    finally:
        client.close()


async def test_the_backlog_counts_due_jobs_and_dates_the_waiting_ones(
    backlog_queue: Settings,
) -> None:
    name = backlog_queue.queue_name
    queue = create_queue(backlog_queue)
    ids = [f"queue-test:{uuid.uuid4()}" for _ in range(3)]
    client = redis.Redis.from_url(backlog_queue.redis_url)
    try:
        before = time.time() * 1000
        waiting, running, later = ids
        assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", job_id=waiting, queue_name=name)
        assert await enqueue_once(queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", job_id=running, queue_name=name)
        assert await enqueue_once(
            queue, "{% if cookiecutter.examples == "kudos" %}weekly_reset{% else %}export_users{% endif %}", job_id=later, queue_name=name, defer_by=3600
        )
        await queue.set(in_progress_key_prefix + running, b"1", px=60_000)

        # arq rounds its scores to the millisecond: one is at most half a ms ahead of now.
        now = time.time() * 1000 + 1
        due, scores = backlog(client, name, now)
        # The deferred job is not due; the running one is due but does not wait.
        assert due == 2
        assert len(scores) == 1
        assert before - 1 <= scores[0] <= now
    finally:
        for job_id in ids:
            await queue.zrem(name, job_id)
            await release_abandoned(queue, job_id, name)
        await queue.aclose()
        client.close()
