from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ....lib.queue import JobState
from ....lib.urls import Accepted

JOB_ID_EXAMPLE = "weekly-reset:0b6c3d1e-2f4a-4b5c-8d9e-0a1b2c3d4e5f:2025-03-03"


class ResetAccepted(Accepted):
    """The reset was handed to the worker; follow it at `status_url`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": JOB_ID_EXAMPLE,
                    "status_url": f"/admin/jobs/{JOB_ID_EXAMPLE}",
                    "period_start": "2025-03-03",
                    "already_enqueued": False,
                }
            ]
        }
    )

    job_id: str
    period_start: date = Field(description="Monday (UTC) of the week this reset is for")
    already_enqueued: bool = Field(
        description="True when this week's reset job already existed; its id is returned"
    )


class ResetSummary(BaseModel):
    run_id: UUID
    period_start: date
    companies: int = Field(description="Companies reset by this run (0 or 1 here)")
    companies_already_reset: int = Field(
        description="1 when the company had already been reset this week: nothing changed"
    )
    wallets_created: int
    wallets_reset: int
    ledger_rows: int
    elapsed_seconds: float


class JobStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": JOB_ID_EXAMPLE,
                    "status": "complete",
                    "enqueued_at": "2025-03-05T14:00:00Z",
                    "started_at": "2025-03-05T14:00:01Z",
                    "finished_at": "2025-03-05T14:00:01Z",
                    "success": True,
                    "summary": {
                        "run_id": "3c9e1b7a-0d2f-4e5a-8b6c-7d8e9f0a1b2c",
                        "period_start": "2025-03-03",
                        "companies": 1,
                        "companies_already_reset": 0,
                        "wallets_created": 0,
                        "wallets_reset": 42,
                        "ledger_rows": 42,
                        "elapsed_seconds": 0.031,
                    },
                }
            ]
        }
    )

    job_id: str
    status: JobState = Field(
        description="`not_found`: not (or no longer: results are kept an hour) in the queue"
    )
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    success: bool | None = Field(default=None, description="Set once the job is complete")
    summary: ResetSummary | None = Field(
        default=None, description="What the reset did, when it completed successfully"
    )
