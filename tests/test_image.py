"""The generated project's Docker image, built and run for real.

There is no Docker engine on the test machines: buildah builds the rendered Dockerfile
(BuildKit's cache and bind mounts included) and `buildah run --isolation=chroot
--network=host` runs the image's processes against the machine's Postgres and Redis.
No container registry is reachable either, so the image is built on a local Debian
base that tools/base_image.py makes once per machine; the Dockerfile's own default base,
`python:<version>-slim`, is checked statically.

Each process is started as Railway starts it: its start command and variables (and the
api's pre-deploy migrations) come from the project's .railway/railway.py, evaluated with
railway-sdk, pointed at the local Postgres and Redis. A test checks that compose.yaml and
the Dockerfile's CMD name the same commands, so renaming one without the others fails.
The tests fail, never skip, when a tool they need is missing.
"""

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import yaml
from arq.connections import RedisSettings, create_pool

from .helpers import ANSWER_SETS, TEMPLATE, clean_env, render_cookiecutter, run
from .railway_config import evaluate, services

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
BASE_IMAGE_TOOL = TEMPLATE / "tools" / "base_image.py"
INSTALL_HINT = "install them with `apt-get install podman buildah debootstrap` (bash .ci/run does)"
# How long SIGTERM may take to stop the api or an idle worker.
STOP_BOUND_SECONDS = 10.0
RUN_ID = uuid.uuid4().hex[:8]


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the image tests need {', '.join(missing)}, not found on PATH: {INSTALL_HINT}",
            pytrace=False,
        )


