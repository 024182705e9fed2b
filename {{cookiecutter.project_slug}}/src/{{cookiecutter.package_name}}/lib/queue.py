"""Redis for arq, shared by the api (enqueue, readiness) and the worker."""

import pickle
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

from . import telemetry
from .config import Settings

# The job payload's key for the trace context of the code that enqueued it. arq reads its
# own keys only, so a payload with it runs on any worker.
TRACE_CONTEXT_KEY = "tc"


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url)


def health_check_key(settings: Settings) -> str:
    """Where the worker reports it is alive; `arq --check` reads it."""
    return f"{settings.queue_name}:health-check"


def create_queue(settings: Settings) -> ArqRedis:
    """A lazily connecting client: the api starts (and reports not ready) without Redis."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.health_timeout_seconds,
        socket_timeout=settings.health_timeout_seconds,
    )
    return ArqRedis(pool, default_queue_name=settings.queue_name, job_serializer=serialize_job)


def serialize_job(data: dict[str, Any]) -> bytes:
    """arq's pickle, a job's payload carrying the current trace (when there is one), so
    the worker's job span continues the request's trace."""
    if "f" in data and "r" not in data and (carrier := telemetry.trace_context()):
        data = {**data, TRACE_CONTEXT_KEY: carrier}
    return pickle.dumps(data)


def deserialize_job(raw: bytes) -> dict[str, Any]:
    """The worker's side: hand the job's trace context to its span (`job_started`)."""
    data: dict[str, Any] = pickle.loads(raw)  # noqa: S301 (arq's own format, from our Redis)
    if "f" in data and "r" not in data:
        telemetry.job_received(data["f"], data.get(TRACE_CONTEXT_KEY))
    return data
