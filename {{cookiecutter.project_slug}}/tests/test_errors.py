"""Every error the api returns has the same envelope and a request id."""

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.lib import context
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.errors import ConflictError
from {{ cookiecutter.package_name }}.lib.logs import JsonFormatter, record_with_ids

from .tokens import JwksServer


class Payload(BaseModel):
    {% if cookiecutter.examples == "kudos" %}coins{% else %}quantity{% endif %}: int = Field(ge=5, le=100)


def with_probe_routes(app: FastAPI) -> FastAPI:
    """Routes that fail on purpose, added to the real app (its handlers, its middleware)."""

    @app.post("/_probe/validate")
    async def validate(payload: Payload) -> Payload:
        return payload

    @app.get("/_probe/conflict")
    async def conflict() -> None:
        raise ConflictError("that email is taken", code="email_taken")

    @app.get("/_probe/crash")
    async def crash() -> None:
        raise RuntimeError("boom: secret internals")

    return app


@pytest.fixture
async def client(settings: Settings, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    app = with_probe_routes(create_app(settings))
    async with app.router.lifespan_context(app):
        # The 500 handler answers, then Starlette re-raises for the server to log.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def envelope(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, object] = body["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


async def test_validation_errors_list_each_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/_probe/validate", json={"{% if cookiecutter.examples == "kudos" %}coins{% else %}quantity{% endif %}": 3})
    assert response.status_code == 422
    error = envelope(response)
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {
            "location": ["body", "{% if cookiecutter.examples == "kudos" %}coins{% else %}quantity{% endif %}"],
            "message": "Input should be greater than or equal to 5",
            "type": "greater_than_equal",
        }
    ]


async def test_app_errors_keep_their_status_and_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/_probe/conflict")
    assert response.status_code == 409
    error = envelope(response)
    assert (error["code"], error["message"]) == ("email_taken", "that email is taken")


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert (missing.status_code, envelope(missing)["code"]) == (404, "not_found")
    wrong = await client.delete("/health")
    assert (wrong.status_code, envelope(wrong)["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET"


async def test_a_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
{%- if cookiecutter.examples == "kudos" %}
    """Starlette names only the first route's methods; `/compliments` has two routes."""
    wrong = await client.put("/compliments")
    assert (wrong.status_code, envelope(wrong)["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, POST"
    # Not `GET /admin/users/{user_id}` refusing "imports" as an id.
    listing = await client.get("/admin/users/imports")
{%- else %}
    """Starlette names only the first route's methods; `/admin/users` has two routes."""
    wrong = await client.put("/admin/users")
    assert (wrong.status_code, envelope(wrong)["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, POST"
    # Not `GET /admin/users/{user_id}` refusing "exports" as an id.
    listing = await client.get("/admin/users/exports")
{%- endif %}
    assert (listing.status_code, listing.headers["allow"]) == (405, "POST")


async def test_an_unreadable_json_body_is_a_400_in_the_envelope(
    client: httpx.AsyncClient,
) -> None:
    """Bytes that are not UTF-8 cannot even be parsed as JSON (documented as 400)."""
    response = await client.post(
        "/_probe/validate", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, envelope(response)["code"]) == (400, "http_error")


async def test_unexpected_errors_hide_details_and_log_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/_probe/crash", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 500
    error = envelope(response)
    assert error["code"] == "internal_error"
    assert error["request_id"] == "trace-42"
    assert "secret" not in response.text
    [record] = [r for r in caplog.records if r.name.endswith("lib.errors")]
    assert record.exc_info is not None
    assert getattr(record, "request_id", None) == "trace-42"


async def test_request_ids_are_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health", headers={"X-Request-ID": "has spaces\tand tabs"})
    assert len(made.headers["x-request-id"]) == 32
    other = await client.get("/health")
    assert other.headers["x-request-id"] not in (made.headers["x-request-id"], "abc-123")


def test_production_logs_are_json_lines_with_the_ids() -> None:
    token = context.job_id.set("job-7")
    try:
        record = record_with_ids("worker", logging.INFO, __file__, 1, "done %s", ("x",), None)
        line = JsonFormatter().format(record)
    finally:
        context.job_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "done x"
    assert entry["job_id"] == "job-7"
    assert entry["level"] == "INFO"
    assert "request_id" not in entry
