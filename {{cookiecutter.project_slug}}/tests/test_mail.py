"""E-mail from the outbox through real worker processes into a real SMTP server (aiosmtpd):
what arrives, retries, an SMTP server that is down, SIGKILL mid-batch, tenants."""

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.features.mail import outbox
from {{ cookiecutter.package_name }}.features.mail.delivery import Drainer, MailConfig
from {{ cookiecutter.package_name }}.features.user_import.service import get_import
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.database import create_session_factory
from {{ cookiecutter.package_name }}.lib.smtp import parse_smtp_url, sender_domain

from . import factories as f
from .conftest import StartWorker
from .csv_helpers import finished, people, upload, wait_for
from .factories import Db, admin
from .smtp_sink import SmtpSink
from .tokens import Bearer

ANNOUNCEMENTS = "/admin/announcements"
T = TypeVar("T")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


def mail_env(sink: SmtpSink, **extra: str) -> dict[str, str]:
    """A worker's environment sending to `sink`, retrying within a test's patience."""
    return {
        "SMTP_URL": sink.url,
        "MAIL_RETRY_SECONDS": "0.1",
        **extra,
    }


async def poll(check: Callable[[], T | None], within: float = 20, what: str = "") -> T:
    """`check()` until it returns something truthy, or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what or check}"
        await asyncio.sleep(0.05)


def statuses(db: Db) -> dict[str, int]:
    rows = db.execute("SELECT status, count(*) FROM mail_outbox GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


def outbox_rows(count: int) -> sql.Composed:
    """One INSERT of `count` invitation rows, each taking (company_id, user_id)."""
    row = sql.SQL("(%s, %s, 'invitation')")
    insert = sql.SQL("INSERT INTO mail_outbox (company_id, user_id, kind) VALUES {}")
    return insert.format(sql.SQL(", ").join([row] * count))


def settled(db: Db) -> bool:
    """Nothing left to send: every row is sent or failed."""
    return not (set(statuses(db)) & {"queued", "sending"})


def staff(db: Db, company: UUID, domain: str, n: int) -> list[str]:
    emails = [f"person{i}@{domain}" for i in range(n)]
    for email in emails:
        f.user(db, company, email)
    return emails


async def test_an_added_user_gets_one_invitation_with_both_parts(
    api: httpx.AsyncClient,
    db: Db,
    bearer: Bearer,
    settings: Settings,
    sink: SmtpSink,
    start_worker: StartWorker,
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    start_worker(**mail_env(sink))

    added = await api.post(
        "/admin/users",
        json={"name": "Bruno Lima", "email": "bruno@acme.example"},
        headers=headers,
    )
    quiet = await api.post(
        "/admin/users",
        json={"name": "Quiet One", "email": "quiet@acme.example", "send_invitation": False},
        headers=headers,
    )
    assert (added.status_code, quiet.status_code) == (201, 201)
    [received] = await poll(sink.messages, what="the invitation")

    assert received.recipients == ["bruno@acme.example"]
    message = received.message
    assert message["To"] == "Bruno Lima <bruno@acme.example>"
    assert message["From"] == settings.mail_from
    assert "Acme" in message["Subject"]
    assert message["Organization"] == "Acme"
    row = db.execute("SELECT id, status, attempts FROM mail_outbox").fetchall()
    assert message["Message-ID"] == f"<{row[0][0]}@{sender_domain(settings.mail_from)}>"
    assert message.is_multipart()
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None
    assert rich is not None
    assert "Bruno Lima" in plain.get_content()
    assert "Acme" in plain.get_content()
    assert "<p>" in rich.get_content()
    await poll(lambda: settled(db), what="the row marked sent")
    assert statuses(db) == {"sent": 1}  # none for the user added without an invitation


async def test_an_announcement_reaches_the_active_users_of_the_company_only(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme, globex = f.company(db, "Acme"), f.company(db, "Globex")
    acme_admin = bearer(admin(db, acme, "boss@acme.example"))
    globex_admin = bearer(admin(db, globex, "boss@globex.example"))
    acme_staff = staff(db, acme, "acme.example", 5)
    staff(db, globex, "globex.example", 3)
    f.user(db, acme, "gone@acme.example", active=False)
    start_worker(**mail_env(sink))

    preview = await api.get(f"{ANNOUNCEMENTS}/recipients", headers=acme_admin)
    assert preview.json() == {"recipients": 6}  # the admin and five staff; not the inactive
    accepted = await api.post(
        ANNOUNCEMENTS,
        json={"subject": "Office closed", "text": "Closed on Friday.\nSee you Monday <3"},
        headers=acme_admin,
    )
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["recipients"] == 6
    assert body["status_url"] == f"{ANNOUNCEMENTS}/{body['id']}"

    async def counts() -> dict[str, Any]:
        state = (await api.get(body["status_url"], headers=acme_admin)).json()
        return dict(state["counts"])

    deadline = time.monotonic() + 20
    while (state := await counts())["sent"] < 6:
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.05)
    assert state == {"queued": 0, "sending": 0, "sent": 6, "failed": 0}
    received = sink.messages()
    assert sorted(r.recipients[0] for r in received) == sorted(["boss@acme.example", *acme_staff])
    message = received[0].message
    assert message["Subject"] == "[Acme] Office closed"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert rich is not None
    assert "See you Monday <3" in plain.get_content()
    assert "See you Monday &lt;3" in rich.get_content()  # escaped in the HTML part

    # Another company's admin neither sees it nor counts Acme's people.
    other = await api.get(body["status_url"], headers=globex_admin)
    assert other.status_code == 404
    assert (await api.get(f"{ANNOUNCEMENTS}/recipients", headers=globex_admin)).json() == {
        "recipients": 4
    }
    bad = await api.post(ANNOUNCEMENTS, json={"subject": "", "text": "x"}, headers=acme_admin)
    assert bad.status_code == 422


async def test_resending_an_invitation_is_scoped_to_the_company(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme, globex = f.company(db, "Acme"), f.company(db, "Globex")
    acme_admin = bearer(admin(db, acme, "boss@acme.example"))
    globex_admin = bearer(admin(db, globex, "boss@globex.example"))
    ana = f.user(db, acme, "ana@acme.example")
    gone = f.user(db, acme, "gone@acme.example", active=False)
    start_worker(**mail_env(sink))

    foreign = await api.post(f"/admin/users/{ana}/invitation", headers=globex_admin)
    inactive = await api.post(f"/admin/users/{gone}/invitation", headers=acme_admin)
    own = await api.post(f"/admin/users/{ana}/invitation", headers=acme_admin)

    assert foreign.status_code == 404
    assert inactive.status_code == 422
    assert inactive.json()["error"]["code"] == "user_inactive"
    assert own.status_code == 202
    [received] = await poll(sink.messages)
    assert received.recipients == ["ana@acme.example"]
    assert received.message["Message-ID"] == own.json()["message_id"]


async def test_a_resend_sends_the_waiting_invitation_once_and_a_sent_one_anew(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    ana = f.user(db, acme, "ana@acme.example")
    resend = f"/admin/users/{ana}/invitation"

    # No worker yet (as when the SMTP server is down): five impatient clicks at once.
    clicks = await asyncio.gather(*(api.post(resend, headers=headers) for _ in range(5)))
    assert [r.status_code for r in clicks] == [202] * 5
    assert len({r.json()["message_id"] for r in clicks}) == 1
    assert statuses(db) == {"queued": 1}

    start_worker(**mail_env(sink))
    [first] = await poll(sink.messages, what="the waiting invitation")
    assert first.message["Message-ID"] == clicks[0].json()["message_id"]
    await poll(lambda: settled(db), what="the invitation marked sent")

    again = await api.post(resend, headers=headers)
    assert again.status_code == 202
    await poll(lambda: sink.count() == 2 or None, what="the second invitation")
    second = sink.messages()[1]
    assert second.message["Message-ID"] == again.json()["message_id"]
    assert second.message["Message-ID"] != first.message["Message-ID"]
    await poll(lambda: settled(db), what="the second marked sent")
    assert statuses(db) == {"sent": 2}


async def test_an_import_queues_invitations_unless_told_not_to_and_a_dry_run_sends_none(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    start_worker(**mail_env(sink))

    dry = await upload(api, headers, people(5), dry_run=True)
    await wait_for(api, dry.json()["status_url"], headers, finished)
    silent = await api.post(
        "/admin/users/imports",
        params={"send_invitations": "false"},
        files={"file": ("users.csv", people(10, start=5), "text/csv")},
        headers=headers,
    )
    state = await wait_for(api, silent.json()["status_url"], headers, finished)
    assert state["send_invitations"] is False
    assert state["counts"]["created"] == 5
    invited = await upload(api, headers, people(30, start=10))
    state = await wait_for(api, invited.json()["status_url"], headers, finished)
    assert state["counts"]["created"] == 20

    await poll(lambda: sink.count() >= 20 and settled(db), what="20 invitations")
    assert sorted(r.recipients[0] for r in sink.messages()) == sorted(
        f"person{i}@acme.example" for i in range(10, 30)
    )
    assert statuses(db) == {"sent": 20}


async def test_invitations_a_dead_worker_left_with_its_import_are_queued_once(
    db: Db, sink: SmtpSink, start_worker: StartWorker
) -> None:
    """The worker died between the import's commit and queuing its invitations: they
    are kept with the import, and the reconciler (start-up, then every minute) queues
    them; one already in the outbox (resent meanwhile) is not queued twice."""
    acme = f.company(db, "Acme")
    ana, bob = f.user(db, acme, "ana@acme.example"), f.user(db, acme, "bob@acme.example")
    db.execute(outbox_rows(1), (acme, ana))
    db.execute(
        "INSERT INTO csv_imports (company_id, requested_by, file_name, size_bytes,"
        " encoding, delimiter, dry_run, status, pending_invitations)"
        " VALUES (%s, %s, 'users.csv', 1, 'utf-8', ',', false, 'completed', %s)",
        (acme, ana, [ana, bob]),
    )
    start_worker(**mail_env(sink))

    await poll(lambda: sink.count() >= 2 and settled(db), what="both invitations sent")

    assert sorted(r.recipients[0] for r in sink.messages()) == [
        "ana@acme.example",
        "bob@acme.example",
    ]
    assert statuses(db) == {"sent": 2}
    left = db.execute("SELECT count(*) FROM csv_imports WHERE pending_invitations IS NOT NULL")
    assert left.fetchone() == (0,)


async def test_reading_an_import_leaves_its_pending_invitations_unread(
    db: Db, session: AsyncSession
) -> None:
    """A status poll does not load the ids an import keeps until its invitations are
    queued: 100,000 of them made each poll of a large import half a second slower."""
    acme = f.company(db, "Acme")
    ana = f.user(db, acme, "ana@acme.example")
    row = db.execute(
        "INSERT INTO csv_imports (company_id, requested_by, file_name, size_bytes,"
        " encoding, delimiter, dry_run, status, pending_invitations)"
        " VALUES (%s, %s, 'users.csv', 1, 'utf-8', ',', false, 'completed', %s)"
        " RETURNING id",
        (acme, ana, [ana]),
    ).fetchone()
    assert row is not None

    record = await get_import(session, acme, row[0])

    assert record.status == "completed"
    assert "pending_invitations" in inspect(record).unloaded


async def test_a_4xx_is_retried_and_a_5xx_fails_with_its_reason_without_stopping_others(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    staff(db, acme, "acme.example", 4)
    sink.refuse["person0@acme.example"] = "550 5.1.1 No such user"
    sink.refuse_times["person1@acme.example"] = ("451 4.3.0 Try again later", 2)
    start_worker(**mail_env(sink))

    accepted = await api.post(ANNOUNCEMENTS, json={"subject": "Hi", "text": "x"}, headers=headers)
    assert accepted.status_code == 202
    await poll(lambda: settled(db), what="every message sent or failed")

    rows = db.execute(
        "SELECT u.email, o.status, o.attempts, o.error FROM mail_outbox AS o"
        " JOIN users AS u ON u.id = o.user_id ORDER BY u.email"
    ).fetchall()
    by_email = {email: (status, attempts, error) for email, status, attempts, error in rows}
    assert by_email["person0@acme.example"] == ("failed", 1, "550 5.1.1 No such user")
    assert by_email["person1@acme.example"][:2] == ("sent", 3)
    for email in ("boss@acme.example", "person2@acme.example", "person3@acme.example"):
        assert by_email[email][:2] == ("sent", 1)
    assert Counter(r.recipients[0] for r in sink.messages()) == {
        "boss@acme.example": 1,
        "person1@acme.example": 1,
        "person2@acme.example": 1,
        "person3@acme.example": 1,
    }


async def test_an_smtp_server_down_for_a_while_delays_and_loses_nothing(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    emails = ["boss@acme.example", *staff(db, acme, "acme.example", 19)]
    sink.stop()
    start_worker(**mail_env(sink))

    accepted = await api.post(ANNOUNCEMENTS, json={"subject": "Hi", "text": "x"}, headers=headers)
    assert accepted.status_code == 202

    def retrying() -> bool:
        row = db.execute(
            "SELECT count(*) FROM mail_outbox WHERE status = 'queued' AND attempts >= 2"
        ).fetchone()
        return row == (20,)

    await poll(retrying, what="every message tried twice against the dead server")
    assert statuses(db) == {"queued": 20}
    sink.start()
    await poll(lambda: settled(db), what="every message sent once the server is back")

    assert statuses(db) == {"sent": 20}
    assert sorted(r.recipients[0] for r in sink.messages()) == sorted(emails)


# Claimed per batch: at most this many are sent again after a SIGKILL.
IN_FLIGHT = 5


async def test_a_worker_killed_mid_batch_resends_at_most_the_messages_in_flight(
    api: httpx.AsyncClient, db: Db, bearer: Bearer, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    emails = ["boss@acme.example", *staff(db, acme, "acme.example", 59)]
    env = mail_env(
        sink,
        MAIL_MAX_IN_FLIGHT=str(IN_FLIGHT),
        # Slow enough to be killed mid-way (60 messages in about a second), and a short
        # lease so the next worker takes the dead one's batch at once.
        MAIL_RATE_PER_SECOND="50",
        MAIL_LEASE_SECONDS="0.5",
    )
    first = start_worker(**env)
    accepted = await api.post(ANNOUNCEMENTS, json={"subject": "Hi", "text": "x"}, headers=headers)
    assert accepted.status_code == 202
    await poll(lambda: sink.count() >= 17, what="a third of the messages sent")
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = sink.count()
    assert before < len(emails), "the worker finished before the kill: slow it down"
    sent_before = statuses(db).get("sent", 0)
    assert before - sent_before <= IN_FLIGHT  # received, not yet marked: the bound

    start_worker(**env)
    await poll(lambda: settled(db), within=30, what="the rest sent by the next worker")

    received = sink.messages()
    per_recipient = Counter(r.recipients[0] for r in received)
    assert sorted(per_recipient) == sorted(emails)  # nothing lost
    duplicates = len(received) - len(emails)
    assert 0 <= duplicates <= IN_FLIGHT
    assert statuses(db) == {"sent": len(emails)}
    # A message sent twice carries the same Message-ID both times.
    ids = Counter(r.message["Message-ID"] for r in received)
    assert len(ids) == len(emails)
    for recipient, times in per_recipient.items():
        if times > 1:
            twice = {r.message["Message-ID"] for r in received if r.recipients[0] == recipient}
            assert len(twice) == 1


async def test_the_rate_limit_holds_in_each_of_two_workers_draining_at_once(
    db: Db, engine: AsyncEngine, session: AsyncSession, settings: Settings, sink: SmtpSink
) -> None:
    rate, people_count = 20.0, 40
    acme = f.company(db, "Acme")
    emails = staff(db, acme, "acme.example", people_count)
    for (user_id,) in db.execute("SELECT id FROM users").fetchall():
        await outbox.queue_invitation(session, acme, user_id)
    await session.commit()
    # What each worker process runs (worker.py's start-up): a Drainer of its own, with its
    # own SMTP connection and its own limit; small batches so both get a share.
    config = MailConfig.of(
        settings.model_copy(
            update={"smtp_url": sink.url, "mail_rate_per_second": rate, "mail_max_in_flight": 4}
        )
    )
    factory = create_session_factory(engine)
    await asyncio.gather(*(Drainer(factory, config).drain() for _ in range(2)))

    received = sink.messages()
    assert sorted(r.recipients[0] for r in received) == sorted(emails)  # each once
    assert statuses(db) == {"sent": people_count}
    by_worker: dict[str, list[float]] = {}
    for r in received:
        by_worker.setdefault(r.peer, []).append(r.at)
    assert len(by_worker) == 2, "both workers sent a share"
    for times in by_worker.values():
        # Evenly spaced at most `rate` a second: any second holds at most rate + 1.
        assert all(sum(1 for t in times if start <= t < start + 1) <= rate + 1 for start in times)
    # Each worker has its own limit: together they send faster than one would.
    span = max(r.at for r in received) - min(r.at for r in received)
    assert span < (people_count - 1) / rate


async def test_mail_written_while_redis_was_down_is_sent_by_the_periodic_drain(
    db: Db, session: AsyncSession, sink: SmtpSink, start_worker: StartWorker
) -> None:
    acme = f.company(db, "Acme")
    ana = f.user(db, acme, "ana@acme.example")
    # Queued and committed, never woken (what POST /admin/users does when Redis is down).
    await outbox.queue_invitation(session, acme, ana)
    await session.commit()

    start_worker(**mail_env(sink))  # its start-up drain finds the row

    [received] = await poll(sink.messages)
    assert received.recipients == ["ana@acme.example"]


def test_an_outbox_row_needs_its_user_in_its_company_and_keeps_them(db: Db) -> None:
    acme, globex = f.company(db, "Acme"), f.company(db, "Globex")
    ana = f.user(db, acme, "ana@acme.example")
    bob = f.user(db, globex, "bob@globex.example")
    # Checked per statement (migration 0012_outbox_speed): one bad row fails them all.
    for company, user in ((globex, ana), (acme, UUID(int=1))):
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="mail_outbox_user_exists"):
            db.execute(outbox_rows(2), (acme, ana, company, user))
    assert statuses(db) == {}
    db.execute(outbox_rows(1), (acme, ana))
    # Nor re-pointed afterwards, nor left without its user.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("UPDATE mail_outbox SET user_id = %s, company_id = %s", (bob, globex))
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="deactivate"):
        db.execute("DELETE FROM users WHERE id = %s", (ana,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("UPDATE users SET company_id = %s WHERE id = %s", (globex, ana))
    db.execute("UPDATE users SET name = 'Ana Maria' WHERE id = %s", (ana,))  # as ever
    rows = db.execute("SELECT company_id, user_id FROM mail_outbox").fetchall()
    assert rows == [(acme, ana)]


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://user%40x:p%3Ass@mail.example:2525?starttls")
    assert (plain.host, plain.port, plain.username, plain.password) == (
        "mail.example",
        2525,
        "user@x",
        "p:ss",
    )
    assert (plain.implicit_tls, plain.start_tls) == (False, True)
    tls = parse_smtp_url("smtps://smtp.example")
    assert (tls.port, tls.implicit_tls, tls.start_tls, tls.username) == (465, True, None, None)
    assert parse_smtp_url("smtp://127.0.0.1").port == 25
    for bad in ("http://x", "smtp://", "smtp://h?tls", "smtps://h?starttls"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            parse_smtp_url(bad)
    assert sender_domain("Acme <No-Reply@Acme.Example>") == "acme.example"
    with pytest.raises(ValueError, match="MAIL_FROM"):
        sender_domain("nobody")
