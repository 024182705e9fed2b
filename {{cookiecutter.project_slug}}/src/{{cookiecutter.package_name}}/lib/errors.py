"""One error envelope for every 4xx and 5xx the api returns.

    {"error": {"code": "{% if cookiecutter.examples == "kudos" %}insufficient_balance{% else %}email_taken{% endif %}", "message": "...", "request_id": "...",
               "details": [...]}}

Services raise AppError subclasses (they know nothing of HTTP beyond a status number);
validation errors, HTTP errors and unexpected exceptions are rendered the same way. The
request id comes from the caller's `X-Request-ID` header when it is a sane value, else
is generated, and is echoed back in the same header and written on every log line.
"""

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from psycopg.errors import IdleInTransactionSessionTimeout, LockNotAvailable, QueryCanceled
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import context

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class AppError(Exception):
    """An error a caller can act on; `status_code` and `code` say which."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details
        self.headers = headers or {}


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class DomainRuleError(AppError):
    """A request that is well formed but breaks a business rule."""

    status_code = 422
    code = "rule_violated"


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorEnvelope(BaseModel):
    """The shape of every error response (documented in the OpenAPI schema)."""

    error: ErrorBody


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = context.request_id.get()
    body = ErrorBody(code=code, message=message, request_id=request_id, details=details)
    all_headers = dict(headers or {})
    if request_id:
        all_headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(
        {"error": jsonable_encoder(body, exclude_none=True)},
        status_code=status_code,
        headers=all_headers,
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the envelope for these status codes."""
    return {code: {"model": ErrorEnvelope} for code in codes}


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(
        exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"location": list(error["loc"]), "message": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return error_response(
        422,
        "validation_error",
        "the request is not valid",
        details=details,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """The methods the request's path is served with, for a 405's `Allow` header.

    The router names only the methods of the first route it tried, but a path often has
    one route per method ({% if cookiecutter.examples == "kudos" %}`GET` and `POST /compliments`{% else %}`GET` and `POST /admin/users`{% endif %}): ask every route about each one.
    """
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
            "headers": [],
        }
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


# Postgres cut the request short (the api's DATABASE_*_TIMEOUT_SECONDS): it waited too
# long for a lock another transaction holds ({% if cookiecutter.examples == "kudos" %}the weekly reset's batch, say{% else %}a long batch update, say{% endif %}), ran too long,
# or sat idle in its transaction. The connection went back to the pool; trying again soon
# will likely work.
_DATABASE_BUSY = (LockNotAvailable, QueryCanceled, IdleInTransactionSessionTimeout)
DATABASE_BUSY_RETRY_AFTER_SECONDS = 1


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if not isinstance(exc.orig, _DATABASE_BUSY):
        return await _unexpected_error(request, exc)
    logger.warning(
        "database busy on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__
    )
    return error_response(
        503,
        "database_busy",
        "the database is busy; try again in a moment",
        headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER_SECONDS)},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(
        500,
        "internal_error",
        "something went wrong; quote the request id when reporting it",
    )


class RequestIdMiddleware:
    """Gives each request an id, for the logs, the error body and the response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = (
            dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        )
        request_id = given if _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        # Not reset afterwards: the 500 handler runs outside this middleware and needs it.
        context.request_id.set(request_id)
        # On the request's span too (a no-op when not tracing): from a trace to its logs.
        trace.get_current_span().set_attribute("request.id", request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