def check(args: list[str], timeout: float = 120) -> str:
    done = run(args, cwd=TEMPLATE, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- the image


@dataclass(frozen=True)
class Image:
    ref: str
    project: Path
    package: str
    config: dict[str, Any]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_cookiecutter(ANSWER_SETS["default"], tmp_path_factory.mktemp("image-project"))


@pytest.fixture(scope="module")
def base_image() -> str:
    """The local Debian base (made by tools/base_image.py, slow only on a new machine)."""
    require_tools("podman", "buildah")
    done = run([sys.executable, str(BASE_IMAGE_TOOL)], cwd=TEMPLATE, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"tools/base_image.py could not make the base image:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def image(project: Path, base_image: str) -> Iterator[Image]:
    ref = f"localhost/kudos-template-test/{project.name}:{RUN_ID}"
    done = run(
        [
            "buildah",
            "build",
            "--isolation=chroot",
            "--network=host",
            "--pull=never",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "--tag",
            ref,
            ".",
        ],
        cwd=project,
        timeout=900,
    )
    assert done.returncode == 0, f"buildah build failed:\n{tail(done.stdout + done.stderr, 60)}"
    try:
        inspected = json.loads(check(["buildah", "inspect", "--type", "image", ref]))
        pyproject = tomllib.loads(project.joinpath("pyproject.toml").read_text())
        package = pyproject["tool"]["uv"]["build-backend"]["module-name"]
        yield Image(ref, project, package, inspected["OCIv1"]["config"])
    finally:
        run(["buildah", "rmi", "--force", ref], cwd=TEMPLATE)


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


@pytest.fixture(scope="module")
def railway(project: Path) -> dict[str, Service]:
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
    assert {"api", "worker", "cron-weekly"} <= set(result), sorted(result)
    return result


# --------------------------------------------------------------------------- processes


@dataclass
class Container:
    """One working container of the image; each `start` or `run` is a process in it."""

    name: str
    processes: list["Process"] = field(default_factory=list)

    def _run_args(self, command: list[str], env: dict[str, str]) -> list[str]:
        env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
        return [
            "buildah",
            "run",
            "--isolation=chroot",
            "--network=host",
            *env_args,
            self.name,
            "--",
            *command,
        ]

    def run(
        self, command: list[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run(self._run_args(command, env or {}), cwd=TEMPLATE, timeout=timeout)

    def start(self, command: list[str], env: dict[str, str], log: Path) -> "Process":
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self._run_args(command, env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes.append(Process(proc, log))
        return self.processes[-1]


@dataclass
class Process:
    """`buildah run` of a long-running command, and the command's own process."""

    buildah: "subprocess.Popen[bytes]"
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def assert_running(self) -> None:
        if self.buildah.poll() is not None:
            raise AssertionError(
                f"exited early ({self.buildah.returncode}):\n{tail(self.output())}"
            )

    def main_pid(self) -> int:
        """The command's process, as a container runtime would signal it (PID 1).

        Below `buildah run` sit buildah's own chroot helpers (run from memfds); the
        first process under them that runs a program of the image is the command.
        """
        queue = [self.buildah.pid]
        while queue:
            pid = queue.pop(0)
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
                root = os.readlink(f"/proc/{pid}/root")
                tasks = list(Path(f"/proc/{pid}/task").iterdir())
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if root != "/" and not exe.startswith("/memfd:"):
                return pid
            for task in tasks:
                try:
                    queue.extend(int(c) for c in (task / "children").read_text().split())
                except FileNotFoundError:
                    continue
        raise AssertionError(f"no process of the image under buildah run {self.buildah.pid}")

    def uids(self) -> list[int]:
        """Real, effective, saved and filesystem uid of the command's process."""
        status = Path(f"/proc/{self.main_pid()}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("Uid:")]
        return [int(uid) for uid in line.split()[1:]]

    def stop(self, sig: signal.Signals, timeout: float) -> float:
        """Send sig to the command's process, as `docker stop` does; seconds to exit."""
        pid = self.main_pid()
        started = time.monotonic()
        os.kill(pid, sig)
        try:
            self.buildah.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout:.0f} s after {sig.name}:\n{tail(self.output())}"
            ) from None
        return time.monotonic() - started

    def exit(self) -> str:
        """How the command itself ended: "status N" or "signal NAME" (buildah's words).

        buildah exits 0 when the command did; otherwise it prints the command's end
        first ("subprocess exited with status 3", "... exited on terminated"), then its own.
        """
        assert self.buildah.returncode is not None
        if self.buildah.returncode == 0:
            return "status 0"
        found = re.search(r"subprocess exited (?:with status (\d+)|on (\w+))", self.output())
        assert found, f"buildah run failed ({self.buildah.returncode}):\n{tail(self.output())}"
        return f"status {found[1]}" if found[1] else f"signal {found[2]}"


@pytest.fixture
def containers(image: Image) -> Iterator[Callable[[], Container]]:
    """Working containers of the image, removed (their processes ended) afterwards."""
    made: list[Container] = []

    def make() -> Container:
        name = f"kudos-template-test-{uuid.uuid4().hex[:10]}"
        check(["buildah", "from", "--pull=never", "--name", name, image.ref])
        container = Container(name)
        made.append(container)
        return container

    yield make
    for container in made:
        for process in container.processes:
            if process.buildah.poll() is None:
                try:
                    process.stop(signal.SIGTERM, timeout=10)
                except AssertionError:
                    os.killpg(process.buildah.pid, signal.SIGKILL)
                    process.buildah.wait()
        run(["buildah", "rm", container.name], cwd=TEMPLATE)


# --------------------------------------------------------------------------- services


@pytest.fixture
def database() -> Iterator[str]:
    name = f"template_image_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres is not reachable at {POSTGRES}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue of this test's own; its keys are deleted afterwards."""
    name = f"template-image-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [name, *client.scan_iter(f"{name}:*")]
        client.delete(*keys)
    finally:
        client.close()


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


# --------------------------------------------------------------------------- the api


def test_start_commands_agree_across_railway_compose_and_the_dockerfile(
    image: Image, railway: dict[str, Service]
) -> None:
    """The commands the tests below run are the ones every deploy file names."""
    compose = yaml.safe_load(image.project.joinpath("compose.yaml").read_text())["services"]
    assert railway["api"].command == image.config["Cmd"]
    assert "command" not in compose["api"], "compose's api should run the image's CMD"
    assert compose["worker"]["command"] == railway["worker"].command
    assert compose["cron-weekly"]["command"] == railway["cron-weekly"].command


def test_api_start_command_migrates_and_answers_ready(
    railway: dict[str, Service],
    containers: Callable[[], Container],
    database: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    service, port = railway["api"], free_port()
    api = containers().start(
        service.command, service.env(database, queue_name, port), tmp_path / "api.log"
    )

    body = wait_until_ready(api, port)

    assert body["status"] == "ready", body
    assert "alembic upgrade head" in api.output()
    with psycopg.connect(database) as db:
        versions = db.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {
            row[0]
            for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert len(versions) == 1
    assert {"companies", "users", "wallets", "wallet_transactions"} <= tables
    # exec in the entrypoint: the container's process is uvicorn itself, not a shell.
    cmdline = Path(f"/proc/{api.main_pid()}/cmdline").read_bytes().split(b"\0")
    assert any(b"uvicorn" in word for word in cmdline), cmdline
    assert 0 not in api.uids()


def test_sigterm_stops_the_api_cleanly(
    image: Image,
    railway: dict[str, Service],
    containers: Callable[[], Container],
    database: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    service, port = railway["api"], free_port()
    api = containers().start(
        service.command, service.env(database, queue_name, port), tmp_path / "api.log"
    )
    wait_until_ready(api, port)

    sig = stop_signal(image)
    seconds = api.stop(sig, timeout=30)

    print(f"api stopped {seconds:.2f} s after {sig.name}: {api.exit()}")
    assert api.exit() in clean_exits(sig), api.output()
    assert seconds < STOP_BOUND_SECONDS, f"took {seconds:.1f} s"
    assert "Application shutdown complete" in api.output()
    assert "Finished server process" in api.output()


# --------------------------------------------------------------------------- the worker


async def enqueue_and_wait(queue: str, function: str, *args: str) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL), default_queue_name=queue)
    try:
        job = await pool.enqueue_job(function, *args, _queue_name=queue)
        assert job is not None
        try:
            return await job.result(timeout=60, poll_delay=0.1)
        finally:
            await pool.delete(f"arq:result:{job.job_id}", f"arq:job:{job.job_id}")
    finally:
        await pool.aclose()


def test_worker_start_command_runs_an_enqueued_job(
    railway: dict[str, Service],
    containers: Callable[[], Container],
    database: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    service, container = railway["worker"], containers()
    migrate(container, railway["api"], database, queue_name)
    with psycopg.connect(database, autocommit=True) as db:
        acme = add_company(db, "Acme", allowance=80)
        other = add_company(db, "Other", allowance=80)
        alice = add_user(db, acme, "alice@acme.example", compliment=500)
        oscar = add_user(db, other, "oscar@other.example", compliment=500)
        worker = container.start(
            service.command, service.env(database, queue_name), tmp_path / "worker.log"
        )
        wait_until_worker_healthy(worker, queue_name)
        assert 0 not in worker.uids()

        summary = asyncio.run(enqueue_and_wait(queue_name, "weekly_reset", acme))

        assert summary["companies"] == 1, summary
        assert summary["ledger_rows"] == 1, summary
        assert compliment_balance(db, alice) == 80
        assert compliment_balance(db, oscar) == 500
        kinds = db.execute(
            "SELECT kind FROM wallet_transactions WHERE user_id = %s", (alice,)
        ).fetchall()
        assert kinds == [("RESET",)]
    worker.assert_running()


def test_sigterm_stops_the_worker_cleanly(
    image: Image,
    railway: dict[str, Service],
    containers: Callable[[], Container],
    database: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    service = railway["worker"]
    worker = containers().start(
        service.command, service.env(database, queue_name), tmp_path / "worker.log"
    )
    wait_until_worker_healthy(worker, queue_name)

    sig = stop_signal(image)
    seconds = worker.stop(sig, timeout=40)

    print(f"worker stopped {seconds:.2f} s after {sig.name}: {worker.exit()}")
    assert worker.exit() in clean_exits(sig), worker.output()
    assert seconds < STOP_BOUND_SECONDS, f"took {seconds:.1f} s"
    assert "shutdown" in worker.output().lower()


# --------------------------------------------------------------------------- the cron job


def test_cron_command_runs_the_weekly_reset_and_exits_0(
    railway: dict[str, Service], containers: Callable[[], Container], database: str, queue_name: str
) -> None:
    service, container = railway["cron-weekly"], containers()
    migrate(container, railway["api"], database, queue_name)
    with psycopg.connect(database, autocommit=True) as db:
        acme = add_company(db, "Acme", allowance=120)
        alice = add_user(db, acme, "alice@acme.example", compliment=3)

        done = container.run(service.command, service.env(database, queue_name))

        assert done.returncode == 0, done.stdout + done.stderr
        [line] = done.stdout.splitlines()
        summary = json.loads(line)
        assert summary["status"] == "ok", summary
        assert (summary["companies"], summary["ledger_rows"]) == (1, 1), summary
        assert compliment_balance(db, alice) == 120


# --------------------------------------------------------------------------- what is in it


def test_processes_run_as_a_non_root_user(
    image: Image, containers: Callable[[], Container]
) -> None:
    assert image.config.get("User"), "the image sets no USER: its processes run as root"
    done = containers().run(["id", "-u"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != "0"


def dist_names(lines: str) -> set[str]:
    """Normalised names from `uv export` requirement lines."""
    names = set()
    for line in lines.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-", ".")):
            name = line.split("==")[0].split("[")[0].split(";")[0].strip()
            names.add(name.lower().replace("_", "-").replace(".", "-"))
    return names


def test_image_has_no_dev_dependencies_tests_or_caches(
    image: Image, containers: Callable[[], Container]
) -> None:
    project = image.project
    export = ["uv", "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-header"]
    everything = dist_names(check([*export, "--all-groups", "--directory", str(project)]))
    runtime = dist_names(check([*export, "--no-dev", "--directory", str(project)]))
    dev_only = everything - runtime
    assert {"pytest", "mypy", "ruff"} <= dev_only
    dev_group = dev_dependencies(project)

    container = containers()
    root = Path(check(["buildah", "mount", container.name]).strip())
    try:
        app = root / "app"
        [site] = list((app / ".venv" / "lib").glob("python3*/site-packages"))
        installed = {
            path.name.split("-")[0].lower().replace("_", "-").replace(".", "-")
            for path in site.glob("*.dist-info")
        }
        assert not installed & dev_only, f"dev dependencies in the image: {installed & dev_only}"
        assert installed - runtime <= {project.name}, installed - runtime

        outside_venv = [p for p in app.rglob("*") if ".venv" not in p.relative_to(app).parts]
        names = {p.relative_to(app).as_posix() for p in outside_venv}
        assert not [n for n in names if n.split("/")[0] == "tests"], "tests/ is in the image"
        assert not [p for p in outside_venv if p.name == "__pycache__"]
        package_files = {p.name for p in (site / image.package).rglob("*")}
        project_tests = {p.name for p in (project / "tests").iterdir() if p.name != "__init__.py"}
        assert not package_files & project_tests, package_files & project_tests

        junk = {".git", ".cache", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".env", "uv.lock"}
        found = [p for p in app.rglob("*") if p.name in junk]
        found += [p for p in (root / "root").glob(".cache/*")]
        assert not found, f"in the image: {found}"
        assert not [p for p in (app / ".venv" / "bin").iterdir() if p.name in {"pip", "uv", "uvx"}]
    finally:
        run(["buildah", "umount", container.name], cwd=TEMPLATE)

    # And as the processes see it: the dev tools neither import nor run.
    modules = [name.replace("-", "_") for name in dev_group]
    probe = (
        "import importlib.util, json, shutil, sys;"
        f"m = {modules!r};"
        "print(json.dumps([x for x in m if importlib.util.find_spec(x)]"
        " + [x for x in m if shutil.which(x)]))"
    )
    done = container.run(["python", "-c", probe])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def dev_dependencies(project: Path) -> list[str]:
    """The names in pyproject.toml's dev dependency group."""
    groups = tomllib.loads(project.joinpath("pyproject.toml").read_text())["dependency-groups"]
    return [
        req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for req in groups["dev"]
    ]


# --------------------------------------------------------------------------- the Dockerfile


@pytest.mark.parametrize("answers", list(ANSWER_SETS))
def test_dockerfile_passes_hadolint(rendered: dict[str, tuple[Path, Path]], answers: str) -> None:
    project, _ = rendered[answers]
    dockerfile = project / "Dockerfile"
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint not found: it is a dev dependency (uv sync)"
    # Any rule left out must say why on the comment line above the pragma.
    lines = dockerfile.read_text().splitlines()
    for number, text in enumerate(lines):
        if "hadolint ignore" in text or "hadolint global ignore" in text:
            above = lines[number - 1].strip() if number else ""
            reason = f"Dockerfile:{number + 1}: explain `{text.strip()}` on the line above"
            assert above.startswith("#"), reason
            assert "hadolint" not in above, reason
    done = run(
        [hadolint, "--no-color", "--failure-threshold", "style", "--format", "tty", "Dockerfile"],
        cwd=project,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout


@pytest.mark.parametrize("answers", list(ANSWER_SETS))
def test_dockerfile_default_base_is_the_official_slim_image(
    rendered: dict[str, tuple[Path, Path]], answers: str
) -> None:
    project, _ = rendered[answers]
    text = project.joinpath("Dockerfile").read_text()
    defaults = json.loads(TEMPLATE.joinpath("cookiecutter.json").read_text())
    version = ANSWER_SETS[answers].get("python_version", defaults["python_version"][0])
    assert f"ARG PYTHON_VERSION={version}\n" in text
    assert "ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim\n" in text
    assert text.count("FROM ${BASE_IMAGE} AS ") == 2
