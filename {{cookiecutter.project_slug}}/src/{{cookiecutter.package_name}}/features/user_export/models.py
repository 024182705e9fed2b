"""A CSV of a company's users, asked for by an admin and written by the worker."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, Column, DateTime, Index, String, Text, text
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field
from ..companies.models import Company
from ..users.models import User


class ExportStatus(StrEnum):
    pending = "pending"
    done = "done"


class UserExport(SQLModel, table=True):
    __tablename__ = "user_exports"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done')", name="status_known"),
        # A company's exports by age: the status lookups and the retention's deletes.
        Index("ix_user_exports_company_id_created_at", "company_id", "created_at"),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    # By the models, not only their names: importing them registers the tables these
    # keys refer to (the worker imports this feature alone).
    company_id: UUID = Field(foreign_key=f"{Company.__tablename__}.id")
    requested_by: UUID = Field(foreign_key=f"{User.__tablename__}.id")
    status: ExportStatus = Field(
        default=ExportStatus.pending,
        sa_type=String(20),
        sa_column_kwargs={"server_default": text("'pending'")},
    )
    rows: int | None = None
    # The file itself (personal data): kept USER_EXPORT_RETENTION_HOURS, then deleted.
    content: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime | None = timestamp_field()
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
