"""The SMTP server e-mail goes through (SMTP_URL), and a client connected to it (aiosmtplib).

No feature logic here: what to send and when is features/mail.
"""

from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

SCHEMES = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    # smtps://: TLS from the first byte. Otherwise STARTTLS when the server offers it
    # (None) or always (True, `?starttls`).
    implicit_tls: bool
    start_tls: bool | None


def parse_smtp_url(url: str) -> SmtpServer:
    """smtp://user:password@host:port[?starttls] or smtps://...; ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"SMTP_URL scheme '{parts.scheme}' is not supported: use smtp:// or smtps://"
        )
    if not parts.hostname:
        raise ValueError("SMTP_URL must name a host, e.g. smtp://user:password@host:587")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError as exc:
        raise ValueError(f"SMTP_URL port is not a number: {exc}") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"SMTP_URL option {sorted(unknown)[0]!r} is unknown (only ?starttls)")
    if "starttls" in query and parts.scheme == "smtps":
        raise ValueError("SMTP_URL: smtps:// is TLS already; ?starttls is for smtp://")
    return SmtpServer(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=parts.scheme == "smtps",
        start_tls=True if "starttls" in query else None,
    )


def sender_domain(mail_from: str) -> str:
    """The domain of MAIL_FROM's address (`Name <a@b>` or `a@b`); ValueError if none."""
    _, address = parseaddr(mail_from)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain and "." in domain):
        raise ValueError(f"MAIL_FROM {mail_from!r} is not an address like Name <name@domain>")
    return domain.lower()


async def connect(server: SmtpServer, *, timeout_seconds: float) -> aiosmtplib.SMTP:
    """A client connected (and logged in, when the URL has a user) to the server; each
    command waits at most `timeout_seconds` for its reply."""
    client = aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        use_tls=server.implicit_tls,
        start_tls=server.start_tls,
        timeout=timeout_seconds,
    )
    await client.connect()
    if server.username is not None:
        try:
            await client.login(server.username, server.password or "")
        except BaseException:
            client.close()
            raise
    return client
