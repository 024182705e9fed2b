"""The outbox: one row per e-mail to send, written in the transaction that caused it.

A row is `queued`, then `sending` while a worker holds it (its lease ends at
`next_attempt_at`: a worker that died leaves it to be taken again then), then `sent` or
`failed` (with the reason). Its id is the message's Message-ID, the same on every try,
so a receiver can tell a resent message from a new one.
"""

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field

SUBJECT_MAX_LENGTH = 200
TEXT_MAX_LENGTH = 20_000


class MailKind(StrEnum):
    invitation = "invitation"
    announcement = "announcement"


class MailStatus(StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Announcement(SQLModel, table=True):
    __tablename__ = "announcements"

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    company_id: UUID = Field(foreign_key="companies.id", index=True)
    created_by: UUID = Field(foreign_key="users.id")
    subject: str = Field(max_length=SUBJECT_MAX_LENGTH)
    body: str = Field(sa_type=Text)
    recipients: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    created_at: datetime | None = timestamp_field()


class MailMessage(SQLModel, table=True):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint("kind IN ('invitation', 'announcement')", name="kind_known"),
        CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')", name="status_known"),
        CheckConstraint(
            "(kind = 'announcement') = (announcement_id IS NOT NULL)",
            name="announcement_given",
        ),
        # What the worker claims: due rows, oldest first.
        Index(
            "ix_mail_outbox_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('queued', 'sending')"),
        ),
        Index(
            "ix_mail_outbox_announcement_id_status",
            "announcement_id",
            "status",
            postgresql_where=text("announcement_id IS NOT NULL"),
        ),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    # No foreign keys: a per-statement trigger checks that each row's user exists in
    # company_id, and users are never deleted nor moved (migration 0012_outbox_speed).
    company_id: UUID
    user_id: UUID = Field(index=True)
    kind: MailKind = Field(sa_type=String(20))
    announcement_id: UUID | None = Field(default=None, foreign_key="announcements.id")
    status: MailStatus = Field(
        default=MailStatus.queued,
        sa_type=String(12),
        sa_column_kwargs={"server_default": text("'queued'")},
    )
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    next_attempt_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime | None = timestamp_field()
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
