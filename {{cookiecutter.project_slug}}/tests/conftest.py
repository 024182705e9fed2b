"""Tests talk to a real Postgres and Redis.

Each test session creates its own database (dropped at the end) and its own queue
name, so parallel runs on one machine do not collide. Point the tests elsewhere with
TEST_POSTGRES_URL (any database on the server: only its server is used, through the
`postgres` maintenance database, to create and drop the test one; the development
database is never opened) and TEST_REDIS_URL (default Redis database 15, not the
development stack's 0). The keys a session writes under its queue name (the queue, the
worker's health check) are deleted when it ends, and `redis_left_clean` fails the
session when any remain; arq's own keys (results, in-progress markers) expire by themselves.
"""

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Protocol

import httpx
import psycopg
import pytest
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.database import (
    create_engine,
    create_session_factory,
)
from {{ cookiecutter.package_name }}.lib.queue import health_check_key

from .factories import Db
from .tokens import AUDIENCE, ISSUER, JwksServer, SigningKey, claims_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = (
    os.environ.get("TEST_POSTGRES_URL")
    or os.environ.get("DATABASE_URL")
    or "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Arq's keys are not namespaced by the queue name: the tests keep to a database of their own.
REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
RUN_ID = uuid.uuid4().hex[:8]
QUEUE_NAME = f"{{ cookiecutter.project_slug }}-test-{RUN_ID}"
{%- if cookiecutter.examples == "kudos" %}
TABLES = (
    "companies, users, wallets, wallet_transactions, weekly_reset_runs, compliments,"
    " csv_imports, csv_import_chunks, csv_import_errors, compliment_idempotency_keys,"
    " mail_outbox, announcements,"
    " company_domains"
)
{%- else %}
TABLES = "companies, users, user_exports, company_domains"
{%- endif %}
WORKER = "{{ cookiecutter.package_name }}.worker.WorkerSettings"
CRON = "{{ cookiecutter.package_name }}.scripts.{% if cookiecutter.examples == "kudos" %}run_weekly_reset{% else %}deactivate_dormant_users{% endif %}"
ARQ = str(Path(sys.executable).with_name("arq"))


def libpq_url(url: str) -> str:
    """psycopg wants plain postgresql:// URLs."""
    return "postgresql://" + url.split("://", 1)[1]


def with_database(url: str, name: str) -> str:
    base, _, _ = libpq_url(url).partition("?")
    return base.rsplit("/", 1)[0] + "/" + name


# The server's maintenance database: creating and dropping the test database never
# connects to the one DATABASE_URL names (the development database).
POSTGRES_URL = with_database(SERVER_URL, "postgres")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, with the reason, when a service the tests need is not there."""
    try:
        psycopg.connect(libpq_url(POSTGRES_URL), connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.exit(
            f"Postgres is not reachable at {POSTGRES_URL} ({exc}). "
            "Start it or set TEST_POSTGRES_URL.",
            returncode=2,
        )
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"Redis is not reachable at {REDIS_URL} ({exc}). Start it or set TEST_REDIS_URL.",
            returncode=2,
        )


def create_database(name: str) -> str:
    with psycopg.connect(libpq_url(POSTGRES_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(POSTGRES_URL, name)


def drop_database(name: str) -> None:
    with psycopg.connect(libpq_url(POSTGRES_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = Settings(database_url=database_url).database_url
    return config


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"{{ cookiecutter.package_name }}_test_{RUN_ID}"
    url = create_database(name)
    try:
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    """The key the test identity provider signs tokens with (published by `jwks_server`)."""
    return SigningKey.generate()


@pytest.fixture(scope="session")
def jwks_server(signing_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer().start()
    server.reset(signing_key)
    yield server
    server.stop()


@pytest.fixture
def jwks(jwks_server: JwksServer, signing_key: SigningKey) -> Iterator[JwksServer]:
    """The JWKS server, publishing `signing_key` only, its request count at zero."""
    jwks_server.reset(signing_key)
    yield jwks_server
    jwks_server.reset(signing_key)


@pytest.fixture(scope="session")
def settings(database_url: str, jwks_server: JwksServer) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=QUEUE_NAME,
        auth0_domain=None,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        auth_jwks_url=jwks_server.url,
        # The standard claims, whatever a developer's `.env` names (e.g. Auth0's namespaced).
        auth_email_claim="email",
        auth_email_verified_claim="email_verified",
        sentry_dsn=None,
        metrics_port=None,
    )


@pytest.fixture
def bearer(signing_key: SigningKey) -> Callable[[str], dict[str, str]]:
    """`bearer(sub)`: headers with a valid token for that subject."""

    def headers(sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {signing_key.sign(claims_for(sub))}"}

    return headers


@pytest.fixture
async def api(settings: Settings, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real app (lifespan run), verifying tokens against `jwks`."""
    async with client_of(settings) as client:
        yield client


@contextlib.asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real app made with `settings` (lifespan run)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(autouse=True)
def clean_tables(database_url: str) -> None:
    """Every test starts from empty tables (committed data, so subprocesses see it)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        # A process the last test killed leaves its statement running in Postgres until
        # the server notices the client is gone; it could deadlock with the TRUNCATE.
        # Between tests nothing else runs a statement here.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state = 'active' AND backend_type = 'client backend'"
        )
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


def run_keys(client: redis.Redis, before: set[bytes]) -> set[bytes]:
    """The keys this session wrote under its own queue name (the queue, the worker's
    health check), new since it started. Arq's own `arq:*` keys are not namespaced, so
    another session on the same Redis database could own them: they are left to expire."""
    return {
        key for key in client.scan_iter(match=f"{QUEUE_NAME}*", count=1000) if key not in before
    }


@pytest.fixture(scope="session", autouse=True)
def redis_left_clean() -> Iterator[None]:
    """Scans Redis before and after the session: what the session wrote is deleted, and
    the session fails if any of it remains (a job still queued, a key written after)."""
    client = redis.Redis.from_url(REDIS_URL)
    before = set(client.scan_iter(count=1000))
    yield
    try:
        written = run_keys(client, before)
        if written:
            client.delete(*written)
        left = run_keys(client, before)
        assert not left, f"the tests left keys in Redis: {sorted(left)[:10]}"
    finally:
        client.close()


@pytest.fixture(autouse=True)
def empty_queue(settings: Settings) -> None:
    """Every test starts from an empty queue: jobs an earlier test enqueued (an upload's)
    would run in this test's workers, or be counted by it."""
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(settings.queue_name)
    client.close()


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    """A plain autocommit connection for arranging and checking rows."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_session_factory(engine)() as session:
        yield session


@pytest.fixture
def process_env(settings: Settings, database_url: str) -> dict[str, str]:
    """Environment for the project's processes started as subprocesses."""
    # Telemetry and error reports only where a test asks for them (tests/receivers.py).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SENTRY_DSN"} and not k.startswith("OTEL_")
    }
    env.update(
        DATABASE_URL=libpq_url(database_url),
        REDIS_URL=settings.redis_url,
        QUEUE_NAME=settings.queue_name,
        ENVIRONMENT="test",
        PYTHONUNBUFFERED="1",
        AUTH_ISSUER=ISSUER,
        AUTH_AUDIENCE=AUDIENCE,
        AUTH_JWKS_URL=settings.auth_jwks_url or "",
        # Empty, not unset: it also overrides an AUTH0_DOMAIN in a developer's `.env`.
        AUTH0_DOMAIN="",
    )
    return env


def run_module(
    module: str, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m module args...` from the project root, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def arq_check(env: dict[str, str]) -> int:
    return subprocess.run(
        [ARQ, "--check", WORKER], env=env, cwd=PROJECT_ROOT, capture_output=True, check=False
    ).returncode


def wait_until_healthy(worker: "subprocess.Popen[str]", settings: Settings) -> None:
    """Wait for the worker's first health-check record (what `arq --check` reads)."""
    client = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + 30
    try:
        while not client.exists(health_check_key(settings)):
            if worker.poll() is not None:
                output = worker.stdout and worker.stdout.read()
                raise AssertionError(f"worker exited early:\n{output}")
            if time.monotonic() > deadline:
                raise AssertionError("worker did not write its health check within 30 s")
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def worker(process_env: dict[str, str], settings: Settings) -> Iterator["subprocess.Popen[str]"]:
    """The real worker process (`arq <pkg>.worker.WorkerSettings`), ready for jobs."""
    # A key left by an earlier worker would end the wait (and `arq --check`) too early.
    redis.Redis.from_url(settings.redis_url).delete(health_check_key(settings))
    proc = subprocess.Popen(
        [ARQ, WORKER],
        env=process_env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_healthy(proc, settings)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class StartWorker(Protocol):
    def __call__(self, **env: str) -> "subprocess.Popen[str]": ...


@pytest.fixture
def start_worker(process_env: dict[str, str], settings: Settings) -> Iterator[StartWorker]:
    """`start_worker(**env)`: a real worker process (`env` added to its environment), once
    healthy; all are killed at the end."""
    started: list[subprocess.Popen[str]] = []
    client = redis.Redis.from_url(settings.redis_url)

    def start(**env: str) -> "subprocess.Popen[str]":
        client.delete(health_check_key(settings))
        proc = subprocess.Popen(
            [ARQ, WORKER],
            env={**process_env, **env},
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        # The key `arq --check` reads, polled directly: quicker than spawning arq each time.
        deadline = time.monotonic() + 30
        while not client.exists(health_check_key(settings)):
            assert proc.poll() is None, proc.stdout and proc.stdout.read()
            assert time.monotonic() < deadline, "the worker did not start within 30 s"
            time.sleep(0.05)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
