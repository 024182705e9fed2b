"""The api's start command, as Railway runs it: migrations, readiness, SIGTERM."""

from pathlib import Path

import psycopg
import pytest
import yaml

from ..helpers import STARTER
from .containers import Image
from .deploy import Service, Starter, assert_stops_cleanly, free_port, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.image]
# Some of the tables each variant's migrations make.
TABLES = {
    "default": {"companies", "users", "wallets", "wallet_transactions"},
    STARTER: {"companies", "users", "company_domains", "user_exports"},
}


def test_start_commands_agree_across_railway_compose_and_the_dockerfile(
    image: Image, railway: dict[str, Service], cron: str
) -> None:
    """The commands the tests below run are the ones every deploy file names."""
    compose = yaml.safe_load(image.project.joinpath("compose.yaml").read_text())["services"]
    assert railway["api"].command == image.config["Cmd"]
    assert "command" not in compose["api"], "compose's api should run the image's CMD"
    assert compose["worker"]["command"] == railway["worker"].command
    assert compose[cron]["command"] == railway[cron].command


def test_api_start_command_migrates_and_answers_ready(
    start: Starter, database: str, variant: str
) -> None:
    port = free_port()
    api = start("api", port=port)

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
    assert TABLES[variant] <= tables
    # exec in the entrypoint: the container's process is uvicorn itself, not a shell.
    cmdline = Path(f"/proc/{api.main_pid()}/cmdline").read_bytes().split(b"\0")
    assert any(b"uvicorn" in word for word in cmdline), cmdline
    assert 0 not in api.uids()


def test_sigterm_stops_the_api_cleanly(image: Image, start: Starter) -> None:
    port = free_port()
    api = start("api", port=port)
    wait_until_ready(api, port)

    assert_stops_cleanly(api, image, "api", timeout=30)
    assert "Application shutdown complete" in api.output()
    assert "Finished server process" in api.output()
