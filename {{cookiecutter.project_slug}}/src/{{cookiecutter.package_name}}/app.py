"""The api process: `uvicorn {{ cookiecutter.package_name }}.app:create_app --factory`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .features.health.router import router as health_router
from .lib.config import Settings, get_settings
from .lib.database import create_engine, create_session_factory
from .lib.logs import configure_logging
from .lib.queue import create_queue


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        queue = create_queue(settings)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.queue = queue
        try:
            yield
        finally:
            await queue.aclose()
            await engine.dispose()

    app = FastAPI(title="{{ cookiecutter.project_name }}", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(health_router)
    return app
