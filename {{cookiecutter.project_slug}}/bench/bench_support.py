"""What the benchmarks that start processes share: a database and a Redis of their own,
local tokens, the processes' environment, starting and waiting for them, and the
project's worker with a benchmark's functions. Not a benchmark itself."""

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from alembic import command
from alembic.config import Config
from arq.connections import RedisSettings
from arq.worker import run_worker
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from {{ cookiecutter.package_name }}.lib.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ISSUER = "http://bench.local/"
AUDIENCE = "http://bench.local/api"
BIN = Path(sys.executable).parent
PACKAGE = "{{ cookiecutter.package_name }}"


def libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def with_database(url: str, name: str) -> str:
    return libpq(url).partition("?")[0].rsplit("/", 1)[0] + "/" + name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def database(admin_url: str, name: str) -> Iterator[str]:
    """A new database, dropped on the way out (failure included)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    # migrations/env.py takes the URL from here; Settings adds the psycopg driver name.
    config.attributes["database_url"] = Settings(database_url=url).database_url
    command.upgrade(config, "head")


def local_signer(tmp: Path) -> tuple[str, Callable[[str], str]]:
    """A key pair: its JWKS as a file: URL for the api, and a function signing a token
    (two hours) for a subject."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    kid = base64.urlsafe_b64encode(os.urandom(6)).decode()
    jwk.update(kid=kid, use="sig", alg="RS256")
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))

    def sign(sub: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 7200}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    return f"file:{jwks}", sign


def process_env(
    url: str, redis_url: str, queue: str, jwks_url: str, **extra: str
) -> dict[str, str]:
    """The api's and the worker's environment: this database, a queue of their own, and
    tokens checked against the local key."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "QUEUE_NAME": queue,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "AUTH0_DOMAIN": "",
        "AUTH_ISSUER": ISSUER,
        "AUTH_AUDIENCE": AUDIENCE,
        "AUTH_JWKS_URL": jwks_url,
        **extra,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        args, env=env, cwd=PROJECT_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def stop(process: "subprocess.Popen[bytes]", timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_http(url: str, proc: "subprocess.Popen[bytes]", log: Path, timeout: float = 60) -> None:
    """Until `url` answers 200; the process's log in the error when it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the api exited early:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the api did not answer {url} within {timeout:.0f} s:\n{log.read_text()}")


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of the benchmark's own, so its command count is the worker's."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (or pass --redis-url, where offered)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


async def until(check: Any, what: str, within: float, worker: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + within
    while not await check():
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)


def run_project_worker(functions: list[Any], redis_url: str, queue: str, **overrides: Any) -> None:
    """arq's Worker with the project's WorkerSettings, but a benchmark's `functions` on
    its own queue and no cron jobs (they need the project's database)."""
    from {{ cookiecutter.package_name }}.worker import WorkerSettings

    settings = {
        "functions": functions,
        "cron_jobs": [],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "queue_name": queue,
        **overrides,
    }
    run_worker(WorkerSettings, **settings)  # type: ignore[arg-type]
