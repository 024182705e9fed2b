"""The CSV user import: one row per upload, its file as bytea chunks, its row errors.

The file (names and emails: personal data) is deleted when its import finishes, or
when it has waited CSV_IMPORT_FILE_RETENTION_HOURS unfinished; the counts and the row
errors (capped at ERRORS_KEPT) stay.

The file lives in Postgres (never in the api's memory, never in Redis): the api writes
it in chunks of CHUNK_BYTES while the upload streams in, the worker reads it back chunk
by chunk. Postgres is the source of truth for the import's state; Redis only carries
the id to a worker, and a lost id is re-enqueued by the reconciler.
"""

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Uuid,
    text,
)
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field

CHUNK_BYTES = 1024 * 1024
# Namespace of the advisory lock a worker holds while it processes an import (the
# worker takes it, the api's reconciler looks for it).
IMPORT_LOCK_NAMESPACE = 0x43535649  # "CSVI"
# Row errors kept per import (the first, in row order); `errors_total` counts them all.
# A file of a million bad lines costs a counter, not a million rows.
ERRORS_KEPT = 1000


class ImportStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


class CsvImport(SQLModel, table=True):
    __tablename__ = "csv_imports"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')", name="status_known"
        ),
        CheckConstraint("delimiter IN (',', ';')", name="delimiter_known"),
        Index(
            "ix_csv_imports_status_active",
            "status",
            postgresql_where=text("status IN ('pending', 'processing')"),
        ),
        Index(
            "ix_csv_imports_pending_invitations",
            "id",
            postgresql_where=text("pending_invitations IS NOT NULL"),
        ),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    company_id: UUID = Field(foreign_key="companies.id", index=True)
    requested_by: UUID = Field(foreign_key="users.id")
    file_name: str = Field(max_length=255)
    size_bytes: int = Field(sa_type=BigInteger)
    encoding: str = Field(max_length=20)
    delimiter: str = Field(max_length=1)
    dry_run: bool = False
    # Each user the import creates gets an invitation e-mail (features/mail).
    send_invitations: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    # The users it created, written with them, until their invitations are in the outbox
    # (processing.queue_invitations, right after the import commits).
    pending_invitations: list[UUID] | None = Field(
        default=None, sa_column=Column(ARRAY(Uuid()), nullable=True)
    )
    status: ImportStatus = Field(
        default=ImportStatus.pending,
        sa_type=String(12),
        sa_column_kwargs={"server_default": text("'pending'")},
    )
    rows_total: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    created_count: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    skipped_count: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    invalid_count: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    # Rows naming an existing, deactivated user: not imported, not reactivated.
    deactivated_count: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    errors_total: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    error: str | None = Field(default=None, max_length=1000)
    created_at: datetime | None = timestamp_field()
    started_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class CsvImportChunk(SQLModel, table=True):
    """The uploaded file, in order: `seq` 0, 1, 2, ... of at most CHUNK_BYTES each."""

    __tablename__ = "csv_import_chunks"

    import_id: UUID = Field(
        sa_column=Column(Uuid, ForeignKey("csv_imports.id", ondelete="CASCADE"), primary_key=True)
    )
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CsvImportError(SQLModel, table=True):
    """One problem with one field of one row (row 1 is the header)."""

    __tablename__ = "csv_import_errors"
    __table_args__ = (Index("ix_csv_import_errors_import_id_row", "import_id", "row_number"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    import_id: UUID = Field(
        sa_column=Column(Uuid, ForeignKey("csv_imports.id", ondelete="CASCADE"), nullable=False)
    )
    row_number: int
    field: str = Field(max_length=40)
    message: str = Field(max_length=300)
