"""The api process: `uvicorn {{ cookiecutter.package_name }}.app:create_app --factory`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .features.admin.router import router as admin_router
{%- if cookiecutter.examples == "kudos" %}
from .features.compliments.router import router as compliments_router
{%- endif %}
from .features.health.router import router as health_router
{%- if cookiecutter.examples == "kudos" %}
from .features.mail.router import router as mail_router
from .features.user_import import service as user_import
from .features.user_import.router import router as user_import_router
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}
from .features.users.router import router as users_router
from .features.wallets.router import router as wallets_router
{%- else %}
from .features.users.router import router as users_router
{%- endif %}
from .lib import error_reports, telemetry
from .lib.auth import create_verifier, install_auth
from .lib.config import Settings, get_settings
from .lib.database import create_engine, create_session_factory
from .lib.errors import error_responses, install_error_handlers
from .lib.logs import configure_logging
from .lib.queue import create_queue
from .lib.request_limits import RequestLimitsMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    # Before the key set's HTTP client and the engine exist, so both are traced.
    telemetry.configure(settings, "api")
    error_reports.configure(settings, "api")
    # Raises AuthConfigError when AUTH_* are missing: the api never runs unauthenticated.
    verifier = create_verifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, request_limits=True)
        queue = create_queue(settings)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.autocommit_session_factory = create_session_factory(engine, autocommit=True)
        app.state.queue = queue
        try:
            yield
        finally:
            await verifier.jwks.aclose()
            await queue.aclose()
            await engine.dispose()

    docs = settings.api_docs_enabled
    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # Any request may be refused by RequestLimitsMiddleware, before routing.
        responses=error_responses(408, 413),
    )
    app.state.settings = settings
    install_auth(app, verifier)
    app.include_router(health_router)
    app.include_router(users_router)
{%- if cookiecutter.examples == "kudos" %}
    app.include_router(user_import_router)
    app.include_router(wallets_router)
    app.include_router(compliments_router)
    app.include_router(admin_router)
    app.include_router(mail_router)
{%- else %}
    app.include_router(admin_router)
{%- endif %}
    # Added before the error handlers' middleware, so it runs inside it (with a request id).
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.request_max_body_bytes,
        read_timeout=settings.request_read_timeout_seconds,
        min_bytes_per_second=settings.request_min_bytes_per_second,
{%- if cookiecutter.examples == "kudos" %}
        route_limits={
            ("POST", app.url_path_for("upload")): user_import.upload_max_body_bytes(settings)
        },
{%- endif %}
    )
    install_error_handlers(app)
    telemetry.instrument_app(app)
    telemetry.observe_queue(settings)
    return app
