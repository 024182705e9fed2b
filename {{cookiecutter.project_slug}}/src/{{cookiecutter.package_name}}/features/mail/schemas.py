from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ...lib.text import PLAIN_TEXT_PATTERN
from ...lib.urls import Accepted
from .models import SUBJECT_MAX_LENGTH, TEXT_MAX_LENGTH


class NewAnnouncement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(
        min_length=1,
        max_length=SUBJECT_MAX_LENGTH,
        strict=True,
        pattern=PLAIN_TEXT_PATTERN,
        examples=["Office closed on Friday"],
    )
    text: str = Field(
        min_length=1,
        max_length=TEXT_MAX_LENGTH,
        strict=True,
        # Plain text: line breaks and tabs, no other control characters.
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        examples=["The office is closed on Friday for maintenance.\nSee you on Monday!"],
    )


class Recipients(BaseModel):
    recipients: int = Field(description="The company's active users: who would receive it now")


class AnnouncementAccepted(Accepted):
    id: UUID
    recipients: int


class MailCounts(BaseModel):
    queued: int = Field(description="waiting, including those waiting to be retried")
    sending: int
    sent: int
    failed: int


class AnnouncementState(BaseModel):
    id: UUID
    subject: str
    created_at: datetime | None
    recipients: int
    counts: MailCounts


class InvitationQueued(BaseModel):
    user_id: UUID
    message_id: str = Field(description="The e-mail's Message-ID header")
