"""Error reports (Sentry) from the three processes, when SENTRY_DSN is set.

Unset, `sentry_sdk` is never imported. Set, the api's unhandled errors, the worker's
failed jobs (tagged with the job's name, id and try) and the cron's failed runs are
reported, with ENVIRONMENT and the release (SENTRY_RELEASE, or the commit Railway
deploys), and the trace id when tracing is on.

No personal data leaves: requests go without body, cookies, user or headers other than
a few harmless ones; stack frames without local variables (rows of a CSV, tokens); and
every string left, messages included, has its emails, bearer tokens and JWTs replaced,
and SQLAlchemy's list of a failed statement's parameters removed. Values under keys
that name personal data (`email`, `name`, `token`, ...) are dropped wherever they are.
"""

import logging
import re
from typing import Any, cast

from . import context, telemetry
from .config import Settings

FILTERED = "[Filtered]"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+")
# SQLAlchemy's errors end with the statement and `[parameters: {...}]`: the values.
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\s*(?:\(|$))", re.DOTALL)
_SENSITIVE_KEYS = frozenset(
    {
        "email",
        "emails",
        "name",
        "names",
        "display_name",
        "first_name",
        "last_name",
        "full_name",
        "token",
        "access_token",
        "authorization",
        "cookie",
        "cookies",
        "password",
        "secret",
        "csv",
        "rows",
        "args",
        "kwargs",
    }
)
_KEPT_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "x-request-id", "accept", "host"}
)
_enabled = False


def configure(settings: Settings, process: telemetry.Process) -> None:
    global _enabled
    if not settings.sentry_dsn or _enabled:
        return
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=settings.release,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        # Errors only: traces are OpenTelemetry's (lib/telemetry.py).
        traces_sample_rate=None,
        # Error records become events; other lines are not kept as breadcrumbs (their
        # arguments are free text, and the logs have them, with the same ids).
        integrations=[LoggingIntegration(level=None, event_level=logging.ERROR)],
        before_send=cast(Any, scrub_event),
        before_breadcrumb=cast(Any, scrub_breadcrumb),
    )
    sentry_sdk.set_tag("process", process)
    _enabled = True


def capture(error: BaseException) -> None:
    """Report an error the process handled but must not hide (the cron's failed run)."""
    if _enabled:
        import sentry_sdk

        sentry_sdk.capture_exception(error)


def job_started(ctx: dict[str, Any], name: str) -> None:
    """Tag what the job reports (arq's integration gives each job a scope of its own)."""
    if _enabled:
        import sentry_sdk

        sentry_sdk.set_tags(
            {"job.name": name, "job.id": ctx["job_id"], "job.try": str(ctx["job_try"])}
        )


def scrub_event(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """Sentry's before_send: the event without personal data (see the module's docstring)."""
    event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "env"):
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value for name, value in headers.items() if name.lower() in _KEPT_HEADERS
            }
    # What to look the error up by in the logs and the traces.
    tags = event.setdefault("tags", {})
    trace_id, _ = telemetry.ids()
    for tag, value in (
        ("trace_id", trace_id),
        ("request_id", context.request_id.get()),
        ("job_id", context.job_id.get()),
    ):
        if value:
            tags[tag] = value
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed


def scrub_breadcrumb(crumb: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub(crumb)
    return scrubbed


def scrub(value: Any) -> Any:
    """`value` with personal data removed from every string, key by key, item by item."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: FILTERED if str(key).lower() in _SENSITIVE_KEYS else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def scrub_text(text: str) -> str:
    text = _SQL_PARAMETERS.sub("[parameters: " + FILTERED + "]", text)
    text = _JWT.sub(FILTERED, text)
    text = _BEARER.sub(r"\1 " + FILTERED, text)
    return _EMAIL.sub(FILTERED, text)
