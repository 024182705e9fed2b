"""A real SMTP server (aiosmtpd) in a thread of the test process, recording what it receives.

Per recipient it can refuse permanently (a 5xx reply) or for the next N tries (4xx);
`stop()` and `start()` again on the same port play an SMTP server that is down a while.
"""

import logging
import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

# aiosmtpd logs every command at INFO: thousands of lines per test.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Received:
    recipients: list[str]
    message: EmailMessage
    at: float = 0.0  # time.monotonic() when its DATA ended
    peer: str = ""  # the client's address and port: one per SMTP connection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        # address -> reply: refused every time.
        self.refuse: dict[str, str] = {}
        # address -> (reply, how many more times): refused that many times, then accepted.
        self.refuse_times: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self._lock:
            if address in self.refuse:
                return self.refuse[address]
            if address in self.refuse_times:
                reply, times = self.refuse_times[address]
                if times > 0:
                    self.refuse_times[address] = (reply, times - 1)
                    return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message: EmailMessage = message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self.received.append(
                Received(list(envelope.rcpt_tos), message, time.monotonic(), str(session.peer))
            )
        return "250 Message accepted"
