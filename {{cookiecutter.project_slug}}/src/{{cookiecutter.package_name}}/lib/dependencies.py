"""FastAPI dependencies shared by the api's features, declared once as `Annotated`
aliases: a route asks for `session: Session`, `settings: AppSettings`, `queue: Queue`,
and never reads `request.app.state` itself. (The caller, with a permission, is
`features/users/dependencies.py`'s.)

Kept apart from lib/database.py so that the worker and cron processes never import FastAPI.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from .config import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, from the app's session factory (the autocommit one for
    a route that asks for it with `Autocommit`). Nothing is taken from the pool until
    the session's first statement."""
    autocommit = getattr(request.state, "autocommit", False)
    state = request.app.state
    factory: async_sessionmaker[AsyncSession] = (
        state.autocommit_session_factory if autocommit else state.session_factory
    )
    async with factory() as session:
        yield session


async def _autocommit(request: Request) -> None:
    request.state.autocommit = True


# In a route's `dependencies` (resolved before its parameters, so before the caller is
{%- if cookiecutter.examples == "kudos" %}
# looked up): the request's session runs each statement in its own transaction. Only
# for a route whose writes are each one statement, the send of a compliment: its
# wallet locks are then released the moment the statement ends, and the request saves
# the BEGIN and COMMIT round trips. Its caller lookup needs no transaction either.
{%- else %}
# looked up): the request's session runs each statement in its own transaction. Only
# for a route whose writes are each one statement: its row locks are then released the
# moment the statement ends, and the request saves the BEGIN and COMMIT round trips.
# Its caller lookup needs no transaction either.
{%- endif %}
Autocommit = Depends(_autocommit)


# The dependencies are `async def` even when they await nothing: FastAPI runs a plain
# `def` dependency in a worker thread, a hop per request that costs more than the call.
async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_queue(request: Request) -> ArqRedis:
    """The app's job queue (Redis, through arq), to hand work to the worker."""
    queue: ArqRedis = request.app.state.queue
    return queue


async def get_session_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    """For work that outlives the request's session (a streamed response's reads)."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    return factory


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


Session = Annotated[AsyncSession, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
Queue = Annotated[ArqRedis, Depends(get_queue)]
SessionFactory = Annotated[async_sessionmaker[AsyncSession], Depends(get_session_factory)]
Engine = Annotated[AsyncEngine, Depends(get_engine)]
