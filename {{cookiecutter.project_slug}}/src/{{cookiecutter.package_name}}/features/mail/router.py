"""Admins send announcements to their company and resend invitations (worker-sent mail)."""

from uuid import UUID

from fastapi import APIRouter, Request

from ...lib.dependencies import (
    AppSettings,
    Queue,
    Session,
)
from ...lib.errors import error_responses
from ...lib.smtp import sender_domain
from ...lib.urls import relative_url
from ..users.dependencies import Announcer, UserAdmin
from . import outbox
from .messages import message_id
from .models import MailStatus
from .schemas import (
    AnnouncementAccepted,
    AnnouncementState,
    InvitationQueued,
    MailCounts,
    NewAnnouncement,
    Recipients,
)

router = APIRouter(prefix="/admin", tags=["admin: mail"])


@router.get(
    "/announcements/recipients",
    response_model=Recipients,
    summary="How many people an announcement would reach now",
    responses=error_responses(401, 403, 503),
)
async def preview(caller: Announcer, session: Session) -> Recipients:
    return Recipients(recipients=await outbox.recipients(session, caller.company_id))


@router.post(
    "/announcements",
    response_model=AnnouncementAccepted,
    status_code=202,
    summary="E-mail a message to every active user of the company (in the worker)",
    description=(
        "Queues one e-mail per active user in the same transaction as the announcement "
        "and answers at once; follow the sending at `status_url`."
    ),
    responses=error_responses(400, 401, 403, 422, 503),
)
async def announce(
    caller: Announcer,
    session: Session,
    queue: Queue,
    settings: AppSettings,
    request: Request,
    new: NewAnnouncement,
) -> AnnouncementAccepted:
    created = await outbox.queue_announcement(
        session, caller.company_id, caller.user_id, subject=new.subject, body=new.text
    )
    await session.commit()
    await outbox.wake(queue, settings.queue_name, f"announcement:{created.id}")
    return AnnouncementAccepted(
        id=created.id,
        recipients=created.recipients,
        status_url=relative_url(request, "announcement_status", announcement_id=created.id),
    )


@router.get(
    "/announcements/{announcement_id}",
    name="announcement_status",
    response_model=AnnouncementState,
    summary="An announcement's e-mails counted by state",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def announcement_status(
    caller: Announcer, session: Session, announcement_id: UUID
) -> AnnouncementState:
    found = await outbox.announcement_progress(session, caller.company_id, announcement_id)
    counts = found.counts
    return AnnouncementState(
        id=found.announcement.id,
        subject=found.announcement.subject,
        created_at=found.announcement.created_at,
        recipients=found.announcement.recipients,
        counts=MailCounts(
            queued=counts[MailStatus.queued],
            sending=counts[MailStatus.sending],
            sent=counts[MailStatus.sent],
            failed=counts[MailStatus.failed],
        ),
    )


@router.post(
    "/users/{user_id:uuid}/invitation",
    response_model=InvitationQueued,
    status_code=202,
    summary="Send a user of the company their invitation e-mail again",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def resend_invitation(
    caller: UserAdmin, session: Session, queue: Queue, settings: AppSettings, user_id: UUID
) -> InvitationQueued:
    row_id = await outbox.resend_invitation(session, caller.company_id, user_id)
    await session.commit()
    await outbox.wake(queue, settings.queue_name, f"invitation:{row_id}")
    return InvitationQueued(
        user_id=user_id, message_id=message_id(row_id, sender_domain(settings.mail_from))
    )
