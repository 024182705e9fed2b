"""Liveness and readiness, through the real app with its lifespan."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.lib.config import Settings

ClientFactory = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_for() -> ClientFactory:
    @asynccontextmanager
    async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                yield c

    return client


async def test_liveness(client_for: ClientFactory, settings: Settings) -> None:
    async with client_for(settings) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_postgres_and_redis_answer(
    client_for: ClientFactory, settings: Settings
) -> None:
    async with client_for(settings) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_not_ready_when_redis_is_unreachable(
    client_for: ClientFactory, settings: Settings
) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with client_for(broken) as client:
        response = await client.get("/health/ready")
        alive = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("unavailable")
    # Liveness does not depend on other services: Railway must not restart the api.
    assert alive.status_code == 200


async def test_not_ready_when_postgres_is_unreachable(
    client_for: ClientFactory, settings: Settings
) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    )
    async with client_for(broken) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "postgres": response.json()["checks"]["postgres"],
        "redis": "ok",
    }
    assert response.json()["checks"]["postgres"].startswith("unavailable")
