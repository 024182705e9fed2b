"""Writing to the outbox (api and import side) and reading announcements' progress.

Every function adds rows in the caller's transaction and never commits: the e-mail is
queued if and only if what caused it (the user, the announcement) is. After the commit
the caller calls `wake`, which only tells a worker to look now; a lost wake-up (Redis
down) delays the message until the worker's next periodic drain, never loses it.
"""

import logging
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import DomainRuleError, NotFoundError
from ...lib.queue import JobQueue, enqueue_once
from ..users import service as users
from ..users.models import User
from .models import Announcement, MailKind, MailMessage, MailStatus

logger = logging.getLogger(__name__)

JOB_NAME = "drain_mail_outbox"


def drain_job_id(cause: str) -> str:
    """One wake-up per cause (an announcement, a user, an import): asking twice queues one."""
    return f"mail-drain:{cause}"


async def wake(
    queue: JobQueue, queue_name: str, cause: str, *, defer_by: float | None = None
) -> bool:
    """Ask a worker to drain the outbox now (or in `defer_by` seconds); False when Redis
    is down (the rows wait)."""
    try:
        return await enqueue_once(
            queue, JOB_NAME, job_id=drain_job_id(cause), queue_name=queue_name, defer_by=defer_by
        )
    except Exception as exc:  # Redis down: the periodic drain sends it later.
        logger.warning("mail queued but the worker not woken (%s): %s", cause, exc)
        return False


async def queue_invitation(session: AsyncSession, company_id: UUID, user_id: UUID) -> UUID:
    """An invitation for one user, in the caller's transaction; its id is its Message-ID."""
    row = MailMessage(company_id=company_id, user_id=user_id, kind=MailKind.invitation)
    session.add(row)
    await session.flush()
    return row.id


# The user's invitation that has not been sent yet, made due now if it is waiting on a
# retry; locking the user row first serializes two resends of the same person.
_LOCK_USER = text("SELECT id FROM users WHERE id = :user_id FOR NO KEY UPDATE")
_PENDING = text("""
    UPDATE mail_outbox
    SET next_attempt_at = CASE WHEN status = 'queued'
        THEN least(next_attempt_at, clock_timestamp()) ELSE next_attempt_at END
    WHERE id = (
        SELECT id FROM mail_outbox
        WHERE user_id = :user_id AND kind = 'invitation' AND status IN ('queued', 'sending')
        ORDER BY created_at LIMIT 1
    )
    RETURNING id
""")


async def resend_invitation(session: AsyncSession, company_id: UUID, user_id: UUID) -> UUID:
    """The invitation of an active user of this company (another company's: 404), sent
    again. One still waiting to be sent is the one sent, now, under its own Message-ID: a
    resend clicked five times while the SMTP server is down sends one e-mail, not five.
    Once it was sent (or failed), a resend is a new message."""
    found = await users.get_user(session, company_id, user_id)
    if not found.user.is_active:
        raise DomainRuleError("the user is inactive: activate them first", code="user_inactive")
    conn = await session.connection()
    await conn.execute(_LOCK_USER, {"user_id": found.user.id})
    pending = (await conn.execute(_PENDING, {"user_id": found.user.id})).scalar()
    if pending is not None:
        return UUID(str(pending))
    return await queue_invitation(session, company_id, found.user.id)


# The company's active users, each one announcement e-mail: one statement for them all.
_ANNOUNCE = text("""
    INSERT INTO mail_outbox (company_id, user_id, kind, announcement_id)
    SELECT u.company_id, u.id, 'announcement', :announcement_id
    FROM users AS u
    WHERE u.company_id = :company_id AND u.is_active
""")


async def recipients(session: AsyncSession, company_id: UUID) -> int:
    """How many people an announcement sent now would reach: the active users."""
    count = (
        await session.exec(
            select(func.count())
            .select_from(User)
            .where(col(User.company_id) == company_id, col(User.is_active))
        )
    ).one()
    return int(count)


async def queue_announcement(
    session: AsyncSession, company_id: UUID, created_by: UUID, *, subject: str, body: str
) -> Announcement:
    """The announcement and one outbox row per active user of the company."""
    announcement = Announcement(
        company_id=company_id, created_by=created_by, subject=subject, body=body
    )
    session.add(announcement)
    await session.flush()
    conn = await session.connection()
    result = await conn.execute(
        _ANNOUNCE, {"announcement_id": announcement.id, "company_id": company_id}
    )
    announcement.recipients = result.rowcount
    await session.flush()
    return announcement


@dataclass(frozen=True)
class Progress:
    announcement: Announcement
    counts: dict[MailStatus, int]


async def announcement_progress(
    session: AsyncSession, company_id: UUID, announcement_id: UUID
) -> Progress:
    """The announcement and its messages counted by status; another company's is not found."""
    found = await session.get(Announcement, announcement_id)
    if found is None or found.company_id != company_id:
        raise NotFoundError("no such announcement")
    rows = (
        await session.exec(
            select(col(MailMessage.status), func.count())
            .where(col(MailMessage.announcement_id) == announcement_id)
            .group_by(col(MailMessage.status))
        )
    ).all()
    counts = dict.fromkeys(MailStatus, 0)
    for status, count in rows:
        counts[MailStatus(status)] = int(count)
    return Progress(found, counts)
