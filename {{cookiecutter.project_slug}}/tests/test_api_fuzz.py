"""Schema-driven fuzzing: schemathesis generates requests from the app's own OpenAPI.

Every operation is called with valid and invalid input, signed in as an employee and as
{%- if cookiecutter.examples == "kudos" %}
an admin of a seeded company (balances, a ledger, compliments, colleagues, so lists have
something to return), through a real uvicorn server. Every response must be documented:
{%- else %}
an admin of a seeded company (an admin, colleagues, a deactivated one, so lists have
something to return), through a real uvicorn server. Every response must be documented:
{%- endif %}
no 5xx, a documented status code, content type, headers and body schema; a protected
operation must refuse a missing or invalid token; a method the path does not serve must
be a 405 naming the ones it does. Generation is derived from a fixed seed, so a run
repeats the previous one.
"""

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast
from uuid import UUID

import hypothesis
import pytest
import redis
import schemathesis
import uvicorn
from schemathesis import Case
{%- if cookiecutter.examples == "kudos" %}
from sqlmodel.ext.asyncio.session import AsyncSession
{%- endif %}

from {{ cookiecutter.package_name }}.app import create_app
{%- if cookiecutter.examples == "kudos" %}
from {{ cookiecutter.package_name }}.features.compliments.service import send_compliment
{%- endif %}
from {{ cookiecutter.package_name }}.lib.config import Settings

from . import factories as f
from .factories import Db
from .tokens import AUDIENCE, ISSUER, Bearer, JwksServer

ADMIN, EMPLOYEE = "ada@acme.example", "ben@acme.example"

CONFIG: dict[str, Any] = {
    # A fixed seed and no example database: each run generates the same requests.
    "seed": 20260101,
    "generation": {
        "max-examples": 15,
        "deterministic": True,
        "database": "none",
        # The test signs every request in itself (see `caller`); `ignored_auth` still
        # checks that each operation refuses a missing or an invalid token.
        "with-security-parameters": False,
    },
    "checks": {
{%- if cookiecutter.examples == "kudos" %}
        # Schema-valid requests that break a business rule the schema cannot express (a
        # compliment to oneself, a file that is not a CSV) are refused with a documented
        # 4xx, which this check reports. Status codes and bodies are still checked.
{%- else %}
        # Schema-valid requests that break a business rule the schema cannot express (an
        # email outside the company's domains, deactivating oneself) are refused with a
        # documented 4xx, which this check reports. Status codes and bodies are still checked.
{%- endif %}
        "positive_data_acceptance": {"enabled": False},
    },
}

# Only the document: the routes do not depend on the settings, and this app never starts.
DOCUMENT = create_app(
    Settings(
        environment="test",
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        auth_jwks_url="http://127.0.0.1:9/unused",
    )
).openapi()
# `schemathesis.pytest.from_fixture` would build the app in a fixture, but it does not
# run on pytest 9.2 (it sets `Node._nodeid`, which is gone); the app is served instead.
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))
{%- if cookiecutter.examples == "kudos" %}

# The ids the documentation's examples use, given to seeded users: the examples phase then
# sends a compliment that succeeds and reads and deactivates a user who exists.
RECEIVER_EXAMPLE = UUID(
    DOCUMENT["components"]["schemas"]["SendCompliment"]["examples"][0]["receiver_id"]
)
{%- else %}

# The id the documentation's examples use, given to a seeded user: the examples phase
# then reads and deactivates a user who exists.
{%- endif %}
USER_EXAMPLE = UUID(
    DOCUMENT["paths"]["/admin/users/{user_id}"]["get"]["parameters"][0]["schema"]["examples"][0]
)


