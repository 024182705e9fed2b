"""See a generated project work: render it, run it, tell its story, leave it running.

    uv run python -m tools.demo               # until Ctrl-C
    uv run python -m tools.demo --no-wait     # stop and clean up right after the story

1. Renders the default project (cookiecutter) into a temporary folder and installs it
   (`uv sync --frozen`).
2. Uses the Postgres and Redis answering on 127.0.0.1 (5432, 6379). When one does not
   answer, starts the local server as `.ci/run` does (`pg_ctlcluster`, `redis-server`;
   root is needed for Postgres), or says exactly what to start.
3. Creates a fresh database, migrates it, starts the api (uvicorn, on port 8000 when it
   is free) and the worker (arq) as separate processes, and walks through the story of
   tools/story/, printing each step: the first admin, colleagues added by hand and
   from a CSV, the weekly allowance, compliments (two refused), the cron job's weekly
   reset, and every balance and ledger checked against the domain rules.
4. Prints the api's URLs and an admin token, and leaves the api and the worker running
   until Ctrl-C; then stops them (SIGTERM), drops the database, removes the folder
   (`--keep` keeps it) and stops whatever server it started.
"""

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from tools import story

TEMPLATE = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Redis database 8: the demo's keys stay apart from a project's own (database 0) and
# from the end-to-end test's (database 9).
REDIS_URL = "redis://127.0.0.1:6379/8"
TOKEN_TTL = 8 * 3600
DROPPED = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}


def say(text: str) -> None:
    """Print, and carry on when nobody reads any more (`| head`): cleaning up matters more."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


class DemoError(Exception):
    """A reason to stop, printed as is."""


def run(args: list[str], cwd: Path, timeout: float = 600) -> "subprocess.CompletedProcess[str]":
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def tool(name: str) -> str:
    """A program of the template's virtualenv (cookiecutter, uv), else from the PATH."""
    return str(BIN / name) if (BIN / name).is_file() else name


def render_and_install(folder: Path) -> Path:
    started = time.monotonic()
    done = run([tool("cookiecutter"), "--no-input", "-o", str(folder), str(TEMPLATE)], folder)
    if done.returncode != 0:
        raise DemoError(f"cookiecutter failed:\n{done.stderr}")
    [project] = [path for path in folder.iterdir() if path.is_dir()]
    say(f"$ cookiecutter --no-input -o {folder} {TEMPLATE}")
    say("$ uv sync --frozen")
    done = run([tool("uv"), "sync", "--frozen"], project)
    if done.returncode != 0:
        raise DemoError(f"uv sync --frozen failed:\n{done.stderr}")
    say(f"  rendered and installed in {time.monotonic() - started:.1f} s: {project}")
    return project


# --------------------------------------------------------------------------- Postgres, Redis


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, up: bool = True, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(host, port) == up:
            return True
        time.sleep(0.2)
    return False


POSTGRES_HELP = """\
Start a PostgreSQL on {host}:{port} whose `postgres` user needs no password (as in the
generated project's compose.yaml), then run the demo again:
  docker run -d --name kudos-postgres -p 127.0.0.1:{port}:5432 \\
      -e POSTGRES_HOST_AUTH_METHOD=trust postgres:18-alpine
or, on Debian or Ubuntu as root, what .ci/run does: `apt-get install postgresql`, trust
for 127.0.0.1 in pg_hba.conf, `pg_ctlcluster <version> main start`.
Or point the demo at another server: --postgres postgresql://USER@HOST:PORT/postgres"""

REDIS_HELP = """\
Start a Redis on {host}:{port}, then run the demo again:
  docker run -d --name kudos-redis -p 127.0.0.1:{port}:6379 redis:8-alpine
or, on Debian or Ubuntu: `apt-get install redis-server` (the demo then starts it itself).
Or point the demo at another one: --redis redis://HOST:PORT/8"""


