"""The api's start command, as Railway runs it: migrations, readiness, SIGTERM."""

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import yaml

from .containers import Container, Image
from .deploy import (
    STOP_BOUND_SECONDS,
    Service,
    clean_exits,
    free_port,
    stop_signal,
    wait_until_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.image]


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
