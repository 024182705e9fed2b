"""Admins hand their company's weekly reset to the worker and follow it."""

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ....lib.dependencies import Queue
from ....lib.errors import error_responses
from ....lib.urls import relative_url
from ...users.dependencies import ResetAdmin
from ...wallets import reset_requests
from .schemas import JobStatus, ResetAccepted, ResetSummary

router = APIRouter(tags=["admin"])


@router.post(
    "/weekly-reset",
    response_model=ResetAccepted,
    status_code=202,
    summary="Reset the company's weekly balances now (in the worker)",
    description=(
        "Hands the weekly reset of the caller's company to the worker and answers at "
        "once; follow it at `status_url`. Every active user's compliment balance is "
        "*set* to the company's weekly allowance (unused coins do not roll over); "
        "redeemable balances are untouched.\n\n"
        "One job per company and week (ISO week, Monday UTC): asking again in the same "
        "week returns the same job (`already_enqueued`), unless it failed, in which case "
        "it is run again. The reset is idempotent per week: if the scheduled weekly "
        "reset already ran for this week, the job changes nothing and its summary shows "
        "`companies_already_reset: 1`, so coins spent since the reset are never refilled."
    ),
    responses=error_responses(401, 403, 503),
)
async def request_weekly_reset(caller: ResetAdmin, queue: Queue, request: Request) -> ResetAccepted:
    requested = await reset_requests.request_weekly_reset(queue, caller.company_id)
    return ResetAccepted(
        job_id=requested.job_id,
        status_url=relative_url(request, "get_job", job_id=requested.job_id),
        period_start=requested.period_start,
        already_enqueued=requested.already_enqueued,
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatus,
    name="get_job",
    summary="The state of a job of the company",
    description=(
        "`queued`, `in_progress`, `complete` (with `success` and, for a successful reset, "
        "its summary) or `not_found`. A job of another company is 404."
    ),
    responses=error_responses(401, 403, 404, 422, 503),
)
async def get_job(
    caller: ResetAdmin,
    queue: Queue,
    job_id: Annotated[str, Path(max_length=200)],
) -> JobStatus:
    job = await reset_requests.get_reset_job(queue, caller.company_id, job_id)
    return JobStatus(
        job_id=job.job_id,
        status=job.state,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        success=job.success,
        summary=None if job.summary is None else ResetSummary.model_validate(job.summary),
    )
