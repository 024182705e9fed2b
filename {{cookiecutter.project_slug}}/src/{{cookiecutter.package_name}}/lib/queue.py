"""Redis for arq, shared by the api (enqueue, readiness) and the worker.

The queue's mechanics live here and only here: enqueuing once per job id, clearing a
stale result, reading a job's state, releasing what a dead worker left. Features call
these and never touch arq's Redis keys themselves.
"""

import pickle
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import redis
from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import Job, JobResult, JobStatus
from redis.asyncio import ConnectionPool

from . import telemetry
from .config import Settings

# The job payload's key for the trace context of the code that enqueued it. arq reads its
# own keys only, so a payload with it runs on any worker.
TRACE_CONTEXT_KEY = "tc"

# The type features hold a queue as: arq's client, named once here.
JobQueue = ArqRedis


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


def health_check_key(settings: Settings) -> str:
    """Where the worker reports it is alive; `arq --check` reads it."""
    return f"{settings.queue_name}:health-check"


def create_queue(settings: Settings) -> ArqRedis:
    """A lazily connecting client: the api starts (and reports not ready) without Redis."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.health_timeout_seconds,
        socket_timeout=settings.health_timeout_seconds,
    )
    return ArqRedis(pool, default_queue_name=settings.queue_name, job_serializer=serialize_job)


def serialize_job(data: dict[str, Any]) -> bytes:
    """arq's pickle, a job's payload carrying the current trace (when there is one), so
    the worker's job span continues the request's trace."""
    if "f" in data and "r" not in data and (carrier := telemetry.trace_context()):
        data = {**data, TRACE_CONTEXT_KEY: carrier}
    return pickle.dumps(data)


def deserialize_job(raw: bytes) -> dict[str, Any]:
    """The worker's side: hand the job's trace context to its span (`job_started`)."""
    data: dict[str, Any] = pickle.loads(raw)  # noqa: S301 (arq's own format, from our Redis)
    if "f" in data and "r" not in data:
        telemetry.job_received(data["f"], data.get(TRACE_CONTEXT_KEY))
    return data


# --- Jobs by id ----------------------------------------------------------------------


class JobState(StrEnum):
    queued = "queued"
    in_progress = "in_progress"
    complete = "complete"
    not_found = "not_found"


@dataclass(frozen=True)
class JobInfo:
    """What Redis holds of a job: `not_found` leaves every other field empty."""

    state: JobState
    function: str | None = None
    args: tuple[Any, ...] = ()
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    success: bool | None = None
    result: Any = None


async def enqueue_once(
    queue: ArqRedis,
    function: str,
    *args: Any,
    job_id: str,
    queue_name: str | None = None,
    defer_by: float | None = None,
) -> bool:
    """Enqueue `function(*args)` as job `job_id`; False when a job with that id is
    already queued, running, or finished with its result still kept (arq refuses the
    id then, which makes a deterministic id enqueue once)."""
    job = await queue.enqueue_job(
        function, *args, _job_id=job_id, _queue_name=queue_name, _defer_by=defer_by
    )
    return job is not None


async def clear_result(queue: ArqRedis, job_id: str) -> None:
    """Forget a finished job's result, so its id can be enqueued again."""
    await queue.delete(result_key_prefix + job_id)


async def job_info(queue: ArqRedis, job_id: str, queue_name: str | None = None) -> JobInfo:
    """The job's state, with its function, arguments and times when Redis holds it."""
    job = Job(job_id, queue, _queue_name=queue_name or queue.default_queue_name)
    status = await job.status()
    # `info` reads the result, then the job: a job finishing in between (which deletes
    # the job and writes the result at once) is found on a second look.
    info = await job.info() or await job.result_info()
    if info is None:
        return JobInfo(state=JobState.not_found)
    if isinstance(info, JobResult):
        return JobInfo(
            state=JobState.complete,
            function=info.function,
            args=tuple(info.args),
            enqueued_at=info.enqueue_time,
            started_at=info.start_time,
            finished_at=info.finish_time,
            success=info.success,
            result=info.result,
        )
    state = JobState.in_progress if status == JobStatus.in_progress else JobState.queued
    return JobInfo(
        state=state, function=info.function, args=tuple(info.args), enqueued_at=info.enqueue_time
    )


async def release_abandoned(queue: ArqRedis, job_id: str, queue_name: str) -> bool:
    """Clear what a dead worker left of job `job_id`: its in-progress mark (which would
    keep live workers off it until arq's own timeout) and, when the job is no longer
    queued, its leftovers (a result, a stray job key) that would make arq refuse the id.
    True when the job is still queued, so a live worker takes it now."""
    await queue.delete(in_progress_key_prefix + job_id)
    if await queue.zscore(queue_name, job_id) is not None:
        return True
    await queue.delete(
        job_key_prefix + job_id, result_key_prefix + job_id, retry_key_prefix + job_id
    )
    return False


def backlog(client: redis.Redis, queue_name: str, now_ms: float) -> tuple[int, list[float]]:
    """The jobs due now (waiting or running), and when each of the oldest 100 due jobs
    not yet started was due (ms). A sync client: the metric reader's thread calls it."""
    due = cast(int, client.zcount(queue_name, "-inf", now_ms))
    # Jobs stay in the queue while they run: the ones not marked in progress wait.
    first = cast(
        list[tuple[bytes, float]],
        client.zrangebyscore(queue_name, "-inf", now_ms, start=0, num=100, withscores=True),
    )
    pipe = client.pipeline(transaction=False)
    for job_id, _ in first:
        pipe.exists(in_progress_key_prefix + job_id.decode())
    started = pipe.execute() if first else []
    return due, [score for (_, score), busy in zip(first, started, strict=True) if not busy]
