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
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from ...lib.errors import AppError, NotFoundError
from ...lib.queue import JobQueue, JobState, clear_result, enqueue_once, job_info
from .service import period_start_for

JOB_FUNCTION = "weekly_reset"
JOB_PREFIX = "weekly-reset"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class QueueUnavailableError(AppError):
    status_code = 503
    code = "queue_unavailable"


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
    queue: JobQueue, company_id: UUID, *, now: datetime | None = None
) -> ResetRequest:
    """Enqueue the weekly reset of one company, once per period.

    When this period's job is already queued, running or finished, its id is returned
    (`already_enqueued`). A job that finished with an error is replaced, so the admin
    can try again.
    """
    period_start = period_start_for(now or datetime.now(UTC))
    job_id = reset_job_id(company_id, period_start)
    try:
        enqueued = await enqueue_once(queue, JOB_FUNCTION, str(company_id), job_id=job_id)
        if not enqueued:
            previous = await job_info(queue, job_id)
            if previous.state is JobState.complete and not previous.success:
                await clear_result(queue, job_id)
                # False again when a concurrent request re-enqueued it first: same job.
                enqueued = await enqueue_once(queue, JOB_FUNCTION, str(company_id), job_id=job_id)
    except (RedisError, OSError) as exc:
        raise _queue_unavailable(exc) from exc
    return ResetRequest(job_id=job_id, period_start=period_start, already_enqueued=not enqueued)


async def get_reset_job(queue: JobQueue, company_id: UUID, job_id: str) -> ResetJob:
    """The state of a reset job of this company; any other id is not found (404).

    A well-formed id of this company that Redis no longer holds (results are kept for
    an hour) has the state `not_found`.
    """
    if _company_of(job_id) != company_id:
        raise JobNotFoundError("no such job in your company")
    try:
        info = await job_info(queue, job_id)
    except (RedisError, OSError) as exc:
        raise _queue_unavailable(exc) from exc
    if info.state is JobState.not_found:
        return ResetJob(job_id=job_id, state=JobState.not_found)
    # The id says whose job it is; the job's own arguments must agree.
    if info.function != JOB_FUNCTION or list(info.args) != [str(company_id)]:
        raise JobNotFoundError("no such job in your company")
    return ResetJob(
        job_id=job_id,
        state=info.state,
        enqueued_at=info.enqueued_at,
        started_at=info.started_at,
        finished_at=info.finished_at,
        success=info.success,
        summary=info.result if info.success and isinstance(info.result, dict) else None,
    )
