from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from .models import ExportStatus, UserExport


class UserExportStatus(BaseModel):
    """An export of the caller's company's users."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3b8f6c1a-0d2e-4f5a-9b7c-6e1d2a3f4b5c",
                    "status": "done",
                    "rows": 42,
                    "created_at": "2026-12-01T09:30:00Z",
                    "finished_at": "2026-12-01T09:30:01Z",
                    "csv_url": "/admin/users/exports/3b8f6c1a-0d2e-4f5a-9b7c-6e1d2a3f4b5c/csv",
                }
            ]
        }
    )

    id: UUID
    status: ExportStatus = Field(description="`pending` until the worker wrote it, then `done`")
    rows: int | None = Field(description="Users in the file, once done")
    created_at: datetime | None
    finished_at: datetime | None
    csv_url: str | None = Field(description="Where to download the CSV, once done")

    @classmethod
    def of(cls, export: UserExport, csv_url: str | None) -> "UserExportStatus":
        return cls(
            id=export.id,
            status=ExportStatus(export.status),
            rows=export.rows,
            created_at=export.created_at,
            finished_at=export.finished_at,
            csv_url=csv_url if export.status == ExportStatus.done else None,
        )
