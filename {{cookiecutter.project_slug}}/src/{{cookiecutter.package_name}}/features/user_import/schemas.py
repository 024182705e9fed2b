from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from ...lib.pagination import Page
from ...lib.urls import Accepted
from .models import ImportStatus


class ImportAccepted(Accepted):
    """The upload is stored and queued; poll `status_url`."""

    id: UUID
    status: ImportStatus


class ImportCounts(BaseModel):
    rows: int = Field(description="Data rows read (blank ones not counted)")
    created: int
    skipped: int = Field(description="Rows of users who already exist and are active")
    deactivated: int = Field(
        description="Rows of deactivated users: not imported, they stay deactivated"
    )
    invalid: int = Field(description="Rows refused; `errors` says why")


class ImportRowError(BaseModel):
    row_number: int
    field: str
    message: str


class ImportTimings(BaseModel):
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    queued_seconds: float | None
    processing_seconds: float | None


class ImportState(BaseModel):
    id: UUID
    status: ImportStatus
    file_name: str
    size_bytes: int
    encoding: str
    delimiter: str
    dry_run: bool
    send_invitations: bool
    attempts: int
    error: str | None
    counts: ImportCounts
    timings: ImportTimings
    errors: Page[ImportRowError] = Field(
        description="The first row errors, in row order (at most `errors_kept`)"
    )
    errors_total: int = Field(description="Every row error found, kept or not")
    errors_kept: int = Field(description="How many row errors an import keeps")
    errors_truncated: bool = Field(description="Whether some row errors were not kept")
    errors_csv_url: str