@pytest.fixture
{%- if cookiecutter.examples == "kudos" %}
async def acme(db: Db, session: AsyncSession) -> None:
    """Acme: an admin, an employee and colleagues (one deactivated), each with coins to
    give, and compliments between them (sent through the service, so the ledger is real).
    Globex, another tenant, is there so that a leak would have something to show."""
{%- else %}
def acme(db: Db) -> None:
    """Acme: an admin, an employee and colleagues (one deactivated). Globex, another
    tenant, is there so that a leak would have something to show."""
{%- endif %}
    company = f.company(db, "Acme")
{%- if cookiecutter.examples == "kudos" %}
    admin = f.member(db, company, ADMIN, role="admin")
    employee = f.member(db, company, EMPLOYEE)
{%- else %}
    f.member(db, company, ADMIN, role="admin")
    f.member(db, company, EMPLOYEE)
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}
    cy = f.member(db, company, "cy@acme.example", user_id=RECEIVER_EXAMPLE)
    di = f.member(db, company, "di@acme.example", user_id=USER_EXAMPLE)
    f.member(db, company, "fay@acme.example", active=False)
    for user_id in (admin, employee, cy, di):
        f.fund(db, user_id, 500)
    globex = f.company(db, "Globex")
    f.fund(db, f.member(db, globex, "zed@globex.example"), 100)
    for sender, receiver, coins in ((employee, cy, 10), (cy, employee, 20), (di, admin, 15)):
        await send_compliment(
            session,
            company_id=company,
            sender_id=sender,
            receiver_id=receiver,
            coins=coins,
            message="Thanks for the thorough review!",
        )
{%- else %}
    f.member(db, company, "cy@acme.example")
    f.member(db, company, "di@acme.example", user_id=USER_EXAMPLE)
    f.member(db, company, "fay@acme.example", active=False)
    globex = f.company(db, "Globex")
    f.member(db, globex, "zed@globex.example")
{%- endif %}


@pytest.fixture(params=["employee", "admin"])
def caller(request: pytest.FixtureRequest, acme: None) -> str:
    """The token subject the fuzz signs in as."""
    return ADMIN if request.param == "admin" else EMPLOYEE


@pytest.fixture(scope="module")
def fuzz_settings(settings: Settings) -> Iterator[Settings]:
{%- if cookiecutter.examples == "kudos" %}
    """The session's settings with a queue of its own, emptied afterwards: jobs the fuzz
    enqueues (resets, imports) must not reach a worker another test starts."""
{%- else %}
    """The session's settings with a queue of its own, emptied afterwards: jobs the fuzz
    enqueues (exports) must not reach a worker another test starts."""
{%- endif %}
    fuzz = settings.model_copy(update={"queue_name": f"{settings.queue_name}-fuzz"})
    yield fuzz
    client = redis.Redis.from_url(fuzz.redis_url)
    try:
        # The sync client's methods are typed as sync-or-async.
        job_ids = cast("list[bytes]", client.zrange(fuzz.queue_name, 0, -1))
        client.delete(fuzz.queue_name, *(b"arq:job:" + job_id for job_id in job_ids))
        client.delete(fuzz.queue_name)
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(fuzz_settings: Settings, jwks_server: JwksServer) -> Iterator[str]:
    """The app served by uvicorn (in a thread) on a free port of 127.0.0.1; its URL."""
    # log_config=None keeps the app's logging set-up rather than uvicorn's.
    config = uvicorn.Config(
        create_app(fuzz_settings), lifespan="on", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive():
                raise AssertionError("uvicorn stopped before it started")
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start within 30 s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@schema.parametrize()
# Set up once per operation on purpose: the examples share the seeded company, and what
{%- if cookiecutter.examples == "kudos" %}
# one of them changes (a compliment sent, a user added) is state the next one may meet.
{%- else %}
# one of them changes (a user added or deactivated) is state the next one may meet.
{%- endif %}
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
{%- if cookiecutter.examples == "kudos" %}
def test_every_response_is_documented(
    case: Case[Any], server: str, jwks: JwksServer, caller: str, bearer: Bearer, db: Db
) -> None:
    case.call_and_validate(base_url=server, headers=bearer(caller))
    if case.method != "GET":
        # Whatever was accepted or refused, coins were neither made nor lost.
        assert f.ledger_problems(db) == []
{%- else %}
def test_every_response_is_documented(
    case: Case[Any], server: str, jwks: JwksServer, caller: str, bearer: Bearer
) -> None:
    case.call_and_validate(base_url=server, headers=bearer(caller))
{%- endif %}


def test_every_error_is_documented_as_the_envelope() -> None:
    """FastAPI documents its own 422 shape (`HTTPValidationError`) on any route that does
    not list 422 itself; the api never answers with it. The fuzz cannot see the
    difference (that shape has no required field), so it is checked here."""
    readiness = DOCUMENT["paths"]["/health/ready"]["get"]["responses"]["503"]
    assert readiness["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if int(code) < 400 or (path, code) == ("/health/ready", "503"):
                    continue
                assert response["content"] == {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorEnvelope"},
                        **response["content"]["application/json"],
                    }
                }, f"{method.upper()} {path} {code}"
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_every_signed_in_route_documents_the_providers_outage() -> None:
    """A route that checks tokens answers 503 when the provider's keys cannot be fetched
    (lib/auth.py); no fuzz reaches that, so the documentation is checked here."""
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            if "401" in codes:
                assert "503" in codes, f"{method.upper()} {path} documents 401 but not 503"
