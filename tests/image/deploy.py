"""How Railway runs the image's processes, pointed at this machine's Postgres and Redis."""

import json
import shlex
import signal
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
import redis

from ..railway_config import evaluate, services
from .containers import Container, Image, Process

REDIS_URL = "redis://127.0.0.1:6379/0"
# How long SIGTERM may take to stop the api or an idle worker.
STOP_BOUND_SECONDS = 10.0

# Valid authentication settings for the api, which refuses to start without them
# (Railway's file holds placeholders until the user sets them). `.invalid` names never
# resolve, and the api fetches signing keys only for a token, which these tests never send.
AUTH_TEST_VALUES = {
    "AUTH0_DOMAIN": "kudos-image-test.invalid",
    "AUTH_ISSUER": "https://issuer.invalid/",
    "AUTH_JWKS_URL": "https://issuer.invalid/.well-known/jwks.json",
    "AUTH_AUDIENCE": "https://api.invalid",
}


@dataclass(frozen=True)
class Service:
    """A service of the project's Railway configuration: how Railway starts it."""

    name: str
    command: list[str]
    pre_deploy: list[list[str]]
    variables: dict[str, dict[str, str]]

    def env(self, database: str, queue: str, port: int | None = None) -> dict[str, str]:
        """The service's variables, pointed at this machine's Postgres and Redis."""
        outputs = {"DATABASE_URL": database, "REDIS_URL": REDIS_URL}
        env = {"QUEUE_NAME": queue}  # not Railway's: each test has its own queue
        for name, variable in self.variables.items():
            if variable["type"] == "reference":
                env[name] = outputs[variable["output"]]
            elif name == "PORT":
                assert port is not None, f"{self.name} listens on PORT: give it a free one"
                env[name] = str(port)
            else:
                env[name] = AUTH_TEST_VALUES.get(name, variable["value"])
        return env


def railway_services(project: Path, cron: str) -> dict[str, Service]:
    """The app services of .railway/railway.py, evaluated with railway-sdk."""
    graph = evaluate(project / ".railway" / "railway.py")
    result = {}
    for name, service in services(graph).items():
        deploy = service["deploy"]
        # Railway runs a start command as words (no shell), instead of the image's CMD.
        result[name] = Service(
            name,
            shlex.split(deploy["startCommand"]),
            [shlex.split(command) for command in deploy.get("preDeployCommand", [])],
            service.get("variables", {}),
        )
    assert {"api", "worker", cron} <= set(result), sorted(result)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def migrate(container: Container, api: Service, database: str, queue: str) -> None:
    """The api's pre-deploy command, as Railway runs it before each deploy."""
    assert api.pre_deploy, "the api has no pre-deploy command"
    for command in api.pre_deploy:
        done = container.run(command, api.env(database, queue, port=free_port()))
        assert done.returncode == 0, done.stdout + done.stderr


def wait_until_ready(process: Process, port: int, deadline_seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_seconds
    url = f"http://127.0.0.1:{port}/health/ready"
    last = "no answer"
    while time.monotonic() < deadline:
        process.assert_running()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise AssertionError(
        f"{url} not ready in {deadline_seconds:.0f} s ({last}):\n{process.output()}"
    )


def wait_until_worker_healthy(process: Process, queue: str, deadline_seconds: float = 60) -> None:
    """arq writes `<queue>:health-check` once it polls the queue (what `arq --check` reads)."""
    deadline = time.monotonic() + deadline_seconds
    client = redis.Redis.from_url(REDIS_URL)
    try:
        while not client.exists(f"{queue}:health-check"):
            process.assert_running()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"worker not healthy in {deadline_seconds:.0f} s:\n{process.output()}"
                )
            time.sleep(0.1)
    finally:
        client.close()


# Rows written as the project's own tests write them (tests/factories.py).
def add_company(db: psycopg.Connection[Any], name: str, allowance: int) -> str:
    row = db.execute(
        "INSERT INTO companies (name, email_domain, weekly_renewal_amount, is_active)"
        " VALUES (%s, %s, %s, true) RETURNING id",
        (name, f"{name.lower()}.example", allowance),
    ).fetchone()
    assert row is not None
    return str(row[0])


def add_user(db: psycopg.Connection[Any], company: str, email: str, compliment: int) -> str:
    row = db.execute(
        "INSERT INTO users (company_id, email, name, is_active) VALUES (%s, %s, %s, true)"
        " RETURNING id",
        (company, email, email.split("@")[0].title()),
    ).fetchone()
    assert row is not None
    db.execute(
        "INSERT INTO wallets (user_id, compliment_balance, redeemable_balance) VALUES (%s, %s, 0)",
        (row[0], compliment),
    )
    return str(row[0])


# The starter's rows, as its own tests/factories.py writes them.
def add_starter_company(db: psycopg.Connection[Any], name: str) -> str:
    row = db.execute(
        "INSERT INTO companies (name, email_domain, is_active) VALUES (%s, %s, true) RETURNING id",
        (name, f"{name.lower()}.example"),
    ).fetchone()
    assert row is not None
    return str(row[0])


def add_starter_user(
    db: psycopg.Connection[Any], company: str, email: str, days_ago: int = 0
) -> str:
    """A user who never signed in (no auth_sub), added `days_ago` days ago."""
    row = db.execute(
        "INSERT INTO users (company_id, email, name, is_active, created_at)"
        " VALUES (%s, %s, %s, true, now() - make_interval(days => %s)) RETURNING id",
        (company, email, email.split("@")[0].title(), days_ago),
    ).fetchone()
    assert row is not None
    return str(row[0])


def compliment_balance(db: psycopg.Connection[Any], user: str) -> int:
    row = db.execute(
        "SELECT compliment_balance FROM wallets WHERE user_id = %s", (user,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def stop_signal(image: Image) -> signal.Signals:
    """The Dockerfile's STOPSIGNAL (what `docker stop` and Railway send), SIGTERM by default."""
    return signal.Signals[image.config.get("StopSignal") or "SIGTERM"]


# Go's names for the signals, as buildah reports a command they ended.
SIGNAL_WORDS = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupt", signal.SIGQUIT: "quit"}


def clean_exits(sig: signal.Signals) -> set[str]:
    """Exit 0, or death by the stop signal itself after a graceful shutdown: uvicorn
    re-raises the signal it caught once it has shut down, so that the parent knows
    (Docker shows 143). A crash, another signal or a SIGKILL is not clean."""
    return {"status 0", f"signal {SIGNAL_WORDS[sig]}"}


class Starter(Protocol):
    """The `start` fixture: a Railway service's start command in a container of the image
    (a new one unless given), with the service's deploy environment; the api on `port`."""

    def __call__(
        self, name: str, *, container: Container | None = None, port: int | None = None
    ) -> Process: ...


def assert_stops_cleanly(process: Process, image: Image, name: str, timeout: float) -> None:
    """The image's stop signal ends `process` cleanly within STOP_BOUND_SECONDS."""
    sig = stop_signal(image)
    seconds = process.stop(sig, timeout=timeout)
    print(f"{name} stopped {seconds:.2f} s after {sig.name}: {process.exit()}")
    assert process.exit() in clean_exits(sig), process.output()
    assert seconds < STOP_BOUND_SECONDS, f"took {seconds:.1f} s"
