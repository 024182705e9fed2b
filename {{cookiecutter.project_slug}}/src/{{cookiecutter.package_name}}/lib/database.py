"""The one place that creates engines and sessions, shared by api, worker and cron."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from .config import Settings

# Connections a pool opens beyond DATABASE_POOL_SIZE under load (SQLAlchemy's default,
# said here so the benchmark can report what a process really uses).
MAX_OVERFLOW = 10


def create_engine(settings: Settings, *, request_limits: bool = False) -> AsyncEngine:
    """The process's engine. `request_limits` (the api) gives every session the
    DATABASE_*_TIMEOUT_SECONDS limits, so no request can hold a pooled connection for
    long waiting on a lock, a slow statement or a slow client."""
    # Fail fast when Postgres is unreachable instead of hanging the process.
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if request_limits:
        connect_args["options"] = session_limits(settings)
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=MAX_OVERFLOW,
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
