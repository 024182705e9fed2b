"""The one place that creates engines and sessions, shared by api, worker and cron."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from .config import Settings


def pool_size(settings: Settings, *, min_size: int = 1) -> int:
    """The connections a process's pool keeps: DATABASE_POOL_SIZE, at least `min_size`
    (the worker's max_jobs, so every running job has one)."""
    return max(settings.database_pool_size, min_size)


def create_engine(
    settings: Settings, *, request_limits: bool = False, min_pool_size: int = 1
) -> AsyncEngine:
    """The process's engine. `request_limits` (the api) gives every session the
    DATABASE_*_TIMEOUT_SECONDS limits, so no request can hold a pooled connection for
    long waiting on a lock, a slow statement or a slow client.

    The pool is fixed (DATABASE_MAX_OVERFLOW 0 by default): SQLAlchemy's default overflow
    of 10 opened and closed a connection per request under load (14 % of the api's
    profile, {% if cookiecutter.examples == "kudos" %}bench/http_api.py{% else %}the template's bench{% endif %}). A request finding every connection busy waits for one;
    more connections than Postgres has cores to run them only queue inside Postgres."""
    # Fail fast when Postgres is unreachable instead of hanging the process.
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if request_limits:
        connect_args["options"] = session_limits(settings)
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size(settings, min_size=min_pool_size),
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def session_limits(settings: Settings) -> str:
    """The api's limits as libpq startup options, in milliseconds (0: none)."""
    limits = {
        "lock_timeout": settings.database_lock_timeout_seconds,
        "statement_timeout": settings.database_statement_timeout_seconds,
        "idle_in_transaction_session_timeout": (
            settings.database_idle_in_transaction_timeout_seconds
        ),
    }
    return " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in limits.items())


def create_session_factory(
    engine: AsyncEngine, *, autocommit: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`'s pool. With `autocommit`, every statement is its own
    transaction (no BEGIN or COMMIT sent): for work that is one statement, whose row
    locks are then held only while it runs, not for another round trip to COMMIT."""
    bind = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
    return async_sessionmaker(bind, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def engine_scope(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine for the lifetime of a one-shot process (cron script, CLI)."""
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()
