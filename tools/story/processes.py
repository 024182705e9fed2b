"""The project's processes: the api and the worker as a `Stack`, and its one-shot commands.

The programs are the project's own virtualenv's (what `uv run` executes), started as the
README's "Run locally" section starts them.
"""

import contextlib
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis

from .common import Say, StoryError, quiet, tail

# The local tokens' issuer and audience, as the project's README and .env.example give them.
DEV_ISSUER = "http://localhost/dev/"
DEV_AUDIENCE = "http://localhost:8000"
# Variables of the caller's shell that would point uv or the project elsewhere.
DROPPED_VARIABLES = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME"}
READY_SECONDS = 90.0
STOP_SECONDS = 15.0
COMMAND_SECONDS = 120.0


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

    def kill_group(self) -> None:
        """SIGKILL to its process group (its own session), then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

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
        # Every process started, with the api's attempts that found their port taken.
        self.started: list[Process] = []
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
        self.started.append(process)
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
        try:
            stopped = [
                process.stop()
                for name in ("api", "worker")
                if (process := self.processes.get(name)) is not None and process.running()
            ]
        finally:
            # Whatever is left in their process groups (a child of one that exited, one
            # whose stop was interrupted), so that no failure leaves a process running.
            for process in self.started:
                process.kill_group()
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
