"""What a request may cost before the app sees it: its body's size, and how slowly it comes.

A pure ASGI middleware, outside routing, authentication and parsing:

- **Size.** A body may have at most `max_body_bytes` {% if cookiecutter.examples == "kudos" %}(a route may have its own limit,{% else %}(a route may have its own limit),{% endif %}
  {% if cookiecutter.examples == "kudos" %}the CSV upload's). {% else %}{% endif %}A declared `Content-Length` over it is refused before one byte is
  read; otherwise the bytes of each `http.request` message are counted as the server
  hands them over, and the first message past the limit ends the request. The answer is
  `413 request_too_large` in the error envelope, with `Connection: close`, so the server
  drops the rest of the body instead of reading it.
- **Time.** The body must keep coming: each wait for more of it lasts at most
  `read_timeout` seconds, and the whole body must arrive within `read_timeout` seconds
  plus one second for every `min_bytes_per_second` bytes received (Apache's
  mod_reqtimeout rule). A client that stalls, or trickles a byte a second, gets
  `408 request_timeout` and the connection is closed.

Both stop at the body: uvicorn reads the request line and headers itself (and bounds
their size, not their time), and waits after the body (a streaming response, a client
reading slowly) are not the body's.

Whatever the app does with the broken read (FastAPI turns a failed body read into a
400, a route may let the error out), its answer is replaced by this one when its
response has not started. A client that goes away mid-body is nobody's error: what the
app raises about it (Starlette's `ClientDisconnect`) is logged, not answered as a 500.
"""

import asyncio
import logging
import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

logger = logging.getLogger(__name__)


class _RefusedError(Exception):
    """The body broke a limit; the middleware answers with `status` and `code`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _too_large(limit: int) -> _RefusedError:
    return _RefusedError(
        413, "request_too_large", f"the request body is larger than the {limit:,}-byte limit"
    )


def _timed_out() -> _RefusedError:
    return _RefusedError(408, "request_timeout", "the request body did not arrive in time")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class _Body:
    """The request's `receive`, counting and timing the body's messages."""

    def __init__(
        self, receive: Receive, *, limit: int, read_timeout: float, min_bytes_per_second: int
    ) -> None:
        self._receive = receive
        self.limit = limit
        self.read_timeout = read_timeout
        self.min_bytes_per_second = min_bytes_per_second
        self.received = 0
        self.complete = False
        self.disconnected = False
        self.refused: _RefusedError | None = None
        self._started: float | None = None

    def _refuse(self, refusal: _RefusedError) -> _RefusedError:
        self.refused = refusal
        return refusal

    async def receive(self) -> Message:
        if self.complete or self.refused is not None:
            # After the body: Starlette waits here for a disconnect while it streams a
            # response, which may take as long as it needs.
            return await self._receive()
        now = time.monotonic()
        if self._started is None:
            self._started = now
        deadline = self._started + self.read_timeout + self.received / self.min_bytes_per_second
        wait = min(self.read_timeout, deadline - now)
        if wait <= 0:
            raise self._refuse(_timed_out())
        try:
            async with asyncio.timeout(wait):
                message = await self._receive()
        except TimeoutError:
            raise self._refuse(_timed_out()) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise self._refuse(_too_large(self.limit))
            self.complete = not message.get("more_body", False)
        else:  # http.disconnect
            self.complete = self.disconnected = True
        return message


class RequestLimitsMiddleware:
    """Refuses bodies over their limit (413) or arriving too slowly (408); see the module."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        read_timeout: float,
        min_bytes_per_second: int,
        route_limits: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.min_bytes_per_second = min_bytes_per_second
        # (method, path) -> its own body limit, for routes taking more than JSON.
        self.route_limits = dict(route_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.route_limits.get((scope["method"], scope["path"]), self.max_body_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._answer(_too_large(limit), scope, receive, send)
            return
        body = _Body(
            receive,
            limit=limit,
            read_timeout=self.read_timeout,
            min_bytes_per_second=self.min_bytes_per_second,
        )
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if body.refused is not None and not started:
                return  # the app's answer to the broken read: replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.receive, guarded_send)
        except Exception as exc:
            if body.disconnected and not started:
                logger.info("client went away mid-body: %s", type(exc).__name__)
                return
            if body.refused is None or started:
                raise
        if body.refused is not None and not started:
            await self._answer(body.refused, scope, receive, send)

    @staticmethod
    async def _answer(refusal: _RefusedError, scope: Scope, receive: Receive, send: Send) -> None:
        # `Connection: close`: the server drops what is left of the body unread.
        response = error_response(
            refusal.status, refusal.code, refusal.message, headers={"Connection": "close"}
        )
        await response(scope, receive, send)
