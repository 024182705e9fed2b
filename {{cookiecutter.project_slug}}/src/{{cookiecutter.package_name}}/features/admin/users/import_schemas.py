from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from ....lib.pagination import Page
from .import_models import ImportStatus


class ImportAccepted(BaseModel):
    """The upload is stored and queued; poll `status_url`."""

    id: UUID
    status: ImportStatus
    status_url: str


class ImportCounts(BaseModel):
    rows: int
    created: int
    skipped: int
    invalid: int


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
    attempts: int
    error: str | None
    counts: ImportCounts
    timings: ImportTimings
    errors: Page[ImportRowError]
    errors_csv_url: str