def cluster_port(conf: Path) -> int:
    """The port a Debian cluster's postgresql.conf sets (5432 when it sets none)."""
    found = re.search(r"^\s*port\s*=\s*(\d+)", conf.read_text(errors="replace"), re.MULTILINE)
    return int(found[1]) if found else 5432


class Servers:
    """Postgres and Redis: the ones answering, else local ones this demo starts (and stops)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stops: list[Callable[[], None]] = []

    def ensure(self, postgres_url: str, redis_url: str) -> list[str]:
        problems = []
        for url, start, help_text in (
            (postgres_url, self.start_postgres, POSTGRES_HELP),
            (redis_url, self.start_redis, REDIS_HELP),
        ):
            parts = urllib.parse.urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", int(parts.port or 0)
            if answers(host, port):
                continue
            local = host in {"127.0.0.1", "localhost"}
            reason = start(port) if local else f"{host} is not this machine"
            if reason is not None:
                problems.append(
                    f"{url} does not answer, and the demo cannot start it: {reason}.\n"
                    + help_text.format(host=host, port=port)
                )
        return problems

    def start_postgres(self, port: int) -> str | None:
        """Debian's cluster for this port (`pg_ctlcluster`, as .ci/run starts it)."""
        if shutil.which("pg_ctlcluster") is None:
            return "no PostgreSQL server is installed here (no pg_ctlcluster)"
        versions = [
            conf.parent.parent.name
            for conf in Path("/etc/postgresql").glob("*/main/postgresql.conf")
            if cluster_port(conf) == port
        ]
        if not versions:
            return f"no installed PostgreSQL cluster is set to port {port}"
        version = max(versions, key=lambda name: [int(p) for p in name.split(".") if p.isdigit()])
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        if os.geteuid() != 0:
            return f"starting it needs root: `sudo {shlex.join([*command, 'start'])}`"
        say(f"$ {shlex.join([*command, 'start'])}    (Postgres did not answer)")
        done = run([*command, "start"], self.folder, timeout=120)
        if done.returncode != 0 or not wait_for_port("127.0.0.1", port):
            return f"`{shlex.join([*command, 'start'])}` failed: {done.stderr.strip()}"
        self.stops.append(lambda: self.stop_postgres(command))
        return None

    def stop_postgres(self, command: list[str]) -> None:
        say(f"$ {shlex.join([*command, 'stop'])}    (the demo started it)")
        run([*command, "stop"], self.folder, timeout=120)

    def start_redis(self, port: int) -> str | None:
        if shutil.which("redis-server") is None:
            return "redis-server is not installed here"
        pidfile = self.folder / "redis.pid"
        command = [
            "redis-server",
            "--daemonize", "yes",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--logfile", str(self.folder / "redis.log"),
            "--pidfile", str(pidfile),
        ]  # fmt: skip
        say(f"$ {shlex.join(command)}    (Redis did not answer)")
        done = run(command, self.folder, timeout=60)
        if done.returncode != 0 or not wait_for_port("127.0.0.1", port):
            return f"redis-server failed: {done.stdout.strip()} {done.stderr.strip()}"
        self.stops.append(lambda: self.stop_redis(pidfile, port))
        return None

    def stop_redis(self, pidfile: Path, port: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            say(f"stopping the Redis the demo started (pid {pid})")
            os.kill(pid, signal.SIGTERM)
            wait_for_port("127.0.0.1", port, up=False)

    def stop(self) -> None:
        for stop in reversed(self.stops):
            stop()


# --------------------------------------------------------------------------- the demo


def show_running(stack: story.Stack, outcome: story.Outcome, wait: bool) -> None:
    url = outcome.api_url
    env = {
        # dev-token runs only where ENVIRONMENT says development (unset means production).
        "ENVIRONMENT": "development",
        "DATABASE_URL": stack.database_url,
        "AUTH_ISSUER": stack.env["AUTH_ISSUER"],
        "AUTH_AUDIENCE": stack.env["AUTH_AUDIENCE"],
        "AUTH_JWKS_URL": stack.env["AUTH_JWKS_URL"],
    }
    another = shlex.join(
        [
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            "uv",
            "run",
            *stack.dev_token_command("bruno@acme.example"),
        ]
    )
    lines = [
        "",
        f"The api and the worker of {stack.project.name} are running:",
        f"  API            {url}",
        f"  API docs       {url}/docs",
        f"  health         {url}/health/ready",
        f"  admin token    {outcome.admin_email}, valid {TOKEN_TTL // 3600} h:",
        f"    export TOKEN={outcome.admin_token}",
        f'    curl -s -H "Authorization: Bearer $TOKEN" {url}/admin/users',
        f'    curl -s -H "Authorization: Bearer $TOKEN" {url}/me/wallet',
        "  another user's token (in the project folder):",
        f"    cd {stack.project}",
        f"    {another}",
        f"  project        {stack.project}",
        f"  logs           {stack.logs_dir}/api.log, worker.log",
        f"  database       {stack.database_url}",
        "",
        "Ctrl-C stops them, drops the database and removes the folder."
        if wait
        else "--no-wait: stopping them now.",
    ]
    say("\n".join(lines))


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def wait_until_interrupted(stack: story.Stack) -> None:
    """Until Ctrl-C (or SIGTERM); a process that dies ends the wait with its output."""
    while True:
        for process in stack.processes.values():
            if not process.running():
                raise stack.failure(f"the {process.name} exited ({process.popen.returncode})")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--no-wait", action="store_true", help="exit after the story")
    parser.add_argument("--port", type=int, default=8000, help="the api's port (0: any free)")
    parser.add_argument("--keep", action="store_true", help="keep the rendered project")
    parser.add_argument(
        "--postgres",
        default=story.POSTGRES_ADMIN_URL,
        help="a Postgres server URL to create the demo's database on",
    )
    parser.add_argument("--redis", default=REDIS_URL, help="the Redis URL (its database too)")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM end the demo the same way, even when started where SIGINT was
    # ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    with contextlib.ExitStack() as cleanup:
        try:
            folder = Path(tempfile.mkdtemp(prefix="kudos-demo-"))
            if not args.keep:
                cleanup.callback(remove, folder)
            say("Rendering the default project and installing it")
            project = render_and_install(folder)
            servers = Servers(folder)
            cleanup.callback(servers.stop)
            problems = servers.ensure(args.postgres, args.redis)
            problems += story.service_problems(args.postgres, args.redis) if not problems else []
            if problems:
                say("\n\n".join(f"demo: {problem}" for problem in problems))
                return 2
            database = cleanup.enter_context(story.fresh_database(args.postgres, "kudos_demo"))
            cleanup.callback(say, f"dropping the database {database.rsplit('/', 1)[1]}")
            say(f"Created the database {database.rsplit('/', 1)[1]}; starting the processes")
            stack = story.Stack(
                project,
                database_url=database,
                redis_url=args.redis,
                work_dir=folder / "run",
                queue_name=f"kudos-demo-{uuid.uuid4().hex[:8]}:queue",
                port=args.port or None,
                say=say,
            )
            with stack:
                outcome = story.tell(stack, token_ttl=TOKEN_TTL)
                say(f"\nThe story took {outcome.seconds['story']:.1f} s; every check passed.")
                show_running(stack, outcome, wait=not args.no_wait)
                if not args.no_wait:
                    try:
                        wait_until_interrupted(stack)
                    except KeyboardInterrupt:
                        say("\nStopping.")
        except KeyboardInterrupt:
            say("\nInterrupted: cleaning up.")
            return 130
        except (story.StoryError, DemoError) as exc:
            say(f"demo: {exc}")
            return 1
    return 0


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    say(f"removed {folder}")


if __name__ == "__main__":
    sys.exit(main())
