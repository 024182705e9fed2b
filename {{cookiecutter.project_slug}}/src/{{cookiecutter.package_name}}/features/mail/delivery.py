"""The worker side: claim due messages in batches, send them over SMTP, record each.

At least once, never twice in bulk: a batch of at most MAIL_MAX_IN_FLIGHT rows is
claimed (`sending`, with a lease) and committed before the first byte goes out, and
recorded (`sent`, `failed` or back to `queued`) in one statement once it is through. A
worker killed in between leaves only that batch, which another worker takes again when
the lease ends: at most MAIL_MAX_IN_FLIGHT messages are sent twice, each with the
Message-ID of its first try. `FOR UPDATE SKIP LOCKED` lets several workers claim side by
side without waiting on each other or taking the same row.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import aiosmtplib
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib import smtp
from ...lib.config import Settings
from .messages import Letter, compose
from .models import MailKind, MailStatus

logger = logging.getLogger(__name__)

# The longest a retry waits, and the furthest ahead a drain defers a wake-up for the next
# due row; later ones are left to the periodic drain (which runs every minute).
MAX_RETRY_DELAY_SECONDS = 3600
IDLE_WAIT_SECONDS = 60
# What a failure is called when the server was unreachable or dropped the connection.
CONNECTION_ERRORS = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,
)


@dataclass(frozen=True)
class MailConfig:
    server: smtp.SmtpServer
    timeout: float
    sender: str
    domain: str
    app_url: str
    max_in_flight: int
    rate_per_second: float
    lease_seconds: float
    retry_seconds: float
    max_attempts: int

    @classmethod
    def of(cls, settings: Settings) -> "MailConfig":
        return cls(
            server=smtp.parse_smtp_url(settings.smtp_url),
            timeout=settings.smtp_timeout_seconds,
            sender=settings.mail_from,
            domain=smtp.sender_domain(settings.mail_from),
            app_url=settings.app_url,
            max_in_flight=settings.mail_max_in_flight,
            rate_per_second=settings.mail_rate_per_second,
            lease_seconds=settings.mail_lease_seconds,
            retry_seconds=settings.mail_retry_seconds,
            max_attempts=settings.mail_max_attempts,
        )

    def lease_for(self, batch: int) -> float:
        """A batch's lease: the base, plus the time the rate limit spreads it over."""
        paced = batch / self.rate_per_second if self.rate_per_second else 0.0
        return self.lease_seconds + paced

    def retry_delay(self, attempts: int) -> float:
        return float(min(self.retry_seconds * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS))


class RateLimit:
    """At most `per_second` sends per second in this worker (0: no limit), evenly spaced."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1 / per_second if per_second else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)  # pacing, the limit itself
        self._next = max(self._next, now) + self.interval


@dataclass(frozen=True)
class Claimed:
    letter: Letter
    attempts: int
    active: bool


@dataclass(frozen=True)
class Result:
    id: UUID
    attempts: int
    status: MailStatus
    error: str | None = None
    delay: float = 0.0


# Due rows (queued and due, or `sending` past their lease), oldest first, skipping what
# another worker holds; each becomes `sending` until its lease ends (`next_attempt_at`).
_CLAIM = text("""
    UPDATE mail_outbox AS o
    SET status = 'sending', attempts = o.attempts + 1,
        next_attempt_at = clock_timestamp() + make_interval(secs => :lease)
    FROM (
        SELECT m.id, m.user_id, m.company_id, m.announcement_id
        FROM mail_outbox AS m
        WHERE m.status IN ('queued', 'sending') AND m.next_attempt_at <= clock_timestamp()
        ORDER BY m.next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) AS due
    JOIN users AS u ON u.id = due.user_id
    JOIN companies AS c ON c.id = due.company_id
    LEFT JOIN announcements AS a ON a.id = due.announcement_id
    WHERE o.id = due.id
    RETURNING o.id, o.kind, o.attempts, u.email, u.name, u.is_active, c.name,
              a.subject, a.body
""")

# Each claimed row's outcome, only while it is still this claim's (same attempt).
_RECORD = text("""
    UPDATE mail_outbox AS o
    SET status = r.status, error = r.error,
        sent_at = CASE WHEN r.status = 'sent' THEN clock_timestamp() END,
        next_attempt_at = CASE WHEN r.status = 'queued'
            THEN clock_timestamp() + make_interval(secs => r.delay)
            ELSE o.next_attempt_at END
    FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[]), CAST(:statuses AS text[]),
                CAST(:errors AS text[]), CAST(:delays AS float8[]))
         AS r(id, attempts, status, error, delay)
    WHERE o.id = r.id AND o.attempts = r.attempts AND o.status = 'sending'
""")

_NEXT_DUE = text("""
    SELECT extract(epoch FROM min(next_attempt_at) - clock_timestamp())
    FROM mail_outbox WHERE status IN ('queued', 'sending')
