"""What each e-mail says: a plain-text and an HTML part, with the company's name.

Built at send time from the outbox row and the rows it points to; the Message-ID comes
from the row's id, so every try of one message carries the same one.
"""

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from uuid import UUID

from .models import MailKind


@dataclass(frozen=True)
class Letter:
    """One message to compose: the outbox row's id and what it is about."""

    id: UUID
    kind: MailKind
    to_address: str
    to_name: str
    company: str
    subject: str | None = None  # announcements
    body: str | None = None


def message_id(row_id: UUID, domain: str) -> str:
    return f"<{row_id}@{domain}>"


def _html(paragraphs: list[str], company: str) -> str:
    body = "".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"{body}<p>&mdash; {html.escape(company)}</p>\n</body></html>\n"
    )


def compose(letter: Letter, *, sender: str, domain: str, app_url: str) -> EmailMessage:
    """The message for `letter`; ValueError when a header cannot be written (bad address)."""
    if letter.kind is MailKind.invitation:
        subject = f"{letter.company} invites you: sign in to start"
        paragraphs = [
            f"Hello {letter.to_name},",
            f"{letter.company} has added you; colleagues there can now send you compliments.",
            f"Sign in with this e-mail address ({letter.to_address}) at {app_url}",
        ]
    else:
        subject = f"[{letter.company}] {letter.subject}"
        paragraphs = [f"Hello {letter.to_name},", letter.body or ""]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = formataddr((letter.to_name, letter.to_address))
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(letter.id, domain)
    message["Organization"] = letter.company
    message.set_content("\n\n".join(paragraphs) + f"\n\n-- \n{letter.company}\n")
    message.add_alternative(_html(paragraphs, letter.company), subtype="html")
    return message
