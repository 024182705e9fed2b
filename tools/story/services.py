"""The Postgres server and the Redis the story uses: checked, and a database of its own."""

import contextlib
import urllib.parse
import uuid
from collections.abc import Iterator

import psycopg
import redis

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def service_problems(database_url: str, redis_url: str) -> list[str]:
    """What is wrong with the Postgres server and the Redis the story would use."""
    problems = []
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems.append(f"Postgres is not reachable at {database_url}: {exc}".strip())
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        problems.append(f"Redis is not reachable at {redis_url}: {exc}")
    finally:
        client.close()
    return problems


def database_url_for(admin_url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh_database(admin_url: str = POSTGRES_ADMIN_URL, prefix: str = "story") -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield database_url_for(admin_url, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
