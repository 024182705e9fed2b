"""The generated project's story, told over HTTP to its real, separate processes.

Shared by the end-to-end test (tests/test_end_to_end.py) and the demo (tools/demo.py).
Given a rendered project installed with `uv sync --frozen`, a Postgres database and a
Redis URL:

- `Stack` runs the project the way its README's "Run locally" section does, with the
  programs of the project's own virtualenv (what `uv run` executes): `alembic upgrade
  head`, then the api (`uvicorn <pkg>.app:create_app --factory`) and the worker
  (`arq <pkg>.worker.WorkerSettings`) as separate OS processes, the api on a free port,
  both under a queue name of their own. It waits for `/health/ready` and for the
  worker's health-check key with deadlines, and stops both with SIGTERM (and a
  deadline) when it is left, also after a failure. Tokens come from the project's
  `dev-token` command, which the api accepts through a local JWKS file.
- `tell` drives the story as clients would, over HTTP: the first admin signs in with
  `dev-token` (which creates the company, as the README says), adds colleagues, imports
  more from a CSV through the worker, sets the weekly allowance; colleagues send
  compliments (some refused); the cron command runs the weekly reset as its own
  process, twice; then every user's balances and ledger are compared, over HTTP and in
  the database, with `Expected`.
- `Expected` applies the domain rules (the shared domain notes and the project README)
  to the story's steps on its own: nothing it predicts is read back from the project.

Any failure raises `StoryError` with the processes' captured output.
"""

import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import tomllib
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import psycopg
import redis

Say = Callable[[str], None]

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The local tokens' issuer and audience, as the project's README and .env.example give them.
DEV_ISSUER = "http://localhost/dev/"
DEV_AUDIENCE = "http://localhost:8000"
# Variables of the caller's shell that would point uv or the project elsewhere.
DROPPED_VARIABLES = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME"}
READY_SECONDS = 90.0
STOP_SECONDS = 15.0
# From before the first cron run to after the second: far more than the story needs.
WEEK_BOUNDARY_MARGIN = 120.0
COMMAND_SECONDS = 120.0
IMPORT_SECONDS = 60.0


def quiet(_: str) -> None:
    """A narrator that says nothing."""


class StoryError(AssertionError):
    """The story went differently from what the domain rules say (or could not run)."""


# --------------------------------------------------------------------------- services


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


def free_port(preferred: int | None = None) -> int:
    """`preferred` when nothing listens on it, else a port the system picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise StoryError("no free port on 127.0.0.1")


def project_package(project: Path) -> str:
    """The project's import package, as its build backend names it."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return str(pyproject["tool"]["uv"]["build-backend"]["module-name"])


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Stopped:
    """How a long-running process ended after SIGTERM."""

    name: str
    returncode: int
    seconds: float
    clean: bool


@dataclass
class Process:
    name: str
    args: list[str]
    popen: "subprocess.Popen[bytes]"
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, deadline_seconds: float = STOP_SECONDS) -> Stopped:
        """SIGTERM, as a deploy stops it; SIGKILL (unclean) when the deadline passes.

        Clean: it exited 0, or re-raised the SIGTERM it handled after shutting down
        (uvicorn does, so that its parent knows).
        """
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=deadline_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
                seconds = time.monotonic() - started
                return Stopped(self.name, self.popen.returncode, seconds, clean=False)
        code = self.popen.returncode
        return Stopped(self.name, code, time.monotonic() - started, code in {0, -signal.SIGTERM})


