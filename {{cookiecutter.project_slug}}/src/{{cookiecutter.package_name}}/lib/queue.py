"""Redis for arq, shared by the api (enqueue, readiness) and the worker."""

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool

from .config import Settings


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
    return ArqRedis(pool, default_queue_name=settings.queue_name)
