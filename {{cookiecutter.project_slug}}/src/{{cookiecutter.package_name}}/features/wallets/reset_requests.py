"""Handing one company's weekly reset to the worker, and reading how it went.

The job id names the company and the period, `weekly-reset:<company id>:<period start>`:

- a second request in the same period (a double click, two admins) finds the job
  already there and gets the same id back, so it is enqueued once;
- a status lookup checks the company in the id (and in the job's own arguments), so
  one company cannot read another's jobs.

The reset itself stays idempotent per period: if the scheduled run already reset the
company this week, the job finds nothing to do (`companies_already_reset` is 1). The
worker resets for the week in which it runs the job; a job queued late on a Sunday and
run after midnight is that new week's reset, which the Monday cron then skips.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any
from uuid import UUID

from arq.connections import ArqRedis
from arq.constants import result_key_prefix
from arq.jobs import Job, JobResult, JobStatus
from redis.exceptions import RedisError

from ...lib.errors import AppError, NotFoundError
from .service import period_start_for

JOB_FUNCTION = "weekly_reset"
JOB_PREFIX = "weekly-reset"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class QueueUnavailableError(AppError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    code = "queue_unavailable"


class JobState(StrEnum):
    queued = "queued"
    in_progress = "in_progress"
    complete = "complete"
    not_found = "not_found"


@dataclass(frozen=True)
class ResetRequest:
    job_id: str
    period_start: date
    already_enqueued: bool


@dataclass(frozen=True)
class ResetJob:
    job_id: str
    state: JobState
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    success: bool | None = None
    summary: dict[str, Any] | None = None


def reset_job_id(company_id: UUID, period_start: date) -> str:
    return f"{JOB_PREFIX}:{company_id}:{period_start.isoformat()}"


def _company_of(job_id: str) -> UUID | None:
    """The company a reset job id names, or None when it is not a reset job id."""
    prefix, _, rest = job_id.partition(":")
    company, _, period = rest.partition(":")
    if prefix != JOB_PREFIX:
        return None
    try:
        date.fromisoformat(period)
        return UUID(company)
    except ValueError:
        return None


def _queue_unavailable(exc: Exception) -> QueueUnavailableError:
    return QueueUnavailableError(
        f"the job queue cannot be reached; try again later ({type(exc).__name__})"
    )


async def request_weekly_reset(
    queue: ArqRedis, company_id: UUID, *, now: datetime | None = None
) -> ResetRequest:
    """Enqueue the weekly reset of one company, once per period.

    When this period's job is already queued, running or finished, its id is returned
    (`already_enqueued`). A job that finished with an error is replaced, so the admin
    can try again.
    """
    period_start = period_start_for(now or datetime.now(UTC))
    job_id = reset_job_id(company_id, period_start)
    try:
        job = await queue.enqueue_job(JOB_FUNCTION, str(company_id), _job_id=job_id)
        if job is None:
            previous = await Job(job_id, queue, _queue_name=queue.default_queue_name).result_info()
            if previous is not None and not previous.success:
                await queue.delete(result_key_prefix + job_id)
                # None again when a concurrent request re-enqueued it first: same job.
                job = await queue.enqueue_job(JOB_FUNCTION, str(company_id), _job_id=job_id)
    except (RedisError, OSError) as exc:
        raise _queue_unavailable(exc) from exc
    return ResetRequest(job_id=job_id, period_start=period_start, already_enqueued=job is None)


async def get_reset_job(queue: ArqRedis, company_id: UUID, job_id: str) -> ResetJob:
    """The state of a reset job of this company; any other id is not found (404).

    A well-formed id of this company that Redis no longer holds (results are kept for
    an hour) has the state `not_found`.
    """
    if _company_of(job_id) != company_id:
        raise JobNotFoundError("no such job in your company")
    job = Job(job_id, queue, _queue_name=queue.default_queue_name)
    try:
        job_status = await job.status()
        # `info` reads the result, then the job: a job finishing in between (which
        # deletes the job and writes the result at once) is found on a second look.
        info = await job.info() or await job.result_info()
    except (RedisError, OSError) as exc:
        raise _queue_unavailable(exc) from exc
    if info is None:
        return ResetJob(job_id=job_id, state=JobState.not_found)
    # The id says whose job it is; the job's own arguments must agree.
    if info.function != JOB_FUNCTION or list(info.args) != [str(company_id)]:
        raise JobNotFoundError("no such job in your company")
    if isinstance(info, JobResult):
        return ResetJob(
            job_id=job_id,
            state=JobState.complete,
            enqueued_at=info.enqueue_time,
            started_at=info.start_time,
            finished_at=info.finish_time,
            success=info.success,
            summary=info.result if info.success and isinstance(info.result, dict) else None,
        )
    state = JobState.in_progress if job_status == JobStatus.in_progress else JobState.queued
    return ResetJob(job_id=job_id, state=state, enqueued_at=info.enqueue_time)