class Stack:
    """The project's api and worker, each its own OS process, and its one-shot commands.

    Use as a context manager: migrations, both processes started and ready on entry;
    both stopped (SIGTERM, with a deadline) and the queue's Redis keys deleted on exit.
    """

    def __init__(
        self,
        project: Path,
        *,
        database_url: str,
        redis_url: str,
        work_dir: Path,
        queue_name: str | None = None,
        port: int | None = None,
        say: Say = quiet,
    ) -> None:
        self.project = project
        self.package = project_package(project)
        self.database_url = database_url
        self.redis_url = redis_url
        self.queue_name = queue_name or f"story-{uuid.uuid4().hex[:10]}:queue"
        self.preferred_port = port
        self.port = 0
        self.say = say
        self.work_dir = work_dir
        self.keys_dir = work_dir / "dev-keys"
        self.logs_dir = work_dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, Process] = {}
        self.stopped: list[Stopped] = []
        # arq job ids the story enqueued through the api: their keys go too at the end.
        self.job_ids: list[str] = []
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
        env.update(
            ENVIRONMENT="development",
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            QUEUE_NAME=self.queue_name,
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            # Local tokens (README, "Local tokens, without a provider"): dev-token signs
            # them with the key in keys_dir; the api reads its public half from this file.
            AUTH_ISSUER=DEV_ISSUER,
            AUTH_AUDIENCE=DEV_AUDIENCE,
            AUTH_JWKS_URL=f"file:{self.keys_dir / 'jwks.json'}",
            AUTH0_DOMAIN="",  # wins over a .env the project might have
        )
        self.env = env

    # The commands, as the project's README gives them (there with `uv run` in front).
    def api_command(self, port: int) -> list[str]:
        app = f"{self.package}.app:create_app"
        return ["uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]

    def worker_command(self) -> list[str]:
        return ["arq", f"{self.package}.worker.WorkerSettings"]

    def cron_command(self) -> list[str]:
        return ["python", "-m", f"{self.package}.scripts.run_weekly_reset"]

    def dev_token_command(self, email: str, *extra: str) -> list[str]:
        args = ["--email", email, *extra, "--keys-dir", str(self.keys_dir)]
        return ["python", "-m", f"{self.package}.cli", "dev-token", *args]

    def readme_commands(self) -> list[str]:
        """What the README must say for the commands above to be the ones users run."""
        return [
            "alembic upgrade head",
            f"uvicorn {self.package}.app:create_app --factory",
            shlex.join(self.worker_command()),
            shlex.join(self.cron_command()),
            f"python -m {self.package}.cli dev-token --email",
        ]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _program(self, args: list[str]) -> list[str]:
        return [str(self.project / ".venv" / "bin" / args[0]), *args[1:]]

    def run(
        self, args: list[str], timeout: float = COMMAND_SECONDS
    ) -> "subprocess.CompletedProcess[str]":
        """A one-shot command of the project, in its folder, with the stack's settings."""
        try:
            return subprocess.run(
                self._program(args),
                cwd=self.project,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise self.failure(f"`{shlex.join(args)}` did not finish in {timeout:.0f} s") from exc

    def start_process(self, name: str, args: list[str]) -> Process:
        log = self.logs_dir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                self._program(args),
                cwd=self.project,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C in the demo's terminal reaches the demo
                # only, which then stops the processes itself, with SIGTERM.
                start_new_session=True,
            )
        process = Process(name, args, popen, log)
        self.processes[name] = process
        return process

    def failure(self, message: str) -> StoryError:
        """A StoryError carrying the end of every process's output."""
        parts = [message]
        for process in self.processes.values():
            state = "running" if process.running() else f"exited {process.popen.returncode}"
            parts.append(
                f"--- {process.name} ({shlex.join(process.args)}; {state}), last lines "
                f"of {process.log}:\n{tail(process.output())}"
            )
        return StoryError("\n".join(parts))

    # --- lifecycle

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self.delete_queue_keys()

    def start(self) -> None:
        self.say(f"$ {shlex.join(['alembic', 'upgrade', 'head'])}")
        done = self.run(["alembic", "upgrade", "head"])
        if done.returncode != 0:
            raise self.failure(f"alembic upgrade head failed:\n{done.stdout}{done.stderr}")
        # The worker first: it starts while the api looks for its port.
        worker = self.start_process("worker", self.worker_command())
        self.say(f"$ {shlex.join(worker.args)}    (pid {worker.popen.pid})")
        self.start_api()
        self.wait_until_ready()
        self.wait_until_worker_healthy()

    def start_api(self, attempts: int = 3) -> None:
        """uvicorn on a free port; another one when someone took it in between."""
        for attempt in range(1, attempts + 1):
            self.port = free_port(self.preferred_port if attempt == 1 else None)
            api = self.start_process("api", self.api_command(self.port))
            self.say(f"$ {shlex.join(api.args)}    (pid {api.popen.pid})")
            deadline = time.monotonic() + 5
            while api.running() and time.monotonic() < deadline:
                if "Uvicorn running on" in api.output():
                    return
                time.sleep(0.1)
            if api.running() or "address already in use" not in api.output().lower():
                return  # still starting (wait_until_ready decides), or failed otherwise
            api.popen.wait()
        raise self.failure(f"the api found no free port in {attempts} attempts")

    def wait_until_ready(self, deadline_seconds: float = READY_SECONDS) -> dict[str, Any]:
        api, url = self.processes["api"], f"{self.api_url}/health/ready"
        deadline, last = time.monotonic() + deadline_seconds, "no answer"
        while time.monotonic() < deadline:
            if not api.running():
                raise self.failure(f"the api exited ({api.popen.returncode}) before {url} answered")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
            try:
                connection.request("GET", "/health/ready")
                response = connection.getresponse()
                raw = response.read()
                if response.status == 200:
                    body: dict[str, Any] = json.loads(raw)
                    self.say(f"api ready: GET /health/ready -> {body}")
                    return body
                last = f"HTTP {response.status}: {raw[:300]!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = str(exc)
            finally:
                connection.close()
            time.sleep(0.2)
        raise self.failure(f"{url} not ready in {deadline_seconds:.0f} s (last: {last})")

    def wait_until_worker_healthy(self, deadline_seconds: float = READY_SECONDS) -> None:
        """arq writes `<queue>:health-check` once it polls the queue (`arq --check` reads it)."""
        worker, key = self.processes["worker"], f"{self.queue_name}:health-check"
        deadline = time.monotonic() + deadline_seconds
        client = redis.Redis.from_url(self.redis_url)
        try:
            while not client.exists(key):
                if not worker.running():
                    raise self.failure(f"the worker exited ({worker.popen.returncode})")
                if time.monotonic() > deadline:
                    raise self.failure(f"the worker wrote no {key} in {deadline_seconds:.0f} s")
                time.sleep(0.1)
        finally:
            client.close()
        self.say(f"worker polling queue {self.queue_name!r}")

    def stop(self) -> list[Stopped]:
        """SIGTERM to each running process (the api first), each with a deadline.

        All are stopped before anything is said: a narrator that fails (a closed pipe)
        must not leave a process running.
        """
        stopped = [
            process.stop()
            for name in ("api", "worker")
            if (process := self.processes.get(name)) is not None and process.running()
        ]
        self.stopped += stopped
        for each in stopped:
            self.say(
                f"{each.name} stopped {each.seconds:.1f} s after SIGTERM "
                f"(exit {each.returncode}{'' if each.clean else ', NOT clean'})"
            )
        return stopped

    def delete_queue_keys(self) -> None:
        """The Redis keys of the stack's queue and of the jobs that went through it."""
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=3)
        try:
            keys = [self.queue_name, *client.scan_iter(f"{self.queue_name}:*")]
            # Jobs still queued when the worker stopped (its cron's next run) have keys
            # outside the queue's name, as have the jobs the story enqueued.
            members = cast(list[bytes], client.zrange(self.queue_name, 0, -1))
            queued = [job.decode() for job in members]
            for job_id in [*self.job_ids, *queued]:
                keys += client.scan_iter(f"arq:*:{job_id}")
            client.delete(*keys)
        except redis.RedisError:
            pass  # cleaning up only; the story's own outcome is what matters
        finally:
            client.close()

    # --- one-shot commands

    def dev_token(self, email: str, *extra: str, ttl: int = 3600) -> str:
        args = self.dev_token_command(email, *extra, "--ttl", str(ttl))
        done = self.run(args)
        if done.returncode != 0 or not done.stdout.strip():
            raise self.failure(f"`{shlex.join(args)}` failed:\n{done.stdout}{done.stderr}")
        for line in done.stderr.splitlines():
            if not line.startswith("dev-token: token for"):
                self.say(f"  {line}")
        return done.stdout.strip().splitlines()[-1]

    def run_cron(self) -> dict[str, Any]:
        """The cron command as its own process: exit 0 and a one-line JSON summary."""
        args = self.cron_command()
        self.say(f"$ {shlex.join(args)}")
        started = time.monotonic()
        done = self.run(args)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise self.failure(
                f"the cron command exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        lines = done.stdout.strip().splitlines()
        try:
            summary: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError) as exc:
            raise self.failure(f"the cron command printed no JSON summary:\n{done.stdout}") from exc
        self.say(f"  exit 0 in {seconds:.1f} s: {lines[-1]}")
        return summary


