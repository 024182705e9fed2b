"""FastAPI dependencies shared by the api's features.

Kept apart from lib/database.py so that the worker and cron processes never import FastAPI.
"""

from collections.abc import AsyncIterator

from arq.connections import ArqRedis
from fastapi import Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from .config import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, from the app's session factory."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_queue(request: Request) -> ArqRedis:
    """The app's job queue (Redis, through arq), to hand work to the worker."""
    queue: ArqRedis = request.app.state.queue
    return queue