""")


async def claim(factory: async_sessionmaker[AsyncSession], config: MailConfig) -> list[Claimed]:
    lease = config.lease_for(config.max_in_flight)
    async with factory() as session, session.begin():
        conn = await session.connection()
        rows = (await conn.execute(_CLAIM, {"lease": lease, "limit": config.max_in_flight})).all()
    return [
        Claimed(
            letter=Letter(
                id=row[0],
                kind=MailKind(row[1]),
                to_address=row[3],
                to_name=row[4],
                company=row[6],
                subject=row[7],
                body=row[8],
            ),
            attempts=row[2],
            active=row[5],
        )
        for row in rows
    ]


async def record(factory: async_sessionmaker[AsyncSession], results: list[Result]) -> None:
    if not results:
        return
    async with factory() as session, session.begin():
        conn = await session.connection()
        await conn.execute(
            _RECORD,
            {
                "ids": [r.id for r in results],
                "attempts": [r.attempts for r in results],
                "statuses": [r.status.value for r in results],
                "errors": [None if r.error is None else r.error[:1000] for r in results],
                "delays": [r.delay for r in results],
            },
        )


async def next_due_in(factory: async_sessionmaker[AsyncSession]) -> float | None:
    """Seconds until the next row is due (<= 0: now), None when nothing is pending."""
    async with factory() as session, session.begin():
        conn = await session.connection()
        value = (await conn.execute(_NEXT_DUE)).scalar()
    return None if value is None else float(value)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return f"{first.code} {first.message}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}".strip()


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return exc.recipients[0].code
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code
    return None


@dataclass
class Drainer:
    """Sends the outbox from one worker: one drain at a time, woken by jobs and the cron."""

    factory: async_sessionmaker[AsyncSession]
    config: MailConfig
    limit: RateLimit = field(init=False)
    _client: aiosmtplib.SMTP | None = field(default=None, init=False)
    _running: bool = field(default=False, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        self.limit = RateLimit(self.config.rate_per_second)

    async def drain(self) -> tuple[dict[str, Any], float | None]:
        """Send what is due; joins a drain under way. Returns the totals and, when the next
        row falls due within IDLE_WAIT_SECONDS (a retry), the seconds until then: the job
        defers a wake-up rather than waiting, so a drain never holds up a shutdown."""
        if self._running:
            self._wake.set()
            return {"joined": True}, None
        self._running = True
        totals = {status.value: 0 for status in MailStatus if status is not MailStatus.sending}
        try:
            next_in = await self._loop(totals)
        finally:
            self._running = False
            await self._disconnect()
        if any(totals.values()):
            logger.info("mail outbox drained: %s", totals)
        return totals, next_in

    async def _loop(self, totals: dict[str, int]) -> float | None:
        while True:
            self._wake.clear()
            batch = await claim(self.factory, self.config)
            if batch:
                results: list[Result] = []
                try:
                    reachable = await self._send(batch, results)
                except BaseException:
                    # Cancelled (shutdown) or broken: what was not sent goes back now.
                    done = {r.id for r in results}
                    results += [
                        Result(c.letter.id, c.attempts, MailStatus.queued, "interrupted")
                        for c in batch
                        if c.letter.id not in done
                    ]
                    await asyncio.shield(record(self.factory, results))
                    raise
                await record(self.factory, results)
                for r in results:
                    totals[r.status.value] += 1
                if reachable:
                    continue
                # The server is down: try again after the base retry delay rather than
                # claiming (and failing) every other due batch now.
                retry = self.config.retry_seconds
                return retry if retry <= IDLE_WAIT_SECONDS else None
            if self._wake.is_set():  # a wake-up joined this drain: look again
                continue
            wait = await next_due_in(self.factory)
            if wait is None or wait > IDLE_WAIT_SECONDS:
                return None
            if wait > 0:
                return wait

    async def _send(self, batch: list[Claimed], results: list[Result]) -> bool:
        """Send the batch, appending each outcome; False when the server is unreachable
        (the rest of the batch is retried later, without trying each one)."""
        config = self.config
        for item in batch:
            letter = item.letter
            if not item.active:
                results.append(
                    Result(letter.id, item.attempts, MailStatus.failed, "the user is inactive")
                )
                continue
            try:
                message = compose(
                    letter, sender=config.sender, domain=config.domain, app_url=config.app_url
                )
            except ValueError as exc:
                results.append(Result(letter.id, item.attempts, MailStatus.failed, str(exc)))
                continue
            await self.limit.wait()
            try:
                client = await self._connected()
                await client.send_message(message)
            except aiosmtplib.SMTPResponseException as exc:
                code = _code(exc) or 0
                if code == 421:  # the server is closing the connection
                    await self._disconnect()
                results.append(self._failure(item, _reason(exc), permanent=500 <= code < 600))
            except aiosmtplib.SMTPRecipientsRefused as exc:
                code = _code(exc) or 0
                results.append(self._failure(item, _reason(exc), permanent=500 <= code < 600))
            except CONNECTION_ERRORS as exc:
                await self._disconnect()
                reason = _reason(exc)
                logger.warning("smtp server unreachable: %s", reason)
                results.append(self._failure(item, reason, permanent=False))
                done = {r.id for r in results}
                results += [
                    self._failure(c, reason, permanent=False)
                    for c in batch
                    if c.letter.id not in done
                ]
                return False
            else:
                results.append(Result(letter.id, item.attempts, MailStatus.sent))
        return True

    def _failure(self, item: Claimed, reason: str, *, permanent: bool) -> Result:
        if permanent:
            return Result(item.letter.id, item.attempts, MailStatus.failed, reason)
        if item.attempts >= self.config.max_attempts:
            reason = f"gave up after {item.attempts} attempts: {reason}"
            return Result(item.letter.id, item.attempts, MailStatus.failed, reason)
        delay = self.config.retry_delay(item.attempts)
        return Result(item.letter.id, item.attempts, MailStatus.queued, reason, delay)

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            self._client = await smtp.connect(
                self.config.server, timeout_seconds=self.config.timeout
            )
        return self._client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