# --------------------------------------------------------------------------- HTTP


class Client:
    """A small JSON-over-HTTP client (the standard library's), as one signed-in user."""

    def __init__(self, stack: Stack, token: str | None = None) -> None:
        self.stack = stack
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data, content_type = json.dumps(json_body).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        connection = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self.stack.failure(f"{method} {path}: no answer ({exc})") from exc
        finally:
            connection.close()
        text = raw.decode(errors="replace")
        if status != expect:
            raise self.stack.failure(f"{method} {path}: expected {expect}, got {status}: {text}")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return text

    def get(self, path: str, expect: int = 200) -> Any:
        return self.request("GET", path, expect)

    def post(self, path: str, body: Any, expect: int) -> Any:
        return self.request("POST", path, expect, json_body=body)

    def put(self, path: str, body: Any, expect: int = 200) -> Any:
        return self.request("PUT", path, expect, json_body=body)

    def upload(
        self, path: str, field_name: str, file_name: str, content: bytes, expect: int
    ) -> Any:
        boundary = f"story-{uuid.uuid4().hex}"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{file_name}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        body = head + content + f"\r\n--{boundary}--\r\n".encode()
        return self.request(
            "POST",
            path,
            expect,
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Entry:
    """One ledger row: (kind, balance, signed amount, previous balance, new balance)."""

    kind: str
    balance: str
    amount: int
    previous: int
    new: int

    def __str__(self) -> str:
        return f"{self.kind} {self.balance} {self.amount:+d} ({self.previous} -> {self.new})"


@dataclass
class Person:
    key: str
    name: str
    email: str
    role: str = "employee"
    active: bool = True
    has_wallet: bool = False
    compliment: int = 0
    redeemable: int = 0
    ledger: list[Entry] = field(default_factory=list)
    id: str = ""
    token: str = ""

    def change(self, kind: str, balance: str, amount: int) -> None:
        self.has_wallet = True
        previous = self.compliment if balance == "COMPLIMENT" else self.redeemable
        new = previous + amount
        assert new >= 0, f"{self.key}: {balance} would go below zero"
        if balance == "COMPLIMENT":
            self.compliment = new
        else:
            self.redeemable = new
        self.ledger.append(Entry(kind, balance, amount, previous, new))


# A well-formed address, as the import checks it: no spaces, one @, a dotted domain.
EMAIL = re.compile(r"^[^@\s,;<>()\[\]\"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+$")


@dataclass(frozen=True)
class ImportExpectation:
    rows: int
    created: int
    skipped: int
    deactivated: int
    invalid: int
    error_rows: frozenset[int]


class Expected:
    """The state the domain rules give for the story's steps, computed on its own.

    - A user an admin adds (one by one or from a CSV) or `dev-token` creates gets a
      wallet holding the company's current weekly allowance: one RESET ledger row from 0.
    - Changing the allowance changes no balance; it applies from the next reset and to
      users added from then on.
    - A compliment of c coins from s to r: refused when r is not an active user of the
      company (or is s), or when s's compliment balance is below c (nothing changes);
      else s's compliment balance -c (DEBIT) and r's redeemable balance +c (CREDIT).
    - The weekly reset, once per company and week: every active user gets a wallet and
      a compliment balance *set* to the allowance, one RESET row where it changed;
      redeemable balances and inactive users are untouched. Again in the same week:
      nothing.
    - The CSV import: a row needs a name of 2+ characters and a well-formed email; an
      email repeated in the file is invalid after its first row; an existing user's
      email is skipped (counted as deactivated, and a row error, when that user is
      deactivated); the header is row 1.
    """

    def __init__(self, allowance: int) -> None:
        self.allowance = allowance
        self.people: dict[str, Person] = {}
        self.reset_this_week = False

    def by_email(self, email: str) -> Person | None:
        return next((p for p in self.people.values() if p.email == email.lower()), None)

    def added(self, person: Person) -> None:
        self.people[person.key] = person
        person.change("RESET", "COMPLIMENT", self.allowance)

    def imported(self, rows: list[tuple[str, str]], keys: dict[str, str]) -> ImportExpectation:
        seen: set[str] = set()
        created = skipped = deactivated = 0
        error_rows: set[int] = set()
        for number, (name, email) in enumerate(rows, start=2):
            email = email.strip().lower()
            if len(name.strip()) < 2 or not EMAIL.fullmatch(email) or email in seen:
                error_rows.add(number)
                continue
            seen.add(email)
            if (existing := self.by_email(email)) is not None:
                if existing.active:
                    skipped += 1
                else:
                    deactivated += 1
                    error_rows.add(number)
                continue
            self.added(Person(keys[email], name.strip(), email))
            created += 1
        return ImportExpectation(
            len(rows),
            created,
            skipped,
            deactivated,
            len(error_rows) - deactivated,
            frozenset(error_rows),
        )

    def refusal(self, sender: Person, receiver: Person, coins: int) -> str | None:
        """Why this compliment is refused (its error code), or None when it goes through."""
        if receiver is sender:
            return "self_compliment"
        if not receiver.active:
            return "receiver_inactive"
        if sender.compliment < coins:
            return "insufficient_balance"
        return None

    def compliment(self, sender: Person, receiver: Person, coins: int) -> str | None:
        refused = self.refusal(sender, receiver, coins)
        if refused is None:
            sender.change("DEBIT", "COMPLIMENT", -coins)
            receiver.change("CREDIT", "REDEEMABLE", coins)
        return refused

    def weekly_reset(self) -> dict[str, int]:
        if self.reset_this_week:
            return {
                "companies": 0,
                "companies_already_reset": 1,
                "wallets_created": 0,
                "wallets_reset": 0,
                "ledger_rows": 0,
            }
        self.reset_this_week = True
        created = changed = 0
        for person in self.people.values():
            if not person.active:
                continue
            if not person.has_wallet:
                person.has_wallet = True
                created += 1
            if person.compliment != self.allowance:
                person.change("RESET", "COMPLIMENT", self.allowance - person.compliment)
                changed += 1
        return {
            "companies": 1,
            "companies_already_reset": 0,
            "wallets_created": created,
            "wallets_reset": changed,
            "ledger_rows": changed,
        }


# --------------------------------------------------------------------------- the story

COMPANY_DOMAIN = "acme.example"
START_ALLOWANCE = 100  # the default of a company dev-token creates
NEW_ALLOWANCE = 150


def _person(key: str, name: str) -> Person:
    return Person(key, name, f"{key}@{COMPANY_DOMAIN}")


def csv_rows() -> list[tuple[str, str, str, str]]:
    """The file the admin imports: (name, email, department, job title)."""
    return [
        ("Elis Regina", "Elis@acme.example", "Sales", "Account manager"),
        ("Fábio Souza", "fabio@acme.example", "Engineering", ""),
        ("Bruno Lima", "bruno@acme.example", "Engineering", "Backend developer"),  # exists
        ("X", "not-an-email", "", ""),  # too short a name, a malformed email
        ("Elis R.", "elis@acme.example", "Sales", ""),  # repeated in the file
    ]


def csv_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    lines = ["name,email,department,job_title", *(",".join(row) for row in rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Outcome:
    """What the story observed at the end; the caller may check it against literals."""

    admin_token: str
    admin_email: str
    api_url: str
    balances: dict[str, tuple[int, int]]  # email -> (compliment, redeemable), from the api
    import_counts: dict[str, int]
    resets: list[dict[str, Any]]
    refusals: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def tell(stack: Stack, token_ttl: int = 3600) -> Outcome:
    """The story, step by step (told to `stack.say`); raises StoryError at the first difference."""
    story = _Story(stack, token_ttl)
    return story.tell()


class _Story:
    def __init__(self, stack: Stack, token_ttl: int) -> None:
        self.stack = stack
        self.say = stack.say
        self.ttl = token_ttl
        self.expected = Expected(START_ALLOWANCE)
        self.refusals: list[str] = []
        self.resets: list[dict[str, Any]] = []
        self.step_number = 0
        self.seconds: dict[str, float] = {}

    def step(self, title: str) -> None:
        self.step_number += 1
        self.say("")
        self.say(f"{self.step_number}. {title}")

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.stack.failure(message)

    def client(self, person: Person) -> Client:
        return Client(self.stack, person.token)

    def tell(self) -> Outcome:
        started = time.monotonic()
        admin = self.bootstrap()
        admin_api = self.client(admin)
        self.add_users(admin_api)
        import_counts = self.import_csv(admin_api)
        self.set_allowance(admin_api)
        self.sign_in_colleagues()
        self.send_compliments()
        self.deactivate(admin_api, self.expected.people["davi"])
        self.refuse_inactive_receiver()
        self.step("Balances and ledgers before the weekly reset")
        self.verify(admin_api)
        self.stay_within_one_week()
        self.weekly_reset()
        self.spend_after_reset()
        self.weekly_reset()
        self.step("Balances and ledgers at the end")
        balances = self.verify(admin_api)
        self.seconds["story"] = time.monotonic() - started
        return Outcome(
            admin_token=admin.token,
            admin_email=admin.email,
            api_url=self.stack.api_url,
            balances=balances,
            import_counts=import_counts,
            resets=self.resets,
            refusals=self.refusals,
            seconds=self.seconds,
        )

    # --- the steps

    def bootstrap(self) -> Person:
        self.step("The first admin signs in with dev-token, which creates the company")
        admin = _person("ana", "Ana Costa")
        admin.role = "admin"
        args = self.stack.dev_token_command(admin.email, "--role", "admin", "--name", admin.name)
        self.say(f"$ {shlex.join(args)}")
        admin.token = self.stack.dev_token(
            admin.email, "--role", "admin", "--name", admin.name, ttl=self.ttl
        )
        self.expected.added(admin)
        me = self.client(admin).get("/me")
        self.check(me["role"] == "admin" and me["email"] == admin.email, f"GET /me: {me}")
        admin.id = me["id"]
        company = self.client(admin).get("/admin/company")
        self.check(
            company["email_domain"] == COMPANY_DOMAIN
            and company["weekly_renewal_amount"] == START_ALLOWANCE,
            f"GET /admin/company: {company}",
        )
        self.say(
            f"GET /me -> {me['name']} ({me['role']}) of {me['company_name']}; the company's "
            f"weekly allowance is {company['weekly_renewal_amount']} coins"
        )
        return admin

    def add_users(self, admin_api: Client) -> None:
        self.step("The admin adds three colleagues (POST /admin/users)")
        for key, name in (("bruno", "Bruno Lima"), ("carla", "Carla Dias"), ("davi", "Davi Rocha")):
            self.add_user(admin_api, _person(key, name))
        taken = admin_api.post(
            "/admin/users", {"name": "Bruno Again", "email": "BRUNO@acme.example"}, expect=409
        )
        self.check(taken["error"]["code"] == "email_taken", f"duplicate email: {taken}")
        self.say("  the same email again -> 409 email_taken")

    def add_user(self, admin_api: Client, person: Person) -> None:
        created = admin_api.post("/admin/users", {"name": person.name, "email": person.email}, 201)
        self.expected.added(person)
        person.id = created["id"]
        wallet = created["wallet"]
        self.check(
            wallet == {"compliment_balance": person.compliment, "redeemable_balance": 0},
            f"{person.email}'s new wallet: {wallet}",
        )
        self.say(f"  {person.name} <{person.email}> -> 201, {person.compliment} coins to give")

    def import_csv(self, admin_api: Client) -> dict[str, int]:
        self.step("The admin imports more people from a CSV; the worker does the work")
        rows = csv_rows()
        for row in rows:
            self.say(f"  | {' | '.join(row)}")
        started = time.monotonic()
        accepted = admin_api.upload(
            "/admin/users/imports", "file", "people.csv", csv_bytes(rows), expect=202
        )
        self.stack.job_ids.append(f"csv-import:{accepted['id']}")
        self.say(f"POST /admin/users/imports -> 202 {accepted['status']}; polling its status")
        state = self.poll_import(admin_api, urllib.parse.urlsplit(accepted["status_url"]).path)
        self.seconds["csv_import"] = time.monotonic() - started
        keys = {"elis@acme.example": "elis", "fabio@acme.example": "fabio"}
        want = self.expected.imported([(name, email) for name, email, _, _ in rows], keys)
        counts: dict[str, int] = state["counts"]
        self.check(
            state["status"] == "completed"
            and counts
            == {
                "rows": want.rows,
                "created": want.created,
                "skipped": want.skipped,
                "deactivated": want.deactivated,
                "invalid": want.invalid,
            },
            f"the import ended {state['status']} with {counts}, expected {want}: {state}",
        )
        error_rows = {error["row_number"] for error in state["errors"]["items"]}
        self.check(error_rows == want.error_rows, f"row errors {state['errors']}, expected {want}")
        self.say(f"  {state['status']}: {counts}")
        for error in state["errors"]["items"]:
            self.say(f"  row {error['row_number']} {error['field']}: {error['message']}")
        for key in keys.values():
            person = self.expected.people[key]
            found = admin_api.get(f"/admin/users?search={person.email}")["items"]
            self.check(len(found) == 1, f"GET /admin/users?search={person.email}: {found}")
            person.id = found[0]["id"]
        return counts

    def poll_import(self, admin_api: Client, status_path: str) -> dict[str, Any]:
        deadline = time.monotonic() + IMPORT_SECONDS
        seen = ""
        while True:
            state: dict[str, Any] = admin_api.get(status_path)
            if state["status"] != seen:
                seen = state["status"]
                self.say(f"  GET {status_path} -> {seen}")
            if state["status"] in {"completed", "failed"}:
                return state
            if time.monotonic() > deadline:
                raise self.stack.failure(f"the import is still {seen} after {IMPORT_SECONDS} s")
            if not self.stack.processes["worker"].running():
                raise self.stack.failure("the worker exited during the import")
            time.sleep(0.2)

    def set_allowance(self, admin_api: Client) -> None:
        self.step(f"The admin sets the weekly allowance to {NEW_ALLOWANCE} coins")
        company = admin_api.put(
            "/admin/company/weekly-allowance", {"weekly_renewal_amount": NEW_ALLOWANCE}
        )
        self.check(company["weekly_renewal_amount"] == NEW_ALLOWANCE, f"{company}")
        self.expected.allowance = NEW_ALLOWANCE
        self.say("  balances stay as they are until the next reset; new people get the new amount")
        self.add_user(admin_api, _person("gil", "Gil Santos"))

    def sign_in_colleagues(self) -> None:
        self.step("Each colleague gets a token with dev-token")
        for person in self.expected.people.values():
            if person.token:
                continue
            person.token = self.stack.dev_token(person.email, ttl=self.ttl)
            me = self.client(person).get("/me")
            self.check(me["id"] == person.id, f"{person.email}: GET /me -> {me}")
            self.say(f"  {person.email}: GET /me -> {me['name']} ({me['role']})")

    def send(self, sender_key: str, receiver_key: str, coins: int, message: str) -> None:
        people = self.expected.people
        sender, receiver = people[sender_key], people[receiver_key]
        api = self.client(sender)
        refused = self.expected.refusal(sender, receiver, coins)
        # The sender finds the receiver as a client would: among their colleagues.
        found = api.get(f"/colleagues?q={urllib.parse.quote(receiver.email)}")["items"]
        receiver_id = found[0]["id"] if found else receiver.id
        self.check(
            receiver_id == receiver.id and bool(found) == receiver.active,
            f"{sender.email} looking up {receiver.email}: {found}",
        )
        body = {"receiver_id": receiver_id, "coins": coins, "message": message}
        expect = {None: 201, "insufficient_balance": 409}.get(refused, 422)
        answer = api.post("/compliments", body, expect=expect)
        who = f"{sender.name} -> {receiver.name}, {coins} coins"
        if refused is None:
            self.expected.compliment(sender, receiver, coins)
            self.say(f"  {who}: 201 ({sender.name} has {sender.compliment} left to give)")
        else:
            code = answer["error"]["code"]
            self.check(code == refused, f"{who}: refused with {code}, expected {refused}")
            self.refusals.append(code)
            self.say(f"  {who}: {expect} {code} ({answer['error']['message']})")

    def send_compliments(self) -> None:
        self.step("Colleagues send compliments (POST /compliments)")
        self.send("bruno", "carla", 30, "Thanks for reviewing my migration so carefully!")
        self.send("carla", "bruno", 50, "The release went out smoothly thanks to you.")
        self.send("bruno", "davi", 60, "You fixed the flaky test everyone gave up on.")
        self.send("bruno", "elis", 20, "Great demo to the customer this morning!")  # 10 left
        self.send("elis", "fabio", 100, "Welcome aboard, and thanks for the onboarding notes.")
        self.send("fabio", "gil", 25, "Thanks for pairing with me on my first week.")

    def deactivate(self, admin_api: Client, person: Person) -> None:
        self.step(f"The admin deactivates {person.name}")
        done = admin_api.post(f"/admin/users/{person.id}/deactivate", None, expect=200)
        self.check(done["is_active"] is False, f"deactivate: {done}")
        person.active = False
        refused = self.client(person).get("/me", expect=401)
        self.check(refused["error"]["code"] == "inactive_user", f"inactive token: {refused}")
        self.say(f"  their token is refused from now on: GET /me -> 401 {refused['error']['code']}")

    def refuse_inactive_receiver(self) -> None:
        self.step("A compliment to the deactivated colleague is refused")
        self.send("carla", "davi", 10, "Thanks for everything, see you around!")

    def stay_within_one_week(self, margin: float = WEEK_BOUNDARY_MARGIN) -> None:
        """Both cron runs must fall in one period (the ISO week, from Monday 00:00 UTC):
        across the boundary the second run would be a real reset. Close to it, wait it out."""
        now = datetime.now(UTC)
        monday = datetime.combine(now.date() - timedelta(days=now.weekday()), dt_time(), UTC)
        boundary = monday + timedelta(weeks=1)
        left = (boundary - now).total_seconds()
        if left > margin:
            return
        self.say(f"  {left:.0f} s to the next week: waiting for it, so both runs share a week")
        deadline = time.monotonic() + left + 5
        while datetime.now(UTC) < boundary:
            if time.monotonic() > deadline:
                raise self.stack.failure("the clock did not reach the next week")
            time.sleep(0.2)

    def weekly_reset(self) -> None:
        self.step("The cron command runs the weekly reset, as its own process")
        want = self.expected.weekly_reset()
        started = time.monotonic()
        summary = self.stack.run_cron()
        self.seconds.setdefault("cron", time.monotonic() - started)
        got = {key: summary.get(key) for key in want}
        self.check(
            summary.get("status") == "ok" and got == want,
            f"the reset's summary {summary}, expected {want}",
        )
        self.resets.append(summary)

    def spend_after_reset(self) -> None:
        self.step("Bruno spends from his new allowance; a second run this week must not refill it")
        self.send("bruno", "carla", 40, "Thanks for covering my on-call shift on Friday.")

    # --- checking every user

    def verify(self, admin_api: Client) -> dict[str, tuple[int, int]]:
        listed = admin_api.get("/admin/users?limit=200")["items"]
        by_email = {user["email"]: user for user in listed}
        people = self.expected.people.values()
        self.check(
            set(by_email) == {p.email for p in people},
            f"GET /admin/users lists {sorted(by_email)}",
        )
        balances = {}
        for person in people:
            user = by_email[person.email]
            want_wallet = (
                {"compliment_balance": person.compliment, "redeemable_balance": person.redeemable}
                if person.has_wallet
                else None
            )
            self.check(
                user["wallet"] == want_wallet and user["is_active"] == person.active,
                f"{person.email} as the admin sees them: {user}; expected wallet {want_wallet}"
                f", active {person.active}",
            )
            wallet = user["wallet"] or {"compliment_balance": 0, "redeemable_balance": 0}
            balances[person.email] = (wallet["compliment_balance"], wallet["redeemable_balance"])
            if person.active:
                self.verify_own_view(person)
            self.say(
                f"  {person.name:<12} gives {person.compliment:>3}  received "
                f"{person.redeemable:>3}  ledger {len(person.ledger)} rows"
                f"{'' if person.active else '  (inactive)'}"
            )
        self.verify_database()
        return balances

    def verify_own_view(self, person: Person) -> None:
        api = self.client(person)
        wallet = api.get("/me/wallet")
        got = (wallet["compliment_balance"], wallet["redeemable_balance"])
        self.check(
            got == (person.compliment, person.redeemable)
            and wallet["weekly_allowance"] == self.expected.allowance,
            f"{person.email}: GET /me/wallet -> {wallet}",
        )
        page = api.get("/me/wallet/transactions?limit=200")
        ledger = [
            Entry(
                t["kind"], t["balance_type"], t["amount"], t["previous_balance"], t["new_balance"]
            )
            for t in reversed(page["items"])
        ]
        self.check(
            ledger == person.ledger and page["total"] == len(person.ledger),
            f"{person.email}'s ledger over HTTP:\n  "
            + "\n  ".join(map(str, ledger))
            + "\nexpected:\n  "
            + "\n  ".join(map(str, person.ledger)),
        )

    def verify_database(self) -> None:
        """Every ledger row, inactive users' too, and balances that equal their ledger."""
        with psycopg.connect(self.stack.database_url) as db:
            rows = db.execute(
                "SELECT u.email, t.kind, t.balance_type, t.amount, t.previous_balance,"
                " t.new_balance FROM wallet_transactions t JOIN users u ON u.id = t.user_id"
                " ORDER BY t.id"
            ).fetchall()
            mismatched = db.execute(
                "SELECT u.email, w.compliment_balance, w.redeemable_balance FROM wallets w"
                " JOIN users u ON u.id = w.user_id WHERE"
                " w.compliment_balance <> (SELECT coalesce(sum(amount), 0) FROM"
                "  wallet_transactions t WHERE t.wallet_id = w.id"
                "  AND t.balance_type = 'COMPLIMENT')"
                " OR w.redeemable_balance <> (SELECT coalesce(sum(amount), 0) FROM"
                "  wallet_transactions t WHERE t.wallet_id = w.id"
                "  AND t.balance_type = 'REDEEMABLE')"
            ).fetchall()
        self.check(not mismatched, f"balances that differ from their ledger: {mismatched}")
        for person in self.expected.people.values():
            ledger = [Entry(*row[1:]) for row in rows if row[0] == person.email]
            self.check(
                ledger == person.ledger,
                f"{person.email}'s ledger in the database:\n  "
                + "\n  ".join(map(str, ledger))
                + "\nexpected:\n  "
                + "\n  ".join(map(str, person.ledger)),
            )
